"""From a checkpoint's tensors to an `Analysis`: non-zeros, block structure, heads, FFN units.

Tensors are streamed one at a time, a reader thread paging the next ones in meanwhile
(`analyzer.weights.reading`); each is reduced, slice by slice, to a few small vectors (which
rows and columns hold a non-zero), so memory stays bounded by a few slices and tensors.
Heads and FFN units are then decided per layer from those vectors: for encoders, heads and
FFN units; for decoder LLMs, query heads, K/V groups and MLP channels.
"""

from __future__ import annotations

import base64
import math
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError
from analyzer.records import (
    BLOCK_SIZES,
    DECODER_HEAD_RULE,
    HEAD_RULE,
    LINEAR_ROLES,
    Analysis,
    BaseComparison,
    BlockStructure,
    FfnTotals,
    FileInfo,
    HeadTotals,
    LayerHeads,
    LayerStats,
    LinearTotals,
    MatrixStats,
    OverallTotals,
)
from analyzer.weights.architecture import (
    GENERIC_LINEAR,
    Geometry,
    bias_name,
    check_shapes,
    classify,
    detect,
    fused_sizes,
)
from analyzer.weights.checkpoint import Checkpoint, TensorRef, open_checkpoint
from analyzer.weights.compressed import config_claims
from analyzer.weights.families import Family
from analyzer.weights.lineage import compare_with_base, lineage_notes
from analyzer.weights.liveness import (
    LayerKeep,
    PackPlan,
    channels_alive,
    heads_alive,
    kv_groups_alive,
    units_alive,
)
from analyzer.weights.patterns import (
    GroupStats,
    MaskPatterns,
    explain_groups,
    group_stats,
    summarize_patterns,
)
from analyzer.weights.reading import freeze_imports, read_ahead, touch_pages
from analyzer.weights.recipe import RECIPE_FILE, check_recipe, read_recipe, tied_lm_head

__all__ = ["Measured", "analyze", "analyze_with_plan", "planned_layers"]

_LARGEST, _FINEST = BLOCK_SIZES[0], BLOCK_SIZES[-1]


@dataclass(frozen=True)
class _Summary:
    """What analysis keeps of one tensor once it has been read."""

    nnz: int
    row_any: Any = None  # bool tensor: rows holding a non-zero (a bias: its non-zero entries)
    col_any: Any = None  # bool tensor: columns holding a non-zero
    block: BlockStructure | None = None
    patterns: MaskPatterns | None = None  # for linear matrices: what pattern detection keeps


@dataclass(frozen=True)
class Measured:
    """An analysis and the pack plan its masks give (None in generic mode: no family)."""

    analysis: Analysis
    plan: PackPlan | None


def analyze(path: str | Path | Checkpoint, base: str | Path | None = None) -> Analysis:
    """Measure a checkpoint folder (or weights file) from its weights alone; with `base`
    (the dense model's config.json, or its folder), compare a decoder's shapes with it."""
    return analyze_with_plan(path, base).analysis


def analyze_with_plan(path: str | Path | Checkpoint, base: str | Path | None = None) -> Measured:
    """`analyze`, and the pack plan decided from the same masks (what `report` packs,
    times and evaluates, so no later step reads the weights to decide it again)."""
    checkpoint = open_checkpoint(path)
    config_path = checkpoint.root / "config.json"
    family, geometry = detect(checkpoint.config, config_path)
    dense_shapes = check_shapes(checkpoint, family, geometry)
    comparison = None
    if base is not None:  # before reading any weights: a wrong base fails at once
        comparison = compare_with_base(base, checkpoint.config, family, geometry)
    modifiers = read_recipe(checkpoint.root)  # before the weights too: a bad recipe fails fast
    analysis, plan = _analyze(checkpoint, family, geometry, dense_shapes, comparison)
    if modifiers is None:
        return Measured(analysis, plan)
    lm_head = tied_lm_head(checkpoint.config, analysis.tied, [m.name for m in analysis.matrices])
    recipe = check_recipe(modifiers, analysis.matrices, tied_lm_head=lm_head, source=RECIPE_FILE)
    return Measured(replace(analysis, recipe=recipe), plan)


