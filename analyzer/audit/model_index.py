"""`model-index` in any card (every task, dataset and metric) and `.eval_results/*.yaml`.

`claims.py` reads the model-index metrics prunecard measures (`f1`, `exact_match`) and the
dataset `type`; this module reads the rest, as the Hub's model card spec and the
`evaluate`/`huggingface_hub` writers put them: `task.type`, `dataset.name` / `config` /
`split`, and metrics of any `type` (a `type: squad` metric named "EM" or "F1" is read as
exact / f1). The Hub's newer `.eval_results/*.yaml` files (a list of
`{dataset: {id, task_id}, value}` entries) beside the card are read the same way, with
the front matter's bounded reader (`analyzer.front_matter`). An lm-eval task's result and
score file (prunecard's `lm-eval <task>`) are read by `task_scores.py` instead.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.audit import task_scores
from analyzer.audit.against_weights import causal_lm, question_answering
from analyzer.audit.claims import (
    CardClaims,
    Claim,
    FormatProblem,
    LineFinder,
    as_list,
    dataset_id,
    number,
)
from analyzer.audit.findings import AuditFinding, unchecked
from analyzer.audit.registry import Family, register
from analyzer.audit.trainer_card import metric_quantity
from analyzer.errors import InputError
from analyzer.front_matter import FrontMatterSyntaxError, load_front_matter

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = [
    "METRIC_NAMES",
    "ModelIndex",
    "measured",
    "metadata",
    "read_eval_results",
    "with_eval_results",
]

_READ_BY_CLAIMS = {"f1", "exact_match", "exact", "em", "perplexity"}  # what claims.py reads
MAX_EVAL_RESULTS = 64  # files
MAX_EVAL_RESULT_BYTES = 256_000  # per file: a few entries, never megabytes
EVAL_RESULTS = ".eval_results"  # the Hub's per-benchmark score files, beside the card
# a score file's headline metric by dataset id, where its task_id names no metric
# (prunecard writes F1 under task_id squad_v2)
_HEADLINE = {"squad_v2": "f1", "rajpurkar/squad_v2": "f1"}
_SQUAD = re.compile(r"squad", re.I)


def _metric(metric: dict[str, Any]) -> tuple[str, float, int] | None:
    """(quantity, value, decimals) of a numeric metric claims.py does not read."""
    value, kind = metric.get("value"), str(metric.get("type", "")).strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind.lower() in _READ_BY_CLAIMS:
        return None
    quantity = (
        metric_quantity(None, str(metric.get("name", "")))
        or metric_quantity(None, kind)
        or f"metric:{kind or '?'}"
    )
    figure, decimals = number(repr(value))
    return quantity, figure, decimals


def _any_metric(front: dict[str, Any], lines: list[str], body: int) -> list[Claim]:
    out: list[Claim] = []
    finder = LineFinder(lines, body)

    def meta(quantity: str, key: str, text: str, needle: str, **kw: Any) -> None:
        line = finder.find(key, needle)
        out.append(Claim(quantity, text, line, "front matter", "model-index", **kw))

    for model in as_list(front.get("model-index")):
        results = model.get("results") if isinstance(model, dict) else None
        for result in as_list(results):
            if not isinstance(result, dict):
                continue
            task = result.get("task")
            if isinstance(task, dict) and task.get("type"):
                kind = str(task["type"])
                meta("task", "type", f"model-index task: {kind}", kind, name=kind)
            dataset = result.get("dataset")
            if isinstance(dataset, dict):
                for key in ("name", "config", "split"):
                    if dataset.get(key) in (None, ""):
                        continue
                    value = str(dataset[key])
                    quantity = "dataset" if key == "name" else f"dataset_{key}"
                    name = dataset_id(value) if key == "name" else value
                    if key == "name" and not _SQUAD.search(value):
                        quantity = "dataset_name"
                    meta(quantity, key, f"model-index dataset {key}: {value}", value, name=name)
            lm_eval = task_scores.lm_eval_task(result) is not None  # read by metadata()
            for metric in as_list(result.get("metrics")) if not lm_eval else ():
                read = _metric(metric) if isinstance(metric, dict) else None
                if read is None:
                    continue
                quantity, figure, decimals = read
                raw = repr(metric["value"])
                text = f"model-index {metric.get('type')} ({metric.get('name', '')}): {raw}"
                meta(quantity, "value", text, raw, value=figure, decimals=decimals)
    return out


def read_eval_results(folder: Path) -> tuple[list[Claim], list[FormatProblem]]:
    """The claims of `folder/.eval_results/*.yaml` (none if there is no such folder). Too
    many or too large files, and YAML the bounded reader refuses (aliases, depth), are
    InputErrors; YAML that does not parse is a defect of the card's repository."""
    scores = folder / EVAL_RESULTS
    files = sorted(scores.glob("*.yaml")) if scores.is_dir() else []
    if len(files) > MAX_EVAL_RESULTS:
        raise InputError(scores, f"more than {MAX_EVAL_RESULTS} files")
    claims: list[Claim] = []
    problems: list[FormatProblem] = []
    for path in files:
        where = f"{EVAL_RESULTS}/{path.name}"
        try:
            if not path.is_file() or path.stat().st_size > MAX_EVAL_RESULT_BYTES:
                raise InputError(path, f"not a regular file under {MAX_EVAL_RESULT_BYTES:,} bytes")
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not a readable UTF-8 text file ({exc})") from None
        try:
            entries = load_front_matter(text, path)
        except FrontMatterSyntaxError as exc:
            reason = exc.problem.split(": ", 1)[-1]
            at = f" (its line {exc.line})" if exc.line else ""
            problems.append(FormatProblem(1, where, f"not readable YAML{at}: {reason}"))
            continue
        except InputError as exc:
            raise InputError(path, exc.problem.replace("front matter", "score file")) from None
        claims += _entries(entries, text.splitlines(), where)
    return claims, problems


