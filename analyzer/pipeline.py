"""`prunecard report` and `prunecard demo`: every stage in one go, each record kept.

The report folder holds the card (README.md, assets/, report.json, .eval_results/) plus the
records each stage wrote, so any stage can be rerun alone and the card re-rendered:

    DIR/analysis.json   DIR/bench.json   DIR/eval/evaluation.json   DIR/packed/
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from analyzer.publish.card import CardOptions
from analyzer.records import Report

__all__ = ["ReportOptions", "run_demo", "run_report"]


@dataclass(frozen=True)
class ReportOptions:
    """What to run; the defaults are what a publishing author wants."""

    data: Path | None = None  # SQuAD v2 JSON; None: the bundled sample
    limit: int | None = None
    seed: int = 0
    evaluate: bool = True
    benchmark: bool = True
    quick: bool = False  # a short benchmark: batch 1, sequence 128
    device: str | None = None
    batch_size: int = 32
    accept_unstable: bool = False  # keep an implausible timing (the card marks it)


def run_report(
    checkpoint: Path,
    out: Path,
    card: CardOptions,
    options: ReportOptions = ReportOptions(),
    *,
    force: bool = False,
    say: Callable[[str], None] | None = None,
) -> Report:
    """analyze → pack → bench → eval → card, into `out` (all or nothing)."""
    from analyzer.outputs import staged_dir

    say = say or _stderr
    steps = ["analyze", "pack"] + ["bench"] * options.benchmark + ["eval"] * options.evaluate
    steps.append("card")
    progress = _Progress(steps, say)
    with staged_dir(out, force=force) as tmp:
        return _run(checkpoint, tmp, card, options, progress)


def _run(
    checkpoint: Path,
    tmp: Path,
    card: CardOptions,
    options: ReportOptions,
    progress: _Progress,
) -> Report:
    from analyzer.publish.card import write_card_files
    from analyzer.publish.report import build_report
    from analyzer.records import write_record
    from analyzer.runtime.bench import bench, resolve_options, torch_dtype
    from analyzer.runtime.packing import pack
    from analyzer.runtime.qa import load_qa_model
    from analyzer.runtime.timing import DEFAULT, QUICK, require_plausible
    from analyzer.squad.data import bundled_sample_path
    from analyzer.squad.evaluate import run_eval
    from analyzer.weights.sparsity import analyze

    device, dtype, align = resolve_options(options.device, None, None)
    with progress.step("analyze"):
        analysis = analyze(checkpoint)
        write_record(analysis, tmp / "analysis.json")
    with progress.step("pack"):
        packed = pack(checkpoint, tmp / "packed")
    timing = None
    if options.benchmark:
        with progress.step("bench"):
            shapes = ((1, 128),) if options.quick else ((1, 384), (8, 384))
            timing = bench(
                checkpoint,
                device=device,
                dtype=dtype,
                align=align,
                shapes=shapes,
                protocol=QUICK if options.quick else DEFAULT,
                profile_runs=1 if options.quick else 3,
                quick=options.quick,
                progress=sys.stderr.isatty(),
            )
            if not options.accept_unstable:
                require_plausible(timing)  # before anything is kept
            timing = replace(
                timing, packed_bytes=packed.packed_bytes, original_bytes=packed.original_bytes
            )
            write_record(timing, tmp / "bench.json")
    evaluation = None
    if options.evaluate:
        with progress.step("eval"):
            model, tokenizer = load_qa_model(
                checkpoint, dtype=torch_dtype(dtype), device=device, align=align
            )
            evaluation = run_eval(
                model,
                tokenizer,
                options.data or bundled_sample_path(),
                tmp / "eval",
                packed=True,
                checkpoint=str(checkpoint),
                limit=options.limit,
                seed=options.seed,
                batch_size=options.batch_size,
                device=device,
                progress=sys.stderr.isatty(),
            )
    with progress.step("card"):
        report = build_report(checkpoint, analysis=analysis, bench=timing, evaluation=evaluation)
        write_card_files(tmp, report, card)
    return report


def run_demo(
    out: Path,
    *,
    limit: int | None = None,
    force: bool = False,
    say: Callable[[str], None] | None = None,
) -> Path:
    """The embedded default end to end: prune MiniLM, report on it, build the site."""
    from analyzer.outputs import staged_dir
    from analyzer.publish.site import build_site
    from analyzer.runtime.demo import demo_checkpoint

    say = say or _stderr
    checkpoint = demo_checkpoint()
    say(f"demo checkpoint: {checkpoint} (all-MiniLM-L6-v2 pruned by analyzer/demo.py)")
    card = CardOptions(
        model_name="prunecard-demo-minilm-pruned",
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        license="apache-2.0",
    )
    with staged_dir(out, force=force) as tmp:
        # a demo publishes whatever this machine measured; the card marks an unstable figure
        options = ReportOptions(limit=limit, quick=True, accept_unstable=True)
        run_report(checkpoint, tmp / "report", card, options, say=say)
        index = build_site([tmp / "report"], tmp / "site")
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

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.say(f"{self.label} done in {time.perf_counter() - self.began:.1f} s")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
