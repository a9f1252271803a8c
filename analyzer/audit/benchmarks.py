"""Benchmark results as LLM and encoder cards print them: tables of tasks (with shots) by
models, with an Average row and a Recovery row or column; "EM/F1" cells; one row per seed
with a mean row; and accuracy sentences ("scores 71.3 on MMLU (5-shot)", "an average of
61.0 against 62.5 for the dense model (97.6% recovery)").

Every cell is a claim keyed by task, shots and model (`Cell`). The card's own rules: an
average is the mean of the rows above it, a recovery the ratio of the two figures it
names, each within what the printed precision allows. `check_table_against` holds the
pruned model's cells against scores measured elsewhere (an lm-eval record).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import NUM, Cell, Claim, number, plain
from analyzer.audit.consistency import ratio_check
from analyzer.audit.registry import Family, Rows, register
from analyzer.text import fixed

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis
    from analyzer.records import Benchmarks as BenchmarksRecord

__all__ = ["Benchmarks", "against_record", "check_table_against", "task_key"]

_TASK_HEAD = re.compile(r"^(?:tasks?|benchmarks?|datasets?|evaluations?|metrics?)\b")
_SHOT_HEAD = re.compile(r"^(?:n-?shots?|#? ?shots?|few-shot|k-shot|num_fewshot)$")
_SEED_HEAD = re.compile(r"^(?:seed|run|trial)s?$")
_RECOVERY = re.compile(r"recover|retained|% of (?:dense|base|baseline)|relative", re.I)
_AVERAGE = re.compile(r"^(?:average|avg\.?|mean)\b", re.I)
_BASE_WORDS = re.compile(r"\b(?:dense|base|baseline|original|unpruned|teacher|reference)\b", re.I)
_PRUNED_WORDS = re.compile(
    r"sparse|pruned|2:4|sparsity|minitron|sheared|compressed|(?<!\d)\d{1,3}%", re.I
)
_SHOTS_IN_LABEL = re.compile(r"\(?\b(\d{1,3})[- ]shots?\b[^)]{0,30}\)?", re.I)
_CELL = re.compile(rf"^{NUM}\s?(%?)(?:\s?(?:±|\+/-|\+-)\s?{NUM}\s?%?)?$")
_RANGE = re.compile(rf"^{NUM}\s?%?\s?(?:-|–|to)\s?{NUM}\s?%?$")
_PAIR = re.compile(rf"^{NUM}\s?/\s?{NUM}$")
_EM_F1 = re.compile(r"\b(em|exact match|f1)\s?/\s?(em|exact match|f1)\b", re.I)
_METRIC_COLUMN = {"em": "exact", "exact match": "exact", "exact": "exact", "f1": "f1"}
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_MODEL = "this model"
_DENSE = "the dense model"
_SCORE_SENTENCE = re.compile(
    r"\b(?:scores?|scoring|achieves?|achieving|reaches|reaching|obtains?|gets?)\s"
    rf"(?:an? )?(?:accuracy of )?{NUM}\s?(%?)(?: \((?:±|\+/-) ?{NUM}\))?\s"
    r"(?:(\d{1,3})-shot )?(?:accuracy |score )?on (?:the )?([A-Za-z][\w.+-]{1,30})"
    r"(?: \((\d{1,3})-shot\))?",
    re.I,
)
_AVERAGE_SENTENCE = re.compile(
    rf"\ban? average (?:score |accuracy )?of {NUM}\s?(%?)\s(?:against|vs\.?|versus|"
    rf"compared (?:with|to)) {NUM}\s?%? (?:for|of) the (?:dense|base|original|unpruned) model"
    rf"(?: \({NUM}\s?% recovery\))?",
    re.I,
)


def task_key(task: str) -> str:
    """A task's name for matching: 'ARC-Challenge' and 'arc_challenge' -> 'arcchallenge'."""
    return _NOT_ALNUM.sub("", task.lower())


def _figure(
    quantity: str,
    cell_text: str,
    quote: str,
    line: int,
    section: str,
    source: str,
    *,
    cell: Cell,
    name: str = "",
    about: str = "",
    base: str = "",
    mean_of: str = "",
) -> list[Claim]:
    """The claims of one cell: a figure (with its ± stderr), or a range's two ends."""

    def claim(what: str, printed: str, unit: str) -> Claim:
        value, decimals = number(printed)
        return Claim(what, quote, line, section, source, value, decimals, unit, name=name,
                     about=about, cell=cell, base=base, mean_of=mean_of)  # fmt: skip

    if m := _CELL.fullmatch(cell_text):
        out = [claim(quantity, m.group(1), m.group(2))]
        if m.group(3):
            out.append(claim(f"{quantity}_stderr", m.group(3), m.group(2)))
        return out
    if m := _RANGE.fullmatch(cell_text):
        return [claim(f"{quantity}_range", m.group(i), "") for i in (1, 2)]
    return []


