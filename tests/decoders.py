"""Small decoder LLM checkpoints (Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma, Gemma2), built
by transformers itself from a config, then pruned in the test by editing the state dict.

Every checkpoint uses MiniLM's tokenizer (the vocabulary sizes match), or the one given as
`tokenizer` (its vocabulary size and special tokens then go into config.json), so tokenizing,
perplexity and generation run on real text. Sizes are tiny: a build takes well under a
second and a forward pass a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from analyzer.runtime.demo import minilm_path
from analyzer.weights.checkpoint import copy_tokenizer_files

VOCAB = 30522  # MiniLM's tokenizer
DECODER_TYPES = ("llama", "mistral", "qwen2", "qwen3", "phi3", "gemma", "gemma2")

Prune = Callable[[dict[str, torch.Tensor]], None]


def decoder_config(
    model_type: str,
    *,
    layers: int = 2,
    hidden: int = 32,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 64,
    head_dim: int | None = None,
    **extra,
):
    """A transformers config of `model_type` with these sizes (GQA when kv_heads < heads)."""
    from transformers import AutoConfig

    sizes = dict(
        vocab_size=VOCAB,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=intermediate,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
    )
    if head_dim is not None or model_type in ("qwen3", "gemma", "gemma2"):
        sizes["head_dim"] = head_dim or hidden // heads
    return AutoConfig.for_model(model_type, **{**sizes, **extra})


def build_decoder(
    out: Path,
    model_type: str = "llama",
    *,
    prune: Prune | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    tokenizer: Path | None = None,
    **sizes,
) -> Path:
    """A causal LM checkpoint folder (model.safetensors, config.json, tokenizer) whose
    weights are transformers' own random initialisation, edited by `prune` (which changes
    the state dict's tensors in place) before saving. `tokenizer`: a folder of tokenizer
    files (default: MiniLM's)."""
    from transformers import AutoModelForCausalLM

    tokenizer = tokenizer or minilm_path()
    config = decoder_config(model_type, **_tokens(tokenizer), **sizes)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    if prune is not None:
        state = model.state_dict()
        with torch.no_grad():
            prune(state)
    model.to(dtype).save_pretrained(out)
    copy_tokenizer_files(tokenizer, out)
    return out


def _tokens(folder: Path) -> dict[str, int | None]:
    """config.json's vocabulary size and special token ids for the tokenizer in `folder`."""
    from transformers import AutoTokenizer

    if folder == minilm_path():
        return {}  # decoder_config's defaults are MiniLM's
    t = AutoTokenizer.from_pretrained(folder)
    ids = dict(
        bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id, pad_token_id=t.pad_token_id
    )
    return dict(vocab_size=len(t), **ids)


def layer_weight(state: dict[str, torch.Tensor], layer: int, module: str) -> torch.Tensor:
    """The weight of `module` (e.g. "self_attn.v_proj", "mlp.down_proj") in decoder layer
    `layer`; edit it in place to prune."""
    return state[f"model.layers.{layer}.{module}.weight"]
