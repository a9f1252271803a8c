"""Records into cards: a report's provenance (`build_report`), `prunecard card` from record
files, and `prunecard audit`'s measurements. Rendering reads records only, never weights;
what it needs of the weights (the Analysis, the sha256) is measured here first."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.errors import InputError
from analyzer.publish.card import CardOptions
from analyzer.records import (
    Analysis,
    Bench,
    Benchmarks,
    Environment,
    Evaluation,
    HubSource,
    Perplexity,
    Provenance,
    Report,
)

if TYPE_CHECKING:
    from analyzer.audit.findings import AuditReport

__all__ = ["audit_checkpoint", "build_report", "card_from_files", "utc_now"]


def utc_now() -> str:
    """The current time as ISO 8601 UTC to the second ("2025-01-31T12:00:00Z"), or
    `SOURCE_DATE_EPOCH` when set (reproducible builds' convention for a fixed time)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    now = (
        datetime.fromtimestamp(int(epoch), timezone.utc)
        if epoch.isdigit()
        else datetime.now(timezone.utc)
    )
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report(
    checkpoint: str | Path,
    *,
    analysis: Analysis | None = None,
    bench: Bench | None = None,
    evaluation: Evaluation | None = None,
    perplexity: Perplexity | None = None,
    benchmarks: Benchmarks | None = None,
    command: str | None = None,
    created: str | None = None,
    environment: Environment | None = None,
    tool_version: str | None = None,
    hub: HubSource | None = None,
) -> Report:
    """Gather the records with provenance; unset provenance fields are detected now. A
    checkpoint fetched from the Hub (`hub`) is named by its id and commit, not its path.

    Tests pass `created`, `command`, `environment` and `tool_version` so their output is
    stable; the CLI leaves them to detection.
    """
    from analyzer import __version__
    from analyzer.runtime.environment import detect_environment
    from analyzer.weights.checkpoint import checkpoint_folder, checkpoint_hashes

    root = checkpoint_folder(checkpoint)
    provenance = Provenance(
        tool_version=tool_version or __version__,
        command=command if command is not None else shlex.join(["prunecard", *sys.argv[1:]]),
        checkpoint=hub.label if hub else str(root),
        file_sha256=checkpoint_hashes(checkpoint),
        created=created or utc_now(),
        environment=environment or detect_environment(),
        hub=hub,
    )
    return Report(
        provenance=provenance,
        analysis=analysis,
        bench=bench,
        evaluation=evaluation,
        perplexity=perplexity,
        benchmarks=benchmarks,
    )


def card_from_files(
    checkpoint: Path,
    *,
    out: Path | None = None,
    analysis: Path | None = None,
    bench: Path | None = None,
    evaluation: Path | None = None,
    perplexity: Path | None = None,
    benchmarks: Path | None = None,
    report: Path | None = None,
    publication: Mapping[str, Any] | None = None,
    reference: Path | None = None,
    template: Path | None = None,
    force: bool = False,
    hub: HubSource | None = None,
) -> Path:
    """What `prunecard card` does: gather records (analysing the checkpoint when no analysis
    is given; never evaluating or benchmarking), then write the card folder.

    With `report`, its provenance (when and how the measurements were taken) and its
    publication are kept, so re-rendering gives the same bytes; `publication` holds the
    fields the user set on the command line (None: keep), which win over the report's.
    A checkpoint fetched from the Hub (`hub`) is named by its id, by default the card's too.
    """
    from analyzer.publish.card import load_reference, resolve_publication, write_card
    from analyzer.publish.report import REPORT_FILE, read_report
    from analyzer.records import load_record
    from analyzer.weights.checkpoint import checkpoint_folder
    from analyzer.weights.hub import named
    from analyzer.weights.sparsity import analyze

    checkpoint = Path(checkpoint)
    root = checkpoint_folder(checkpoint)
    old = read_report(report) if report is not None else None
    a = load_record(Analysis, analysis) if analysis else (old.analysis if old else None)
    b = load_record(Bench, bench) if bench else (old.bench if old else None)
    e = load_record(Evaluation, evaluation) if evaluation else (old.evaluation if old else None)
    ref = load_reference(reference) if reference else None
    if template is not None and not Path(template).is_file():
        raise InputError(template, "no such template file")
    if a is None:
        a = named(analyze(checkpoint), hub)
    ppl = load_record(Perplexity, perplexity) if perplexity else (old.perplexity if old else None)
    tasks = load_record(Benchmarks, benchmarks) if benchmarks else (old.benchmarks if old else None)
    new = build_report(
        checkpoint, analysis=a, bench=b, evaluation=e, perplexity=ppl, benchmarks=tasks, hub=hub
    )
    if benchmarks and tasks and tasks.file_sha256 not in ({}, new.provenance.file_sha256):
        raise InputError(benchmarks, f"describes other weights than {root} (sha256 differ)")
    if old is not None:
        if old.provenance.file_sha256 != new.provenance.file_sha256:
            named_as = hub.label if hub else checkpoint
            raise InputError(report, f"describes other weights than {named_as} (sha256 differ)")
        new = replace(new, provenance=old.provenance, publication=old.publication)
    default_id = hub.repo_id if hub else root.name
    new = replace(new, publication=resolve_publication(new.publication, default_id, publication))
    target = Path(out) if out is not None else Path.cwd() / f"{root.name}-card"
    if report is not None and Path(report).resolve() == (target / REPORT_FILE).resolve():
        from analyzer.publish.report import portable

        if portable(new) != old:  # the publish hook re-renders in place: inputs never change
            raise InputError(
                report,
                "is the card's own record: re-rendering in place may not change it (drop the "
                "options that differ from it, or write the card to another folder)",
            )
    options = CardOptions(reference=ref, template=template)
    return write_card(target, new, options, force=force, checkpoint=root)


def audit_checkpoint(
    card: Path,
    checkpoint: Path | None = None,
    *,
    eval_path: Path | None = None,
    bench_path: Path | None = None,
    rebench: bool = False,
    hub: HubSource | None = None,
) -> AuditReport:
    """`prunecard audit`: measure what the audit compares with (the weights' Analysis and
    sha256, and with `rebench` a fresh timing at the record's shapes), then audit the card.
    Auditing itself imports no torch and opens no weights; `hub` names the weights by id."""
    from analyzer.audit.checks import audit, load_bench
    from analyzer.weights.checkpoint import checkpoint_hashes, open_checkpoint
    from analyzer.weights.hub import named
    from analyzer.weights.sparsity import analyze

    opened = open_checkpoint(checkpoint) if checkpoint is not None else None  # once
    analysis = named(analyze(opened), hub) if opened is not None else None
    hashes = checkpoint_hashes(checkpoint) if checkpoint is not None else None
    fresh = None
    if rebench:
        from analyzer.runtime.bench import bench

        if opened is None:
            raise InputError(card, "--rebench times the weights: drop --no-weights")
        record = load_bench(bench_path) if bench_path is not None else None
        shapes = [(s.batch, s.seq) for s in record.shapes] if record else None  # None: default
        fresh = bench(opened, shapes=shapes, progress=sys.stderr.isatty())
    return audit(
        card,
        analysis,
        file_hashes=hashes,
        eval_path=eval_path,
        bench_path=bench_path,
        fresh_bench=fresh,
    )