def _base_column(models: list[tuple[int, str]]) -> str:
    """The dense model's column: named dense/base/original, else the first not named
    sparse/pruned, else the first."""
    named = [h for _, h in models if _BASE_WORDS.search(h)]
    plain_named = [h for _, h in models if not _PRUNED_WORDS.search(h)]
    return (named or plain_named or [models[0][1]])[0]


def _results_table(rows: Rows, section: str) -> list[Claim]:
    header = [plain(c) for c in rows[0][1]]
    lower = [h.lower() for h in header]
    table = rows[0][0]
    shot_col = next((i for i, h in enumerate(lower) if _SHOT_HEAD.fullmatch(h)), None)
    recovery_cols = [i for i, h in enumerate(header) if i and _RECOVERY.search(h)]
    models = [
        (i, h)
        for i, h in enumerate(header)
        if i and i != shot_col and i not in recovery_cols and not _SEED_HEAD.fullmatch(lower[i])
    ]
    if not models:
        return []
    base = _base_column(models)
    out: list[Claim] = []
    average_row = ""
    for n, raw in rows[1:]:
        cells = [plain(c) for c in raw]
        if not cells or all(set(c) <= set("-: ") for c in cells):
            continue
        label = cells[0]
        quote = " | ".join(cells)
        shots_m = _SHOTS_IN_LABEL.search(label)
        shots = int(shots_m.group(1)) if shots_m else None
        if shot_col is not None and shot_col < len(cells) and cells[shot_col].isdigit():
            shots = int(cells[shot_col])
        task = (_SHOTS_IN_LABEL.sub("", label).strip() or label) if shots_m else label
        if _RECOVERY.search(label):  # a Recovery row: each column's average over the base's
            for i, column in models:
                if i < len(cells) and column != base:
                    where = Cell(table, average_row or "average", column)
                    out += _figure("benchmark_recovery", cells[i], quote, n, section,
                                   "benchmark table", cell=where, base=base)  # fmt: skip
            continue
        average = bool(_AVERAGE.match(label))
        quantity = "benchmark_average" if average else "benchmark"
        row = label if average else task
        if average:
            average_row = label
        for i, column in models:
            if i >= len(cells):
                continue
            where = Cell(table, row, column, shots)
            out += _figure(quantity, cells[i], quote, n, section, "benchmark table",
                           name=task, about=column, cell=where, base=base,
                           mean_of="benchmark" if average else "")  # fmt: skip
        for i in recovery_cols:
            left = [column for j, column in models if j < i and column != base]
            pruned = (left or [column for _, column in models if column != base] or [""])[-1]
            if i < len(cells) and pruned:
                where = Cell(table, row, pruned, shots)
                out += _figure("benchmark_recovery", cells[i], quote, n, section,
                               "benchmark table", cell=where, base=base)  # fmt: skip
    return out


def _seed_table(rows: Rows, section: str) -> list[Claim]:
    """One row per seed and a mean row: `| Seed | EM | F1 |`."""
    header = [plain(c) for c in rows[0][1]]
    table = rows[0][0]
    out: list[Claim] = []
    for n, raw in rows[1:]:
        cells = [plain(c) for c in raw]
        if not cells or all(set(c) <= set("-: ") for c in cells):
            continue
        mean = bool(_AVERAGE.match(cells[0]))
        for i, column in enumerate(header[1:], 1):
            if i >= len(cells):
                continue
            metric = _METRIC_COLUMN.get(column.lower())
            quantity = (metric or "seed_mean") if mean else "seed_score"
            where = Cell(table, cells[0], column)
            out += _figure(quantity, cells[i], " | ".join(cells), n, section, "seed table",
                           cell=where, mean_of="seed_score" if mean else "")  # fmt: skip
    return out


def _em_f1(rows: Rows, section: str) -> list[Claim]:
    """Cells holding "81.29/88.47" under a header that says which is which ("EM/F1")."""
    header = [plain(c) for c in rows[0][1]]
    body = [(n, [plain(c) for c in raw]) for n, raw in rows[1:]]
    body = [
        (n, cells) for n, cells in body if cells and not all(set(c) <= set("-: ") for c in cells)
    ]
    out: list[Claim] = []
    for i, head in enumerate(header):
        order = _EM_F1.search(head)
        if not order:
            continue
        names = [_METRIC_COLUMN[order.group(k).lower()] for k in (1, 2)]
        for n, cells in body:
            if i >= len(cells) or not (m := _PAIR.fullmatch(cells[i])):
                continue
            single = len(body) == 1
            for k, metric in enumerate(names, 1):
                value, decimals = number(m.group(k))
                quantity = metric if single else f"table_{metric}"
                out.append(Claim(quantity, " | ".join(cells), n, section, "results table",
                                 value, decimals, about="" if single else cells[0]))  # fmt: skip
    return out


