"""Which pruning pattern each linear matrix follows, read from its zeros, and what the
model's zeros are worth at run time.

A pattern *explains* a zero when the zero lies in a unit the pattern removes whole:

- `layer`: every linear weight of the matrix's layer is zero;
- `heads`: an all-zero block of `head_dim` rows of Q, K, V (or fused QKV), or of `head_dim`
  columns of O;
- `channels`: an all-zero row of an FFN/MLP input matrix (gate, up, fused gate-up) or an
  all-zero column of the output matrix (down);
- `rows`, `cols`, `32x32`, `16x16`: an all-zero row, column or square block (measured by
  `analyzer.weights.sparsity`'s block granularities);
- `1x4`: an all-zero run of 4 aligned input weights (Intel's "1x4 block" sparsity);
- `N:M` (`2:4`, `1:4`, `4:8`): a matrix is N:M when every group of M aligned consecutive
  input weights (along each row, the last dimension) holds at most N non-zeros; then N:M
  explains all its zeros, otherwise none. Counting the zeros of the groups that satisfy it
  would not do: a group of M non-zeros holds no zero, yet breaks N:M for the whole matrix
  (a runtime needs every group in the format), so an all-or-nothing rule is the exact one.

Groups and blocks are aligned at multiples of their size from column 0; N:M and 1x4 explain
nothing in a matrix whose input dimension is not a multiple of M (4, 8), since no runtime
takes such a matrix. The share a pattern explains is its explained zeros over all zeros.

Per matrix, the patterns that explain *every* zero fit; the first fitting one in
`PRECEDENCE` names the matrix (share 1.0), from the most valuable to a runtime to the least:
dense (no zeros), layer, heads, channels, rows, cols, 32x32, 16x16, 1x4, 1:4, 2:4, 4:8.
1:4 comes before 2:4 because it is the more specific (every 1:4 matrix is also 2:4, and every
2:4 matrix 4:8). When none fits, the coarse pattern (heads, channels, rows, cols, 32x32,
16x16) explaining the largest share names the matrix if that share is at least half its
zeros; otherwise the matrix is `unstructured`, its share being the zeros no coarse pattern
explains, unless its zeros are fewer than `STRAY_SHARE` (0.01%) of its weights: such zeros
are rounding's, not pruning's (docs/analysis.md gives the arithmetic), and the matrix is
`dense`, its zeros kept as `MatrixPattern.stray_zeros`. Only zeros no pattern fits can be
stray: one dead channel of a wide MLP is under 0.01% of its matrix, yet `channels` fits it.
N:M and 1x4 name a matrix only when they fit: a runtime cannot use an almost-2:4 matrix
(a 50% unstructured matrix is not 2:4), and at high sparsity empty runs of four occur by
chance (two thirds of them at 90% unstructured sparsity), so a partial 1x4 share says little
about how the matrix was pruned.

Group counts are vectorised: one count per group of 4 (its 4 mask bytes read as one int32
and summed by one multiply), their maximum, and for groups of 8 one add of neighbouring
counts and its maximum; a mask with fewer zeros than half its weights needs no counts (it
cannot be N:M), only its empty groups. What N:M and 1x4 need (`GroupStats`: empty groups of 4, the
fullest group of 4, whether a group of 8 holds more than 4) adds up over slices of rows, so
a matrix can be reduced slice by slice (`analyzer.weights.sparsity`) with the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from analyzer.records import PATTERN_KINDS, MatrixPattern, MatrixStats, PatternTotals

__all__ = [
    "NM_PATTERNS",
    "PRECEDENCE",
    "RUNTIMES",
    "STRAY_SHARE",
    "GroupStats",
    "MaskPatterns",
    "choose_pattern",
    "explain_groups",
    "group_counts",
    "group_stats",
    "summarize_patterns",
]

NM_PATTERNS = {"2:4": (2, 4), "1:4": (1, 4), "4:8": (4, 8)}  # kind -> (N, M)
PRECEDENCE = (
    "layer",
    "heads",
    "channels",
    "rows",
    "cols",
    "32x32",
    "16x16",
    "1x4",
    "1:4",
    "2:4",
    "4:8",
)
# patterns that may name a matrix they explain only partly (a majority of its zeros)
COARSE = ("heads", "channels", "rows", "cols", "32x32", "16x16")
# zeros under this share of a matrix's weights are rounding's: 100x below 1%, far below the
# lowest sparsity any published pruning method targets (docs/analysis.md has the arithmetic)
STRAY_SHARE = 1e-4
# which runtime turns each pattern into speed, in words (the summary's last column)
RUNTIMES = {
    "dense": "dense kernels: no zeros to skip",
    "layer": "packing (prunecard pack): an all-zero layer loses every head and channel",
    "heads": "packing (prunecard pack) removes heads with zero value rows or output columns",
    "channels": "packing (prunecard pack) removes dead FFN/MLP channels",
    "rows": "a smaller dense matrix only if the model is re-sliced to match (SliceGPT-style); "
    "prunecard pack removes rows only as whole heads or channels",
    "cols": "a smaller dense matrix only if the model is re-sliced to match (SliceGPT-style); "
    "prunecard pack removes columns only as whole heads or channels",
    "32x32": "block-sparse GPU kernels (Triton, OpenAI block-sparse, nn_pruning)",
    "16x16": "block-sparse GPU kernels (Triton, OpenAI block-sparse, nn_pruning)",
    "1x4": "Intel's sparse CPU runtimes (1x4 blocks, Intel Extension for Transformers)",
    "2:4": "2:4 sparse tensor cores, Ampere and later (torch.sparse.to_sparse_semi_structured)",
    "1:4": "as 2:4 (every 1:4 matrix is also 2:4): sparse tensor cores on Ampere and later",
    "4:8": "none common: 4:8 is not 2:4, so sparse tensor cores cannot take it",
    "unstructured": "sparse CPU runtimes (e.g. DeepSparse) at high sparsity only; none on GPUs",
}
_HEAD_ROWS, _HEAD_COLS = ("q", "k", "v", "qkv"), ("o",)
_CHANNEL_ROWS, _CHANNEL_COLS = ("ffn_gate", "ffn_in", "ffn_gate_up"), ("ffn_out",)


@dataclass(frozen=True)
class MaskPatterns:
    """What pattern detection keeps of one matrix once its tensor is gone."""

    zeros: int
    explained: dict[str, int]  # kind -> zeros it explains, for the patterns a mask shows alone
    row_any: Any = None  # bool tensor: rows holding a non-zero (for heads and channels)
    col_any: Any = None  # bool tensor: columns holding a non-zero


def group_counts(mask: Any, out: Any = None) -> Any:
    """Non-zeros per aligned group of 4 input weights (int32, row-major), or None where the
    input dimension is not a multiple of 4. `mask` is the bool or uint8 non-zero mask,
    out x in. Each group's 4 bytes are read as one int32 word and multiplied by 0x01010101:
    the top byte of the product is the sum of the word's bytes (at most 4, so no carry
    reaches it, and the sign bit stays clear), the bytes above the word wrap away; one
    multiply and one shift, cheaper than adding byte lanes. `out`: an int32 tensor of one
    element per group to write the counts into (a caller's reused buffer)."""
    import torch

    mask = mask.view(torch.uint8) if mask.dtype == torch.bool else mask
    if mask.shape[-1] % 4 or not mask.numel():
        return None
    words = mask.contiguous().view(torch.int32)  # every byte 0 or 1
    counts = torch.mul(words.reshape(-1), 0x01010101, out=out)
    return counts.bitwise_right_shift_(24)


@dataclass(frozen=True)
class GroupStats:
    """What N:M and 1x4 need of a mask's aligned groups of input weights; the stats of
    slices of rows add up (`+`) to those of the whole mask."""

    empty4: int  # groups of 4 holding no non-zero
    most4: int  # the most non-zeros in one group of 4, counted up to 3 (more than 2)
    over_half8: bool  # some group of 8 holds more than 4 non-zeros

    def __add__(self, other: GroupStats) -> GroupStats:
        return GroupStats(
            self.empty4 + other.empty4,
            max(self.most4, other.most4),
            self.over_half8 or other.over_half8,
        )


def group_stats(mask: Any, zeros: int, out: Any = None) -> GroupStats | None:
    """The group stats of a non-zero mask holding `zeros` zeros, or None where the input
    dimension is not a multiple of 4. Groups are counted only when at least half the
    weights are zero: otherwise the average group of 4 (and of 8) holds more than half its
    weights, so some group does, and only the empty groups need counting. `out`: as for
    `group_counts` (left holding no meaningful values)."""
    import torch

    mask = mask.view(torch.uint8) if mask.dtype == torch.bool else mask
    width = mask.shape[-1]
    if width % 4 or not mask.numel():
        return None
    if not zeros:
        return GroupStats(empty4=0, most4=3, over_half8=width % 8 == 0)
    if 2 * zeros < mask.numel():
        occupied = int(torch.count_nonzero(mask.contiguous().view(torch.int32)))
        return GroupStats(mask.numel() // 4 - occupied, most4=3, over_half8=width % 8 == 0)
    counts = group_counts(mask, out)
    # reductions, not a histogram: torch's bincount is several times slower than these
    most4 = min(3, int(counts.amax()))
    empty4 = counts.numel() - int(torch.count_nonzero(counts))
    # groups of 8 are pairs of groups of 4, added in place (a strided sum is slower)
    over_half8 = width % 8 == 0 and most4 > 2 and int(counts[0::2].add_(counts[1::2]).amax()) > 4
    return GroupStats(empty4=empty4, most4=most4, over_half8=over_half8)


def explain_groups(
    groups: GroupStats | None, *, zeros: int, size: int, width: int, blocks: Mapping[str, int]
) -> dict[str, int]:
    """The zeros explained by `blocks` (rows, cols, 32x32, 16x16, from sparsity's
    granularities), by 1x4 blocks and by each N:M pattern, for a matrix of `size` weights,
    `width` input weights per row. N:M explains every zero when each group of M holds at
    most N non-zeros (groups tile the matrix), else none.

    Only what can change the answer is stated: nothing for a matrix without zeros (most of
    a dense model); 4:8 as 2:4 when the matrix is 2:4 (a 2:4 matrix is 4:8) or has fewer
    zeros than half its weights (4:8 needs that many)."""
    explained = dict(blocks)
    if groups is None or not zeros:
        return explained
    explained["1x4"] = 4 * groups.empty4
    explained["1:4"] = zeros if groups.most4 <= NM_PATTERNS["1:4"][0] else 0
    explained["2:4"] = zeros if groups.most4 <= NM_PATTERNS["2:4"][0] else 0
    if width % 8 == 0:
        if explained["2:4"] or 2 * zeros < size:
            explained["4:8"] = explained["2:4"]
        else:
            explained["4:8"] = 0 if groups.over_half8 else zeros
    return explained


def choose_pattern(zeros: int, explained: Mapping[str, int], *, weights: int) -> MatrixPattern:
    """The pattern that names a matrix of `weights` weights, by the rules in the module
    docstring."""
    if zeros == 0:
        return MatrixPattern("dense", 1.0)
    fitting = [k for k in PRECEDENCE if explained.get(k, 0) == zeros]
    if fitting:
        return MatrixPattern(fitting[0], 1.0)
    best = max(COARSE, key=lambda k: explained.get(k, 0))  # ties: the first in COARSE
    share = explained.get(best, 0) / zeros
    if share >= 0.5:
        return MatrixPattern(best, share)
    if zeros < STRAY_SHARE * weights:
        return MatrixPattern("dense", 1.0, stray_zeros=zeros)
    return MatrixPattern("unstructured", 1.0 - share)


def _whole_groups(alive: Any, size: int, other: int) -> int:
    """Zeros in all-zero groups of `size` consecutive rows (or columns) of `other` each."""
    if size <= 0 or alive.numel() % size:
        return 0
    return int((~alive.reshape(-1, size).any(dim=1)).sum()) * size * other


def summarize_patterns(
    matrices: Sequence[MatrixStats], masks: Mapping[str, MaskPatterns], head_dim: int
) -> tuple[tuple[MatrixStats, ...], tuple[PatternTotals, ...]]:
    """Each matrix of `masks` gets its pattern (the others pass unchanged), and the model
    gets its summary, one row per pattern present, in PATTERN_KINDS order.

    `head_dim` 0 (generic mode) means no heads; channels follow the matrices' roles. A
    layer is all zero when every matrix of `masks` in it has no non-zero."""
    dead_layers = {m.layer for m in matrices if m.name in masks and m.layer is not None}
    dead_layers -= {m.layer for m in matrices if m.name in masks and m.nnz}
    out: list[MatrixStats] = []
    totals: dict[str, list[int]] = {}
    for m in matrices:
        found = masks.get(m.name)
        if found is None:
            out.append(m)
            continue
        explained = dict(found.explained)
        rows, cols = m.shape  # masks are kept for 2-D weights only
        if m.layer in dead_layers:
            explained["layer"] = found.zeros
        if m.role in _HEAD_ROWS and found.row_any is not None:
            explained["heads"] = _whole_groups(found.row_any, head_dim, cols)
        if m.role in _HEAD_COLS and found.col_any is not None:
            explained["heads"] = _whole_groups(found.col_any, head_dim, rows)
        if m.role in _CHANNEL_ROWS:
            explained["channels"] = explained.get("rows", 0)
        if m.role in _CHANNEL_COLS:
            explained["channels"] = explained.get("cols", 0)
        pattern = choose_pattern(found.zeros, explained, weights=rows * cols)
        out.append(replace(m, pattern=pattern))
        row = totals.setdefault(pattern.kind, [0, 0, 0])
        row[0] += 1
        row[1] += rows * cols
        row[2] += found.zeros
    summary = tuple(
        PatternTotals(kind, matrices, weights, zeros, _runtime(kind, zeros))
        for kind in PATTERN_KINDS
        if kind in totals
        for matrices, weights, zeros in [totals[kind]]
    )
    return tuple(out), summary


def _runtime(kind: str, zeros: int) -> str:
    """The summary's runtime words; dense matrices holding stray zeros say what they are."""
    if kind == "dense" and zeros:
        return (
            f"dense kernels: {zeros:,} stray zeros (under {100 * STRAY_SHARE:g}% of each "
            "matrix, as rounding leaves them) are not worth skipping"
        )
    return RUNTIMES[kind]
