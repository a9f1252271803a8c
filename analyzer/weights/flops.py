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
    from its config: heads left after `pruned_heads`, K/V groups and FFN units kept per
    `prunecard_packing`."""
    from analyzer.weights.architecture import is_decoder

    get = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if "dim" in get and "n_heads" in get:  # DistilBERT's names
        layers, heads, hidden, ffn = get["n_layers"], get["n_heads"], get["dim"], get["hidden_dim"]
    else:
        layers, heads = get["num_hidden_layers"], get["num_attention_heads"]
        hidden, ffn = get["hidden_size"], get["intermediate_size"]
    decoder = is_decoder(get.get("model_type"))
    head_dim = (get.get("head_dim") if decoder else None) or hidden // heads
    kv = get.get("num_key_value_heads") or heads
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
            gated=decoder,
        )
        for i in range(layers)
    )
