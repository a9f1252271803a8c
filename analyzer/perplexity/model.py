"""Which checkpoints perplexity applies to, and loading them as causal LMs with their tokenizer.

A causal LM is a config whose `model_type` is one of the decoder families
(analyzer/weights/architecture.py, `Family.kind == "decoder"`) or whose `architectures`
name a `...ForCausalLM` class (GPT-2, OPT and the other families transformers knows).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from analyzer.errors import CheckpointError
from analyzer.weights.families import find_family, is_decoder

if TYPE_CHECKING:
    from analyzer.weights.checkpoint import Checkpoint

__all__ = ["is_causal_lm", "load_causal_lm"]


def is_causal_lm(config: Mapping[str, Any]) -> bool:
    """Whether config.json describes a causal (next-token) language model."""
    architectures = config.get("architectures") or []
    named = isinstance(architectures, list) and any(
        isinstance(a, str) and a.endswith("ForCausalLM") for a in architectures
    )
    return is_decoder(config.get("model_type")) or named


def load_causal_lm(
    path: str | Path | Checkpoint,
    *,
    packed: bool = False,
    dtype: Any = None,
    device: str = "cpu",
    align: int = 1,
) -> tuple[Any, Any]:
    """A causal LM (eval mode, no gradients) and its tokenizer, from a local folder only.

    The checkpoint's files are checked by the one reader of checkpoints first (regular
    files, bounded config.json). A supported family loads through prunecard's packing
    (`analyzer.runtime.packing.load`: shapes checked against config.json before anything
    is built; "stored", or "packed" with FFN widths padded to multiples of `align`); any
    other causal LM through transformers' AutoModelForCausalLM, refused if the files lack
    a weight it needs. `dtype` defaults to the weights' own."""
    from analyzer.runtime.tokenizer import check_vocabulary, load_tokenizer
    from analyzer.weights.checkpoint import open_checkpoint

    checkpoint = open_checkpoint(path)
    config_path = checkpoint.root / "config.json"
    if not is_causal_lm(checkpoint.config):
        raise CheckpointError(
            config_path,
            f"model_type {checkpoint.config.get('model_type')!r} is not a causal LM "
            "(perplexity needs a decoder such as Llama, or architectures ...ForCausalLM)",
        )
    tokenizer = load_tokenizer(checkpoint.root)
    if tokenizer is None:
        raise CheckpointError(
            checkpoint.root,
            "has no tokenizer files (tokenizer.json, tokenizer.model, vocab.json, ...); "
            "perplexity needs the model's own tokenizer: copy it into the checkpoint folder",
        )
    if packed or find_family(checkpoint.config.get("model_type")) is not None:
        from analyzer.runtime.packing import load

        layout = "packed" if packed else "stored"
        model = load(checkpoint, layout=layout, dtype=dtype, device=device, align=align)
    else:  # a causal LM of a family prunecard does not know: transformers builds it
        model = _from_folder(checkpoint, dtype, device)
    if not type(model).__name__.endswith("ForCausalLM"):
        raise CheckpointError(
            config_path, f"{type(model).__name__} has no language-modelling head (lm_head)"
        )
    check_vocabulary(tokenizer, model, config_path)
    return model, tokenizer


def _from_folder(checkpoint: Any, dtype: Any, device: str) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM

    from analyzer.weights.architecture import check_model_config

    root, config_path = checkpoint.root, checkpoint.root / "config.json"
    try:
        config = AutoConfig.from_pretrained(root, local_files_only=True)
    except Exception as exc:  # transformers validates field types strictly
        raise CheckpointError(config_path, f"rejected by transformers ({_line(exc)})") from None
    check_model_config(config, config_path, {r.name: r.shape for r in checkpoint.tensors.values()})
    try:
        with _quiet():
            # output_loading_info=True returns (model, info); transformers' annotation
            # gives the model alone
            model, info = cast(
                "tuple[Any, dict[str, Any]]",
                AutoModelForCausalLM.from_pretrained(
                    root,
                    config=config,
                    local_files_only=True,
                    dtype=dtype or "auto",
                    output_loading_info=True,
                ),
            )
    except Exception as exc:  # a class transformers lacks, tensors that do not fit, ...
        raise CheckpointError(root, f"cannot be loaded as a causal LM ({_line(exc)})") from None
    # transformers fills weights missing from the files with random values and only warns:
    # a perplexity of such a model would describe random numbers, not the checkpoint
    if missing := sorted(info.get("missing_keys") or ()):
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise CheckpointError(
            root, f"the weights lack {missing[0]}{more}, which config.json's model needs"
        )
    return model.to(device).eval().requires_grad_(False)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """transformers' per-tensor loading bar and load report off: prunecard prints its own
    progress, and turns a missing weight into its own one-line error."""
    from transformers.utils import logging

    was, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if was:
            logging.enable_progress_bar()


def _line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()[:200]
