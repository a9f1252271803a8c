"""Claims of the detail tables and sentences of prunecard's own cards, beside the summary
(`prunecard_card.py`): the pattern table, the decoding and semi-structured kernel tables,
the perplexity details, the confidence intervals, the equivalence and timing sentences.
With them every figure prunecard prints is read (tests/test_card_figures.py), so an edit
to any of them is at least a claim the report lists, and mostly a checked one."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import NUM, Claim, number, plain
from analyzer.audit.consistency import ratio_check
from analyzer.audit.nn_pruning import Adder
from analyzer.audit.registry import Family, Rows, register
from analyzer.card_labels import SUMMARY

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = ["PrunecardDetails"]

_SCI = r"(\d+(?:\.\d+)?e[+-]\d+)"  # "3.10e-05"
_CI = rf"{NUM}% CI {NUM} to {NUM}"
# (pattern, its groups' (quantity, unit), the claims' `about`)
_PROSE: tuple[tuple[re.Pattern[str], tuple[tuple[str, str], ...]], ...] = tuple(
    (re.compile(pattern, re.I), groups)
    for pattern, groups in (
        (rf"non-zeros: {NUM} of {NUM}", (("linear_nnz", ""), ("linear_dense", ""))),
        (
            rf"are non-zero \({NUM} of the dense model's {NUM}\)",
            (("params_nonzero", ""), ("params_dense", "")),
        ),
        (rf"Against the dense base \([^()]{{1,300}}, {NUM} parameters\)", (("base_params", ""),)),
        (rf"every {NUM} query heads share one key/value group", (("heads_per_kv_group", ""),)),
        (
            rf"{NUM} of {NUM} KV groups \({NUM}%\) are removed",
            (("heads_kv_removed", ""), ("heads_kv_total", ""), ("heads_kv_removed_pct", "%")),
        ),
        (
            rf"{NUM} more query heads? (?:is|are) {re.escape(SUMMARY.dead)}",
            (("heads_dead_kept", ""),),
        ),
        (rf"medians of {NUM} runs", (("timing_runs", ""),)),
        (rf", {NUM} threads\)", (("threads", ""),)),
        (rf"\({NUM} cores\)", (("cpu_cores", ""),)),
        (rf"Perplexity of the \w{{1,20}} model on [^:]{{1,300}}: {NUM}", (("perplexity", ""),)),
        (_CI, (("ci_level", "%"), ("ci_low", ""), ("ci_high", ""))),
        (rf"{NUM}% percentile bootstrap", (("ci_level", "%"),)),
        (rf"{NUM} resamples, seed {NUM}", (("bootstrap_resamples", ""), ("bootstrap_seed", ""))),
        (rf"a sample of {NUM} drawn with seed {NUM}", (("eval_sample", ""), ("sample_seed", ""))),
        (rf"scores read from \S{{1,200}} \({NUM} questions\)", (("reference_questions", ""),)),
        (rf"windows of {NUM} tokens", (("ppl_window", ""),)),
        (rf"the last {NUM} tokens", (("ppl_tokens_unscored", ""),)),
        (rf"with up to {NUM} tokens of context", (("ppl_context", ""),)),
        (rf"on {NUM} SQuAD v2 questions", (("equivalence_inputs", ""),)),
    )
)
_EQUIVALENCE = re.compile(rf"by at most {_SCI} \(tolerance {_SCI}\)(?: on (\d+ x \d+))?")
_SEMI_PROSE = re.compile(r"The (\d+:\d+) matrices run as semi-structured sparse tensors")
_NUMBER = re.compile(NUM)
_SPREAD = re.compile(rf"^{NUM}(?: ± {NUM})?$")
_RATIO = re.compile(rf"^{NUM}x$")
_ZEROS_CELL = re.compile(rf"^{NUM} \({NUM}%\)$")
_CI_HEAD = re.compile(rf"^{NUM}% CI$", re.I)
_CI_CELL = re.compile(rf"^{NUM} to {NUM}$")
_SEMI_SHAPE = re.compile(r"^batch (\d+), (\d+) tokens$")
_WINDOWS = re.compile(rf"^{NUM} \({NUM}, {NUM}\)$")
_DETAIL = {"tokens in the text": "eval_tokens", "tokens scored": "ppl_tokens_scored"}
# decoding-table columns -> quantity (the batch keys the row)
_DECODE = {
    "prompt tokens": "prompt_tokens",
    "new tokens": "new_tokens",
    "dense (tokens/s)": "decode_dense_tps",
    "packed (tokens/s)": "decode_packed_tps",
    "runs": "timing_runs",
}
# semi-structured-table columns -> quantity stem (a "± spread" cell adds `_spread`)
_SEMI = {"dense (ms)": "sparse_kernel_dense", "sparse (ms)": "sparse_kernel_sparse"}
_HEAD_LISTS = {"removed_head": "removed", "dead_head": "dead_kept"}  # claim -> LayerHeads field
_PATTERN_COLUMNS = ("pattern_table_matrices", "pattern_share", "pattern_zeros")
_RATIOS = (  # (claim, numerator, denominator): speedups printed beside their two figures
    ("decode_speedup", "decode_packed_tps", "decode_dense_tps"),
    ("sparse_kernel_speedup", "sparse_kernel_dense_ms", "sparse_kernel_sparse_ms"),
)


@register("prunecard_details")
class PrunecardDetails(Family):
    def prose(self, plain_line: str, line: int, section: str) -> list[Claim]:
        out: list[Claim] = []
        for pattern, groups in _PROSE:
            for m in pattern.finditer(plain_line):
                a = Adder(m.group(0).strip(), line, section, "prose")
                for index, (quantity, unit) in enumerate(groups, 1):
                    a.add(quantity, m.group(index), unit)
                out += a.out
        for m in _SEMI_PROSE.finditer(plain_line):
            out.append(Claim("sparsity_pattern", m.group(0), line, section, "prose",
                             name=m.group(1)))  # fmt: skip
        for m in _EQUIVALENCE.finditer(plain_line):
            about = f"{m.group(3)} token ids" if m.group(3) else ""
            out += [
                _scientific("equivalence_max_diff", m.group(1), m, line, section, about),
                _scientific("equivalence_tolerance", m.group(2), m, line, section, about),
            ]
        return out

    def table(self, rows: Rows, section: str) -> list[Claim]:
        header = [plain(c).lower() for c in rows[0][1]]
        body = [(n, [plain(c) for c in cells]) for n, cells in rows[1:]]
        out: list[Claim] = []
        if header[:2] == ["pattern", "matrices"]:
            out += [c for n, cells in body for c in _pattern_row(n, cells, section)]
        elif header[:3] == ["batch", "prompt tokens", "new tokens"]:
            out += [c for n, cells in body for c in _decode_row(n, cells, header, section)]
        elif header[:1] == ["shape (batch x tokens)"]:
            out += [c for n, cells in body for c in _semi_row(n, cells, header, section)]
        elif header[:2] == ["detail", "value"]:
            out += [c for n, cells in body for c in _detail_row(n, cells, section)]
        ci = next((i for i, h in enumerate(header) if _CI_HEAD.match(h)), None)
        if ci is not None:
            out += _ci_column(rows, ci, section)
        return out

    def measured(
        self, claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
    ) -> findings.AuditFinding | None:
        q = claim.quantity
        if q == "reference_questions":
            return findings.unchecked(claim, "describes the reference model's evaluation")
        if q not in (*_PATTERN_COLUMNS, "pattern_zeros_pct", "base_params", *_HEAD_LISTS):
            return None
        if analysis is None:
            return findings.unchecked(claim, "no weights read (--no-weights)", "weights")
        if q == "base_params":
            if analysis.base is None or not analysis.base.base_parameters:
                return findings.unchecked(claim, "no dense base given (--base-config)", "weights")
            return findings.compare(claim, "weights", analysis.base.base_parameters, 0)
        if q in _HEAD_LISTS:
            return _listed_head(claim, analysis)
        return _pattern_figure(claim, analysis)

    def internal(self, partners: findings.Partners) -> list[findings.AuditFinding]:
        """Speedups against the two figures beside them, each interval around its figure,
        the equivalence within its tolerance, and the summary's pattern counts against the
        pattern table's."""
        out = []
        for quantity, top, bottom in _RATIOS:
            for claim in partners.named(quantity):
                t, b = partners.of(claim, top), partners.of(claim, bottom)
                if claim.value is not None and t is not None and b is not None:
                    rule = f"speedup = {t.printed} / {b.printed}, to the precision printed"
                    out.append(ratio_check(claim, t, b, 1.0, rule))
        for low in partners.named("ci_low"):
            high, main = partners.of(low, "ci_high"), partners.of(low, low.about)
            if high is not None and main is not None and main.value is not None:
                assert low.value is not None and high.value is not None
                ok = low.value <= main.value <= high.value
                rule = "a confidence interval holds the figure it is printed with"
                shown = f"{low.printed} to {high.printed}"
                out.append(findings.judged(main, "internal", shown, rule, ok))
        for diff in partners.named("equivalence_max_diff"):
            tolerance = partners.of(diff, "equivalence_tolerance")
            if tolerance is not None and diff.value is not None and tolerance.value is not None:
                rule = "the packed model's largest logit difference is within the tolerance"
                ok = diff.value <= tolerance.value
                shown = f"tolerance {tolerance.value:g}"
                out.append(findings.judged(diff, "internal", shown, rule, ok))
        return [f for f in out if f is not None] + _patterns_agree(partners)