def _entries(entries: Any, lines: list[str], where: str) -> list[Claim]:
    """A dataset and a score claim per `{dataset: {id, task_id}, value}` entry, each at the
    line of its value."""
    out: list[Claim] = []
    finder = LineFinder(lines, len(lines))
    for entry in as_list(entries):
        if not isinstance(entry, dict):
            continue
        dataset = entry.get("dataset")
        dataset = dataset if isinstance(dataset, dict) else {}
        ident, task = str(dataset.get("id", "")), str(dataset.get("task_id", ""))
        value = entry.get("value")
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        raw = repr(value) if numeric else str(value)
        line = finder.find("value", raw)
        source: dict[str, Any] = {"section": where, "source": "eval results", "file": where}
        if ident:
            out.append(
                Claim("dataset", f"dataset: {ident}", line, name=dataset_id(ident), **source)
            )
        if not numeric:
            continue
        score = task_scores.eval_results_claim(entry, task, line, where)
        if score is not None:
            out.append(score)
            continue
        # the Hub's format has no metric field: prunecard's notes name it ("F1, percent")
        named = str(entry.get("notes") or "").split(",", 1)[0]
        quantity = (
            ("perplexity" if "perplexity" in (named.lower(), task.lower()) else None)
            or metric_quantity(None, named)
            or metric_quantity(None, task)
            or _HEADLINE.get(ident)
            or f"metric:{task or ident or '?'}"
        )
        figure, decimals = number(raw)
        text = f"{ident} {task}: {raw}".strip()
        out.append(Claim(quantity, text, line, value=figure, decimals=decimals, **source))
    return out


def with_eval_results(card: CardClaims, folder: Path) -> CardClaims:
    """The card's claims and those of the `.eval_results/` folder beside it."""
    claims, problems = read_eval_results(folder)
    if not claims and not problems:
        return card
    return dataclasses.replace(
        card, claims=card.claims + tuple(claims), problems=card.problems + tuple(problems)
    )