def planned_layers(
    checkpoint: Checkpoint, family: Family, geometry: Geometry
) -> Iterator[tuple[LayerKeep, dict[str, Any]]]:
    """The pack plan one layer at a time (`pack` and `load` without an analysis at hand),
    each layer's keep with the matrices and biases it was decided from, as read: packing
    slices the rows it keeps from these, so no weight is read twice. The masks are taken
    as analysis takes them, then the same rules."""
    wanted: dict[int, set[str]] = {}
    for name in checkpoint.tensors:
        param = classify(name, family)
        if param.layer is not None and param.role in LINEAR_ROLES:
            wanted.setdefault(param.layer, set()).add(name)
    for layer in range(geometry.num_layers):
        read = list(_read(checkpoint, wanted.get(layer, set())))
        summaries = {
            ref.name: _summarize(tensor, ref, lines=True, patterns=False) for ref, tensor in read
        }
        (keep,) = _layers(checkpoint, family, geometry, summaries, [], only=layer)[4]
        yield keep, {ref.name: tensor for ref, tensor in read}


def _read(
    checkpoint: Checkpoint, names: set[str] | None = None
) -> Generator[tuple[TensorRef, Any], None, None]:
    """The checkpoint's parameters (those in `names`, or all), read ahead on a thread while
    the caller reduces one; closing stops that thread at once when a tensor is refused or
    the run is interrupted."""
    items = (
        (ref, checkpoint.load(ref.name))
        for ref in checkpoint.tensors.values()
        if ref.is_parameter and (names is None or ref.name in names)
    )
    freeze_imports()
    ahead = read_ahead(items, prepare=lambda item: touch_pages(item[1]))
    with _one_torch_thread(), closing(ahead) as reading:
        yield from reading


