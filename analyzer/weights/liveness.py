"""Which heads, K/V groups and FFN units can change a model's output: the one place the
rules are written, and the pack plan they give.

Analysis (`analyzer.weights.sparsity`) applies the rules to the row and column masks it
takes of every matrix, and hands the plan to packing (`analyzer.runtime.packing`), which
slices by it and never decides liveness itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LayerKeep",
    "PackPlan",
    "channels_alive",
    "heads_alive",
    "kv_groups_alive",
    "units_alive",
]


@dataclass(frozen=True)
class LayerKeep:
    """What packing keeps of one layer."""

    layer: int
    heads: tuple[int, ...]  # dense indices of the query heads kept
    units: tuple[int, ...]  # stored positions of the FFN units (MLP channels) kept
    kv_groups: tuple[int, ...] = ()  # decoders: dense indices of the K/V groups kept


@dataclass(frozen=True)
class PackPlan:
    """Per layer, what packing keeps: decided by analysis from the masks it takes."""

    layers: tuple[LayerKeep, ...]


def heads_alive(v_rows_any: Any, o_cols_any: Any, head_dim: int, group_size: int = 1) -> Any:
    """Per stored (query) head: a non-zero value row in its K/V group and a non-zero output
    column of its own? With grouped-query attention `group_size` query heads share one
    group's value rows; 1 is classic multi-head attention."""
    groups = v_rows_any.reshape(-1, head_dim).any(dim=1)
    return groups.repeat_interleave(group_size) & o_cols_any.reshape(-1, head_dim).any(dim=1)


def kv_groups_alive(query_alive: Any, group_size: int, normed_rows: Sequence[Any] = ()) -> Any:
    """Per K/V group: is any of its query heads alive? Only a group whose every query head
    is removed can itself be removed. `normed_rows`: per row, non-zero?, of each projection
    a norm reads over its whole width (OLMo2's Q and K, `families.WidthNorm`): each row
    enters the mean the other groups are divided by, so a group with one stays too."""
    alive = query_alive.reshape(-1, group_size).any(dim=1)
    for rows in normed_rows:
        alive = alive | rows.reshape(len(alive), -1).any(dim=1)
    return alive


def units_alive(in_rows_any: Any, out_cols_any: Any) -> Any:
    """Per stored FFN unit: a non-zero row in the first matrix or column in the second."""
    return in_rows_any | out_cols_any


def channels_alive(gate_rows_any: Any, up_rows_any: Any, down_cols_any: Any) -> Any:
    """Per channel of a gated MLP, down(act(gate x) * up x): alive only with a non-zero
    down column, up row and gate row. A zero up row makes the product zero; a zero gate row
    makes it act(0) * up x = 0 for SiLU, GELU and ReLU, the activations of every supported
    family. Callers fold non-zero biases into the row masks (a bias keeps a row alive)."""
    return gate_rows_any & up_rows_any & down_cols_any
