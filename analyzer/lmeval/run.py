"""Running lm-eval tasks on the model prunecard loads, and the `Benchmarks` record of a run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.errors import InputError
from analyzer.lmeval.options import VLLM_HINT, LmEvalOptions, TaskSources, require_lm_eval
from analyzer.lmeval.results import import_base, import_results, task_results, with_base
from analyzer.records import Benchmarks, HubSource

if TYPE_CHECKING:
    from analyzer.weights.checkpoint import Checkpoint

__all__ = ["benchmarks", "evaluate_checkpoint", "run_backend", "run_tasks"]


def _evaluate(model: Any, options: LmEvalOptions, **backend: Any) -> dict[str, Any]:
    """lm-eval's `simple_evaluate` offline over the task YAML of `include_path` and
    lm-eval's own registry; `model` an LM object, or a backend name with `backend`'s
    `model_args` and device."""
    require_lm_eval()
    import lm_eval
    from lm_eval.tasks import TaskManager

    include = str(options.include_path) if options.include_path is not None else None
    manager = TaskManager(include_path=include)
    unknown = [t for t in options.tasks if t not in manager.all_tasks]
    if unknown:
        raise InputError(options.include_path, f"lm-eval knows no task {unknown[0]!r}")
    results = lm_eval.simple_evaluate(
        model=model,
        tasks=list(options.tasks),
        num_fewshot=options.num_fewshot,
        limit=options.limit,
        batch_size=options.batch_size,
        task_manager=manager,
        log_samples=False,
        **backend,
    )
    if not results:
        raise InputError(None, "lm-eval returned no results")
    return results


def run_tasks(model: Any, tokenizer: Any, options: LmEvalOptions) -> dict[str, Any]:
    """The tasks on a model already in memory (HFLM over it): the packed model, or the
    stored one as prunecard loads it."""
    require_lm_eval()
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=options.batch_size)
    return _evaluate(lm, options)


def run_backend(folder: Path, options: LmEvalOptions) -> dict[str, Any]:
    """The tasks through lm-eval's own backend loading the stored checkpoint at `folder`
    (`--backend vllm`, or `--model-args` such as `parallelize=True`, which HFLM honours
    only when it loads the model itself), on the GPU when there is one."""
    require_lm_eval()
    import torch

    if options.backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise InputError(None, f"--backend vllm needs vLLM: {VLLM_HINT}")
    if "," in str(folder):
        raise InputError(folder, "lm-eval's model_args cannot name a path with a comma")
    args = ",".join(filter(None, (f"pretrained={folder}", options.model_args)))
    placed: dict[str, str] = {}  # vLLM places the model itself (it ignores a device)
    if options.backend == "hf":
        placed["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    return _evaluate(options.backend, options, model_args=args, **placed)


def evaluate_checkpoint(
    folder: Path | Checkpoint, options: LmEvalOptions, *, name: str, hub: HubSource | None = None
) -> Benchmarks:
    """Load the causal LM at `folder` (as stored, or packed; a path or the `Checkpoint` a
    command already opened) and run the tasks on it."""
    from analyzer.perplexity.model import load_causal_lm
    from analyzer.weights.checkpoint import checkpoint_folder, checkpoint_hashes

    version = require_lm_eval()
    if options.loads_itself:
        results = run_backend(checkpoint_folder(folder), options)
    else:
        model, tokenizer = load_causal_lm(folder, packed=options.packed)
        results = run_tasks(model, tokenizer, options)
    return Benchmarks(
        tasks=task_results(results),
        lm_eval_version=str(results.get("lm_eval_version") or version),
        checkpoint=hub.label if hub else name,
        file_sha256=checkpoint_hashes(folder),
        packed=options.packed,
        limit=options.limit,
        backend=options.backend,
        model_args=options.model_args,
    )


def benchmarks(
    checkpoint: Path | Checkpoint, sources: TaskSources, *, name: str, hub: HubSource | None = None
) -> Benchmarks:
    """The pruned model's record (run or imported) with its dense base's, when one is given,
    on the same tasks, shots and documents. `checkpoint`: a path, or the `Checkpoint` the
    command opened (`report` reads it once)."""
    from analyzer.weights.checkpoint import checkpoint_folder, checkpoint_hashes

    folder = checkpoint_folder(checkpoint)
    base, where = sources.base, sources.base_results or sources.base
    if base is not None and base.resolve() == folder.resolve():
        raise InputError(base, "--dense-base is the pruned checkpoint itself")
    label = sources.base_hub.label if sources.base_hub else str(base)
    dense = None  # imported results are read (and refused) before anything runs
    if base is not None and sources.base_results is not None:
        dense = import_results(
            sources.base_results, base, sources.base_hub, label, checkpoint_hashes(base)
        )
    elif sources.base_results is not None:
        dense = import_base(sources.base_results, folder, hub)
    if sources.results is not None:
        record = import_results(sources.results, folder, hub, name, checkpoint_hashes(checkpoint))
    else:
        assert sources.options is not None
        record = evaluate_checkpoint(checkpoint, sources.options, name=name, hub=hub)
    if dense is None and base is not None:
        assert sources.options is not None
        dense = evaluate_checkpoint(base, sources.options, name=label, hub=sources.base_hub)
    return record if dense is None else with_base(record, dense, where)
