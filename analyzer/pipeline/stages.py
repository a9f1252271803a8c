"""The measuring stages `eval` and `bench` run alone and `report` runs in turn: each takes
the `Checkpoint` its command opened (the weight files are opened once per command) and the
options record of `analyzer.pipeline.options`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.outputs import check_file, check_output
from analyzer.pipeline.options import PERPLEXITY, SQUAD, BenchOptions, EvalOptions, PerplexityRun
from analyzer.records import Bench, Benchmarks, Evaluation, HubSource, Perplexity

if TYPE_CHECKING:
    from analyzer.weights.checkpoint import Checkpoint

__all__ = ["measure_perplexity", "run_bench", "run_eval"]


def run_eval(
    checkpoint: Path,
    options: EvalOptions,
    *,
    name: str,
    guarded: Path,
    hub: HubSource | None = None,
) -> Evaluation | Perplexity | Benchmarks:
    """`prunecard eval`: SQuAD v2 for a QA model (its results written to `options.out`),
    perplexity for a causal LM, lm-eval's tasks with `tasks` or `results`; the checkpoint
    is opened once and every step reads through it. `name`: the checkpoint as the records
    name it; `guarded`: what no output may lie in (the checkpoint, or its Hub cache folder).
    The record's --json file is the caller's to write."""
    from analyzer.perplexity.model import is_causal_lm
    from analyzer.weights.checkpoint import open_checkpoint
    from analyzer.weights.hub import named

    opened = open_checkpoint(checkpoint)
    kind = options.kind(is_causal_lm(opened.config), name)
    if kind == SQUAD:
        return _squad(opened, options, name, guarded)
    if kind == PERPLEXITY:
        from analyzer.runtime.bench import resolve_options

        check_file(options.json, [guarded, options.perplexity.text])
        run = options.perplexity.prepare()
        device, dtype, align = resolve_options(options.device, options.dtype, options.align)
        record = measure_perplexity(
            opened, run, device=device, dtype=dtype, align=align, packed=options.packed
        )
        return named(record, hub)
    from analyzer.lmeval.run import benchmarks

    check_file(options.json, [guarded, options.results, options.base_results])
    sources = options.task_sources()
    assert sources is not None  # kind() said tasks
    return benchmarks(opened, sources, name=name, hub=hub)


def _squad(opened: Checkpoint, options: EvalOptions, name: str, guarded: Path) -> Evaluation:
    from analyzer.runtime.bench import resolve_options, torch_dtype
    from analyzer.runtime.qa import load_qa_model
    from analyzer.squad.data import bundled_sample_path
    from analyzer.squad.evaluate import run_eval as evaluate

    assert options.out is not None  # kind() refused a SQuAD evaluation without one
    check_output(options.out, [guarded, options.data], force=options.force)
    device, dtype, align = resolve_options(options.device, options.dtype, options.align)
    packed = not options.no_pack
    model, tokenizer = load_qa_model(
        opened, packed=packed, dtype=torch_dtype(dtype), device=device, align=align
    )
    return evaluate(
        model,
        tokenizer,
        options.data or bundled_sample_path(),
        options.out,
        packed=packed,
        checkpoint=name,
        limit=options.limit,
        seed=options.seed or 0,
        batch_size=options.squad_batch,
        device=device,
        graphs=False if options.no_graphs else None,
        force=options.force,
        progress=True,
    )


def measure_perplexity(
    checkpoint: Checkpoint,
    run: PerplexityRun,
    *,
    device: str,
    dtype: str,
    align: int = 1,
    packed: bool = False,
    progress: bool = True,
) -> Perplexity:
    """The causal LM over `run`'s text and windows (`report` measures it as stored: the
    figure never depends on packing); `dtype`: a --dtype option ("fp32")."""
    from analyzer.perplexity.evaluate import measure_perplexity as measure
    from analyzer.runtime.bench import torch_dtype

    return measure(
        checkpoint,
        run.text,
        protocol=run.protocol,
        window=run.window,
        stride=run.stride,
        limit_tokens=run.limit_tokens,
        packed=packed,
        dtype=torch_dtype(dtype),
        device=device,
        align=align,
        progress=progress,
    )


def run_bench(checkpoint: Path | Checkpoint, options: BenchOptions, *, packed: Any = None) -> Bench:
    """`prunecard bench`, and `report`'s bench step (`packed`: the model it writes, built by
    the caller): the dense model against the packed one, by `options`' plan. `checkpoint`:
    a folder or weights file, or the `Checkpoint` the caller opened (read through it)."""
    from analyzer.perplexity.model import is_causal_lm
    from analyzer.runtime.bench import bench
    from analyzer.weights.checkpoint import open_checkpoint

    opened = open_checkpoint(checkpoint)
    plan = options.plan(causal=is_causal_lm(opened.config))
    return bench(
        opened,
        device=options.device,
        dtype=options.dtype,
        align=options.align,
        shapes=plan.shapes,
        threads=options.threads,
        protocol=plan.protocol,
        graphs=options.graphs,
        fuse=options.fuse,
        profile_runs=plan.profile_runs,
        quick=options.quick,
        progress=options.progress,
        decode_batches=plan.decode_batches,
        prompt_tokens=plan.prompt_tokens,
        new_tokens=plan.new_tokens,
        packed=packed,
    )
