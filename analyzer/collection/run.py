"""A collection's run: each model's folder written whole as its result arrives, a rerun
keeping the folders whose records are complete and valid, collection.json rewritten after
every model (so an interrupted run's summary says which models finished), and at the end
a site over every finished model with a page of audit verdicts.

    DIR/models/NAME/    the model's records (analysis.json, report.json; audit.json and
                        audit.md with --audit; report's bench, eval and card with --report)
                        and collection-model.json, written whole or not at all
    DIR/collection.json the summary (`records.Collection`)
    DIR/site/           the mkdocs project; the built site in DIR/site/site/
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from analyzer.collection.executors import Executor, Finished, Runner
from analyzer.collection.listing import Entry
from analyzer.collection.records import (
    DONE,
    FAILED,
    KEPT,
    MODEL_FILE,
    NOT_RUN,
    Collection,
    CollectionOptions,
    ModelRecord,
    ModelSummary,
)
from analyzer.collection.work import Task, run_task
from analyzer.errors import OutputError, PrunecardError
from analyzer.outputs import MARKER, atomic_write_text, check_apart, staged_dir
from analyzer.records import load_record, to_dict

__all__ = ["SUMMARY_FILE", "folder_names", "run_collection"]

SUMMARY_FILE = "collection.json"


@dataclass
class _Run:
    """The summary as it grows: one entry per listed model, in the LIST's order."""

    collection: Collection
    out: Path

    def set(self, index: int, model: ModelSummary) -> None:
        models = list(self.collection.models)
        models[index] = model
        self.collection = replace(self.collection, models=tuple(models))

    def write(self) -> None:
        import json

        text = json.dumps(to_dict(self.collection), indent=2) + "\n"
        atomic_write_text(self.out / SUMMARY_FILE, text)


def folder_names(entries: Sequence[Entry]) -> list[str]:
    """A folder name per entry, from what was listed (a Hub id's `org/name` as `org--name`,
    a path's last part); names that would clash (ignoring case) get a hash of the entry."""

    def base(entry: Entry) -> str:
        text = entry.listed if entry.hub else PurePosixPath(entry.listed.rstrip("/")).name
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", text.replace("/", "--")).strip("-.")
        return name[:80] or "model"

    names = [base(e) for e in entries]
    lowered = [n.lower() for n in names]
    return [
        f"{n}-{hashlib.sha256(e.listed.encode()).hexdigest()[:8]}"
        if lowered.count(n.lower()) > 1
        else n
        for n, e in zip(names, entries, strict=True)
    ]


def _kept(folder: Path, task: Task) -> ModelRecord | None:
    """The record of a folder an earlier run finished for this model with these options,
    if every file it lists is there with its sha256; else None (the model runs again)."""
    try:
        record = load_record(ModelRecord, folder / MODEL_FILE)
    except PrunecardError:
        return None
    if record.listed != task.listed or record.options != task.options:
        return None
    for name, digest in record.files.items():
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return None
    return record


def _open(out: Path, inputs: Sequence[Path]) -> None:
    """DIR is new, empty, or a collection prunecard wrote (which the run resumes)."""
    check_apart(out, inputs)
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder; choose another output")
    ours = (out / MARKER).is_file() and (out / "models").is_dir()
    if out.is_dir() and any(out.iterdir()) and not ours:
        raise OutputError(
            out,
            "is not a collection prunecard wrote (no models/ folder of its own); a "
            "collection resumes only in its own folder: choose another output",
        )
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by prunecard; a rerun of the collection resumes here\n")
    for stale in (out / "models").glob(".pc-*"):  # a killed run's staging folders
        shutil.rmtree(stale, ignore_errors=True)


