"""One model of a collection, start to end, in whichever process runs it (this one, a pool
worker, a Ray task on another node): fetch, analyze (or `report`), draw the site's figures,
audit its own card, then hand back the folder's files as bytes. Weights stay where they
were read; only records travel. A model's failure comes back as its error line, never as
an exception.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer.collection.records import MODEL_FILE, CollectionOptions, Mismatch, ModelRecord
from analyzer.errors import PrunecardError
from analyzer.outputs import MARKER
from analyzer.records import Analysis, HubSource, Publication, Report, write_record

if TYPE_CHECKING:  # the audit's modules are imported where an audit runs
    from analyzer.audit.findings import AuditReport

__all__ = ["Task", "TaskResult", "run_task"]

WORST = 3  # mismatches kept in the summary per model


@dataclass(frozen=True)
class Task:
    """What a worker needs: no path of the driver's machine but the local checkpoints'."""

    listed: str
    source: str  # a local path or a Hub id, as `analyzer.weights.hub.parse_source` reads it
    folder: str  # the model's folder name under DIR/models/
    options: CollectionOptions
    command: str  # the records' provenance: the collection command, without where it ran


@dataclass(frozen=True)
class TaskResult:
    folder: str
    files: tuple[tuple[str, bytes], ...]  # (path in the folder, bytes); empty on failure
    record: ModelRecord | None
    error: str = ""
    seconds: dict[str, float] | None = None


def run_task(task: Task) -> TaskResult:
    """Run one model in a scratch folder and return its files; never raises for the model's
    own problems (an unreadable checkpoint, a card that cannot be parsed, a bug)."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="prunecard-model-") as scratch:
        folder = Path(scratch) / "model"
        try:
            record = _run(task, folder, seconds)
            files = _read_folder(folder)
            error = ""
        except PrunecardError as exc:
            record, files, error = None, (), str(exc)
        except Exception as exc:  # a bug or an unforeseen file: this model fails, not the rest
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            record, files, error = None, (), f"internal error: {type(exc).__name__}: {first}"
    seconds["total"] = time.perf_counter() - start
    return TaskResult(task.folder, files, record, error, seconds)


@contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[step] = time.perf_counter() - start


def _run(task: Task, folder: Path, seconds: dict[str, float]) -> ModelRecord:
    from analyzer.publish.figures import write_figures
    from analyzer.weights.checkpoint import checkpoint_folder
    from analyzer.weights.hub import HubRef, fetch, parse_source

    options = task.options
    source = parse_source(task.source)
    with _timed(seconds, "fetch"):
        fetched = fetch(source, tokenizer=options.report, card=options.audit)
    model_id = source.repo_id if isinstance(source, HubRef) else checkpoint_folder(source).name
    publication = Publication(model_id=model_id)
    if options.report:
        with _timed(seconds, "report"):
            report = _report(fetched.path, folder, publication, task.command, fetched.hub)
    else:
        with _timed(seconds, "analyze"):
            analysis, report = _analysis(
                fetched.path, folder, publication, task.command, fetched.hub
            )
        with _timed(seconds, "figures"):  # drawn here, where the work is spread, not by the
            write_figures(analysis, folder / "assets")  # driver as it builds the site
    card, audited = "", None
    if options.audit:
        card_file = checkpoint_folder(fetched.path) / "README.md"
        if card_file.is_file():
            with _timed(seconds, "audit"):
                audited = _audit(card_file, report, folder)
            card = "README.md"
    record = ModelRecord(
        listed=task.listed,
        checkpoint=report.provenance.checkpoint,
        options=options,
        card=card,
        verdicts=_verdicts(audited) if audited else {},
        worst=_worst(audited) if audited else (),
        files=_digests(folder),
    )
    write_record(record, folder / MODEL_FILE)
    return record


def _analysis(
    path: Path, folder: Path, publication: Publication, command: str, hub: HubSource | None
) -> tuple[Analysis, Report]:
    """`analyze --json` and the report.json a site page is built from."""
    from analyzer.pipeline import build_report
    from analyzer.weights.hub import named
    from analyzer.weights.sparsity import analyze

    folder.mkdir()
    analysis = named(analyze(path), hub)
    write_record(analysis, folder / "analysis.json")
    report = build_report(path, analysis=analysis, command=command, hub=hub)
    report = replace(report, publication=publication)
    write_record(report, folder / "report.json")
    return analysis, report


def _report(
    path: Path, folder: Path, publication: Publication, command: str, hub: HubSource | None
) -> Report:
    """`report --quick --accept-unstable`: a collection times on whatever machine ran it
    and marks an unstable figure instead of failing; no progress lines (one line a model);
    the packed copy is left out (weights, not records). The card's figures are the site's."""
    from analyzer.pipeline import ReportOptions, run_report

    options = ReportOptions(quick=True, accept_unstable=True, progress=False)
    report = run_report(path, folder, publication, options, say=_quiet, hub=hub, command=command)
    shutil.rmtree(folder / "packed", ignore_errors=True)
    return report


def _quiet(line: str) -> None:
    """A collection prints one line per model, not each model's steps."""


def _audit(card: Path, report: Report, folder: Path) -> AuditReport:
    """`audit --json --markdown` of the model's own card against the analysis just made
    (the weights are read once for both)."""
    from analyzer.audit.checks import audit, audit_markdown
    from analyzer.outputs import atomic_write_text

    audited = audit(card, report.analysis, file_hashes=report.provenance.file_sha256)
    write_record(audited, folder / "audit.json")
    atomic_write_text(folder / "audit.md", audit_markdown(audited))
    return audited


def _verdicts(audited: AuditReport) -> dict[str, int]:
    from analyzer.audit.findings import MISMATCH, OK, UNCHECKED, WARNING

    return {v: audited.count(v) for v in (OK, MISMATCH, WARNING, UNCHECKED)}


def _worst(audited: AuditReport) -> tuple[Mismatch, ...]:
    """The mismatches furthest off (relative error; those without both figures after)."""
    from analyzer.audit.findings import MISMATCH

    def off(claimed: float | None, measured: float | None) -> float:
        if claimed is None or measured is None:
            return -1.0
        return abs(claimed - measured) / max(abs(measured), 1e-12)

    found = [f for f in audited.findings if f.verdict == MISMATCH]
    found.sort(key=lambda f: (-off(f.claimed_value, f.measured_value), f.line, f.quantity))
    return tuple(
        Mismatch(f.quantity, f.claimed, f.measured, f.line, f.text[:200]) for f in found[:WORST]
    )


def _files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.name not in (MARKER, MODEL_FILE)),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in _files(folder)
    }


def _read_folder(folder: Path) -> tuple[tuple[str, bytes], ...]:
    paths = [*_files(folder), folder / MODEL_FILE]
    return tuple((p.relative_to(folder).as_posix(), p.read_bytes()) for p in paths)