def _scientific(
    quantity: str, printed: str, m: re.Match[str], line: int, section: str, about: str
) -> Claim:
    """A figure printed as '3.10e-05', its decimals those of its fixed-point spelling."""
    mantissa, exponent = printed.split("e")
    decimals = max(0, number(mantissa)[1] - int(exponent))
    return Claim(quantity, m.group(0), line, section, "prose", float(printed), decimals,
                 about=about)  # fmt: skip


def _pattern_row(n: int, cells: list[str], section: str) -> list[Claim]:
    """`| 2:4 | 7 | 50.0% | 17,408 (50.0%) | runtime |`: matrices, share of the linear
    weights, zeros and their share, about the pattern named first."""
    if len(cells) < 4 or not (zeros := _ZEROS_CELL.match(cells[3])):
        return []
    a = Adder(" | ".join(cells), n, section, "pattern table", cells[0])
    a.add("pattern_table_matrices", cells[1])
    a.add("pattern_share", cells[2].rstrip("%"), "%")
    a.add("pattern_zeros", zeros.group(1))
    a.add("pattern_zeros_pct", zeros.group(2), "%")
    return a.out


def _decode_row(n: int, cells: list[str], header: list[str], section: str) -> list[Claim]:
    if not cells or not _NUMBER.fullmatch(cells[0]):
        return []
    a = Adder(" | ".join(cells), n, section, "decoding table", f"batch {cells[0]}")
    for head, cell in zip(header[1:], cells[1:], strict=False):
        if (quantity := _DECODE.get(head)) and _NUMBER.fullmatch(cell):
            a.add(quantity, cell)
        elif head == "speedup" and (m := _RATIO.match(cell)):
            a.add("decode_speedup", m.group(1), "x")
    return a.out