def _analyze(
    checkpoint: Checkpoint,
    family: Family | None,
    geometry: Geometry | None,
    dense_shapes: dict[str, tuple[int, ...]],
    base: BaseComparison | None = None,
) -> tuple[Analysis, PackPlan | None]:
    summaries: dict[str, _Summary] = {}
    matrices: list[MatrixStats] = []
    dense_of: dict[str, int] = {}
    float_dtypes: set[str] = set()
    # buffers (position_ids) and tied aliases are listed, never counted
    with closing(_read(checkpoint)) as items:
        for ref, tensor in items:
            float_dtypes.add(ref.dtype)
            param = classify(ref.name, family)
            dshape = dense_shapes[ref.name]
            dense_of[ref.name] = _numel(dshape)
            summary = _summarize(
                tensor,
                ref,
                lines=param.role in LINEAR_ROLES,
                patterns=param.role in (*LINEAR_ROLES, GENERIC_LINEAR),
            )
            summaries[ref.name] = summary
            if len(ref.shape) == 2:
                matrices.append(
                    MatrixStats(
                        name=ref.name,
                        layer=param.layer,
                        role=param.role,
                        shape=ref.shape,
                        dense_shape=dshape,
                        nnz=summary.nnz,
                        density=summary.nnz / dense_of[ref.name] if dense_of[ref.name] else 0.0,
                        dtype=ref.dtype,
                        block=summary.block,
                    )
                )
            del tensor

    if not float_dtypes:
        raise CheckpointError(checkpoint.weight_files[0], "holds no floating-point weights")
    linear = [m for m in matrices if m.role in (*LINEAR_ROLES, GENERIC_LINEAR)]
    layers, heads, ffn, removed_stored, keep = _layers(
        checkpoint, family, geometry, summaries, linear
    )
    masks = {n: s.patterns for n, s in summaries.items() if s.patterns is not None}
    listed, patterns = summarize_patterns(matrices, masks, geometry.head_dim if geometry else 0)
    linear_dense = sum(dense_of[m.name] for m in linear) if linear else 0
    linear_nnz = sum(m.nnz for m in linear)
    overall_dense = sum(dense_of.values())
    overall_nnz = sum(s.nnz for s in summaries.values())
    stored = sum(checkpoint.tensors[n].numel for n in summaries)
    config = checkpoint.config
    decoder = family is not None and family.kind == "decoder"
    compression = None
    if checkpoint.layout is not None:  # compressed-tensors: the claims of its config.json
        claims = config_claims(checkpoint.layout, listed, overall_nnz, stored)
        compression = checkpoint.layout.describe(claims)
    analysis = Analysis(
        model_type=str(config.get("model_type", "unknown")),
        family=family.name if family else "generic",
        checkpoint=str(checkpoint.root),
        dtype="+".join(sorted(float_dtypes)),
        num_layers=geometry.num_layers if geometry else 0,
        num_heads=geometry.num_heads if geometry else 0,
        hidden_size=geometry.hidden_size if geometry else 0,
        intermediate_size=geometry.intermediate_size if geometry else 0,
        heads=heads,
        linear=LinearTotals(
            nnz=linear_nnz,
            dense=linear_dense,
            packed=sum(layer.linear_packed for layer in layers)
            if layers
            else sum(m.nnz for m in linear),
            stored=sum(_numel(m.shape) for m in linear),
            density=linear_nnz / linear_dense if linear_dense else 0.0,
        ),
        overall=OverallTotals(
            nnz=overall_nnz,
            dense=overall_dense,
            stored=stored,
            packed=stored - removed_stored,
            density=overall_nnz / overall_dense if overall_dense else 0.0,
        ),
        ffn=ffn,
        layers=tuple(layers),
        files=tuple(
            FileInfo(path=str(f.relative_to(checkpoint.root)), bytes=f.stat().st_size)
            for f in checkpoint.weight_files
        ),
        matrices=listed,
        architectures=tuple(str(a) for a in config.get("architectures") or ()),
        buffers=checkpoint.buffers,
        tied=checkpoint.tied,
        notes=_dtype_notes(config, float_dtypes)
        + _generic_notes(family, linear)
        + lineage_notes(family, base),
        kind=family.kind if family else "generic",
        num_kv_heads=geometry.num_kv_heads if decoder and geometry else 0,
        head_dim=geometry.head_dim if decoder and geometry else 0,
        base=base,
        patterns=patterns,
        compression=compression,
    )
    return analysis, PackPlan(tuple(keep)) if family is not None else None


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Reduce on one core: a slice's ops are too short for torch's thread pool to pay for
    waking a second thread (on a busy machine each op waits for it), and the other core
    reads ahead (`read_ahead`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _dtype_notes(config: dict[str, Any], stored: set[str]) -> tuple[str, ...]:
    """A note when config.json declares a dtype the weights are not stored in: the
    stored dtype is what the figures (and file sizes) describe."""
    key = "torch_dtype" if "torch_dtype" in config else "dtype"
    declared = config.get(key)
    if not isinstance(declared, str) or declared in ("auto", *stored):
        return ()
    return (
        f"config.json's {key} is {declared}, but the weights are stored as "
        f"{' and '.join(sorted(stored))}; the stored dtype is the one measured",
    )


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# --------------------------------------------------------------------------- one tensor


def _summarize(tensor: Any, ref: TensorRef, *, lines: bool, patterns: bool) -> _Summary:
    """Non-zeros, and for matrices which rows, columns and blocks hold any; with `patterns`,
    what pattern detection needs (analyzer.weights.patterns).

    A matrix is reduced in slices of `_SLICE_WEIGHTS` weights (whole rows, a multiple of
    the largest of `BLOCK_SIZES`, so no block straddles two slices): each statistic adds
    up or concatenates over slices, and a slice's mask stays in the CPU's cache while every
    statistic is taken from it, so the matrix is read from memory once.
    """
    import torch

    if tensor.ndim == 2 and tensor.numel():
        return _summarize_matrix(tensor, ref, lines=lines, patterns=patterns)
    nnz = int(torch.count_nonzero(_magnitudes(tensor.reshape(-1), ref))) if tensor.numel() else 0
    if tensor.ndim == 1 and lines:  # a linear layer's bias: which rows it keeps alive
        return _Summary(nnz=nnz, row_any=tensor != 0)
    if tensor.ndim != 2:
        return _Summary(nnz=nnz)
    # a packed layer that lost every head or every FFN unit
    no_rows = torch.zeros(tensor.shape[0], dtype=torch.bool)
    no_cols = torch.zeros(tensor.shape[1], dtype=torch.bool)
    empty = MaskPatterns(zeros=0, explained={}, row_any=no_rows, col_any=no_cols)
    return _Summary(nnz=0, row_any=no_rows, col_any=no_cols, patterns=empty if patterns else None)


_SLICE_WEIGHTS = 1 << 20  # about a megabyte of mask per slice: it stays in cache
_SAME_WIDTH_INT = {2: "int16", 4: "int32", 8: "int64"}  # float item size -> torch int dtype


def _summarize_matrix(tensor: Any, ref: TensorRef, *, lines: bool, patterns: bool) -> _Summary:
    import torch

    rows, cols = tensor.shape
    step = max(_LARGEST, _SLICE_WEIGHTS // cols // _LARGEST * _LARGEST)
    row_any = torch.empty(rows, dtype=torch.uint8)
    col_any = torch.zeros(cols, dtype=torch.uint8)
    finest = torch.empty(-(-rows // _FINEST), -(-cols // _FINEST), dtype=torch.bool)
    bits = _same_width_int(tensor)
    nnz = 0
    groups: GroupStats | None = None
    for start in range(0, rows, step):
        piece = tensor[start : start + step]
        magnitudes = _magnitudes(piece, ref, out=_SCRATCH.get(bits, piece.shape))
        # the mask as bytes 0 or 1 by clamping the magnitudes: torch's `!= 0` into a bool
        # tensor costs three times as much
        mask = _SCRATCH.get(torch.uint8, piece.shape).copy_(magnitudes.clamp_(max=1))
        # per-row counts in int32 (along contiguous memory), then their sum: several times
        # faster than one int64 sum of the mask, and the rows holding a non-zero come free
        row_counts = mask.sum(dim=1, dtype=torch.int32)
        piece_nnz = int(row_counts.sum())
        nnz += piece_nnz
        row_any[start : start + step] = row_counts > 0
        torch.maximum(col_any, mask.amax(dim=0), out=col_any)
        finest[start // _FINEST : (start + step) // _FINEST] = _block_any(mask, _FINEST)
        if patterns:
            counts = _SCRATCH.get(torch.int32, (mask.numel() // 4,))
            piece_groups = group_stats(mask, mask.numel() - piece_nnz, out=counts)
            # None (an input width no multiple of 4) is the same for every piece
            if groups is None or piece_groups is None:
                groups = piece_groups
            else:
                groups += piece_groups
    row_any, col_any = row_any.bool(), col_any.bool()
    candidates, grids = _granularities(finest, row_any, col_any)
    zeros = tensor.numel() - nnz
    explained = explain_groups(
        groups,
        zeros=zeros,
        size=tensor.numel(),
        width=cols,
        blocks={c[0]: c[4] for c in candidates},
    )
    return _Summary(
        nnz=nnz,
        row_any=row_any if lines else None,
        col_any=col_any if lines else None,
        block=_best_granularity(candidates, grids, zeros=zeros, bitmap=lines),
        patterns=MaskPatterns(zeros=zeros, explained=explained, row_any=row_any, col_any=col_any)
        if patterns
        else None,
    )


def _magnitudes(tensor: Any, ref: TensorRef, out: Any = None) -> Any:
    """A float tensor's bits but the sign (into `out`, if given), as integers of its width:
    0 exactly for +0.0 and -0.0, and at least +inf's bits exactly for inf and NaN, which are
    refused. Integer ops skip converting each value: the check is one max where a float32
    sum needs a conversion (and a second pass to tell an overflow from an inf), and the
    mask one clamp."""
    import torch

    bits = _same_width_int(tensor)
    magnitudes = torch.bitwise_and(tensor.view(bits), torch.iinfo(bits).max, out=out)
    infinite = torch.tensor(math.inf, dtype=tensor.dtype).view(bits)
    if magnitudes.numel() and bool(magnitudes.amax() >= infinite):
        raise CheckpointError(ref.file, f"{ref.name} contains NaN or infinite values")
    return magnitudes


def _same_width_int(tensor: Any) -> Any:
    import torch

    return getattr(torch, _SAME_WIDTH_INT[tensor.element_size()])


class _Scratch(threading.local):
    """Buffers the slice loop reuses, one per dtype and thread, grown to the largest slice:
    a fresh tensor per slice costs a page fault per 4 KiB (torch hands large blocks back to
    the system when they are freed), more than the reductions on it."""

    def __init__(self) -> None:
        self.held: dict[Any, Any] = {}

    def get(self, dtype: Any, shape: tuple[int, ...]) -> Any:
        import torch

        numel = _numel(shape)
        held = self.held.get(dtype)
        if held is None or held.numel() < numel:
            held = self.held[dtype] = torch.empty(numel, dtype=dtype)
        return held[:numel].view(shape)


_SCRATCH = _Scratch()


_Candidate = tuple[str, int, int, float, int]  # kind, block rows, block cols, empty, explained


def _granularities(
    finest: Any, row_any: Any, col_any: Any
) -> tuple[list[_Candidate], dict[str, Any]]:
    """Per granularity (rows, cols, each of `BLOCK_SIZES`): the fraction of empty blocks and
    the zeros they hold, and the occupancy grid; `finest` is the smallest blocks' grid
    (`_block_any`), from which the larger ones are reduced."""
    import torch

    rows, cols = len(row_any), len(col_any)
    grids: dict[str, Any] = {}
    candidates: list[_Candidate] = []
    empty_rows = int((~row_any).sum())
    empty_cols = int((~col_any).sum())
    candidates.append(("rows", 1, cols, empty_rows / rows if rows else 0.0, empty_rows * cols))
    candidates.append(("cols", rows, 1, empty_cols / cols if cols else 0.0, empty_cols * rows))
    grids["rows"], grids["cols"] = row_any[:, None], col_any[None, :]
    for size in BLOCK_SIZES:
        occupied = finest
        if size > _FINEST:
            occupied = _block_any(finest.view(torch.uint8), size // _FINEST)
        row_sizes = torch.full((occupied.shape[0],), size, dtype=torch.int64)
        col_sizes = torch.full((occupied.shape[1],), size, dtype=torch.int64)
        row_sizes[-1] = rows - size * (occupied.shape[0] - 1)
        col_sizes[-1] = cols - size * (occupied.shape[1] - 1)
        cells = row_sizes[:, None] * col_sizes[None, :]
        explained = int(cells[~occupied].sum())
        candidates.append(
            (f"{size}x{size}", size, size, float((~occupied).sum()) / occupied.numel(), explained)
        )
        grids[f"{size}x{size}"] = occupied
    return candidates, grids


def _best_granularity(
    candidates: list[_Candidate], grids: dict[str, Any], *, zeros: int, bitmap: bool
) -> BlockStructure:
    if zeros == 0:
        kind, br, bc, empty, explained = "dense", _LARGEST, _LARGEST, 0.0, 0
        grid = grids[f"{_LARGEST}x{_LARGEST}"]
    else:
        full = [c for c in candidates if c[4] == zeros]
        if full:
            kind, br, bc, empty, explained = max(full, key=lambda c: c[1] * c[2])
            grid = grids[kind]
        else:
            finest_kind = f"{_FINEST}x{_FINEST}"
            _, br, bc, empty, explained = next(c for c in candidates if c[0] == finest_kind)
            kind, grid = "unstructured", grids[finest_kind]
    return BlockStructure(
        kind=kind,
        block_rows=br,
        block_cols=bc,
        empty_fraction=empty,
        zeros_explained=explained / zeros if zeros else 1.0,
        grid=tuple(grid.shape) if bitmap else (),
        occupancy=_pack_bits(grid) if bitmap else "",
    )


def _block_any(mask: Any, size: int) -> Any:
    """Per size x size block of a uint8 mask (edge blocks may be smaller): any non-zero?

    Rows are reduced first (over a middle dimension, contiguous inside), then columns on
    data `size` times smaller.
    """
    import torch.nn.functional as F

    rows, cols = mask.shape
    pad_r, pad_c = -rows % size, -cols % size
    if pad_r or pad_c:
        mask = F.pad(mask, (0, pad_c, 0, pad_r))
    gr, gc = mask.shape[0] // size, mask.shape[1] // size
    per_row_block = mask.reshape(gr, size, gc * size).amax(dim=1)
    return per_row_block.reshape(gr, gc, size).amax(dim=2).bool()


def _pack_bits(grid: Any) -> str:
    import numpy as np

    bits = np.packbits(grid.reshape(-1).numpy().astype(np.uint8))
    return base64.b64encode(bits.tobytes()).decode("ascii")


# --------------------------------------------------------------------------- heads and units


def _layer_summaries(
    family: Family, summaries: dict[str, _Summary]
) -> dict[int, dict[str, tuple[str, _Summary]]]:
    by_layer: dict[int, dict[str, tuple[str, _Summary]]] = {}
    for name, summary in summaries.items():
        param = classify(name, family)
        if param.layer is not None and param.role in LINEAR_ROLES and param.kind == "weight":
            by_layer.setdefault(param.layer, {})[param.role] = (name, summary)
    return by_layer


def _layers(
    checkpoint: Checkpoint,
    family: Family | None,
    geometry: Geometry | None,
    summaries: dict[str, _Summary],
    linear: list[MatrixStats],
    only: int | None = None,
) -> tuple[list[LayerStats], HeadTotals, FfnTotals, int, list[LayerKeep]]:
    """Per-layer heads and FFN units, the stored parameters packing removes (zero heads'
    Q/K/V rows, biases and O columns; dead units' rows, biases and columns), and what
    packing keeps of each layer (the pack plan); `only`: that layer alone (`summaries`
    holding its tensors; the totals then count it alone)."""
    if family is None or geometry is None:
        heads = HeadTotals(total=0, removed=0, layers=(), rule=HEAD_RULE)
        return [], heads, FfnTotals(0, 0), 0, []
    g = geometry
    by_layer = _layer_summaries(family, summaries)
    layers = range(g.num_layers) if only is None else (only,)
    if family.kind == "decoder":
        return _decoder_layers(family, g, by_layer, summaries, linear, layers)
    stats: list[LayerStats] = []
    head_layers: list[LayerHeads] = []
    keep: list[LayerKeep] = []
    units_kept_total = 0
    removed_stored = 0
    for layer in layers:
        roles = by_layer[layer]
        stored_heads = g.kept_heads(layer)
        alive = heads_alive(roles["v"][1].row_any, roles["o"][1].col_any, g.head_dim).tolist()
        zero_heads = tuple(h for h, ok in zip(stored_heads, alive, strict=True) if not ok)
        pruned = g.pruned_heads.get(layer, ())
        removed = tuple(sorted(pruned + zero_heads))
        kept = g.num_heads - len(removed)
        units = units_alive(roles["ffn_in"][1].row_any, roles["ffn_out"][1].col_any)
        units_kept = int(units.sum())
        units_kept_total += units_kept
        has_bias = {
            r: bias_name(roles[r][0]) in checkpoint.tensors for r in ("q", "k", "v", "ffn_in")
        }
        per_head = 4 * g.head_dim * g.hidden_size + g.head_dim * sum(has_bias[r] for r in "qkv")
        per_unit = 2 * g.hidden_size + has_bias["ffn_in"]
        removed_stored += len(zero_heads) * per_head + (len(units) - units_kept) * per_unit
        head_layers.append(LayerHeads(layer, removed, kept, pruned, zero_heads))
        kept_heads = tuple(h for h, ok in zip(stored_heads, alive, strict=True) if ok)
        keep.append(LayerKeep(layer, kept_heads, _positions(units)))
        stats.append(
            _layer_stats(
                layer,
                linear,
                4 * kept * g.head_dim * g.hidden_size + 2 * units_kept * g.hidden_size,
                g.intermediate_size,
                units_kept,
            )
        )
    total_removed = sum(len(h.removed) for h in head_layers)
    heads = HeadTotals(
        total=g.num_layers * g.num_heads,
        removed=total_removed,
        layers=tuple(head_layers),
        rule=HEAD_RULE,
    )
    ffn = FfnTotals(units_total=g.num_layers * g.intermediate_size, units_kept=units_kept_total)
    return stats, heads, ffn, removed_stored, keep


def _positions(alive: Any) -> tuple[int, ...]:
    """The positions of a bool vector's True entries."""
    return tuple(alive.nonzero().flatten().tolist())


def _layer_stats(
    layer: int, linear: list[MatrixStats], packed: int, units_total: int, units_kept: int
) -> LayerStats:
    layer_linear = [m for m in linear if m.layer == layer]
    return LayerStats(
        layer=layer,
        linear_nnz=sum(m.nnz for m in layer_linear),
        linear_dense=sum(_numel(m.dense_shape) for m in layer_linear),
        linear_packed=packed,
        ffn_units_total=units_total,
        ffn_units_kept=units_kept,
    )


# bias entries that go with one removed MLP channel, per role holding a bias
_CHANNEL_BIAS_ROWS = {"ffn_gate": 1, "ffn_in": 1, "ffn_gate_up": 2}


def _decoder_layers(
    family: Family,
    g: Geometry,
    by_layer: dict[int, dict[str, tuple[str, _Summary]]],
    summaries: dict[str, _Summary],
    linear: list[MatrixStats],
    layers: Iterable[int],
) -> tuple[list[LayerStats], HeadTotals, FfnTotals, int, list[LayerKeep]]:
    """Removed and dead-but-kept query heads, removable K/V groups and dead MLP channels per
    layer, and the stored parameters decoder packing removes: whole dead K/V groups (their
    K and V rows and biases, the Q rows, Q biases and O columns of all their query heads)
    and dead channels (gate and up rows and biases, down columns), and the entries of a
    whole-width norm that go with the rows. A dead query head in a live group stays.
    Groups a packed checkpoint no longer stores (`pruned_heads`) count as removed. Packing
    keeps every query head of a live group."""
    hidden, head_dim, group = g.hidden_size, g.head_dim, g.group_size
    group_weights = 2 * (group + 1) * head_dim * hidden  # Q rows + O columns, K and V rows
    # bias entries that go with one removed K/V group, per role holding a bias
    group_bias_rows = {"q": group * head_dim, "k": head_dim, "v": head_dim}
    group_bias_rows["qkv"] = sum(group_bias_rows.values())
    group_norms = sum(group_bias_rows[n.role] for n in family.width_norms)
    stats: list[LayerStats] = []
    head_layers: list[LayerHeads] = []
    keep: list[LayerKeep] = []
    channels_kept_total = removed_stored = 0
    for layer in layers:
        roles = by_layer[layer]
        biased = {r for r, (name, _) in roles.items() if bias_name(name) in summaries}
        v_rows, gate_rows, up_rows, *normed = (
            _part_rows(family, g, layer, roles, summaries, part)
            for part in ("v", "ffn_gate", "ffn_in", *(n.role for n in family.width_norms))
        )
        # a prunecard-packed decoder stores only some groups (`pruned_heads` names whole
        # groups): the rules run on the stored heads, then map back to dense indices
        stored_heads, stored_groups = g.kept_heads(layer), g.kept_kv_groups(layer)
        query = heads_alive(v_rows, roles["o"][1].col_any, head_dim, group)
        groups = kv_groups_alive(query, group, normed)
        channels = channels_alive(gate_rows, up_rows, roles["ffn_out"][1].col_any)
        pruned = g.pruned_heads.get(layer, ())
        zero = tuple(h for h, ok in zip(stored_heads, query.tolist(), strict=True) if not ok)
        zero_groups = tuple(
            k for k, ok in zip(stored_groups, groups.tolist(), strict=True) if not ok
        )
        dead_groups = tuple(sorted({h // group for h in pruned} | set(zero_groups)))
        # packing removes the heads of dead groups; a dead head of a live group stays
        packable = tuple(h for h in zero if h // group in zero_groups)
        dead_kept = tuple(h for h in zero if h // group not in zero_groups)
        removed = tuple(sorted(pruned + packable))
        kv_kept = g.num_kv_heads - len(dead_groups)
        channels_kept = int(channels.sum())
        channels_kept_total += channels_kept
        per_group = group_weights + group_norms
        per_group += sum(group_bias_rows.get(r, 0) for r in biased)
        per_channel = 3 * hidden + sum(_CHANNEL_BIAS_ROWS.get(r, 0) for r in biased)
        removed_stored += len(zero_groups) * per_group
        removed_stored += (len(channels) - channels_kept) * per_channel
        head_layers.append(
            LayerHeads(
                layer,
                removed=removed,
                kept=g.num_heads - len(removed),
                removed_in_checkpoint=pruned,
                removed_as_zeros=packable,
                kv_removed=dead_groups,
                kv_kept=kv_kept,
                dead_kept=dead_kept,
            )
        )
        live = _positions(groups)
        kept_heads = tuple(stored_heads[k * group + j] for k in live for j in range(group))
        kept_groups = tuple(stored_groups[k] for k in live)
        keep.append(LayerKeep(layer, kept_heads, _positions(channels), kept_groups))
        packed = kv_kept * group_weights + channels_kept * 3 * hidden
        stats.append(_layer_stats(layer, linear, packed, g.intermediate_size, channels_kept))
    heads = HeadTotals(
        total=g.num_layers * g.num_heads,
        removed=sum(len(h.removed) for h in head_layers),
        layers=tuple(head_layers),
        rule=DECODER_HEAD_RULE,
        kv_total=g.num_layers * g.num_kv_heads,
        kv_removed=sum(len(h.kv_removed) for h in head_layers),
        dead_kept=sum(len(h.dead_kept) for h in head_layers),
    )
    ffn = FfnTotals(units_total=g.num_layers * g.intermediate_size, units_kept=channels_kept_total)
    return stats, heads, ffn, removed_stored, keep


def _part_rows(
    family: Family,
    g: Geometry,
    layer: int,
    roles: dict[str, tuple[str, _Summary]],
    summaries: dict[str, _Summary],
    part: str,
) -> Any:
    """Per row of the unfused role `part` (v, ffn_gate, ...) of a decoder layer: non-zero?
    A non-zero bias keeps its row alive; a fused matrix (the family's `fused`) is split
    into the sections it stacks."""
    fused = next((r for r in roles if part in family.fused.get(r, ())), None)
    name, summary = roles[fused or part]
    bias = summaries.get(bias_name(name))
    row_any = summary.row_any if bias is None else summary.row_any | bias.row_any
    if fused is None:
        return row_any
    sections = row_any.split(list(fused_sizes(family, g, layer, fused)))
    return sections[family.fused[fused].index(part)]


def _generic_notes(family: Family | None, linear: list[MatrixStats]) -> tuple[str, ...]:
    """What generic mode counted, so a reader knows the linear figure's basis."""
    if family is not None:
        return ()
    if not linear:
        return ("generic mode: no 2-D weight inside a repeated block (layers.N, layer.N, h.N, "
                "blocks.N), so the linear density is not measured",)  # fmt: skip
    return (f"generic mode: the {len(linear)} 2-D weights inside repeated blocks (layers.N, "
            "layer.N, h.N, blocks.N) count as linear layers; heads and FFN units are not "
            "inferred",)  # fmt: skip
