"""`prunecard report`, `card` and `demo`: the stages joined, each record kept.

The report folder holds the card (README.md, assets/, report.json, .eval_results/) plus the
records each stage wrote, so any stage can be rerun alone and the card re-rendered:

    DIR/analysis.json   DIR/bench.json   DIR/eval/evaluation.json   DIR/packed/

A causal LM is evaluated by its perplexity instead of SQuAD v2: DIR/perplexity.json, and
with `--tasks` by lm-eval (with its dense base's figures when given): DIR/benchmarks.json.

This is the one module that joins measuring (weights, runtime, squad) to rendering
(publish): rendering reads records only, never weights.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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
    Publication,
    Report,
)
from analyzer.text import fixed

if TYPE_CHECKING:
    from types import TracebackType

    from analyzer.audit.findings import AuditReport
    from analyzer.lmeval.options import TaskSources
    from analyzer.perplexity.text import Text
    from analyzer.weights.checkpoint import Checkpoint

__all__ = [
    "DEMO_LIMIT",
    "DEMO_NOTICE",
    "ReportOptions",
    "audit_checkpoint",
    "build_report",
    "card_from_files",
    "run_demo",
    "run_report",
    "utc_now",
]


@dataclass(frozen=True)
class ReportOptions:
    """What to run; the defaults are what a publishing author wants."""

    data: Path | None = None  # SQuAD v2 JSON; None: the bundled sample
    limit: int | None = None
    seed: int = 0
    evaluate: bool = True
    benchmark: bool = True
    quick: bool = False  # a short benchmark (analyzer.runtime.bench.bench_plan)
    device: str | None = None  # None: cuda if available
    dtype: str | None = None  # None: fp16 on a GPU, fp32 on the CPU
    align: int | None = None  # FFN width alignment; None: 64 on a GPU, 1 on the CPU
    batch_size: int = 32
    accept_unstable: bool = False  # keep an implausible timing (the card marks it)
    base: Path | None = None  # the dense base's config.json or folder (decoders: `--base-config`)
    # causal LMs: perplexity over this text or named dataset (neither: the bundled text),
    # by this protocol (None: sliding), windows as in `eval`
    text: Path | None = None
    text_dataset: str | None = None
    protocol: str | None = None
    window: int | None = None
    stride: int | None = None
    seqlen: int | None = None
    limit_tokens: int | None = None
    tasks: TaskSources | None = None  # causal LMs: lm-eval tasks run or imported (`--tasks`)


def run_report(
    checkpoint: Path,
    out: Path,
    publication: Publication,
    options: ReportOptions = ReportOptions(),
    *,
    force: bool = False,
    say: Callable[[str], None] | None = None,
    hub: HubSource | None = None,
    command: str | None = None,
) -> Report:
    """analyze → pack → bench → eval → card, into `out` (all or nothing); `publication`
    is kept in report.json for every later `card` and `site`; `hub`: the Hub id and commit
    `checkpoint` was fetched as, which the records name instead of its path; `command`:
    the provenance's command (None: this process's command line).

    The checkpoint is opened once and every step reads through that one `Checkpoint`;
    analysis decides the pack plan, and the packed model written to DIR/packed (at the
    bench's alignment) is the one bench times and eval evaluates."""
    from analyzer.outputs import staged_dir
    from analyzer.weights.checkpoint import open_checkpoint

    say = say or _stderr
    steps = ["analyze", "pack"] + ["bench"] * options.benchmark + ["eval"] * options.evaluate
    steps += ["tasks"] * (options.tasks is not None)
    steps.append("card")
    progress = _Progress(steps, say)
    opened = open_checkpoint(checkpoint)
    causal = _is_causal_lm(opened, options, hub.label if hub else str(checkpoint))
    text = _perplexity_text(options) if causal and options.evaluate else None
    with staged_dir(out, force=force) as tmp:
        return _run(
            checkpoint,
            opened,
            tmp,
            publication,
            options,
            progress,
            text=text,
            hub=hub,
            command=command,
        )


def _run(
    checkpoint: Path,
    opened: Checkpoint,
    tmp: Path,
    publication: Publication,
    options: ReportOptions,
    progress: _Progress,
    *,
    text: Text | None,
    hub: HubSource | None = None,
    command: str | None = None,
) -> Report:
    from analyzer.publish.card import write_card_files
    from analyzer.records import write_record
    from analyzer.runtime.bench import bench, resolve_options, torch_dtype
    from analyzer.runtime.packing import build, pack_state, write_packed
    from analyzer.runtime.qa import load_qa_model
    from analyzer.runtime.timing import require_plausible
    from analyzer.squad.data import bundled_sample_path
    from analyzer.squad.evaluate import run_eval
    from analyzer.weights.hub import named
    from analyzer.weights.sparsity import analyze_with_plan

    device, dtype, align = resolve_options(options.device, options.dtype, options.align)
    with progress.step("analyze"):
        measured = analyze_with_plan(opened, base=options.base)
        analysis = named(measured.analysis, hub)
        write_record(analysis, tmp / "analysis.json")
    with progress.step("pack"):
        packed = pack_state(opened, measured.plan, align=align)
        written = write_packed(opened, packed, tmp / "packed")
    # the packed model bench times and eval evaluates: built once, from the state written
    model = None
    timing = None
    if options.benchmark:
        with progress.step("bench"):
            model = build(opened, packed, dtype=torch_dtype(dtype), device=device)
            timing = bench(  # shapes, protocol and profiling: bench_plan's
                opened,
                device=device,
                dtype=dtype,
                align=align,
                quick=options.quick,
                progress=True,
                packed=model,
            )
            if not options.accept_unstable:
                require_plausible(timing)  # before anything is kept
            timing = replace(
                timing, packed_bytes=written.packed_bytes, original_bytes=written.original_bytes
            )
            write_record(timing, tmp / "bench.json")
    evaluation = perplexity = None
    if options.evaluate and text is not None:
        with progress.step("eval"):
            perplexity = named(_perplexity(opened, text, options, device, torch_dtype(dtype)), hub)
            write_record(perplexity, tmp / "perplexity.json")
    elif options.evaluate:
        with progress.step("eval"):
            if model is None:
                model = build(opened, packed, dtype=torch_dtype(dtype), device=device)
            model, tokenizer = load_qa_model(
                opened, dtype=torch_dtype(dtype), device=device, align=align, model=model
            )
            evaluation = run_eval(
                model,
                tokenizer,
                options.data or bundled_sample_path(),
                tmp / "eval",
                packed=True,
                checkpoint=hub.label if hub else str(checkpoint),
                limit=options.limit,
                seed=options.seed,
                batch_size=options.batch_size,
                device=device,
                progress=True,
            )
    benchmarks = None
    if options.tasks is not None:
        from analyzer.lmeval.run import benchmarks as run_benchmarks

        with progress.step("tasks"):
            name = hub.label if hub else str(checkpoint)
            benchmarks = run_benchmarks(opened, options.tasks, name=name, hub=hub)
            write_record(benchmarks, tmp / "benchmarks.json")
    with progress.step("card"):
        report = build_report(
            checkpoint,
            analysis=analysis,
            bench=timing,
            evaluation=evaluation,
            perplexity=perplexity,
            benchmarks=benchmarks,
            command=command,
            hub=hub,
        )
        report = replace(report, publication=publication)
        write_card_files(tmp, report, CardOptions())
    return report


def _is_causal_lm(checkpoint: Checkpoint, options: ReportOptions, name: str) -> bool:
    """Whether the checkpoint is a causal LM (evaluated by perplexity, not SQuAD v2). The
    options of the other kind of evaluation are refused before any step runs: they would
    be ignored without a word."""
    from analyzer.perplexity.model import is_causal_lm

    causal = is_causal_lm(checkpoint.config)
    tasks = options.tasks is not None  # --limit then limits the tasks' documents
    squad = {"--data": options.data, "--limit": None if tasks else options.limit}
    text = {
        "--text": options.text,
        "--text-dataset": options.text_dataset,
        "--protocol": options.protocol,
        "--window": options.window,
        "--stride": options.stride,
        "--seqlen": options.seqlen,
        "--limit-tokens": options.limit_tokens,
    }
    given = [name for name, value in (squad if causal else text).items() if value is not None]
    if options.tasks is not None and not causal:
        raise InputError(name, "is not a causal LM: --tasks and --results need one")
    if given and options.evaluate:
        kind = "is a causal LM (its perplexity is measured)" if causal else "is not a causal LM"
        raise InputError(name, f"{kind}: {given[0]} does not apply to it")
    return causal


def _perplexity_text(options: ReportOptions) -> Text:
    """The text a causal LM's perplexity is measured on, and its window options checked,
    before any step runs (a dataset not in the cache fails here, not after the bench)."""
    from analyzer.perplexity.evaluate import load_text, plan_options

    plan_options(options.protocol or "sliding", options.window, options.stride, options.seqlen)
    return load_text(options.text, options.text_dataset)


def _perplexity(
    checkpoint: Checkpoint, text: Text, options: ReportOptions, device: str, dtype: Any
) -> Perplexity:
    """The causal LM as stored over the text (the figure never depends on packing)."""
    from analyzer.perplexity.evaluate import measure_perplexity, plan_options

    protocol = options.protocol or "sliding"
    window, stride = plan_options(protocol, options.window, options.stride, options.seqlen)
    return measure_perplexity(
        checkpoint,
        text,
        protocol=protocol,
        window=window,
        stride=stride,
        limit_tokens=options.limit_tokens,
        dtype=dtype,
        device=device,
    )


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


DEMO_LIMIT = 100  # questions per model: the demo's five reports in about two minutes
DEMO_NOTICE = (
    "This is prunecard's demo: all-MiniLM-L6-v2 and pruned copies of it, each with an "
    "untrained question-answering head, so the SQuAD v2 scores measure the pipeline, not "
    "useful models."
)


def run_demo(
    out: Path,
    *,
    limit: int | None = None,
    force: bool = False,
    say: Callable[[str], None] | None = None,
) -> Path:
    """The embedded default end to end: the dense MiniLM and its pruned variants
    (`analyzer.runtime.demo.FAMILY`), each through `report` into out/reports/NAME, then one
    site over them all with the dense one as its base."""
    from analyzer.outputs import staged_dir
    from analyzer.publish.site import build_site
    from analyzer.runtime.demo import FAMILY, variant_checkpoint

    say = say or _stderr
    # a demo publishes whatever this machine measured; the card marks an unstable figure
    options = ReportOptions(limit=limit or DEMO_LIMIT, quick=True, accept_unstable=True)
    with staged_dir(out, force=force) as tmp:
        dirs = []
        for i, variant in enumerate(FAMILY, 1):
            checkpoint = variant_checkpoint(variant)
            what = f"{variant.name}, {variant.description}"
            say(f"demo model {i}/{len(FAMILY)}: {what} ({checkpoint})")
            publication = Publication(
                model_id=f"prunecard-demo-minilm-{variant.name}",
                base_model="sentence-transformers/all-MiniLM-L6-v2",
                license="apache-2.0",
            )
            run_report(checkpoint, tmp / "reports" / variant.name, publication, options, say=say)
            dirs.append(tmp / "reports" / variant.name)
        index = build_site(dirs, tmp / "site", base=dirs[0], notice=DEMO_NOTICE)
    return out / index.relative_to(tmp)


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


class _Progress:
    """Numbered step lines with their wall time, on stderr."""

    def __init__(self, steps: list[str], say: Callable[[str], None]) -> None:
        self.steps, self.say = steps, say

    def step(self, name: str) -> _Step:
        return _Step(f"[{self.steps.index(name) + 1}/{len(self.steps)}] {name}", self.say)


class _Step:
    def __init__(self, label: str, say: Callable[[str], None]) -> None:
        self.label, self.say = label, say

    def __enter__(self) -> None:
        self.began = time.perf_counter()
        self.say(f"{self.label} ...")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.say(f"{self.label} done in {fixed(time.perf_counter() - self.began, 1)} s")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