@register("benchmarks")
class Benchmarks(Family):
    def table(self, rows: Rows, section: str) -> list[Claim]:
        header = [plain(c).lower() for c in rows[0][1]]
        if len(header) < 2:
            return []
        if any(_EM_F1.search(h) for h in header):
            return _em_f1(rows, section)
        if _SEED_HEAD.fullmatch(header[0]):
            return _seed_table(rows, section)
        if _TASK_HEAD.match(header[0]) and header[:2] != ["metric", "value"]:
            if any(w in " ".join(header) for w in ("value", "original", "variation")):
                return []  # nn_pruning's results table
            return _results_table(rows, section)
        return []

    def prose(self, plain_line: str, line: int, section: str) -> list[Claim]:
        out: list[Claim] = []
        for m in _SCORE_SENTENCE.finditer(plain_line):
            shots = m.group(4) or m.group(6)
            task = m.group(5).rstrip(".")
            where = Cell(line, task, _MODEL, int(shots) if shots else None)
            value, decimals = number(m.group(1))
            out.append(Claim("benchmark", m.group(0), line, section, "prose", value, decimals,
                             m.group(2), name=task, about=_MODEL, cell=where))  # fmt: skip
        for m in _AVERAGE_SENTENCE.finditer(plain_line):
            for group, column in ((1, _MODEL), (3, _DENSE)):
                value, decimals = number(m.group(group))
                out.append(Claim("benchmark_average", m.group(0), line, section, "prose", value,
                                 decimals, m.group(2), about=column,
                                 cell=Cell(line, "average", column)))  # fmt: skip
            if m.group(4):
                value, decimals = number(m.group(4))
                out.append(Claim("benchmark_recovery", m.group(0), line, section, "prose", value,
                                 decimals, "%", cell=Cell(line, "average", _MODEL),
                                 base=_DENSE))  # fmt: skip
        return out

    def measured(
        self, claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
    ) -> findings.AuditFinding | None:
        q = claim.quantity
        if q.startswith(("benchmark", "seed_", "table_")):
            record = evaluation.benchmarks if evaluation is not None else None
            if q in _FROM_RECORD and record is not None:
                return against_record(claim, record)
            if q.startswith("benchmark") and not q.endswith(("_stderr", "_range")):
                return findings.unchecked(
                    claim, "a benchmark score: checked against an lm-eval record", "evaluation"
                )
            return findings.unchecked(claim, "see the internal check of its table")
        return None

    def internal(self, partners: findings.Partners) -> list[findings.AuditFinding]:
        return [*_means(partners), *_recoveries(partners)]


def _exact(claim: Claim) -> Decimal:
    assert claim.value is not None
    return Decimal(f"{claim.value:.{claim.decimals}f}")


def _half(claim: Claim) -> Decimal:
    return Decimal(5) * Decimal(10) ** -(claim.decimals + 1)


def _means(partners: findings.Partners) -> list[findings.AuditFinding]:
    """An average is the mean of the rows above it in its table and column: the values the
    printed rows can stand for give a mean the printed average can stand for."""
    out = []
    for quantity in ("benchmark_average", "exact", "f1", "seed_mean"):
        for claim in partners.named(quantity):
            if not claim.mean_of or claim.cell is None or claim.value is None:
                continue
            rows = [
                c
                for c in partners.named(claim.mean_of)
                if c.cell is not None
                and c.cell.table == claim.cell.table
                and c.cell.column == claim.cell.column
                and c.line < claim.line
                and c.value is not None
            ]
            if len(rows) < 2:
                continue
            mean = sum((_exact(c) for c in rows), Decimal(0)) / len(rows)
            slack = sum((_half(c) for c in rows), Decimal(0)) / len(rows)
            value, half = _exact(claim), _half(claim)
            ok = value - half < mean + slack and mean - slack < value + half
            printed = ", ".join(c.printed for c in rows)
            rule = (
                f"average {claim.printed} = mean of the {len(rows)} rows above it "
                f"({printed}), within the rounding of the printed figures"
            )
            shown = f"{fixed(mean, claim.decimals + 2)} (mean of {printed})"
            out.append(findings.judged(claim, "internal", shown, rule, ok, float(mean)))
    return out


