"""Small decoder LLM checkpoints of every decoder family in `analyzer.weights.families`
(Llama, Mistral, Qwen2, Qwen3, Gemma, Gemma2, Phi-3, OLMo2), built by transformers itself
from a config, then pruned in the test by editing the state dict.

Published geometry: `shrink_config` turns a real config.json (tests/data/configs) into a
test-sized one with the same keys and the same shape rules (explicit head_dim that is not
hidden / heads, the GQA ratio, rope_scaling, tied embeddings, biases, soft-capping, sliding
windows), and `build_published` saves a checkpoint whose config.json is that one.

Every checkpoint uses MiniLM's tokenizer (the vocabulary sizes match), or the one given as
`tokenizer` (its vocabulary size and special tokens then go into config.json), so tokenizing,
perplexity and generation run on real text. Sizes are tiny: a build takes well under a
second and a forward pass a few milliseconds.
"""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from analyzer.runtime.demo import minilm_path
from analyzer.weights.checkpoint import copy_tokenizer_files
from analyzer.weights.families import FAMILIES, find_family

VOCAB = 30522  # MiniLM's tokenizer
DECODER_TYPES = tuple(f.model_types[0] for f in FAMILIES if f.kind == "decoder")
CONFIGS = Path(__file__).parent / "data" / "configs"
PUBLISHED = tuple(sorted(p.stem for p in CONFIGS.glob("*.json")))  # see tests/data/README.md
TOKENS = {"pad_token_id": 0, "bos_token_id": 101, "eos_token_id": 102}  # MiniLM's ids

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
    vocab: int = VOCAB,
    positions: int = 256,
    **extra,
):
    """A transformers config of `model_type` with these sizes (GQA when kv_heads < heads)."""
    from transformers import AutoConfig

    sizes = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=intermediate,
        max_position_embeddings=positions,
        **TOKENS,
    )
    family = find_family(model_type)
    if head_dim is not None or (family is not None and "head_dim" in family.stated):
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
    files (default: MiniLM's); `vocab` (default: the tokenizer's length as loaded for
    `model_type`) may be smaller for a test that never tokenizes."""
    from transformers import AutoModelForCausalLM

    tokenizer = tokenizer or minilm_path()
    if "vocab" not in sizes:
        sizes["vocab"] = loaded_length(tokenizer, model_type)
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


@functools.cache
def loaded_length(tokenizer: Path, model_type: str) -> int:
    """How many tokens the tokenizer in `tokenizer` has when loaded beside a config of
    `model_type`: the class the model type picks may add its own special tokens (Qwen2's
    `<|endoftext|>` to MiniLM's vocabulary), which the embedding must cover, as a
    publisher's does."""
    from transformers import AutoConfig

    from analyzer.runtime.tokenizer import load_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        copy_tokenizer_files(tokenizer, Path(tmp))
        AutoConfig.for_model(model_type).save_pretrained(tmp)
        return len(load_tokenizer(Path(tmp)))


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


def published_config(name: str) -> dict[str, Any]:
    """A published config.json as stored in tests/data/configs (`name`: one of PUBLISHED)."""
    return json.loads((CONFIGS / f"{name}.json").read_text(encoding="utf-8"))


_WINDOWS = ("sliding_window", "original_max_position_embeddings")  # positions, scaled


def shrink_config(
    published: dict[str, Any],
    *,
    head_dim: int = 8,
    positions: int = 128,
    vocab: int | None = None,
    layers: int | None = None,
) -> dict[str, Any]:
    """`published` at test size, every key kept and the rules that matter kept too:

    - query heads per K/V group as published (at least 2 groups, 4 heads);
    - head_dim set explicitly only where published, and then hidden / (heads * head_dim)
      as published (Gemma 2's 2304 / (8 * 256), Minitron's 3072 / (32 * 128));
    - the FFN's width / hidden ratio; about a tenth of the layers (at least 2);
    - every position (context length, sliding windows, rope_scaling's original length)
      scaled by `positions / max_position_embeddings`; rope_scaling's per-frequency
      factor lists cut to head_dim / 2; query_pre_attn_scalar in head widths as published;
    - tied embeddings, biases, soft-capping, rope_type and rope_theta as published;
      MiniLM's vocabulary size as the model type's tokenizer class loads it (`vocab`: a
      smaller embedding, for a test that never tokenizes) and special token ids (the
      tests' tokenizer).
    """
    c = copy.deepcopy(published)
    heads0 = c["num_attention_heads"]
    kv0 = c.get("num_key_value_heads") or heads0
    hidden0, width0 = c["hidden_size"], c["head_dim"] if c.get("head_dim") else None
    group = heads0 // kv0
    kv = max(2, 4 // group)
    heads = kv * group
    attention0 = heads0 * (width0 or hidden0 // heads0)
    hidden = round(hidden0 / attention0 * heads * head_dim / 4) * 4
    scale = positions / c["max_position_embeddings"]
    c.update(
        num_attention_heads=heads,
        hidden_size=hidden,
        intermediate_size=round(c["intermediate_size"] / hidden0 * hidden / 2) * 2,
        num_hidden_layers=layers or max(2, round(c["num_hidden_layers"] / 10)),
        vocab_size=loaded_length(minilm_path(), c["model_type"]) if vocab is None else vocab,
        max_position_embeddings=positions,
    )
    if "num_key_value_heads" in c:
        c["num_key_value_heads"] = kv
    if width0:
        c["head_dim"] = head_dim
    if c.get("query_pre_attn_scalar"):
        c["query_pre_attn_scalar"] = c["query_pre_attn_scalar"] * head_dim // (width0 or 1)
    if c.get("max_window_layers"):
        c["max_window_layers"] = min(c["max_window_layers"], c["num_hidden_layers"])
    rope = c.get("rope_scaling")
    for where in (c, rope or {}):
        for key in _WINDOWS:
            if isinstance(where.get(key), int):
                where[key] = max(4, round(where[key] * scale))
        for key in ("short_factor", "long_factor"):
            if key in where:
                where[key] = where[key][: head_dim // 2]
    c.update({k: v for k, v in TOKENS.items() if k in c})
    return c


def build_published(
    out: Path,
    config: dict[str, Any],
    *,
    prune: Prune | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """A checkpoint folder of transformers' own model of `config` (a config.json as
    published, e.g. from `shrink_config`), its weights edited by `prune`, saved in `dtype`
    with `config` itself as its config.json (its `torch_dtype` set to the weights' dtype):
    the file a publisher writes, not transformers 5's re-spelling of it."""
    from transformers import CONFIG_MAPPING, AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(
        CONFIG_MAPPING[config["model_type"]].from_dict(copy.deepcopy(config))
    ).eval()
    if prune is not None:
        state = model.state_dict()
        with torch.no_grad():
            prune(state)
    model.to(dtype).save_pretrained(out)
    stored = {**config, "torch_dtype": str(dtype).removeprefix("torch.")}
    (out / "config.json").write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
    copy_tokenizer_files(minilm_path(), out)
    return out
