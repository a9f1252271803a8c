"""lm-eval task scores filed as metadata: the model-index results named `lm-eval <task>`
and the `.eval_results/<task>.yaml` entries whose notes name lm-evaluation-harness, as
prunecard writes them (`publish.card`).

Each is a `task_score` claim of its task (`Cell`: row = the task, column = the metric,
shots where stated). With the lm-eval record given to `--eval` it must equal the record's
figure exactly as printed; with or without one, it must agree with the card's own table
cell for the task, a figure printed twice (a hand-edited model-index is caught offline).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from analyzer.audit import findings
from analyzer.audit.claims import Cell, Claim, number

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Benchmarks, TaskMetric, TaskResult

__all__ = [
    "QUANTITY",
    "against_record",
    "eval_results_claim",
    "internal",
    "lm_eval_task",
    "measured",
    "model_index_claims",
]

QUANTITY = "task_score"
LM_EVAL = "lm-evaluation-harness"  # the source prunecard names in both files
_TASK_NAME = re.compile(r"^lm-eval (\S{1,100})$")  # prunecard's model-index task.name
_SHOTS = re.compile(r"\b(\d{1,3})-shot\b", re.I)
_TABLE = "benchmark table"


def lm_eval_task(result: Mapping[str, Any]) -> str | None:
    """The lm-eval task a model-index result files (`task.name: lm-eval <task>`), or None."""
    task = result.get("task")
    name = task.get("name") if isinstance(task, dict) else None
    m = _TASK_NAME.fullmatch(str(name)) if isinstance(name, str) else None
    return m.group(1) if m else None


def _shots(*texts: object) -> int | None:
    """The shots the first text stating "N-shot" names."""
    for text in texts:
        m = _SHOTS.search(str(text or ""))
        if m:
            return int(m.group(1))
    return None


def _figure(value: object) -> tuple[str, float, int] | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    raw = repr(value)
    figure, decimals = number(raw)
    return raw, figure, decimals


def model_index_claims(
    result: Mapping[str, Any], line_of: Callable[[str], int], task: str
) -> list[Claim]:
    """One claim per numeric metric of an lm-eval task's model-index result; `line_of(raw)`
    gives the line of a value."""
    out = []
    metrics = result.get("metrics")
    for metric in metrics if isinstance(metrics, list) else []:
        read = _figure(metric.get("value")) if isinstance(metric, dict) else None
        if read is None:
            continue
        raw, figure, decimals = read
        name = str(metric.get("type", "")).strip()
        dataset = result.get("dataset")
        shots = _shots(metric.get("name"), dataset.get("name") if isinstance(dataset, dict) else "")
        line = line_of(raw)
        text = f"model-index lm-eval {task} {name}: {raw}"
        where = Cell(line, task, name, shots)
        out.append(Claim(QUANTITY, text, line, "front matter", "model-index", figure, decimals,
                         name=task, cell=where))  # fmt: skip
    return out


def eval_results_claim(entry: Mapping[str, Any], task: str, line: int, where: str) -> Claim | None:
    """An `.eval_results` entry of an lm-eval task (its notes name lm-evaluation-harness,
    and begin with the metric: "acc_norm, 0-shot, percent; ..."), or None."""
    notes = str(entry.get("notes") or "")
    read = _figure(entry.get("value"))
    if LM_EVAL not in notes or not task or read is None:
        return None
    raw, figure, decimals = read
    metric = notes.split(",", 1)[0].split(";", 1)[0].strip()
    return Claim(QUANTITY, f"{task} {metric}: {raw}", line, where, "eval results", figure,
                 decimals, name=task, file=where,
                 cell=Cell(line, task, metric, _shots(notes)))  # fmt: skip


def _metric(task: TaskResult, name: str) -> TaskMetric | None:
    """The record task's metric of this name (the unfiltered one first)."""
    named = [m for m in task.metrics if m.name == name]
    return next((m for m in named if m.filter == "none"), named[0] if named else None)


def against_record(claim: Claim, record: Benchmarks) -> findings.AuditFinding:
    """The claim against the pruned model's figure in the record, as the card prints it."""
    from analyzer.audit.benchmarks import task_key
    from analyzer.publish.benchmarks import BENCHMARK_DIGITS, shown_scale

    assert claim.cell is not None
    task_name, metric_name, shots = claim.cell.row, claim.cell.column, claim.cell.shots
    task = next((t for t in record.tasks if task_key(t.task) == task_key(task_name)), None)
    if task is None:
        ran = ", ".join(t.task for t in record.tasks)
        return findings.unchecked(
            claim, f"the lm-eval record has no task {task_name} (it ran {ran})", "evaluation"
        )
    if shots is not None and shots != task.num_fewshot:
        return findings.unchecked(
            claim,
            f"the lm-eval record ran {task.task} at {task.num_fewshot}-shot, not {shots}-shot",
            "evaluation",
        )
    metric = _metric(task, metric_name) if metric_name else task.headline
    if metric is None:
        names = ", ".join(dict.fromkeys(m.name for m in task.metrics))
        return findings.unchecked(
            claim,
            f"the lm-eval record's {task.task} has no {metric_name} (it has {names})",
            "evaluation",
        )
    rule = (
        f"the lm-eval record (--eval): {task.task} {metric.name} ({task.num_fewshot}-shot) "
        "as the card prints it, rounded half up to the claim's decimals, must equal it"
    )
    found = findings.compare(claim, "evaluation", shown_scale(metric), BENCHMARK_DIGITS, rule=rule)
    return (
        found
        if found.verdict == findings.OK
        else findings.with_reason(
            found, f"{task.task}: the card says {claim.printed}, the record {found.measured}"
        )
    )


def measured(claim: Claim, evaluation: EvalScores | None) -> findings.AuditFinding:
    record = evaluation.benchmarks if evaluation is not None else None
    if record is None:
        return findings.unchecked(
            claim,
            "no lm-eval record given (--eval); the internal check compares it with the "
            "card's table",
            "evaluation",
        )
    return against_record(claim, record)


def internal(partners: findings.Partners) -> list[findings.AuditFinding]:
    """Each task score against the card's table cell of its task and shots, in the one
    column that is not the dense base's: the ranges their roundings allow must overlap."""
    from analyzer.audit.benchmarks import task_key

    cells: dict[str, list[Claim]] = {}
    for c in partners.named("benchmark"):
        if c.source == _TABLE and c.cell is not None and c.cell.column != c.base:
            cells.setdefault(task_key(c.cell.row), []).append(c)
    out = []
    for claim in partners.named(QUANTITY):
        assert claim.cell is not None and claim.value is not None
        shots = claim.cell.shots
        same = [
            c
            for c in cells.get(task_key(claim.cell.row), [])
            if shots is None or c.cell is None or c.cell.shots in (None, shots)
        ]
        if len(same) != 1:
            continue  # no table row of this task, or several models' columns
        (cell,) = same
        assert cell.value is not None
        rule = (
            f"the same figure as the card's table row {cell.cell.row if cell.cell else ''} "
            f"(line {cell.line}, column {cell.cell.column if cell.cell else ''}): the ranges "
            "their roundings allow must overlap"
        )
        shown = f"{cell.printed} (line {cell.line}, the card's table)"
        slack = findings.half(claim) + findings.half(cell)
        out.append(findings.within_slack(claim, "internal", cell.value, slack, rule, shown))
    return out