def _semi_row(n: int, cells: list[str], header: list[str], section: str) -> list[Claim]:
    if not cells or not (shape := _SEMI_SHAPE.match(cells[0])):
        return []
    about = f"batch {shape.group(1)} x {shape.group(2)}"
    a = Adder(" | ".join(cells), n, section, "semi-structured table", about)
    for head, cell in zip(header[1:], cells[1:], strict=False):
        if (stem := _SEMI.get(head)) and (m := _SPREAD.match(cell)):
            a.add(f"{stem}_ms", m.group(1))
            if m.group(2):
                a.add(f"{stem}_spread_ms", m.group(2))
        elif head == "speedup" and (m := _RATIO.match(cell)):
            a.add("sparse_kernel_speedup", m.group(1), "x")
        elif head == "runs" and _NUMBER.fullmatch(cell):
            a.add("timing_runs", cell)
    return a.out


def _detail_row(n: int, cells: list[str], section: str) -> list[Claim]:
    """The perplexity details: tokens in the text, tokens scored, windows (size, stride)."""
    if len(cells) < 2:
        return []
    a = Adder(" | ".join(cells), n, section, "perplexity details")
    label, value = cells[0].lower(), cells[1]
    if (quantity := _DETAIL.get(label)) and _NUMBER.fullmatch(value):
        a.add(quantity, value)
    elif label.startswith("windows") and (m := _WINDOWS.match(value)):
        a.add("ppl_windows", m.group(1))
        a.add("ppl_window", m.group(2))
        a.add("ppl_stride", m.group(3))
    return a.out