def measured(
    claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
) -> AuditFinding | None:
    q = claim.quantity
    if q == task_scores.QUANTITY:
        return task_scores.measured(claim, evaluation)
    if q == "task":
        if claim.name == "text-generation":
            return causal_lm(claim, analysis)
        if claim.name != "question-answering":
            return unchecked(claim, "a label")
        return question_answering(claim, analysis)
    if q in ("dataset_config", "dataset_split", "dataset_name"):
        return unchecked(claim, "a label of the evaluation")
    if q.startswith("metric:"):
        return unchecked(
            claim,
            "a score of a metric prunecard does not measure (an lm-eval task's model-index "
            "result is named 'lm-eval <task>')",
        )
    return None


# Hub metric ids (the `evaluate` library's, and lm-eval's): a `metrics:` entry names one,
# never a dataset (`metrics: [squad_v2]` is the SQuAD v2 metric)
METRIC_NAMES = {
    "accuracy", "acc", "acc_norm", "exact_match", "em", "f1", "perplexity", "bleu",
    "sacrebleu", "rouge", "meteor", "wer", "cer", "precision", "recall", "mse", "mae",
    "matthews_correlation", "pearsonr", "spearmanr", "code_eval", "squad", "squad_v2",
    "glue", "bertscore", "chrf", "mauve", "roc_auc", "brier_score",
}  # fmt: skip
_METRIC_TYPES = {
    "f1": "f1",
    "exact_match": "exact",
    "exact": "exact",
    "em": "exact",
    "perplexity": "perplexity",
}


def metadata(front: dict[str, Any], lines: list[str], body: int) -> list[Claim]:
    """`datasets`, `metrics` (metric names), `tags` and every `model-index` result."""
    out: list[Claim] = []
    finder = LineFinder(lines, body)

    def meta(quantity: str, key: str, text: str, needle: str = "", **kw: Any) -> None:
        line = finder.find(key, needle or str(kw.get("name") or text))
        out.append(Claim(quantity, text, line, "front matter", "metadata", **kw))

    for item in as_list(front.get("datasets")):
        meta("dataset", "datasets", f"datasets: {item}", name=dataset_id(str(item)))
    for item in as_list(front.get("metrics")):
        meta("metric_name", "metrics", f"metrics: {item}", name=str(item).lower())
    for tag in as_list(front.get("tags")):
        meta("tag", "tags", f"tags: {tag}", name=str(tag))
    for model in as_list(front.get("model-index")):
        if not isinstance(model, dict):
            continue
        for result in as_list(model.get("results")):
            if not isinstance(result, dict):
                continue
            dataset = result.get("dataset") or {}
            if isinstance(dataset, dict) and dataset.get("type"):
                kind = str(dataset["type"])
                meta("dataset", "type", f"model-index dataset: {kind}", name=dataset_id(kind))
            task = task_scores.lm_eval_task(result)
            if task is not None:  # an lm-eval task's metrics are its scores, never SQuAD's
                out += task_scores.model_index_claims(
                    result, lambda raw: finder.find("value", raw), task
                )
                continue
            for metric in as_list(result.get("metrics")):
                if not isinstance(metric, dict) or "value" not in metric:
                    continue
                quantity = _METRIC_TYPES.get(str(metric.get("type", "")).lower())
                value = metric["value"]
                if (
                    quantity is None
                    or isinstance(value, bool)
                    or not isinstance(value, int | float)
                ):
                    continue
                raw = repr(value)
                figure, decimals = number(raw)
                text = f"model-index {metric.get('type')}: {raw}"
                meta(quantity, "value", text, needle=raw, value=figure, decimals=decimals)
    return out + _any_metric(front, lines, body)


def _measured_metric_name(
    claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
) -> AuditFinding | None:
    if claim.quantity == "metric_name":
        known = claim.name in METRIC_NAMES
        return unchecked(claim, "a metric name" + ("" if known else " (not a Hub metric id)"))
    return measured(claim, analysis, evaluation)


@register("model_index")
class ModelIndex(Family):
    metadata = staticmethod(metadata)
    measured = staticmethod(_measured_metric_name)
    internal = staticmethod(task_scores.internal)
