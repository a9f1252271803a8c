"""Architecture statements: hidden (embedding) size, attention heads, K/V heads, head size,
MLP intermediate size, layers, vocabulary and context length, in prose ("32 layers",
"hidden size of 4096"), list items (`- **Layers:** 32`), key-value and comparison tables,
and width/depth changes ("from 32 to 24 layers", prunecard's "layers 3 -> 2").

With a checkpoint each is checked against the analysis (config.json and the tensors); a
figure about the dense base against `--base-config`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import Claim, number, plain
from analyzer.audit.registry import Family, Rows, register
from analyzer.text import fixed

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = ["LABELS", "Architecture"]

LABELS = {  # the words for each dimension -> claim quantity
    "arch_hidden": r"hidden size|hidden dim(?:ension)?|embedding (?:size|dim(?:ension)?)|d_model"
    r"|model dim(?:ension)?|hidden_size",
    "arch_kv_heads": r"key[- /]value heads|k/v heads|kv heads|num_key_value_heads",
    "arch_heads": r"(?:attention |query )?heads|num_attention_heads",
    "arch_head_dim": r"head (?:size|dim(?:ension)?)|head_dim",
    "arch_intermediate": r"(?:mlp |ffn )?intermediate size|ffn (?:dim(?:ension)?|size|hidden size)"
    r"|mlp (?:dim(?:ension)?|size)|intermediate_size",
    "arch_layers": r"(?:transformer |decoder |hidden |encoder )?layers|num_hidden_layers|depth",
    "arch_vocab": r"vocab(?:ulary)?(?: size)?|vocab_size",
    "arch_context": r"context (?:length|window)|max(?:imum)? position embeddings"
    r"|max_position_embeddings|sequence length",
}


def _count(i: int) -> str:
    return rf"(?P<c{i}>\d{{1,3}}(?:,\d{{3}})+|\d{{1,7}})\s?(?P<k{i}>[kK])?"


_COUNT = r"(\d{1,3}(?:,\d{3})+|\d{1,7})\s?([kK])?"
_ANY = "|".join(f"(?P<{q}>{p})" for q, p in LABELS.items())
_LABEL_FIRST = re.compile(
    rf"\b(?:{_ANY})\s?(?:is|of|:|=)\s(?:~\s?)?{_count(1)}(?![\d:%x]|\.\d)", re.I
)
_COUNT_FIRST = re.compile(
    rf"(?<![\d.,:/])(?<!of )(?<!all )(?<!pruned )(?<!removed )\b{_count(1)}[ -](?:{_ANY})\b", re.I
)
_CHANGES = (
    re.compile(rf"\b(?:{_ANY})\s?(?:from|:)?\s?{_count(1)}\s?(?:->|→|to)\s?{_count(2)}\b", re.I),
    re.compile(rf"\bfrom {_count(1)} to {_count(2)} (?:{_ANY})\b", re.I),
)
_PRUNING = re.compile(r"\s?(?:are |were |have been )?(?:removed|pruned|dead)")
_PER_LAYER = re.compile(r"\s(?:per layer|in each layer|each)\b")
_HAS = ("with ", "has ", "uses ", "and ")
_COUNT_CELL = re.compile(rf"^{_COUNT}$")
_BASE_HEAD = re.compile(r"dense|base|original", re.I)
_TABLE_LABEL = re.compile(rf"^(?:{_ANY})$", re.I)
_BASE = "the dense base"
_FIELD = {  # quantity -> how the analysis states it
    "arch_hidden": lambda a: a.hidden_size,
    "arch_heads": lambda a: a.num_heads,
    "arch_kv_heads": lambda a: a.num_kv_heads or a.num_heads,
    "arch_head_dim": lambda a: a.head_dim or (a.hidden_size // a.num_heads if a.num_heads else 0),
    "arch_intermediate": lambda a: a.intermediate_size,
    "arch_layers": lambda a: a.num_layers,
}
_BASE_WHAT = {
    "arch_layers": "layers",
    "arch_hidden": "hidden size",
    "arch_intermediate": "intermediate size",
    "arch_heads": "query heads",
    "arch_kv_heads": "KV heads",
}


def _quantity(m: re.Match[str]) -> str:
    return next(q for q in LABELS if m.groupdict().get(q))


def _claim(quantity: str, m: re.Match[str], count: str, k: str | None, line: int,
           section: str, source: str, about: str = "") -> Claim:  # fmt: skip
    value, decimals = number(count)
    return Claim(quantity, m.group(0), line, section, source, value, decimals,
                 "k" if k else "", about=about)  # fmt: skip


def read(text: str, line: int, section: str, source: str = "prose") -> list[Claim]:
    """The dimensions a line states, a change ("from 32 to 24 layers") as two claims: the
    dense base's and this model's."""
    out: list[Claim] = []
    taken: list[tuple[int, int]] = []
    for pattern in _CHANGES:
        for m in pattern.finditer(text):
            q = _quantity(m)
            out.append(_claim(q, m, m.group("c1"), None, line, section, source, about=_BASE))
            out.append(_claim(q, m, m.group("c2"), None, line, section, source))
            taken.append(m.span())
    for pattern in (_LABEL_FIRST, _COUNT_FIRST):
        for m in pattern.finditer(text):
            if any(a <= m.start() < b for a, b in taken):
                continue
            q = _quantity(m)
            if q == "arch_heads" and _PRUNING.match(text, m.end()):
                continue  # "12 heads pruned": a pruning figure (sparsity_phrases)
            if (
                pattern is _COUNT_FIRST
                and q in ("arch_heads", "arch_kv_heads")
                and not _PER_LAYER.match(text, m.end())
                and not text[: m.start()].endswith(_HAS)
            ):
                continue  # "every 4 query heads share a group": not the model's count
            out.append(_claim(q, m, m.group("c1"), m.group("k1"), line, section, source))
            taken.append(m.span())
    return out


@register("architecture")
class Architecture(Family):
    def prose(self, plain_line: str, line: int, section: str) -> list[Claim]:
        return read(plain_line, line, section)

    def table(self, rows: Rows, section: str) -> list[Claim]:
        """`| Layers | 32 |` rows; with several value columns, each about its header
        (a column named dense/base/original is the dense base)."""
        header = [plain(c) for c in rows[0][1]]
        if header[0].lower() == "pattern":
            return []  # prunecard's pattern table: its "heads" row names a pattern kind
        out: list[Claim] = []
        for n, raw in [(rows[0][0], rows[0][1]), *rows[1:]]:
            cells = [plain(c) for c in raw]
            if len(cells) < 2 or not (label := _TABLE_LABEL.fullmatch(cells[0])):
                continue
            q = _quantity(label)
            for i, cell in enumerate(cells[1:], 1):
                if not (m := _COUNT_CELL.fullmatch(cell)):
                    continue
                head = header[i] if len(cells) > 2 and i < len(header) else ""
                about = _BASE if _BASE_HEAD.search(head) else head
                value, decimals = number(m.group(1))
                out.append(Claim(q, " | ".join(cells), n, section, "table", value, decimals,
                                 "k" if m.group(2) else "", about=about))  # fmt: skip
        return out

    def measured(
        self, claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
    ) -> findings.AuditFinding | None:
        q = claim.quantity
        if not q.startswith("arch_"):
            return None
        if q not in _FIELD:
            return findings.unchecked(claim, "the analysis record does not hold this dimension")
        if analysis is None:
            return findings.unchecked(claim, "no weights read (--no-weights)", "weights")
        assert claim.value is not None
        if claim.about == _BASE:
            change = next(
                (c for c in (analysis.base.changes if analysis.base else ())
                 if c.what == _BASE_WHAT.get(q)),
                None,
            )  # fmt: skip
            if change is None:
                return findings.unchecked(claim, "no --base-config given", "weights")
            source = analysis.base.source if analysis.base else ""
            rule = f"the dense base's {change.what} in --base-config ({source})"
            return findings.compare(claim, "weights", float(change.base), 0, rule=rule)
        if claim.about:
            return findings.unchecked(claim, f"a column of a comparison table ({claim.about})")
        measured = float(_FIELD[q](analysis))
        scaled = claim.value * (1000 if claim.unit == "k" else 1)
        rule = "config.json and the tensors' shapes: the count must be equal"
        if claim.unit == "k":
            rule = "a count in k: 1,000 or 1,024 times the printed figure, rounded as printed"
            printed = fixed(claim.value, claim.decimals)
            ok = any(fixed(measured / f, claim.decimals) == printed for f in (1000, 1024))
            return findings.judged(claim, "weights", fixed(measured, 0), rule, ok, measured)
        return findings.judged(
            claim, "weights", fixed(measured, 0), rule, scaled == measured, measured
        )