def _keep(out: Path, finished: Finished) -> None:
    """The model's folder, written whole: replaced only once the new one is complete."""
    result = finished.result
    with staged_dir(out / "models" / result.folder, force=True) as tmp:
        for name, data in result.files:
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise OutputError(tmp / name, "a worker returned a file outside its folder")
            target = tmp.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def _summary(finished: Finished) -> ModelSummary:
    r = finished.result
    return ModelSummary(
        listed=finished.task.listed,
        status=DONE if r.record else FAILED,
        folder=r.folder if r.record else "",
        record=r.record,
        error=r.error,
        seconds={k: round(v, 3) for k, v in (r.seconds or {}).items()},
        attempts=finished.attempts,
    )


def run_collection(
    entries: Sequence[Entry],
    out: Path,
    options: CollectionOptions,
    executor: Executor,
    *,
    list_name: str,
    executor_name: str,
    command: str,
    inputs: Sequence[Path] = (),
    runner: Runner = run_task,
    say: Callable[[str], None] = lambda line: None,
) -> Collection:
    """Run every model not finished already and build the site. Ctrl-C or SIGTERM stops
    the run (no exception): finished models stay, unfinished ones have no folder, and
    the summary returned and written says `interrupted` and which are `not run`."""
    start = time.perf_counter()
    _open(out, inputs)
    names = folder_names(entries)
    tasks = [
        Task(e.listed, e.source, n, options, command) for e, n in zip(entries, names, strict=True)
    ]
    models, todo = [], []
    for task in tasks:
        record = _kept(out / "models" / task.folder, task)
        if record is None:
            shutil.rmtree(out / "models" / task.folder, ignore_errors=True)  # not valid
            todo.append(task)
        models.append(
            ModelSummary(task.listed, KEPT, task.folder, record)
            if record
            else ModelSummary(task.listed, NOT_RUN)
        )
    run = _Run(Collection(list_name, options, executor_name, tuple(models)), out)
    run.write()
    index = {task.folder: i for i, task in enumerate(tasks)}
    if len(todo) < len(tasks):
        say(f"{len(tasks) - len(todo)} of {len(tasks)} models kept from an earlier run")
    results = executor(todo, runner)
    models_s = site_s = 0.0
    try:
        for n, finished in enumerate(results, 1):
            if finished.result.record is not None:
                _keep(out, finished)
            i = index[finished.task.folder]
            run.set(i, _summary(finished))
            run.write()
            say(_line(n, len(todo), run.collection.models[i]))
        models_s = time.perf_counter() - start
        _site(out, run.collection)
        site_s = time.perf_counter() - start - models_s
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM as the CLI raises it
        results.close()  # stops the workers
        models_s = models_s or time.perf_counter() - start
        run.collection = replace(run.collection, interrupted=True)
    run.collection = replace(run.collection, seconds=_seconds(start, models=models_s, site=site_s))
    run.write()
    return run.collection


def _seconds(start: float, **steps: float) -> dict[str, float]:
    return {
        **{k: round(v, 3) for k, v in steps.items()},
        "total": round(time.perf_counter() - start, 3),
    }


def _line(n: int, total: int, model: ModelSummary) -> str:
    r = model.record
    what = model.error if model.status == FAILED else model.status
    if r is not None and r.card:
        what += " (" + ", ".join(f"{k} {v}" for k, v in r.verdicts.items() if v) + ")"
    elif r is not None and r.options.audit:
        what += " (no card)"
    return f"[{n}/{total}] {model.listed}: {what}"


def _site(out: Path, collection: Collection) -> None:
    """The site over every finished model, with the verdict page; none when none finished."""
    from analyzer.collection.verdicts import VERDICT_PAGE, verdicts_markdown
    from analyzer.publish.site import build_site

    folders = [out / "models" / m.folder for m in collection.models if m.status in (DONE, KEPT)]
    if not folders:
        shutil.rmtree(out / "site", ignore_errors=True)
        return
    page = (*VERDICT_PAGE, verdicts_markdown(collection))
    build_site(folders, out / "site", force=True, extra_pages=[page], drawn=True)
