"""`prunecard report` and `demo`: the stages joined, each record kept.

The report folder holds the card (README.md, assets/, report.json, .eval_results/) plus the
records each stage wrote, so any stage can be rerun alone and the card re-rendered:

    DIR/analysis.json   DIR/bench.json   DIR/eval/evaluation.json   DIR/packed/

A causal LM is evaluated by its perplexity instead of SQuAD v2: DIR/perplexity.json, and
with `--tasks` by lm-eval (with its dense base's figures when given): DIR/benchmarks.json.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer.pipeline.card import build_report
from analyzer.pipeline.options import PerplexityRun, ReportOptions
from analyzer.publish.card import CardOptions
from analyzer.records import HubSource, Publication, Report
from analyzer.text import fixed

if TYPE_CHECKING:
    from types import TracebackType

    from analyzer.weights.checkpoint import Checkpoint

__all__ = ["DEMO_LIMIT", "DEMO_NOTICE", "run_demo", "run_report"]


def run_report(
    checkpoint: Path,
    out: Path,
    publication: Publication,
    options: ReportOptions | None = None,
    *,
    force: bool = False,
    say: Callable[[str], None] | None = None,
    hub: HubSource | None = None,
    command: str | None = None,
) -> Report:
    """analyze → pack → bench → eval → card, into `out` (all or nothing); `publication`
    is kept in report.json for every later `card` and `site`; `options` (None: the
    defaults); `hub`: the Hub id and commit `checkpoint` was fetched as, which the records
    name instead of its path; `command`: the provenance's command (None: this process's
    command line).

    The checkpoint is opened once and every step reads through that one `Checkpoint`;
    analysis decides the pack plan, and the packed model written to DIR/packed (at the
    bench's alignment) is the one bench times and eval evaluates."""
    from analyzer.outputs import staged_dir
    from analyzer.perplexity.model import is_causal_lm
    from analyzer.weights.checkpoint import open_checkpoint

    say = say or _stderr
    options = options or ReportOptions()
    steps = ["analyze", "pack"] + ["bench"] * options.benchmark + ["eval"] * options.evaluate
    steps += ["tasks"] * (options.tasks is not None)
    steps.append("card")
    progress = _Progress(steps, say)
    opened = open_checkpoint(checkpoint)
    causal = is_causal_lm(opened.config)
    options.check_kind(causal, hub.label if hub else str(checkpoint))
    # the text loaded and its windows checked before any step runs, once
    text = options.perplexity.prepare() if causal and options.evaluate else None
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
    text: PerplexityRun | None,
    hub: HubSource | None = None,
    command: str | None = None,
) -> Report:
    from analyzer.pipeline.stages import measure_perplexity, run_bench
    from analyzer.publish.card import write_card_files
    from analyzer.records import write_record
    from analyzer.runtime.bench import resolve_options, torch_dtype
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
            timing = run_bench(opened, options.bench_options(device, dtype, align), packed=model)
            if not options.accept_unstable:
                require_plausible(timing)  # before anything is kept
            timing = replace(
                timing, packed_bytes=written.packed_bytes, original_bytes=written.original_bytes
            )
            write_record(timing, tmp / "bench.json")
    evaluation = perplexity = None
    if options.evaluate and text is not None:
        with progress.step("eval"):
            scored = measure_perplexity(
                opened, text, device=device, dtype=dtype, progress=options.progress
            )
            perplexity = named(scored, hub)
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
                progress=options.progress,
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
        # the cards drew each report's figures: the site copies them
        index = build_site(dirs, tmp / "site", base=dirs[0], notice=DEMO_NOTICE, drawn=True)
    return out / index.relative_to(tmp)


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