def _ci_column(rows: Rows, column: int, section: str) -> list[Claim]:
    """A `95% CI` column: its level (the header) and each row's interval, about the
    row's metric (read by the results-table families as `exact` or `f1`)."""
    head_line, head_cells = rows[0]
    level = _CI_HEAD.match(plain(head_cells[column]))
    assert level is not None
    a = Adder(" | ".join(plain(c) for c in head_cells), head_line, section, "results table")
    a.add("ci_level", level.group(1), "%")
    out = a.out
    for n, raw in rows[1:]:
        cells = [plain(c) for c in raw]
        if column >= len(cells) or not (m := _CI_CELL.match(cells[column])):
            continue
        metric = {"exact match": "exact", "f1": "f1"}.get(cells[0].lower(), cells[0])
        row = Adder(" | ".join(cells), n, section, "results table", metric)
        row.add("ci_low", m.group(1))
        row.add("ci_high", m.group(2))
        out += row.out
    return out


def _listed_head(claim: Claim, analysis: Analysis) -> findings.AuditFinding:
    """A head index of the per-layer table's "Heads removed" cell, against that layer's
    removed heads (or, after "dead (kept by packing):", its dead heads packing keeps)."""
    layer = int(claim.about.removeprefix("layer "))
    heads = next((h for h in analysis.heads.layers if h.layer == layer), None)
    listed = () if heads is None else getattr(heads, _HEAD_LISTS[claim.quantity])
    shown = ", ".join(map(str, listed)) or "none"
    rule = f"each head listed is one the lossless rule finds {claim.quantity.split('_')[0]}"
    return findings.judged(claim, "weights", shown, rule, int(claim.value or 0) in listed)


def _pattern_figure(claim: Claim, analysis: Analysis) -> findings.AuditFinding:
    """A pattern-table figure against the analysis's pattern summary."""
    row = next((p for p in analysis.patterns if p.kind == claim.about), None)
    if row is None:
        kinds = ", ".join(p.kind for p in analysis.patterns) or "no pattern summary"
        rule = "the pattern table names the patterns the analysis measured"
        return findings.judged(claim, "weights", kinds, rule, False)
    value = {
        "pattern_table_matrices": float(row.matrices),
        "pattern_share": 100 * row.weights / analysis.linear.dense if analysis.linear.dense else 0,
        "pattern_zeros": float(row.zeros),
        "pattern_zeros_pct": 100 * row.zeros / row.weights if row.weights else 0.0,
    }[claim.quantity]
    return findings.compare(claim, "weights", value, 3 if claim.unit == "%" else 0)


def _patterns_agree(partners: findings.Partners) -> list[findings.AuditFinding]:
    """The summary's "2:4 (7 of 14)" against the pattern table's row of 2:4: a pattern
    edited in one of them is a mismatch without the weights."""
    table = {c.about: c for c in partners.named("pattern_table_matrices")}
    out = []
    for claim in partners.named("pattern_matrices"):
        row = table.get(claim.name)
        if not table or claim.value is None:
            continue  # no pattern table (an older card): the weights check it alone
        shown = f"{row.printed} (line {row.line})" if row else "no row of this pattern"
        rule = "the summary's matrices of each pattern equal the pattern table's"
        held = row is not None and row.value == claim.value
        out.append(findings.judged(claim, "internal", shown, rule, held))
    named = {c.name for c in partners.named("pattern_matrices")}
    for kind, row in table.items():
        if named and kind not in named:
            rule = "every pattern of the pattern table is in the summary's pattern row"
            out.append(findings.judged(row, "internal", "not in the pattern row", rule, False))
    return out
