"""Claims of prunecard's own cards: the summary table (its labels come from
`analyzer.card_labels`, the module the template prints them from), the per-layer, speed
and Provenance tables, and the Sparsity and Attention heads sentences. Every figure of the
summary is read, including the pattern row ("2:4 (7 of 14)"), the width/depth row
("layers 3 -> 2"), the head word ("(query heads)") and the weights' dtype."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import NUM, Claim, dataset_mentions, plain
from analyzer.audit.nn_pruning import Adder, prose_figures
from analyzer.audit.registry import Family, Rows, register
from analyzer.card_labels import SUMMARY
from analyzer.text import fixed

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = ["PrunecardCard"]

_PROSE = (
    (re.compile(rf"linear layers hold {NUM}\s*% of their dense weights", re.I), "linear_density"),
    (
        re.compile(rf"Over all parameters, .{{0,100}}?{NUM}\s*% are non-zero", re.I),
        "overall_density",
    ),
)
_OWN = (
    (
        re.compile(rf"The files store {NUM} parameters \({NUM} MB(?:, (\w{{1,16}})\))?", re.I),
        (("params_stored", ""), ("file_size", "MB")),
    ),
    (
        re.compile(rf"leaves {NUM}, of which {NUM} in the linear layers", re.I),
        (("params_packed", ""), ("linear_packed", "")),
    ),
    (re.compile(rf"Weight files: {NUM} MB as stored", re.I), (("file_size", "MB"),)),
    (re.compile(rf"{NUM} MB packed", re.I), (("packed_file_size", "MB"),)),
    (re.compile(rf"SQuAD v2 on {NUM} questions", re.I), (("eval_questions", ""),)),
)
_HEADS_OWN = re.compile(rf"(?<!\d)(\d+) of (\d+) heads \({NUM}\s*%\) are removed", re.I)


def _label(text: str) -> str:
    """A label's key words (before its first ':' or '('), as a prefix pattern."""
    return "^" + re.escape(text.split(":")[0].split(" (")[0].lower())


# a summary value's format: its pattern and the unit of each number it holds
_PCT_OF = (rf"{NUM}% \({NUM} of {NUM}\)", ("%", "", ""))  # "12.96% (1,234 of 5,678)"
_OF_PCT = (rf"{NUM} of {NUM} \({NUM}%\)", ("", "", "%"))  # "12 of 144 (8.3%)"
_MB = (rf"{NUM} MB", ("MB",))
_BARE = (rf"{NUM}\b", ("",))
_UNITS = (
    f"(?:{re.escape(SUMMARY.units_encoder.lower())}|{re.escape(SUMMARY.units_decoder.lower())})"
)
_SUMMARY = (
    (_label(SUMMARY.linear), _PCT_OF, ("linear_density", "linear_nnz", "linear_dense")),
    (_label(SUMMARY.overall), _PCT_OF, ("overall_density", "params_nonzero", "params_dense")),
    (_label(SUMMARY.heads), _OF_PCT, ("heads_removed", "heads_total", "heads_removed_pct")),
    (
        _label(SUMMARY.dead_kept),
        _OF_PCT,
        ("heads_dead_kept", "heads_total", "heads_dead_kept_pct"),
    ),
    (
        _label(SUMMARY.kv_groups),
        _OF_PCT,
        ("heads_kv_removed", "heads_kv_total", "heads_kv_removed_pct"),
    ),
    (
        f"^{_UNITS} {re.escape(SUMMARY.kept)}",
        _OF_PCT,
        ("ffn_units_kept", "ffn_units_total", "ffn_units_kept_pct"),
    ),
    (
        _label(SUMMARY.params),
        (rf"{NUM} / {NUM} / {NUM}", ("", "", "")),
        ("params_dense", "params_stored", "params_packed"),
    ),
    (
        _label(SUMMARY.files),
        (rf"{NUM} MB / {NUM} MB", ("MB", "MB")),
        ("file_size", "packed_file_size"),
    ),
    (_label(SUMMARY.files), _MB, ("file_size",)),
    (
        _label(SUMMARY.speedup),
        (rf"{NUM}x \(FLOP bound {NUM}x\)", ("x", "x")),
        ("speedup", "flop_bound"),
    ),
    (
        "^" + re.escape(SUMMARY.decoding.lower()),
        (rf"{NUM} / {NUM} \({NUM}x\)", ("", "", "x")),
        ("decode_dense_tps", "decode_packed_tps", "decode_speedup"),
    ),
    (
        "^" + re.escape(SUMMARY.semi_structured.lower()),
        (rf"{NUM}x \({NUM} ms dense, {NUM} ms sparse\)", ("x", "", "")),
        ("sparse_kernel_speedup", "sparse_kernel_dense_ms", "sparse_kernel_sparse_ms"),
    ),
    (_label(SUMMARY.perplexity) + r"\b", _BARE, ("perplexity",)),
    (r"exact match \(", _BARE, ("exact",)),
    (r"\bf1 \(", _BARE, ("f1",)),
)
_SUMMARY_PATTERNS = tuple(
    (re.compile(label, re.I), re.compile(value), tuple(zip(quantities, units, strict=True)))
    for label, (value, units), quantities in _SUMMARY
)
_PATTERN_ITEM = re.compile(r"([\w:]{1,12}) \((\d{1,9}) of (\d{1,9})\)")
_BASE_ITEM = re.compile(r"([a-zA-Z][a-zA-Z /]{0,40}?) (\d[\d,]{0,20}) -> (\d[\d,]{0,20})")
_QUESTIONS = re.compile(rf"\({NUM} questions\)")
_TOKENS = re.compile(rf"\({NUM} tokens\)")
_CI = re.compile(rf"\({NUM}% CI {NUM} to {NUM}\)")
_SHAPE_LABEL = re.compile(r"batch (\d+)(?: x (\d+))?")
_SHAPE_CELL = re.compile(r"^(\d+) x (\d+)")
_LAYER = re.compile(r"\d+")
_NUMBER = re.compile(NUM)
_PERCENT_CELL = re.compile(rf"{NUM}%")
_OF_CELL = re.compile(rf"{NUM} of {NUM}(?: \({NUM}%\))?")
_RATIO_CELL = re.compile(rf"{NUM}x")
_TIME_CELL = re.compile(rf"{NUM}(?: ± {NUM})?")
_HEAD_WORD = re.compile(r"\(([\w/-]{1,12} heads)\)")  # the row's "(query heads)"
_KEPT = {  # a per-layer "N of M" column -> its claims' stem
    "heads kept": "heads",
    "kv groups kept": "kv",
    "ffn units kept": "ffn_units",
    "mlp channels kept": "ffn_units",
}
_HEX = re.compile(r"^[0-9a-f]{64}$")
BASE_QUANTITY = {  # a width/depth row's words -> the claim and Analysis field
    "layers": "arch_layers",
    "hidden size": "arch_hidden",
    "intermediate size": "arch_intermediate",
    "query heads": "arch_heads",
    "kv heads": "arch_kv_heads",
}


@register("prunecard")
class PrunecardCard(Family):
    def prose(self, plain_line: str, line: int, section: str) -> list[Claim]:
        out = prose_figures(plain_line, line, section, _PROSE)
        for m in _HEADS_OWN.finditer(plain_line):
            a = Adder(m.group(0).strip(), line, section, "prose")
            a.add("heads_removed", m.group(1))
            a.add("heads_total", m.group(2))
            a.add("heads_removed_pct", m.group(3), "%")
            out += a.out
        for pattern, groups in _OWN:
            for m in pattern.finditer(plain_line):
                a = Adder(m.group(0).strip(), line, section, "prose")
                for index, (quantity, unit) in enumerate(groups, 1):
                    a.add(quantity, m.group(index), unit)
                out += a.out
                if groups[0][0] == "params_stored" and m.group(3):
                    out.append(Claim("weights_dtype", m.group(0), line, section, "prose",
                                     name=m.group(3).lower()))  # fmt: skip
                if groups[0][0] == "eval_questions":
                    out += dataset_mentions(m.group(0), line, section, "prose")
        return out

    def table(self, rows: Rows, section: str) -> list[Claim]:
        header = [plain(c).lower() for c in rows[0][1]]
        body = [
            (n, [plain(c) for c in cells])
            for n, cells in rows[1:]
            if not all(set(c) <= set("-: ") for c in cells)
        ]
        if header[:2] == ["figure", "value"]:
            return [c for n, cells in body for c in _summary_row(n, cells, section)]
        if header and header[0] == "layer" and "linear density" in header:
            return [c for n, cells in body for c in _layer_row(n, cells, header, section)]
        if header[:2] == ["file", "sha256"]:
            return [c for n, cells in body for c in _provenance_row(n, cells, section)]
        if header and header[0].startswith("batch") and "speedup" in header:
            return [c for n, cells in body for c in _speed_row(n, cells, header, section)]
        return []

    def measured(
        self, claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
    ) -> findings.AuditFinding | None:
        if claim.quantity == "pattern_matrices":
            return _pattern_matrices(claim, analysis)
        if claim.quantity == "head_kind":
            if analysis is None:
                return findings.unchecked(claim, "no weights read (--no-weights)", "weights")
            expected = SUMMARY.query_heads.strip("()") if analysis.heads.kv_total else "heads"
            kv = analysis.num_kv_heads or analysis.num_heads
            shown = f"{expected}: {analysis.num_heads} query heads, {kv} K/V heads"
            rule = (
                "the heads row says 'query heads' exactly where K/V heads are counted apart "
                "(a decoder), plain 'heads' elsewhere"
            )
            return findings.judged(claim, "weights", shown, rule, claim.name == expected)
        return None

    def internal(self, partners: findings.Partners) -> list[findings.AuditFinding]:
        """The pattern row's counts add up to the matrices it names."""
        rows = [c for c in partners.named("pattern_matrices") if c.value is not None]
        out = []
        for line in sorted({c.line for c in rows}):
            items = [c for c in rows if c.line == line]
            total = float(items[0].base)
            held = sum(c.value or 0.0 for c in items)
            rule = f"the matrices of each pattern add up to the {items[0].base} linear matrices"
            shown = f"{fixed(held, 0)} of {fixed(total, 0)}"
            out.append(findings.judged(items[-1], "internal", shown, rule, held == total, held))
        return out


def _summary_row(n: int, cells: list[str], section: str) -> list[Claim]:
    """prunecard's summary table: `| Figure | Value |`."""
    if len(cells) < 2:
        return []
    label, value = cells[0], cells[1]
    shape = _SHAPE_LABEL.search(label)
    a = Adder(" | ".join(cells), n, section, "summary table")
    if shape:
        a.about = f"batch {shape.group(1)}" + (f" x {shape.group(2)}" if shape.group(2) else "")
    for label_pattern, value_pattern, quantities in _SUMMARY_PATTERNS:
        if label_pattern.search(label) and (m := value_pattern.match(value)):
            for index, (quantity, unit) in enumerate(quantities, 1):
                a.add(quantity, m.group(index), unit)
            break
    if (m := _CI.search(value)) and a.out:
        main = a.out[0].quantity
        a.add("ci_level", m.group(1), "%", about=main)
        a.add("ci_low", m.group(2), about=main)
        a.add("ci_high", m.group(3), about=main)
    if m := _TOKENS.search(label):
        a.add("eval_tokens", m.group(1))
    out = a.out
    if label.lower().startswith(SUMMARY.heads.lower()):
        kind = m.group(1) if (m := _HEAD_WORD.search(label)) else "heads"
        out.append(Claim("head_kind", a.text, n, section, "summary table", name=kind))
    if label.lower().startswith(SUMMARY.semi_structured.lower()):
        out.append(Claim("sparsity_pattern", a.text, n, section, "summary table", name="2:4"))
    if label.lower().startswith(SUMMARY.patterns.lower()):
        for m in _PATTERN_ITEM.finditer(value):
            count = float(m.group(2))
            out.append(Claim("pattern_matrices", a.text, n, section, "summary table", count,
                             name=m.group(1), base=m.group(3)))  # fmt: skip
    if label.lower().startswith(SUMMARY.base.lower()):
        for m in _BASE_ITEM.finditer(value):
            quantity = BASE_QUANTITY.get(m.group(1).strip().lower(), "arch_other")
            row = Adder(a.text, n, section, "summary table")
            row.add(quantity, m.group(3))
            row.add(quantity, m.group(2), about="the dense base")
            out += row.out
    if m := _QUESTIONS.search(label):
        a.out = []
        a.add("eval_questions", m.group(1))
        out += a.out
    return out + dataset_mentions(label, n, section, "summary table")[:1]


def _pattern_matrices(claim: Claim, analysis: Analysis | None) -> findings.AuditFinding:
    """A pattern row's count of matrices against the analysis's pattern summary."""
    if analysis is None:
        return findings.unchecked(claim, "no weights read (--no-weights)", "weights")
    if not analysis.patterns:
        return findings.unchecked(claim, "the analysis has no pattern summary", "weights")
    counts = {p.kind: p.matrices for p in analysis.patterns}
    measured = counts.get(claim.name, 0)
    shown = ", ".join(f"{k} {v}" for k, v in counts.items())
    rule = "each pattern's count of linear matrices must equal the measured pattern summary"
    return findings.judged(claim, "weights", shown, rule, measured == claim.value, float(measured))


def _layer_row(n: int, cells: list[str], header: list[str], section: str) -> list[Claim]:
    """prunecard's per-layer table: density, heads kept, FFN units kept, packed weights."""
    if not _LAYER.fullmatch(cells[0]):
        return []
    a = Adder(" | ".join(cells), n, section, "per-layer table", f"layer {cells[0]}")
    for index, head in enumerate(header[: len(cells)]):
        cell = cells[index]
        if head == "linear density" and (m := _PERCENT_CELL.fullmatch(cell)):
            a.add("layer_density", m.group(1), "%")
        elif (what := _KEPT.get(head)) and (m := _OF_CELL.match(cell)):
            a.add(f"layer_{what}_kept", m.group(1))
            a.add(f"layer_{what}_total", m.group(2))
            if m.group(3):
                a.add(f"layer_{what}_kept_pct", m.group(3), "%")
        elif head == "heads removed":  # "4, 5, 6, 7", "none; dead (kept by packing): 5"
            removed, _, dead = cell.partition(f"; {SUMMARY.dead}:")
            for quantity, indices in (("removed_head", removed), ("dead_head", dead)):
                for index in _LAYER.findall(indices):
                    a.add(quantity, index)
        elif head == "packed linear weights" and (m := _NUMBER.fullmatch(cell)):
            a.add("layer_linear_packed", m.group(1))
    return a.out


def _speed_row(n: int, cells: list[str], header: list[str], section: str) -> list[Claim]:
    """prunecard's speed table: `| Batch x tokens | ... | Speedup | FLOP bound | ... |`."""
    shape = _SHAPE_CELL.fullmatch(cells[0])
    if not shape:
        return []
    about = f"batch {shape.group(1)} x {shape.group(2)}"
    a = Adder(" | ".join(cells), n, section, "speed table", about)
    for index, head in enumerate(header[: len(cells)]):
        cell = cells[index]
        if head in ("speedup", "flop bound") and (m := _RATIO_CELL.match(cell)):
            a.add("speedup" if head == "speedup" else "flop_bound", m.group(1), "x")
        elif head.startswith(("dense (ms)", "packed (ms)")) and (m := _TIME_CELL.match(cell)):
            side = head.split()[0]
            a.add(f"{side}_ms", m.group(1))
            if m.group(2):
                a.add(f"{side}_spread_ms", m.group(2))
        elif head == "share of bound" and (m := _PERCENT_CELL.match(cell)):
            a.add("share_of_bound", m.group(1), "%")
        elif head == "runs" and (m := _NUMBER.fullmatch(cell)):
            a.add("timing_runs", m.group(1))
    return a.out


def _provenance_row(n: int, cells: list[str], section: str) -> list[Claim]:
    """prunecard's Provenance table: `| File | sha256 |`, one weight or config file a row."""
    if len(cells) < 2 or not _HEX.match(cells[1]):
        return []
    quote = " | ".join(cells)
    return [
        Claim("file_sha256", quote, n, section, "provenance table", name=cells[1], about=cells[0])
    ]
