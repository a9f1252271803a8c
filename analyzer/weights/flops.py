"""The FLOP model behind the speedup bound: what a forward pass must multiply, and no more.

Counted per layer, one multiply-add = 2 FLOPs, T = batch x seq tokens, each attending to
`context` positions (seq in a full forward pass; the cache length when decoding), d = head
width, h = query heads kept, g = K/V heads kept (h for encoders), w = FFN units kept
(unpadded: padding is a cost, not work):

    Q and O projections       2 x 2 T hidden (h d)
    K and V projections       2 x 2 T hidden (g d)
    attention scores Q K^T    2 T h context d
    attention context A V     2 T h context d
    FFN                       m x 2 T hidden w   (m = 2: in, out; 3 for gated MLPs: gate, up, down)

A causal LM's prefill is counted as a full pass (every query against every position):
causal kernels skip about half of the attention products in the dense and the packed model
alike. Embeddings, norms, softmax, activations and the task head are left out: they are
the same in the dense and the packed model and small next to the products above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LayerShape", "decode_flops", "forward_flops", "model_layer_shapes"]


@dataclass(frozen=True)
class LayerShape:
    """The sizes of one layer that the FLOP count depends on."""

    heads: int  # query heads
    head_dim: int
    hidden: int
    ffn: int  # FFN units that do work (padding excluded)
    kv_heads: int | None = None  # K/V heads (grouped-query attention); None: one per head
    gated: bool = False  # gate, up and down matrices (decoder LLMs) instead of in and out

    @property
    def kv(self) -> int:
        return self.heads if self.kv_heads is None else self.kv_heads


def forward_flops(
    layers: Sequence[LayerShape], batch: int, seq: int, *, context: int | None = None
) -> int:
    """FLOPs of the matrix products for one forward pass of batch x seq tokens, each
    attending to `context` positions (default: seq)."""
    tokens = batch * seq
    context = seq if context is None else context
    total = 0
    for s in layers:
        total += 2 * 2 * tokens * s.hidden * (s.heads + s.kv) * s.head_dim
        total += 2 * (2 * tokens * s.heads * context * s.head_dim)
        total += (3 if s.gated else 2) * 2 * tokens * s.hidden * s.ffn
    return total


def decode_flops(layers: Sequence[LayerShape], batch: int, prompt: int, new_tokens: int) -> int:
    """FLOPs of greedy generation with a KV cache: the prompt's forward pass (which gives
    the first new token), then one token per step against the grown cache."""
    steps = range(1, new_tokens)
    return forward_flops(layers, batch, prompt) + sum(
        forward_flops(layers, batch, 1, context=prompt + t) for t in steps
    )


def model_layer_shapes(config: Any) -> tuple[LayerShape, ...]:
    """Layer shapes of a model built by `analyzer.runtime.packing.load` (dense or packed),
    from its config (a transformers config or its dict), read through its family's keys:
    heads left after `pruned_heads`, K/V groups and FFN units kept per
    `prunecard_packing`."""
    from analyzer.weights.families import find_family

    get = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    family = find_family(get.get("model_type"))
    if family is None:
        raise ValueError(f"model_type {get.get('model_type')!r} has no FLOP model")
    keys = family.keys
    layers, heads = get[keys["num_layers"]], get[keys["num_heads"]]
    hidden, ffn = get[keys["hidden_size"]], get[keys["intermediate_size"]]
    decoder = family.kind == "decoder"
    head_dim = (get.get(keys["head_dim"]) if "head_dim" in keys else None) or hidden // heads
    kv = (get.get(keys["num_kv_heads"]) if "num_kv_heads" in keys else None) or heads
    pruned = {int(k): len(v) for k, v in (get.get("pruned_heads") or {}).items()}
    packing = get.get("prunecard_packing") or {}
    kept_units = packing.get("units_kept") or [ffn] * layers
    kept_kv = packing.get("kv_heads") or [kv] * layers
    return tuple(
        LayerShape(
            heads - pruned.get(i, 0),
            head_dim,
            hidden,
            kept_units[i],
            kv_heads=kept_kv[i] if decoder else None,
            gated=family.gated,
        )
        for i in range(layers)
    )
