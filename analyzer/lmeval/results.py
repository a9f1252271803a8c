"""lm-eval's results (in memory, or the JSON `lm_eval --output_path` wrote) as `TaskResult`s,
validated, and bound to the checkpoint they claim to describe."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analyzer.errors import InputError
from analyzer.records import (
    Benchmarks,
    DataFile,
    HubSource,
    TaskMetric,
    TaskResult,
    read_json,
)

__all__ = [
    "MAX_RESULTS_BYTES",
    "check_model",
    "data_files",
    "import_base",
    "import_results",
    "read_results",
    "task_results",
    "with_base",
]

MAX_RESULTS_BYTES = 64_000_000  # a results JSON with per-sample logs stays far below


def read_results(path: Path) -> dict[str, Any]:
    """A results JSON written by `lm_eval --output_path` (bounded, an object with `results`)."""
    data = read_json(path, limit=MAX_RESULTS_BYTES)
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise InputError(path, "not an lm-eval results JSON (no 'results' object)")
    return data


def task_results(
    data: Mapping[str, Any], where: str | Path | None = None
) -> tuple[TaskResult, ...]:
    """Every task of lm-eval's output, its metrics in the task's metric_list order."""
    results = data["results"]
    out = []
    for task in sorted(results):
        entry = results[task]
        if not isinstance(entry, dict):
            raise InputError(where, f"results[{task!r}] is not an object")
        config = _object(data.get("configs"), task)
        better = _object(data.get("higher_is_better"), task)
        samples = _object(data.get("n-samples"), task)
        metrics = _metrics(entry, config, better, task, where)
        if not metrics:
            raise InputError(where, f"task {task!r} has no numeric metric")
        documents = _count(samples.get("effective", entry.get("sample_len")), task, where)
        out.append(
            TaskResult(
                task=str(task),
                version=str(_object(data.get("versions"), None).get(task, "")),
                num_fewshot=_count(_object(data.get("n-shot"), None).get(task, 0), task, where),
                metrics=metrics,
                documents=documents,
                documents_total=_count(samples.get("original", documents), task, where),
                output_type=str(config.get("output_type", "")),
                dataset_path=str(config.get("dataset_path", "")),
                dataset_name=None
                if config.get("dataset_name") is None
                else str(config["dataset_name"]),
                split=str(config.get("test_split") or config.get("validation_split") or ""),
                data_files=data_files(config),
            )
        )
    return tuple(out)


def data_files(config: Mapping[str, Any]) -> tuple[DataFile, ...]:
    """The local files a task config reads (`dataset_kwargs.data_files`: a path, a list,
    or a split -> path(s) mapping), each with its sha256 where the file is readable here."""
    from analyzer.hashing import sha256_file

    given = _object(config.get("dataset_kwargs"), None).get("data_files")
    values = list(given.values()) if isinstance(given, dict) else [given]
    paths = [str(p) for v in values for p in (v if isinstance(v, list) else [v]) if p]
    out = []
    for path in dict.fromkeys(paths):
        try:
            digest = sha256_file(Path(path)) if Path(path).is_file() else ""
        except OSError:
            digest = ""
        out.append(DataFile(name=Path(path).name, sha256=digest))
    return tuple(out)


def _metrics(
    entry: Mapping[str, Any],
    config: Mapping[str, Any],
    better: Mapping[str, Any],
    task: str,
    where: str | Path | None,
) -> tuple[TaskMetric, ...]:
    listed = [m.get("metric") for m in config.get("metric_list") or () if isinstance(m, dict)]
    found = []
    for key, value in entry.items():
        name, comma, filt = str(key).partition(",")
        if not comma or name.endswith("_stderr"):
            continue
        number = _finite(value)
        if number is None:
            raise InputError(where, f"{task}: {key} is not a finite number ({value!r})")
        hib = better.get(name)
        found.append(
            TaskMetric(
                name=name,
                filter=filt,
                value=number,
                stderr=_finite(entry.get(f"{name}_stderr,{filt}")),
                higher_is_better=hib if isinstance(hib, bool) else None,
            )
        )
    order = {name: i for i, name in enumerate(listed)}
    return tuple(sorted(found, key=lambda m: (order.get(m.name, len(order)), m.name, m.filter)))


def _finite(value: object) -> float | None:
    """A finite int or float as a float; None for anything else (a bool, NaN, a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _object(value: Any, key: str | None) -> dict[str, Any]:
    inner = value.get(key) if key is not None and isinstance(value, dict) else value
    return inner if isinstance(inner, dict) else {}


def _count(value: Any, task: str, where: str | Path | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(where, f"{task}: expected a count of documents or shots, got {value!r}")
    return value


def check_model(data: Mapping[str, Any], path: Path, folder: Path, hub: HubSource | None) -> None:
    """Refuse results made for another model: the `pretrained` lm-eval names must be this
    Hub id (and its `model_sha` this commit, when given), or a folder of this one's name."""
    named, sha = _named_model(data, path)
    if hub is not None:
        ok = named.rstrip("/") == hub.repo_id and (not sha or sha == hub.commit)
        this = hub.label
    else:
        ok = Path(named.rstrip("/")).name == folder.name and not sha
        this = str(folder)
    if not ok:
        made = named + (f"@{sha}" if sha else "")
        raise InputError(path, f"was made for {made}, not for {this}")


def _named_model(data: Mapping[str, Any], path: Path) -> tuple[str, str]:
    """The model a results JSON names (`pretrained=` of its model_args) and its commit."""
    config = _object(data.get("config"), None)
    args = str(config.get("model_args") or "")
    named = dict(p.split("=", 1) for p in args.split(",") if "=" in p).get("pretrained")
    named = named or str(data.get("model_name") or config.get("model") or "")
    if not named:
        raise InputError(path, "names no model (config.model_args has no pretrained=...)")
    return named, str(config.get("model_sha") or "")


def import_results(
    path: Path, folder: Path, hub: HubSource | None, name: str, file_sha256: dict[str, str]
) -> Benchmarks:
    """A results JSON made for the checkpoint at `folder` (refused otherwise) as a record."""
    data = read_results(path)
    check_model(data, path, folder, hub)
    return Benchmarks(
        tasks=task_results(data, path),
        lm_eval_version=str(data.get("lm_eval_version") or ""),
        checkpoint=name,
        file_sha256=file_sha256,
        source=path.name,
    )


def import_base(path: Path, pruned: Path, hub: HubSource | None) -> Benchmarks:
    """The dense base's results JSON given without its checkpoint: it names its model
    itself, which must not be the pruned one (results of this model as its own base)."""
    data = read_results(path)
    named, sha = _named_model(data, path)
    try:
        check_model(data, path, pruned, hub)
    except InputError:
        pass  # made for another model, as a base's must be
    else:
        raise InputError(path, "was made for the pruned model itself, not for its dense base")
    return Benchmarks(
        tasks=task_results(data, path),
        lm_eval_version=str(data.get("lm_eval_version") or ""),
        checkpoint=named + (f"@{sha}" if sha else ""),
        file_sha256={},
        source=path.name,
    )


def with_base(pruned: Benchmarks, base: Benchmarks, where: str | Path | None) -> Benchmarks:
    """The pruned run with its dense base, refused unless the base ran the same tasks at
    the same shots on the same documents."""
    from dataclasses import replace

    problem = pruned.same_run(base)
    if problem is not None:
        raise InputError(where, f"the dense base ran {problem}: not comparable")
    return replace(pruned, base=base)