def _recoveries(partners: findings.Partners) -> list[findings.AuditFinding]:
    """A recovery is the pruned figure over the dense one it names, in percent."""
    index = {
        (c.cell.table, c.cell.row, c.cell.column): c
        for q in ("benchmark", "benchmark_average")
        for c in partners.named(q)
        if c.cell is not None and c.value is not None
    }
    out = []
    for claim in partners.named("benchmark_recovery"):
        if claim.cell is None or claim.value is None:
            continue
        table, row = claim.cell.table, claim.cell.row
        top = index.get((table, row, claim.cell.column))
        bottom = index.get((table, row, claim.base))
        if top is None or bottom is None:
            continue
        rule = (
            f"recovery {claim.printed} = {top.printed} ({top.cell.column if top.cell else ''}) / "
            f"{bottom.printed} ({claim.base}) x 100, to the precision printed"
        )
        found = ratio_check(claim, top, bottom, 100.0, rule)
        if found is not None:
            out.append(found)
    return out


def check_table_against(
    claims: Sequence[Claim],
    expected: Mapping[tuple[str, int | None], float],
    model: str | None = None,
) -> list[findings.AuditFinding]:
    """The pruned model's benchmark cells against measured scores keyed (task, shots), as
    an lm-eval record gives them. `model` names the column; by default the one column of
    each table that is not the dense base. A score given as a fraction (0.713) is
    compared with a cell printed as a percentage (71.3)."""
    by_task: dict[str, list[tuple[int | None, float]]] = {}
    for (task, shots), value in expected.items():
        by_task.setdefault(task_key(task), []).append((shots, value))
    out = []
    cells = [c for c in claims if c.quantity == "benchmark" and c.cell is not None]
    columns: dict[int, set[str]] = {}
    for c in cells:
        assert c.cell is not None
        if c.cell.column != c.base:
            columns.setdefault(c.cell.table, set()).add(c.cell.column)
    for claim in cells:
        assert claim.cell is not None and claim.value is not None
        wanted = model if model is not None else next(iter(columns.get(claim.cell.table, ())), "")
        if claim.cell.column != wanted or (model is None and len(columns[claim.cell.table]) > 1):
            continue
        known = by_task.get(task_key(claim.cell.row), [])
        match = [v for s, v in known if s == claim.cell.shots or claim.cell.shots is None]
        if len(match) != 1:
            reason = (
                "the record has no score of this task and shots"
                if not match
                else ("the record has several shot settings of this task")
            )
            out.append(findings.unchecked(claim, reason, "evaluation"))
            continue
        value = match[0] * (100 if match[0] <= 1 < claim.value else 1)
        rule = "the measured score, rounded half up to the cell's decimals, must equal the cell"
        out.append(findings.compare(claim, "evaluation", value, claim.decimals, rule=rule))
    return out


_FROM_RECORD = ("benchmark", "benchmark_average", "benchmark_recovery")
_RECORD_RULE = (
    "the lm-eval record (--eval) as the card prints it: {}, rounded half up to the cell's "
    "decimals, must equal the cell"
)


def against_record(claim: Claim, record: BenchmarksRecord) -> findings.AuditFinding:
    """A task figure, an average or a recovery of a benchmark table against the lm-eval
    record the card was rendered from (its dense base for the dense column), exactly as
    printed: task figures through `check_table_against`, averages and recoveries as the
    card computes them (`publish.benchmarks`)."""
    from analyzer.publish.benchmarks import benchmark_table, shown_scale

    assert claim.cell is not None
    dense = record.base is not None and claim.cell.column == claim.base
    run = record.base if dense and record.base is not None else record
    who = "its dense base" if dense else "the pruned model"
    if claim.quantity == "benchmark":
        scores: dict[tuple[str, int | None], float] = {
            (t.task, t.num_fewshot): shown_scale(t.headline) for t in run.tasks
        }
        (found,) = check_table_against([claim], scores, model=claim.cell.column) or (
            findings.unchecked(claim, "not a cell of this table's columns", "evaluation"),
        )
        return found
    rows = {task_key(r.task or r.label): r for r in benchmark_table(record).rows}
    row = rows.get(task_key(claim.cell.row))
    figure = None
    if row is not None:
        figure = (
            row.recovery
            if claim.quantity == "benchmark_recovery"
            else (row.dense if dense else row.pruned)
        )
    if row is None or figure is None or not figure[:1].isdigit():
        return findings.unchecked(
            claim, f"the lm-eval record has no {claim.cell.row} figure here", "evaluation"
        )
    what = (
        "pruned / dense of the figures shown, in percent"
        if claim.quantity.endswith("recovery")
        else f"the mean of {who}'s figures shown"
    )
    return findings.compare(
        claim, "evaluation", float(figure.rstrip("%")), claim.decimals,
        rule=_RECORD_RULE.format(what),
    )  # fmt: skip
