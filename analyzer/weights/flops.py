"""The FLOP model behind the speedup bound: what a forward pass must multiply, and no more.

Counted per encoder layer, one multiply-add = 2 FLOPs, T = batch x seq tokens, d = head
width, h = heads kept, w = FFN units kept (unpadded: padding is a cost, not work):

    Q, K, V, O projections    4 x 2 T hidden (h d)
    attention scores Q K^T    2 batch h seq^2 d
    attention context A V     2 batch h seq^2 d
    FFN in and out            2 x 2 T hidden w

Embeddings, layer norms, softmax, GELU and the task head are left out: they are the same
in the dense and the packed model and small next to the products above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LayerShape", "encoder_flops", "model_layer_shapes"]


@dataclass(frozen=True)
class LayerShape:
    """The sizes of one encoder layer that the FLOP count depends on."""

    heads: int
    head_dim: int
    hidden: int
    ffn: int  # FFN units that do work (padding excluded)


def encoder_flops(layers: Sequence[LayerShape], batch: int, seq: int) -> int:
    """FLOPs of the encoder's matrix products for one forward pass of batch x seq tokens."""
    tokens = batch * seq
    total = 0
    for s in layers:
        width = s.heads * s.head_dim
        total += 4 * 2 * tokens * s.hidden * width
        total += 2 * (2 * batch * s.heads * seq * seq * s.head_dim)
        total += 2 * 2 * tokens * s.hidden * s.ffn
    return total


def model_layer_shapes(config: Any) -> tuple[LayerShape, ...]:
    """Layer shapes of a model built by `analyzer.runtime.packing.load` (dense or packed), from its
    config: heads left after `pruned_heads`, FFN units kept per `prunecard_packing`."""
    get = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if "dim" in get and "n_heads" in get:  # DistilBERT's names
        layers, heads, hidden, ffn = get["n_layers"], get["n_heads"], get["dim"], get["hidden_dim"]
    else:
        layers, heads = get["num_hidden_layers"], get["num_attention_heads"]
        hidden, ffn = get["hidden_size"], get["intermediate_size"]
    pruned = {int(k): len(v) for k, v in (get.get("pruned_heads") or {}).items()}
    kept_units = (get.get("prunecard_packing") or {}).get("units_kept") or [ffn] * layers
    return tuple(
        LayerShape(heads - pruned.get(i, 0), hidden // heads, hidden, kept_units[i])
        for i in range(layers)
    )
