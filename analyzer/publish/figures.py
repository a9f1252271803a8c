"""Figures of an `Analysis` (density per matrix, block maps and heads) and of a family
(a score against a cost, with its Pareto frontier), as PNG and SVG.

Everything is drawn from the record alone (no weights are read), with the Agg backend, fixed
fonts and sizes, a fixed SVG hash salt and no dates in the files, so the same record gives
byte-identical files. SVG density bars carry a `<title>` tooltip with the matrix name and
its density.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.outputs import atomic_write_bytes
from analyzer.publish.frontier import Axis, Point, frontier
from analyzer.records import LINEAR_ROLES, Analysis, LayerHeads, MatrixStats
from analyzer.text import percent

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn
    from matplotlib.typing import RcKeyType

__all__ = [
    "FIGURES",
    "ROLE_COLORS",
    "ROLE_LABELS",
    "comparison_figure",
    "occupancy_grid",
    "write_figures",
]

ROLE_LABELS = {
    "q": "query",
    "k": "key",
    "v": "value",
    "qkv": "fused QKV",
    "o": "attention output",
    "ffn_gate": "MLP gate",
    "ffn_in": "FFN in",
    "ffn_gate_up": "fused gate + up",
    "ffn_out": "FFN out",
}
# Colour-blind-safe (Okabe-Ito); attention in cool colours, FFN in warm ones.
ROLE_COLORS = {
    "q": "#0072B2",
    "k": "#56B4E9",
    "v": "#009E73",
    "qkv": "#56B4E9",
    "o": "#CC79A7",
    "ffn_gate": "#F0E442",
    "ffn_in": "#E69F00",
    "ffn_gate_up": "#E69F00",
    "ffn_out": "#D55E00",
}
# a decoder's MLP: gate_proj, up_proj (ffn_in) and down_proj (ffn_out)
DECODER_LABELS = {**ROLE_LABELS, "ffn_in": "MLP up", "ffn_out": "MLP down"}
KEPT, REMOVED_ZEROS, REMOVED_CHECKPOINT = "#0072B2", "#E69F00", "#999999"
DEAD_KEPT = "#56B4E9"  # a dead query head packing keeps (its K/V group is live)
# patterns drawn as the share of zeros they explain instead of a block map
BAR_PATTERNS = ("2:4", "1:4", "4:8", "1x4")
FIGURES = ("density", "heads", "blocks")  # file stems under assets/
_STYLE: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "svg.hashsalt": "prunecard",
    "svg.fonttype": "none",
    "path.simplify": False,
}
_DPI = 120
_WIDTH_IN = 8.0  # 960 px: the width of a Hub card's column


def write_figures(analysis: Analysis, assets: Path) -> list[Path]:
    """Draw every figure the analysis supports into `assets` as .png and .svg; return paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn: list[Path] = []
    with plt.rc_context(_STYLE):
        linear = [m for m in analysis.matrices if m.role in LINEAR_ROLES and m.layer is not None]
        if linear:
            drawn += _save(_density(analysis, linear), assets / "density", tooltips=_tips(linear))
        if analysis.heads.total:
            drawn += _save(_heads(analysis), assets / "heads")
        mapped = [m for m in linear if _mappable(m)]
        if mapped:
            drawn += _save(_blocks(analysis, mapped), assets / "blocks")
    return drawn


# --------------------------------------------------------------------------- density


def _labels(analysis: Analysis) -> dict[str, str]:
    return DECODER_LABELS if analysis.kind == "decoder" else ROLE_LABELS


def _layer_word(analysis: Analysis) -> str:
    return "decoder layer" if analysis.kind == "decoder" else "encoder layer"


def _mappable(m: MatrixStats) -> bool:
    """A block map was kept, or the pattern is drawn another way (bar, removed layer)."""
    drawn = m.pattern is not None and m.pattern.kind in (*BAR_PATTERNS, "layer")
    return drawn or (m.block is not None and bool(m.block.occupancy))


