"""`model-index` in any card (every task, dataset and metric) and `.eval_results/*.yaml`.

`claims.py` reads the model-index metrics prunecard measures (`f1`, `exact_match`) and the
dataset `type`; this module reads the rest, as the Hub's model card spec and the
`evaluate`/`huggingface_hub` writers put them: `task.type`, `dataset.name` / `config` /
`split`, and metrics of any `type` (a `type: squad` metric named "EM" or "F1" is read as
exact / f1). The Hub's newer `.eval_results/*.yaml` files (a list of
`{dataset: {id, task_id}, value}` entries) beside the card are read the same way.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.audit.claims import (
    CardClaims,
    Claim,
    FormatProblem,
    _as_list,
    _find_line,
    _number,
    dataset_id,
)
from analyzer.audit.trainer_card import metric_quantity
from analyzer.errors import InputError

if TYPE_CHECKING:
    from analyzer.audit.checks import AuditFinding, EvalScores
    from analyzer.records import Analysis

__all__ = ["measured", "metadata", "read_eval_results", "with_eval_results"]

_READ_BY_CLAIMS = {"f1", "exact_match", "exact", "em"}  # metric types claims.py reads
MAX_EVAL_RESULTS = 64  # files
MAX_EVAL_RESULT_BYTES = 256_000  # per file: a few entries, never megabytes


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
    number, decimals = _number(repr(value))
    return quantity, number, decimals


def metadata(front: dict[str, Any], lines: list[str], body: int) -> list[Claim]:
    out: list[Claim] = []

    def meta(quantity: str, key: str, text: str, needle: str, **kw: Any) -> None:
        line = _find_line(lines, 0, body, key, needle)
        out.append(Claim(quantity, text, line, "front matter", "model-index", **kw))

    for model in _as_list(front.get("model-index")):
        results = model.get("results") if isinstance(model, dict) else None
        for result in _as_list(results):
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
                    if key == "name" and not re.search("squad", value, re.I):
                        quantity = "dataset_name"
                    meta(quantity, key, f"model-index dataset {key}: {value}", value, name=name)
            for metric in _as_list(result.get("metrics")):
                read = _metric(metric) if isinstance(metric, dict) else None
                if read is None:
                    continue
                quantity, value, decimals = read
                raw = repr(metric["value"])
                text = f"model-index {metric.get('type')} ({metric.get('name', '')}): {raw}"
                meta(quantity, "value", text, raw, value=value, decimals=decimals)
    return out


def read_eval_results(folder: Path) -> tuple[list[Claim], list[FormatProblem]]:
    """The claims of `folder/.eval_results/*.yaml` (none if there is no such folder)."""
    import yaml

    files = sorted((folder / ".eval_results").glob("*.yaml"))
    if len(files) > MAX_EVAL_RESULTS:
        raise InputError(folder / ".eval_results", f"more than {MAX_EVAL_RESULTS} files")
    claims: list[Claim] = []
    problems: list[FormatProblem] = []
    for path in files:
        if path.stat().st_size > MAX_EVAL_RESULT_BYTES:
            raise InputError(path, f"larger than {MAX_EVAL_RESULT_BYTES:,} bytes")
        try:
            text = path.read_text(encoding="utf-8")
            entries = yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            where = f".eval_results/{path.name}"
            problems.append(FormatProblem(1, where, f"not readable YAML: {exc}".splitlines()[0]))
            continue
        claims += _entries(entries, text.splitlines(), f".eval_results/{path.name}")
    return claims, problems


def _entries(entries: Any, lines: list[str], where: str) -> list[Claim]:
    out: list[Claim] = []
    values = iter(i + 1 for i, line in enumerate(lines) if re.match(r"\s{0,8}value\s?:", line))
    for entry in _as_list(entries):
        if not isinstance(entry, dict):
            continue
        dataset = entry.get("dataset") if isinstance(entry.get("dataset"), dict) else {}
        ident, task = str(dataset.get("id", "")), str(dataset.get("task_id", ""))
        value = entry.get("value")
        line = next(values, 1)
        if ident:
            out.append(
                Claim(
                    "dataset",
                    f"dataset: {ident}",
                    line,
                    where,
                    "eval results",
                    name=dataset_id(ident),
                )
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        quantity = metric_quantity(None, task) or f"metric:{task or ident or '?'}"
        number, decimals = _number(repr(value))
        text = f"{ident} {task}: {value!r}".strip()
        out.append(Claim(quantity, text, line, where, "eval results", number, decimals))
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
    from analyzer.audit.checks import MISMATCH, OK, UNCHECKED, _finding

    q = claim.quantity
    if q == "task":
        if claim.name != "question-answering" or analysis is None:
            why = "no weights read (--no-weights)" if analysis is None else "a label"
            return _finding(claim, "weights", "", "", UNCHECKED, why)
        heads = [a for a in analysis.architectures if a.endswith("ForQuestionAnswering")]
        return _finding(
            claim,
            "weights",
            ", ".join(analysis.architectures) or "(no architectures in config.json)",
            "a question-answering task needs a *ForQuestionAnswering architecture",
            OK if heads else MISMATCH,
        )
    if q in ("dataset_config", "dataset_split", "dataset_name"):
        return _finding(claim, "", "", "", UNCHECKED, "a label of the evaluation")
    if q.startswith("metric:"):
        return _finding(
            claim, "", "", "", UNCHECKED, "prunecard measures SQuAD exact match and F1 only"
        )
    return None
