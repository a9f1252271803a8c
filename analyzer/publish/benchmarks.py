"""The card's lm-eval table, as printed, from a `Benchmarks` record and its dense base.

One row per task (its headline metric, `TaskResult.headline`): dense | pruned | recovery.
Accuracies print as percentages; every figure is rounded by `analyzer.text.rounded`. The
Average row is the mean of the figures shown above it, and a recovery is pruned over
dense in percent from the figures shown, so a reader recomputes both from the table.
Lower-is-better metrics (perplexities) are listed after the Average and have no recovery:
their ratio runs the other way. The card, the site and the audit all read this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from analyzer.records import Benchmarks, TaskMetric, TaskResult
from analyzer.text import rounded

__all__ = [
    "BENCHMARK_DIGITS",
    "PERCENT_METRICS",
    "RECOVERY_DIGITS",
    "BenchmarkRow",
    "BenchmarkTable",
    "benchmark_table",
    "lower_is_better",
    "shown_scale",
    "shown_value",
]

BENCHMARK_DIGITS = 2  # a task's figure: accuracy in percent, or the metric itself
RECOVERY_DIGITS = 1  # recovery in percent, as the card's other percentages
# fractions lm-eval reports in [0, 1], shown in percent
PERCENT_METRICS = frozenset({"acc", "acc_norm", "exact_match", "f1", "mc1", "mc2"})
DENSE, PRUNED = "Dense", "Pruned"  # the table's column headers (the audit reads them)


@dataclass(frozen=True)
class BenchmarkRow:
    """One printed row: a task (or the Average) with its figures as the card shows them."""

    label: str  # "tiny_choice (0-shot)", "Average"
    task: str  # lm-eval's task name ("" for the Average)
    shots: int | None
    metric: str  # "acc_norm", "acc_norm, 2 of 4 documents (subset)", "mean of 2 tasks"
    pruned: str
    dense: str | None = None  # None without a base
    recovery: str | None = None  # "97.6%"; None without a base, or lower is better


@dataclass(frozen=True)
class BenchmarkTable:
    rows: tuple[BenchmarkRow, ...]  # higher is better, then the Average, then lower is better
    has_base: bool
    subset: bool  # some task scored fewer documents than its split holds (`--limit`)
    lm_eval_version: str
    columns: tuple[str, ...]  # the header row


def lower_is_better(metric: TaskMetric) -> bool:
    """lm-eval's own higher_is_better; a record without it: perplexities and bits per byte."""
    if metric.higher_is_better is not None:
        return not metric.higher_is_better
    return "perplexity" in metric.name or metric.name == "bits_per_byte"


def shown_scale(metric: TaskMetric) -> float:
    """A metric in the unit the table prints it in: percent for accuracies."""
    return (100 if metric.name in PERCENT_METRICS else 1) * metric.value


def shown_value(metric: TaskMetric) -> Decimal:
    """A metric as the table prints it, rounded half up."""
    return rounded(shown_scale(metric), BENCHMARK_DIGITS)


def _recovery(pruned: Decimal, dense: Decimal) -> str:
    if not dense:
        return "n/a (dense is 0)"
    ratio = (100 * pruned / dense).quantize(Decimal(1).scaleb(-RECOVERY_DIGITS), ROUND_HALF_UP)
    return f"{ratio:f}%"


def _mean(values: list[Decimal]) -> Decimal:
    step = Decimal(1).scaleb(-BENCHMARK_DIGITS)
    return (sum(values, Decimal(0)) / len(values)).quantize(step, ROUND_HALF_UP)


def _metric_words(task: TaskResult) -> str:
    words = task.headline.name
    if task.subset:
        words += f", {task.documents:,} of {task.documents_total:,} documents (subset)"
    return words


def benchmark_table(record: Benchmarks) -> BenchmarkTable:
    """The record's table; a base's figures are matched by task (`Benchmarks.same_run`)."""
    dense = {t.task: t for t in record.base.tasks} if record.base is not None else {}
    higher: list[BenchmarkRow] = []
    lower: list[BenchmarkRow] = []
    shown: list[tuple[Decimal, Decimal | None]] = []  # the higher-is-better rows' figures
    for task in record.tasks:
        metric = task.headline
        pruned = shown_value(metric)
        base = dense.get(task.task)
        base_metric = base and next((m for m in base.metrics if m.name == metric.name), None)
        base_value = shown_value(base_metric) if base_metric else None
        down = lower_is_better(metric)
        row = BenchmarkRow(
            label=f"{task.task} ({task.num_fewshot}-shot)",
            task=task.task,
            shots=task.num_fewshot,
            metric=_metric_words(task) + (" (lower is better)" if down else ""),
            pruned=f"{pruned:f}",
            dense=None if base_value is None else f"{base_value:f}",
            recovery=None if base_value is None or down else _recovery(pruned, base_value),
        )
        (lower if down else higher).append(row)
        if not down:
            shown.append((pruned, base_value))
    rows = list(higher)
    if len(higher) > 1:
        pruned_mean = _mean([p for p, _ in shown])
        dense_values = [d for _, d in shown if d is not None]
        dense_mean = _mean(dense_values) if len(dense_values) == len(shown) else None
        rows.append(
            BenchmarkRow(
                label="Average",
                task="",
                shots=None,
                metric=f"mean of the {len(higher)} rows above",
                pruned=f"{pruned_mean:f}",
                dense=None if dense_mean is None else f"{dense_mean:f}",
                recovery=None if dense_mean is None else _recovery(pruned_mean, dense_mean),
            )
        )
    has_base = record.base is not None
    columns: tuple[str, ...] = (
        ("Task", "Metric", DENSE, PRUNED, "Recovery") if has_base else ("Task", "Metric", PRUNED)
    )
    return BenchmarkTable(
        rows=(*rows, *lower),
        has_base=has_base,
        subset=any(t.subset for t in record.tasks),
        lm_eval_version=record.lm_eval_version,
        columns=columns,
    )