def _density(analysis: Analysis, linear: list[MatrixStats]) -> Any:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(_WIDTH_IN, 3.4))
    roles = _roles(linear)
    per_layer = len(roles) + 1  # one empty slot between layers
    ticks: dict[int, list[float]] = {}
    for m in sorted(linear, key=_matrix_order):
        assert m.layer is not None  # write_figures draws the matrices of a layer only
        x = m.layer * per_layer + roles.index(m.role)
        dense = _numel(m.dense_shape)
        ax.bar(x, dense / 1e6, width=0.85, color="#EEEEEE", edgecolor="#BBBBBB", linewidth=0.4)
        bar = ax.bar(x, m.nnz / 1e6, width=0.85, color=ROLE_COLORS[m.role], linewidth=0)
        bar.patches[0].set_gid(_gid(m))
        ticks.setdefault(m.layer, []).append(x)
    ax.set_xticks([sum(xs) / len(xs) for xs in ticks.values()], [str(k) for k in ticks])
    ax.set_xlabel(_layer_word(analysis))
    ax.set_ylabel("weights (millions)")
    ax.set_title(
        f"Non-zero weights per linear matrix (grey: dense size); "
        f"linear density {percent(analysis.linear.density)}"
    )
    handles = [Patch(color=ROLE_COLORS[r], label=_labels(analysis)[r]) for r in roles]
    handles.append(Patch(facecolor="#EEEEEE", edgecolor="#BBBBBB", label="dense size"))
    ax.legend(handles=handles, ncol=7, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlim(-1, len(ticks) * per_layer - 1)
    fig.tight_layout()
    return fig


def _tips(linear: list[MatrixStats]) -> dict[str, str]:
    return {
        _gid(m): f"{m.name}: {percent(m.density)} dense "
        f"({m.nnz:,} of {_numel(m.dense_shape):,} weights){_pattern_tip(m)}"
        for m in linear
    }


def _pattern_tip(m: MatrixStats) -> str:
    """The matrix's pattern and, when it explains only part of the zeros, the share."""
    p = m.pattern
    if p is None or p.kind == "dense":
        return ""
    share = f" ({percent(p.explained, 0)} of its zeros)" if p.explained < 1 else ""
    return f"; pattern {p.kind}{share}"


def _gid(m: MatrixStats) -> str:
    return "bar-" + re.sub(r"[^A-Za-z0-9_-]", "-", m.name)


def _roles(linear: list[MatrixStats]) -> tuple[str, ...]:
    """The linear roles these matrices hold, in LINEAR_ROLES order."""
    present = {m.role for m in linear}
    return tuple(r for r in LINEAR_ROLES if r in present)


def _matrix_order(m: MatrixStats) -> tuple[int, int]:
    return (m.layer or 0, LINEAR_ROLES.index(m.role))


# --------------------------------------------------------------------------- heads


def _heads(analysis: Analysis) -> Any:
    """Kept and removed heads per layer and a layer x head grid; with grouped-query
    attention the query heads, a panel of KV groups and the group borders on the grid."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    layers = analysis.heads.layers
    n_heads = analysis.num_heads
    gqa = bool(analysis.heads.kv_total and analysis.num_kv_heads)
    ratios = [1, 0.7, 1.3] if gqa else [1, 1.3]
    fig, panels = plt.subplots(
        1, len(ratios), figsize=(_WIDTH_IN, 3.2), gridspec_kw={"width_ratios": ratios}
    )
    bars, grid = panels[0], panels[-1]
    idx = np.arange(len(layers))
    dead_kept = np.array([len(h.dead_kept) for h in layers])
    alive = np.array([h.kept for h in layers]) - dead_kept
    kept = alive + dead_kept
    zeros = np.array([len(h.removed_as_zeros) for h in layers])
    pruned = np.array([len(h.removed_in_checkpoint) for h in layers])
    bars.bar(idx, alive, color=KEPT, label="kept")
    bars.bar(idx, dead_kept, bottom=alive, color=DEAD_KEPT, label="dead (kept by packing)")
    bars.bar(idx, zeros, bottom=kept, color=REMOVED_ZEROS, label="removed (zero weights)")
    bars.bar(
        idx, pruned, bottom=kept + zeros, color=REMOVED_CHECKPOINT, label="removed (pruned_heads)"
    )
    word = _layer_word(analysis)
    bars.set_xticks(idx, [str(h.layer) for h in layers])
    bars.set_xlabel(word)
    bars.set_ylabel("query heads" if gqa else "heads")
    bars.set_ylim(0, n_heads)
    what = "query heads" if gqa else "heads"
    dead = (
        f"\n{analysis.heads.dead_kept} dead (kept by packing)" if analysis.heads.dead_kept else ""
    )
    bars.set_title(
        f"{analysis.heads.removed} of {analysis.heads.total} {what} removed{dead}",
        fontsize=9 if gqa else None,
    )
    bars.spines[["top", "right"]].set_visible(False)
    if gqa:
        _kv_groups(panels[1], analysis)

    cells = np.array([_head_states(h, n_heads) for h in layers])
    cmap = ListedColormap([KEPT, REMOVED_ZEROS, REMOVED_CHECKPOINT, DEAD_KEPT])
    grid.imshow(cells, cmap=cmap, vmin=0, vmax=3, aspect="auto", interpolation="nearest")
    grid.set_xticks(np.arange(n_heads), [str(h) for h in range(n_heads)])
    grid.set_yticks(idx, [str(h.layer) for h in layers])
    grid.set_xticks(np.arange(-0.5, n_heads), minor=True)
    grid.set_yticks(np.arange(-0.5, len(layers)), minor=True)
    grid.grid(which="minor", color="white", linewidth=1)
    grid.tick_params(which="minor", length=0)
    grid.set_xlabel("query head" if gqa else "head")
    grid.set_ylabel(word)
    grid.set_title("layer x head")
    if gqa:
        size = n_heads // analysis.num_kv_heads
        for border in range(size, n_heads, size):
            grid.axvline(border - 0.5, color="black", linewidth=1.5)
        grid.set_title(f"layer x query head; KV groups of {size}", fontsize=9)
    handles = [
        Patch(color=KEPT, label="kept"),
        Patch(color=REMOVED_ZEROS, label="removed: zero value rows or output columns"),
        Patch(color=REMOVED_CHECKPOINT, label="removed: config pruned_heads"),
    ]
    if analysis.heads.dead_kept:
        handles.append(Patch(color=DEAD_KEPT, label="dead, kept by packing (live KV group)"))
    small = 7 if len(handles) > 3 else None  # four entries fit one row at a smaller size
    fig.legend(
        handles=handles, ncol=len(handles), loc="lower center", frameon=False, fontsize=small
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _kv_groups(ax: Any, analysis: Analysis) -> None:
    """KV groups kept and removed per layer (a group goes when all its query heads do)."""
    import numpy as np

    layers = analysis.heads.layers
    idx = np.arange(len(layers))
    kept = np.array([h.kv_kept for h in layers])
    removed = np.array([len(h.kv_removed) for h in layers])
    ax.bar(idx, kept, color=KEPT)
    ax.bar(idx, removed, bottom=kept, color=REMOVED_ZEROS)
    ax.set_xticks(idx, [str(h.layer) for h in layers])
    ax.set_xlabel(_layer_word(analysis))
    ax.set_ylabel("KV groups")
    ax.set_ylim(0, analysis.num_kv_heads)
    ax.set_yticks(np.arange(analysis.num_kv_heads + 1))
    ax.set_title(
        f"{analysis.heads.kv_removed} of {analysis.heads.kv_total} KV groups removed", fontsize=9
    )
    ax.spines[["top", "right"]].set_visible(False)


def _head_states(heads: LayerHeads, n_heads: int) -> list[int]:
    state = [0] * n_heads
    for h in heads.removed_as_zeros:
        state[h] = 1
    for h in heads.removed_in_checkpoint:
        state[h] = 2
    for h in heads.dead_kept:
        state[h] = 3
    return state


# --------------------------------------------------------------------------- block maps


def occupancy_grid(m: MatrixStats) -> Any:
    """The stored matrix's non-empty-block map as a bool array of shape `block.grid`."""
    import numpy as np

    assert m.block is not None
    rows, cols = m.block.grid
    bits = np.frombuffer(base64.b64decode(m.block.occupancy), dtype=np.uint8)
    return np.unpackbits(bits)[: rows * cols].reshape(rows, cols).astype(bool)


@dataclass(frozen=True)
class _Map:
    image: Any  # 0 empty block, 1 non-empty, 2 removed via pruned_heads; heads/units along x
    extent: tuple[float, float, float, float]


def _oriented_map(m: MatrixStats, heads: LayerHeads | None, head_dim: int) -> _Map:
    """The map with the head / unit axis horizontal (Q, K, V and FFN-in are transposed),
    re-expanded to the dense size when pruned_heads removed rows from the file."""
    import numpy as np

    assert m.block is not None  # _mappable: a matrix not drawn as a bar has a block map
    grid = occupancy_grid(m).astype(np.uint8)
    br, bc = m.block.block_rows, m.block.block_cols
    rows, cols = m.shape
    if m.role in ("q", "k", "v", "ffn_gate", "ffn_in"):
        grid, br, bc, rows, cols = grid.T, bc, br, cols, rows
    removed = heads.removed_in_checkpoint if heads and m.role in ("q", "k", "v", "o") else ()
    if removed:
        full = np.repeat(grid, bc, axis=1)[:, :cols]
        kept = [h for h in range(cols // head_dim + len(removed)) if h not in removed]
        dense = np.full((grid.shape[0], (len(kept) + len(removed)) * head_dim), 2, np.uint8)
        for i, h in enumerate(kept):
            dense[:, h * head_dim : (h + 1) * head_dim] = full[:, i * head_dim : (i + 1) * head_dim]
        grid, cols = dense, dense.shape[1]
    return _Map(image=grid, extent=(0, cols, rows, 0))


def _blocks(analysis: Analysis, mapped: list[MatrixStats]) -> Any:
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    layers = sorted({m.layer for m in mapped if m.layer is not None})
    heads = {h.layer: h for h in analysis.heads.layers}
    head_dim = analysis.head_dim or (
        analysis.hidden_size // analysis.num_heads if analysis.num_heads else 1
    )
    roles = _roles(mapped)
    # FFN matrices are wider (intermediate units along x)
    ratios = [2 if r.startswith("ffn") else 1 for r in roles]
    height = 0.75 * len(layers) + 0.8
    fig, axes = plt.subplots(
        len(layers),
        len(roles),
        figsize=(_WIDTH_IN, height),
        gridspec_kw={"width_ratios": ratios},
        squeeze=False,
    )
    cmap = ListedColormap(["#FFFFFF", "#222222", "#BBBBBB"])
    by_key = {(m.layer, m.role): m for m in mapped}
    first = {
        layer: min(roles.index(m.role) for m in mapped if m.layer == layer) for layer in layers
    }
    for r, layer in enumerate(layers):
        for c, role in enumerate(roles):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            m = by_key.get((layer, role))
            if m is None:
                ax.set_axis_off()
                continue
            if m.pattern is not None and m.pattern.kind in (*BAR_PATTERNS, "layer"):
                _pattern_cell(ax, m)
                if r == 0:
                    ax.set_title(_labels(analysis)[role], fontsize=8)
                if c == first[layer]:
                    ax.set_ylabel(f"layer {layer}", fontsize=8)
                continue
            assert m.block is not None  # _mappable: a matrix not drawn as a bar has a block map
            fm = _oriented_map(m, heads.get(layer), head_dim)
            ax.imshow(
                fm.image,
                cmap=cmap,
                vmin=0,
                vmax=2,
                extent=fm.extent,
                aspect="auto",
                interpolation="nearest",
            )
            for side in ax.spines.values():
                side.set_linewidth(0.5)
                side.set_color("#888888")
            kind = "dense" if m.pattern and m.pattern.kind == "dense" else m.block.kind
            ax.set_xlabel(f"{kind}, {percent(m.density)}", fontsize=7, labelpad=1)
            if r == 0:
                ax.set_title(_labels(analysis)[role], fontsize=8)
            if c == first[layer]:
                ax.set_ylabel(f"layer {layer}", fontsize=8)
    removed = _layers_removed(analysis)
    if removed:
        fig.suptitle(removed, fontsize=9)
    handles = [
        Patch(facecolor="#222222", label="block holds a non-zero"),
        Patch(facecolor="#FFFFFF", edgecolor="#888888", label="all-zero block"),
        Patch(facecolor="#BBBBBB", label="head removed via pruned_heads"),
    ]
    fig.legend(handles=handles, ncol=3, loc="lower center", frameon=False)
    fig.tight_layout(rect=(0, 0.3 / height, 1, 1), h_pad=0.4, w_pad=0.3)
    return fig


def _pattern_cell(ax: Any, m: MatrixStats) -> None:
    """An N:M or 1x4 matrix as a bar (the share of its zeros the pattern explains); a matrix
    of all zeros (a removed layer) as a grey box."""
    assert m.pattern is not None
    if m.pattern.kind == "layer":
        ax.set_facecolor("#BBBBBB")
        ax.set_xlabel("all zeros, 0.0%", fontsize=7, labelpad=1)
    else:
        explained = m.pattern.explained
        ax.barh([0], [explained], height=1.0, color="#222222")
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.5, 0.5)
        ax.text(
            0.5,
            0,
            percent(explained, 0),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if explained > 0.6 else "#222222",
        )
        ax.set_xlabel(f"{m.pattern.kind}, {percent(m.density)}", fontsize=7, labelpad=1)
    for side in ax.spines.values():
        side.set_linewidth(0.5)
        side.set_color("#888888")


def _layers_removed(analysis: Analysis) -> str:
    """'2 of 3 layers of the base kept' when --base-config shows depth pruning, else ''."""
    base = analysis.base
    depth = [c for c in base.changes if c.what == "layers"] if base else []
    if not depth or depth[0].model >= depth[0].base:
        return ""
    c = depth[0]
    return f"{c.model} of the base's {c.base} layers kept ({c.base - c.model} removed)"


# --------------------------------------------------------------------------- comparison

BASE_COLOR, FRONTIER_COLOR, OTHER_COLOR = "#000000", "#D55E00", "#0072B2"
# label offsets from the marker, in points: nearest first, right before left before above
_RADII = (5, 14, 26, 40, 56, 75)
_DIRECTIONS = ((1, 1), (1, 0), (1, -1), (-1, 1), (-1, 0), (-1, -1), (0, 1), (0, -1))


def comparison_figure(points: Sequence[Point], x: Axis, y: Axis, stem: Path) -> list[Path]:
    """A family's score against a cost as stem.png and stem.svg: every model a point (the
    dense base a black star), the Pareto frontier a line through its points, each label
    where it overlaps no other label, no marker and not the axes' edge. The axes span every
    point and the dense model's reference value (speedup 1x, density 100%)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    line = frontier(points, x, y)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(_WIDTH_IN, 4.4))
        ax.set_xlim(*_span([p.x for p in points], x.reference))
        ax.set_ylim(*_span([p.y for p in points], y.reference))
        ax.plot(
            [p.x for p in line],
            [p.y for p in line],
            color=FRONTIER_COLOR,
            linewidth=1.2,
            linestyle="--",
            zorder=2,
            gid="frontier",
        )
        for i, p in enumerate(points):
            ax.scatter(
                [p.x],
                [p.y],
                marker="*" if p.base else "o",
                s=120 if p.base else 40,
                color=BASE_COLOR if p.base else FRONTIER_COLOR if p in line else OTHER_COLOR,
                zorder=3,
                gid=f"point-{i}",
            )
        ax.set_xlabel(f"{x.label} ({'higher' if x.higher_is_better else 'lower'} is better)")
        ax.set_ylabel(f"{y.label} ({'higher' if y.higher_is_better else 'lower'} is better)")
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        handles = [
            Line2D(
                [], [], color=FRONTIER_COLOR, marker="o", linestyle="--", label="Pareto frontier"
            ),
            Line2D([], [], color=OTHER_COLOR, marker="o", linestyle="", label="dominated"),
        ]
        if any(p.base for p in points):
            handles.insert(
                0,
                Line2D(
                    [],
                    [],
                    color=BASE_COLOR,
                    marker="*",
                    markersize=10,
                    linestyle="",
                    label="dense base",
                ),
            )
        fig.legend(handles=handles, ncol=len(handles), loc="lower center", frameon=False)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        _place_labels(fig, ax, points)
    tips = {
        f"point-{i}": f"{p.name}: {x.label} {x.shown(p.x)}, {y.short} {y.shown(p.y)}"
        + ("; the dense base" if p.base else "")
        + ("; on the Pareto frontier" if p in line else "")
        for i, p in enumerate(points)
    }
    tips["frontier"] = "Pareto frontier: " + ", ".join(p.name for p in line)
    return _save(fig, stem, tooltips=tips)


def _span(values: Sequence[float], reference: float | None) -> tuple[float, float]:
    """Axis limits holding every value and the reference, with room for labels."""
    lo, hi = (
        min([*values, *([reference] if reference is not None else [])]),
        max([*values, *([reference] if reference is not None else [])]),
    )
    width = hi - lo or abs(hi) * 0.2 or 1.0
    return lo - 0.12 * width, hi + 0.18 * width


def _place_labels(fig: Any, ax: Any, points: Sequence[Point]) -> None:
    """Annotate every point with its name at the nearest offset where the label's box stays
    inside the axes and clear of every marker and every label placed before it; a label
    set apart from its point gets a thin leader line. Deterministic: points in order."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    scale = fig.dpi / 72  # points to pixels
    centres = ax.transData.transform([(p.x, p.y) for p in points])
    taken = [Bbox.from_extents(cx - 6, cy - 6, cx + 6, cy + 6) for cx, cy in centres]
    for i, p in enumerate(points):
        label = ax.annotate(
            p.name + (" (dense base)" if p.base else ""),
            (p.x, p.y),
            xytext=(0, 0),
            textcoords="offset points",
            fontsize=8,
            parse_math=False,  # a "$" in a model's name is text, not TeX
            annotation_clip=False,
            arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.5, "shrinkB": 5},
            gid=f"label-{i}",
        )
        best: tuple[float, tuple[float, float, str, str], Any] | None = None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                ha = "left" if dx > 0 else "right" if dx < 0 else "center"
                va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
                offset = (dx * radius, dy * radius)
                label.set_position(offset)
                label.set_horizontalalignment(ha)
                label.set_verticalalignment(va)
                label.update_positions(renderer)
                box = Text.get_window_extent(label, renderer).padded(2 * scale)  # no leader
                outside = not (
                    frame.x0 <= box.x0
                    and box.x1 <= frame.x1
                    and frame.y0 <= box.y0 <= box.y1 <= frame.y1
                )
                clash = sum(_overlap(box, other) for other in taken) + (1e9 if outside else 0)
                if best is None or clash < best[0]:
                    best = (clash, (*offset, ha, va), box)
                if clash == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        _, (off_x, off_y, ha, va), box = best
        label.set_position((off_x, off_y))
        label.set_horizontalalignment(ha)
        label.set_verticalalignment(va)
        if max(abs(off_x), abs(off_y)) <= _RADII[1]:  # beside its point: no leader line
            label.arrow_patch.set_visible(False)
        taken.append(box)


def _overlap(a: Any, b: Any) -> float:
    """The area two display boxes share (0 when apart)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


# --------------------------------------------------------------------------- saving


def _save(fig: Any, stem: Path, *, tooltips: dict[str, str] | None = None) -> list[Path]:
    """Write stem.png and stem.svg without dates or versions, then close the figure."""
    import io

    import matplotlib.pyplot as plt

    try:
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=_DPI, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    finally:
        plt.close(fig)
    text = svg.getvalue().decode("utf-8")
    if tooltips:
        text = _add_titles(text, tooltips)
    return [
        atomic_write_bytes(stem.with_suffix(".png"), png.getvalue()),
        atomic_write_bytes(stem.with_suffix(".svg"), text.encode("utf-8")),
    ]


def _add_titles(svg: str, tooltips: dict[str, str]) -> str:
    """Insert a `<title>` as the first child of each `<g id=gid>` (browsers show it on hover)."""

    def add(match: re.Match[str]) -> str:
        tip = tooltips.get(match.group(1))
        return match.group(0) + (f"\n   <title>{escape(tip)}</title>" if tip else "")

    return re.sub(r'<g id="([^"]+)">', add, svg)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
