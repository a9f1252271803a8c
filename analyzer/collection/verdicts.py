"""The site's page of audit verdicts: one row per model of the collection, from
collection.json (a failed model's row gives its error; the site has no page for it)."""

from __future__ import annotations

from analyzer.collection.records import Collection, ModelSummary
from analyzer.publish.safe_html import md_text
from analyzer.publish.site import FRONT_MATTER

__all__ = ["VERDICT_PAGE", "verdicts_markdown"]

VERDICT_PAGE = ("Audit verdicts", "verdicts.md")
_COLUMNS = ("ok", "mismatch", "warning", "not checkable")


def _row(model: ModelSummary, audited: bool) -> str:
    record = model.record
    cells = [md_text(model.listed), md_text(model.status)]
    if audited:
        if record is None or not record.card:
            note = "no card" if record is not None else ""
            cells += [""] * len(_COLUMNS) + [note]
        else:
            cells += [str(record.verdicts.get(v, 0)) for v in _COLUMNS]
            cells.append(
                "; ".join(
                    md_text(
                        f"line {w.line}: {w.quantity} claimed {w.claimed}, measured {w.measured}"
                    )
                    for w in record.worst
                )
            )
    cells.append(md_text(model.error))
    return "| " + " | ".join(cells) + " |"


def verdicts_markdown(collection: Collection) -> str:
    audited = collection.options.audit
    header = ["Model", "Status"]
    if audited:
        header += [*(c.capitalize() for c in _COLUMNS), "Worst mismatches"]
    header.append("Error")
    n = len(collection.models)
    failed = collection.count("failed")
    lead = f"{n} model{'s' if n != 1 else ''} listed; {failed} failed. " + (
        "Each card is audited against its own weights (`prunecard audit`); a mismatch is a "
        "claim the weights contradict, the worst are the furthest off."
        if audited
        else "Cards were not audited (run the collection with `--audit`)."
    )
    lines = [
        f"{FRONT_MATTER}# {VERDICT_PAGE[0]}\n",
        lead + "\n",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *(_row(m, audited) for m in collection.models),
    ]
    return "\n".join(lines) + "\n"
