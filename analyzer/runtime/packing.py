"""Packed models: heads and FFN units that cannot change the output, physically removed.

transformers 5 ignores `pruned_heads`, so every checkpoint is turned into a state dict the
model can take as it is, in one of three layouts:

- "dense": every head and FFN unit present; heads a legacy checkpoint removed come back as
  zeros, so the model runs at the dense model's cost with the same outputs;
- "packed": heads and units the pack plan drops are sliced out; a removed head's constant
  contribution W_O[:, h] b_V[h] is folded into the output bias; kept FFN widths are padded
  with zero units up to a multiple of `align` (GPU tensor-core tiles);
- "stored": whatever the file holds (packed for prunecard-packed checkpoints, dense for
  everything else).

Packing never decides what is alive: the pack plan (`analyzer.weights.liveness.PackPlan`)
comes from analysis, which applies the rules to the masks it takes (`report` hands over
the plan of its own analysis, and matrices that lose rows are then read by the rows kept,
`Checkpoint.load_rows`; `pack` and `load` alone have it made layer by layer from the layer
matrices, which are then sliced as read, so no weight is read twice).
Decoder LLMs (every decoder family of `analyzer.weights.families`) lose whole dead K/V
groups and dead MLP channels; their stored K/V groups per layer are recorded as
`prunecard_packing.kv_heads`. What differs between families (fused matrices and how they
split, norms narrowed with the rows they normalise) is read from the family's entry.

A packed checkpoint keeps transformers 4's `pruned_heads` meaning (dense indices of the
heads missing from Q/K/V/O) and records the stored FFN widths under
`config["prunecard_packing"]`, so `analyze` reports its dense figures and `load` builds
narrower Linear modules (per-layer head counts and FFN widths) from the tensor shapes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError
from analyzer.outputs import staged_dir
from analyzer.text import fixed
from analyzer.weights.architecture import (
    Geometry,
    bias_name,
    check_model_config,
    check_shapes,
    classify,
    detect,
    fused_sizes,
)
from analyzer.weights.checkpoint import Checkpoint, copy_tokenizer_files, open_checkpoint
from analyzer.weights.compressed import plain_config
from analyzer.weights.families import FAMILIES, Family
from analyzer.weights.liveness import LayerKeep, PackPlan
from analyzer.weights.sparsity import planned_layers

__all__ = [
    "LAYOUTS",
    "LayerPlan",
    "PackResult",
    "Packed",
    "build",
    "load",
    "pack",
    "pack_state",
    "write_packed",
]

LAYOUTS = ("stored", "dense", "packed")
PACKING_FORMAT = 1
_ATTN_ROLES = ("q", "k", "v")


@dataclass(frozen=True)
class LayerPlan:
    """What packing keeps of one encoder layer."""

    layer: int
    heads: tuple[int, ...]  # dense indices of the heads kept
    units: int  # FFN units kept (alive by the analyzer's rule)
    width: int  # stored FFN width: `units` padded up to a multiple of the alignment
    kv_groups: tuple[int, ...] = ()  # decoders: dense indices of the K/V groups kept


@dataclass(frozen=True)
class PackResult:
    out: Path
    layers: tuple[LayerPlan, ...]
    num_heads: int
    intermediate_size: int
    align: int
    original_bytes: int  # the input's weight files
    packed_bytes: int  # the packed model.safetensors
    num_kv_heads: int = 0  # decoders: K/V groups per layer before packing; 0 for encoders

    @property
    def heads_kept(self) -> int:
        return sum(len(p.heads) for p in self.layers)

    @property
    def heads_removed(self) -> int:
        return self.num_heads * len(self.layers) - self.heads_kept


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Source:
    checkpoint: Checkpoint
    family: Family
    geometry: Geometry
    # (layer, role, "weight"/"bias"/"norm") -> tensor name; "norm": the weight of a norm
    # over the role's whole width (`families.WidthNorm`)
    names: dict[tuple[int, str, str], str]
    dense_shapes: dict[str, tuple[int, ...]]  # parameter -> its shape in the dense model

    def name(self, layer: int, role: str, kind: str) -> str | None:
        """A bias or norm, which a layer may lack."""
        return self.names.get((layer, role, kind))

    def weight(self, layer: int, role: str) -> str:
        """A linear weight, which every layer has (`check_shapes` refused any missing)."""
        return self.names[(layer, role, "weight")]

    @property
    def packed(self) -> bool:
        return bool(self.checkpoint.config.get("prunecard_packing"))


def _open(path: str | Path | Checkpoint) -> _Source:
    checkpoint = open_checkpoint(path)
    config_path = checkpoint.root / "config.json"
    family, geometry = detect(checkpoint.config, config_path)
    if family is None or geometry is None:
        raise CheckpointError(
            config_path,
            f"model_type {checkpoint.config.get('model_type')!r} is not supported for "
            f"loading or packing (supported: {', '.join(f.name for f in FAMILIES)})",
        )
    dense_shapes = check_shapes(checkpoint, family, geometry)
    names: dict[tuple[int, str, str], str] = {}
    for name in checkpoint.tensors:
        param = classify(name, family)
        if param.layer is not None and param.role in family.layer_roles:
            names[(param.layer, param.role, param.kind)] = name
        if param.layer is not None and param.normalises is not None and param.kind == "weight":
            names[(param.layer, param.normalises, "norm")] = name
    return _Source(checkpoint, family, geometry, names, dense_shapes)


# --------------------------------------------------------------------------- state dicts


@dataclass(frozen=True)
class Packed:
    """A packed model in memory: what `pack` writes and what `bench` and `eval` run, so the
    folder a report keeps is the model it timed."""

    state: dict[str, Any]
    config: dict[str, Any]
    layers: tuple[LayerPlan, ...]
    align: int


def pack_state(
    source: str | Path | Checkpoint, plan: PackPlan | None = None, *, align: int = 1
) -> Packed:
    """The packed state dict and config.json of a checkpoint, by `plan` (None: decided now,
    layer by layer, by analysis's rules from the layer matrices, which are then sliced as
    read: each weight is read once). By a plan given, each sliced matrix is read by the
    rows it keeps (`Checkpoint.load_rows`); the rest whole."""
    if align < 1:
        raise ValueError(f"align must be at least 1, got {align}")
    src = _open(source)
    if plan is not None and len(plan.layers) != src.geometry.num_layers:
        raise ValueError(
            f"the plan has {len(plan.layers)} layers, the checkpoint {src.geometry.num_layers}"
        )
    layers = (
        planned_layers(src.checkpoint, src.family, src.geometry)
        if plan is None
        else ((keep, {}) for keep in plan.layers)
    )
    state: dict[str, Any] = {}
    plans, removed_heads = [], {}
    for keep, held in layers:
        plans.append(_pack_layer(_Reader(src.checkpoint, held), src, keep, align, state))
        gone = [h for h in range(src.geometry.num_heads) if h not in keep.heads]
        if gone:
            removed_heads[str(keep.layer)] = gone
    checkpoint = src.checkpoint
    rest = (r.name for r in checkpoint.tensors.values() if r.is_parameter and r.name not in state)
    state.update((name, checkpoint.load(name)) for name in rest)
    order = [r.name for r in checkpoint.tensors.values() if r.name in state]
    state = {name: state[name] for name in [*order, *(n for n in state if n not in order)]}
    return Packed(state, _packed_config(src, plans, removed_heads, align), tuple(plans), align)


@dataclass(frozen=True)
class _Reader:
    """One layer's tensors: those its plan was just decided from (`held`, in memory), else
    read from the checkpoint, by the rows kept where only some are."""

    checkpoint: Checkpoint
    held: dict[str, Any]

    def whole(self, name: str) -> Any:
        held = self.held.get(name)
        return self.checkpoint.load(name) if held is None else held

    def rows(self, name: str, rows: list[int]) -> Any:
        import torch

        held = self.held.get(name)
        if held is None:
            return self.checkpoint.load_rows(name, rows)
        return held.index_select(0, torch.tensor(rows, dtype=torch.long))


def _pack_layer(
    read: _Reader, src: _Source, keep: LayerKeep, align: int, state: dict[str, Any]
) -> LayerPlan:
    """One layer's matrices, biases and whole-width norms, sliced by `keep` into `state`.
    Rows kept are read alone; O and the FFN's second matrix lose columns (read whole). An
    encoder's removed head leaves its constant W_O[:, h] b_V[h] in the output bias."""
    import torch

    g, family, layer = src.geometry, src.family, keep.layer
    hd = g.head_dim
    stored_heads = g.kept_heads(layer)
    q_rows = _rows([stored_heads.index(h) for h in keep.heads], hd)
    kv_rows = q_rows
    if family.kind == "decoder":
        kv_rows = _rows([g.kept_kv_groups(layer).index(k) for k in keep.kv_groups], hd)
    units = torch.tensor(keep.units, dtype=torch.long)
    width = -(-len(units) // align) * align
    # unfused part -> (positions kept along its slicing dimension, size stored)
    parts = {
        "q": (q_rows, len(q_rows)),
        "k": (kv_rows, len(kv_rows)),
        "v": (kv_rows, len(kv_rows)),
        "ffn_gate": (units, width),
        "ffn_in": (units, width),
        "o": (q_rows, len(q_rows)),
        "ffn_out": (units, width),
    }
    whole: dict[str, Any] = {}
    for role in family.layer_roles:
        name, bias = src.weight(layer, role), src.name(layer, role, "bias")
        if role in ("o", "ffn_out"):  # columns: the matrix is read whole
            idx, size = parts[role]
            weight = whole[role] = read.whole(name)
            state[name] = _take(weight, idx, size, dim=1)
            if bias is not None:
                state[bias] = read.whole(bias)
            continue
        sections = family.fused.get(role, (role,))
        sizes = fused_sizes(family, g, layer, role) if role in family.fused else (0,)
        offsets = [sum(sizes[:i]) for i in range(len(sections))]
        kept = [parts[part] for part in sections]
        rows = torch.cat(
            [torch.zeros(0, dtype=torch.long)]
            + [idx + off for (idx, _), off in zip(kept, offsets, strict=True)]
        )
        state[name] = _pad_sections(read.rows(name, rows.tolist()), kept)
        if bias is not None:
            state[bias] = _pad_sections(read.rows(bias, rows.tolist()), kept)
        for part, (idx, _) in zip(sections, kept, strict=True):
            norm = src.name(layer, part, "norm")
            if norm is not None:
                state[norm] = read.rows(norm, idx.tolist())
    if family.kind != "decoder":
        _fold_removed_heads(read, src, layer, q_rows, whole["o"], state)
    kv_groups = keep.kv_groups if family.kind == "decoder" else ()
    return LayerPlan(layer, keep.heads, len(units), width, kv_groups)


def _pad_sections(tensor: Any, kept: list[tuple[Any, int]]) -> Any:
    """Rows read as consecutive sections (one per fused part), each zero-padded from its
    kept rows up to its stored size."""
    import torch

    pieces = tensor.split([len(idx) for idx, _ in kept])
    padded = [
        _take(piece, torch.arange(len(idx)), size, dim=0)
        for piece, (idx, size) in zip(pieces, kept, strict=True)
    ]
    return torch.cat(padded).contiguous()


def _fold_removed_heads(
    read: _Reader, src: _Source, layer: int, q_rows: Any, o: Any, state: dict[str, Any]
) -> None:
    """An encoder's removed heads add a constant W_O[:, h] b_V[h] to every output: it goes
    into the output bias (computed in float64, from the stored O, `o`, and V bias)."""
    import torch

    g = src.geometry
    v_bias = src.name(layer, "v", "bias")
    stored = len(g.kept_heads(layer)) * g.head_dim
    dead = sorted(set(range(stored)) - set(q_rows.tolist()))
    if not dead or v_bias is None:
        return
    dead_rows = torch.tensor(dead, dtype=torch.long)
    o_bias = bias_name(src.weight(layer, "o"))
    bias = state.get(o_bias, torch.zeros(g.hidden_size, dtype=o.dtype))
    fold = o[:, dead_rows].double() @ read.whole(v_bias)[dead_rows].double()
    state[o_bias] = (bias.double() + fold).to(o.dtype)


def _packed_config(
    src: _Source, plans: list[LayerPlan], removed_heads: dict[str, list[int]], align: int
) -> dict[str, Any]:
    """config.json of the packed checkpoint: removed heads and stored widths recorded; a
    compressed-tensors checkpoint's quantization_config dropped (packed weights are its
    decompressed values, stored as plain floating-point tensors)."""
    config = plain_config(src.checkpoint.config)
    config["pruned_heads"] = removed_heads
    packing: dict[str, Any] = {
        "format": PACKING_FORMAT,
        "intermediate_sizes": [p.width for p in plans],
        "units_kept": [p.units for p in plans],
        "align": align,
        "note": "pruned_heads: dense indices of heads absent from Q/K/V/O (transformers 4 "
        "meaning); intermediate_sizes: stored FFN widths per layer, zero units padding "
        "units_kept up to a multiple of align. Load with prunecard "
        "(analyzer.runtime.packing.load).",
    }
    if src.family.kind == "decoder":
        packing["kv_heads"] = [len(p.kv_groups) for p in plans]
        packing["note"] += (
            " Decoders: kv_heads are the K/V groups stored per layer; a group is removed with "
            "all its query heads (pruned_heads names them), so each layer keeps "
            "num_attention_heads / num_key_value_heads query heads per group."
        )
    config["prunecard_packing"] = packing
    return config


def _take(tensor: Any, idx: Any, width: int, *, dim: int) -> Any:
    """`tensor` restricted to `idx` along `dim`, then zero-padded up to `width` there."""
    import torch

    kept = tensor.index_select(dim, idx)
    shape = list(kept.shape)
    shape[dim] = width
    out = torch.zeros(shape, dtype=tensor.dtype)
    out.narrow(dim, 0, len(idx)).copy_(kept)
    return out


def _dense_state(src: _Source) -> dict[str, Any]:
    """Every head and unit back at its dense size; removed ones are zeros (same outputs)."""
    import torch

    _check_room(src)
    g, state = src.geometry, src.checkpoint.state_dict()
    hd = g.head_dim
    q_dense, kv_dense = g.num_heads * hd, g.num_kv_heads * hd
    for layer in range(g.num_layers):
        views = _views(src, state, layer)
        q_rows = _rows(g.kept_heads(layer), hd)
        kv_rows = _rows(g.kept_kv_groups(layer), hd)
        width = views["ffn_in"][0].shape[0]
        if width > g.intermediate_size:
            raise CheckpointError(
                src.checkpoint.root / "config.json",
                f"layer {layer} stores {width} FFN units, more than intermediate size "
                f"{g.intermediate_size}",
            )
        units = torch.arange(width)
        places = {
            "q": (q_rows, q_dense, 0),
            "k": (kv_rows, kv_dense, 0),
            "v": (kv_rows, kv_dense, 0),
            "o": (q_rows, q_dense, 1),
            "ffn_gate": (units, g.intermediate_size, 0),
            "ffn_in": (units, g.intermediate_size, 0),
            "ffn_out": (units, g.intermediate_size, 1),
        }
        for role, (weight, bias) in views.items():
            idx, size, dim = places[role]
            views[role] = (
                _place(weight, idx, size, dim=dim),
                _place(bias, idx, size, dim=0) if bias is not None and dim == 0 else bias,
            )
            norm = src.name(layer, role, "norm")
            if norm is not None:  # zero weights where the rows are zero: the same mean
                state[norm] = _place(state[norm], idx, size, dim=0)
        _store(src, state, layer, views)
    return state


def _check_room(src: _Source) -> None:
    """Refuse to rebuild a dense model that cannot fit in this machine's memory: the dense
    sizes of a packed checkpoint come from its config.json, which the file cannot vouch for
    (a hostile one claims an FFN of billions of units)."""
    import os

    import torch

    tensors = src.checkpoint.tensors
    dense = sum(
        math.prod(shape) * getattr(torch, tensors[name].dtype).itemsize
        for name, shape in src.dense_shapes.items()
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if dense > memory:
        raise CheckpointError(
            src.checkpoint.root / "config.json",
            f"its dense model ({fixed(dense / 1e9, 1)} GB at the sizes config.json states) would "
            f"not fit in this machine's {fixed(memory / 1e9, 1)} GB of memory",
        )


def _rows(blocks: Any, size: int) -> Any:
    """Row indices of the `size`-row blocks `blocks` (heads or K/V groups), in order."""
    import torch

    return torch.tensor([b * size + j for b in blocks for j in range(size)], dtype=torch.long)


def _views(src: _Source, state: dict[str, Any], layer: int) -> dict[str, tuple[Any, Any]]:
    """(weight, bias or None) per unfused role of `layer` (q, k, v, o, [ffn_gate,] ffn_in,
    ffn_out): a fused matrix (the family's `fused`) split into its parts as stored."""
    family = src.family
    out: dict[str, tuple[Any, Any]] = {}
    for role in family.layer_roles:
        weight = state[src.weight(layer, role)]
        bias_key = src.name(layer, role, "bias")
        bias = state[bias_key] if bias_key is not None else None
        if role in family.fused:
            sizes = list(fused_sizes(family, src.geometry, layer, role))
            biases = bias.split(sizes) if bias is not None else (None,) * len(sizes)
            parts = zip(weight.split(sizes), biases, strict=True)
            out.update(zip(family.fused[role], parts, strict=True))
        else:
            out[role] = (weight, bias)
    return out


def _store(
    src: _Source, state: dict[str, Any], layer: int, views: dict[str, tuple[Any, Any]]
) -> None:
    """Write `_views`-shaped tensors back into `state` under the checkpoint's names."""
    import torch

    for role in src.family.layer_roles:
        parts = [views[r] for r in src.family.fused.get(role, (role,))]
        state[src.weight(layer, role)] = torch.cat([w for w, _ in parts]).contiguous()
        bias_key = src.name(layer, role, "bias")
        if bias_key is not None:
            state[bias_key] = torch.cat([b for _, b in parts]).contiguous()


def _place(tensor: Any, idx: Any, size: int, *, dim: int) -> Any:
    """A zero tensor of `size` along `dim` holding `tensor` at positions `idx`."""
    import torch

    shape = list(tensor.shape)
    shape[dim] = size
    out = torch.zeros(shape, dtype=tensor.dtype)
    out.index_copy_(dim, idx, tensor)
    return out


# --------------------------------------------------------------------------- models


def load(
    path: str | Path | Checkpoint,
    *,
    dtype: Any = None,
    device: str = "cpu",
    layout: str = "stored",
    align: int = 1,
    plan: PackPlan | None = None,
) -> Any:
    """A transformers 5 model (eval mode) for an unpacked, legacy-pruned or packed checkpoint.

    `path` is a local folder or file, or a Hub id ("owner/name" or "owner/name@revision")
    that is not one, fetched with huggingface_hub into its cache (offline, a cached copy is
    used; see `analyzer.weights.hub`), or a `Checkpoint` already opened. `dtype` defaults to
    the checkpoint's weights' dtype; `layout` picks "stored", "dense" or "packed" (see the
    module docstring); `align` and `plan` (None: decided now) apply to "packed".
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    src = _open(path if isinstance(path, Checkpoint) else _local(path))
    config = plain_config(src.checkpoint.config)
    if layout == "packed":
        return build(
            src.checkpoint,
            pack_state(src.checkpoint, plan, align=align),
            dtype=dtype,
            device=device,
        )
    if layout == "dense" or not src.packed:
        state = _dense_state(src)
        config.pop("prunecard_packing", None)
        config["pruned_heads"] = {}
    else:
        state = src.checkpoint.state_dict()
    return _build(src, config, state, dtype=dtype, device=device)


def build(checkpoint: Checkpoint, packed: Packed, *, dtype: Any = None, device: str = "cpu") -> Any:
    """The model of a `Packed` state of `checkpoint` (what `load(layout="packed")` gives)."""
    return _build(
        _open(checkpoint), dict(packed.config), dict(packed.state), dtype=dtype, device=device
    )


def _local(path: str | Path) -> Path:
    """A local path as it is; a Hub id that names no local path, fetched (or found in the
    cache) by `analyzer.weights.hub`."""
    from analyzer.weights.hub import fetch, parse_source

    return fetch(parse_source(path)).path


def _build(
    src: _Source, config_dict: dict[str, Any], state: dict[str, Any], *, dtype: Any, device: str
) -> Any:
    import transformers
    from transformers.initialization import no_init_weights

    config_path = src.checkpoint.root / "config.json"
    model_type = config_dict["model_type"]
    try:
        config = transformers.CONFIG_MAPPING[model_type].from_dict(config_dict)
    except Exception as exc:  # transformers (huggingface_hub) validates field types strictly
        problem = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()[:200]
        raise CheckpointError(config_path, f"rejected by transformers ({problem})") from None
    check_model_config(config, config_path, {k: tuple(v.shape) for k, v in state.items()})
    cls = _model_class(config_dict, state)
    if dtype is None:
        floats = [t.dtype for t in state.values() if t.is_floating_point()]
        dtype = max(set(floats), key=floats.count)
    # SDPA where the class supports it (Gemma2's logit soft-capping needs eager attention)
    attention = "eager" if getattr(cls, "_supports_sdpa", True) is False else "sdpa"
    # a packed checkpoint is built at its widest stored FFN, never at the dense width its
    # config.json states (which the file does not hold, and a hostile one sets to billions)
    width_key = src.family.keys["intermediate_size"]
    dense_width = getattr(config, width_key)
    if src.geometry.ffn_widths:
        setattr(config, width_key, max(1, *src.geometry.ffn_widths.values()))
    # built as from_pretrained builds it: under `dtype` as torch's default, so what a model
    # computes itself in fp32 (rotary frequencies) stays fp32; never cast afterwards
    with no_init_weights():
        model = (
            cls.from_config(config, attn_implementation=attention, dtype=dtype)
            if cls.__name__.startswith("AutoModel")
            else cls._from_config(config, attn_implementation=attention, dtype=dtype)
        )
    setattr(model.config, width_key, dense_width)
    state = _rename(state, model)
    tied = model.get_expanded_tied_weights_keys() or {}
    for alias, target in tied.items():  # a file may keep the alias and drop the target
        if target not in state and alias in state:
            state[target] = state.pop(alias)
    state = _cast(state, model, dtype)
    _fit_modules(model, state, src.family, src.geometry.head_dim)
    result = model.load_state_dict(state, strict=False, assign=True)
    _norm_over_dense_width(model, src.family, src.geometry)
    missing = [k for k in result.missing_keys if k not in tied]
    if missing:
        raise CheckpointError(
            config_path,
            f"{cls.__name__} needs {len(missing)} tensor(s) the checkpoint lacks, e.g. "
            f"{missing[0]!r} (does `architectures` match the weights?)",
        )
    if tied:
        model.tie_weights()
    return model.to(device=device).eval().requires_grad_(False)


def _cast(state: dict[str, Any], model: Any, dtype: Any) -> dict[str, Any]:
    """Each floating tensor in the dtype from_pretrained gives it: a module its
    `_keep_in_fp32_modules` (fp16) or `_keep_in_fp32_modules_strict` (fp16, bf16) name in
    fp32, a parameter the model created in another dtype in that one, the rest in `dtype`."""
    import re

    plan = [(re.compile(k.replace("*", ".*")), d) for k, d in model._get_dtype_plan(dtype).items()]
    built = {k: v.dtype for k, v in model.state_dict().items()}

    def wanted(name: str) -> Any:
        kept = next((d for pattern, d in plan if pattern.search(name)), None)
        return kept or built.get(name, dtype)

    return {k: v.to(wanted(k)) if v.is_floating_point() else v for k, v in state.items()}


# a task head's tensor -> the Auto class that has that head
_HEADS = (
    ("qa_outputs.weight", "AutoModelForQuestionAnswering"),
    ("cls.predictions.transform.dense.weight", "AutoModelForMaskedLM"),
    ("lm_head.dense.weight", "AutoModelForMaskedLM"),
    ("vocab_transform.weight", "AutoModelForMaskedLM"),
    ("classifier.weight", "AutoModelForSequenceClassification"),
)


def _model_class(config: dict[str, Any], state: dict[str, Any]) -> Any:
    """The class `architectures` names; without one, the Auto class whose task head the
    tensors hold (older configs often lack `architectures`), else the base model."""
    import transformers

    architectures = config.get("architectures") or []
    cls = getattr(transformers, architectures[0], None) if architectures else None
    if cls is not None and hasattr(cls, "_from_config"):
        return cls
    for head, auto in _HEADS:
        if head in state:
            return getattr(transformers, auto)
    return transformers.AutoModel


def _rename(state: dict[str, Any], model: Any) -> dict[str, Any]:
    """Checkpoint names to the model's: base-model prefix added or dropped, gamma/beta."""
    wanted = set(model.state_dict())
    prefix = f"{model.base_model_prefix}."
    out = {}
    for name, tensor in state.items():
        candidates = (
            name,
            prefix + name,
            name.removeprefix(prefix),
            name.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
                "LayerNorm.beta", "LayerNorm.bias"
            ),
        )
        out[next((c for c in candidates if c in wanted), name)] = tensor
    return out


def _fit_modules(model: Any, state: dict[str, Any], family: Family, head_dim: int) -> None:
    """Narrow each encoder Linear to the shape its weights have; set per-layer head counts."""
    import functools
    import warnings

    import torch

    linears = {}
    for name, module in model.named_modules():
        param = classify(f"{name}.weight", family)
        if isinstance(module, torch.nn.Linear):
            if param.layer is not None and param.role != "other":
                linears[(param.layer, param.role)] = name
        elif param.normalises is not None:  # a norm narrowed with its rows (OLMo2's q_norm)
            weight = state.get(f"{name}.weight")
            if weight is not None and weight.shape != module.weight.shape:
                module.weight = torch.nn.Parameter(torch.empty(weight.shape, device="meta"))
    for name in linears.values():
        weight = state.get(f"{name}.weight")
        module = model.get_submodule(name)
        if weight is not None and tuple(weight.shape) != tuple(module.weight.shape):
            parent, _, child = name.rpartition(".")
            out_features, in_features = weight.shape
            with warnings.catch_warnings():  # zero-width layers: "no-op init" is expected
                warnings.simplefilter("ignore", UserWarning)
                narrow = torch.nn.Linear(
                    in_features, out_features, bias=module.bias is not None, device="meta"
                )
            setattr(model.get_submodule(parent), child, narrow)
    layers = sorted({layer for layer, _ in linears})
    for layer in layers:
        if family.kind == "decoder":
            _fit_decoder_attention(model, linears, family, layer, head_dim)
            continue
        q_name = linears[(layer, "q")]
        attention_name = q_name.rpartition(".")[0]
        attention = model.get_submodule(attention_name)
        heads = model.get_submodule(q_name).out_features // head_dim
        for attr in ("num_attention_heads", "n_heads"):
            if hasattr(attention, attr):
                setattr(attention, attr, heads)
        if hasattr(attention, "all_head_size"):
            attention.all_head_size = heads * head_dim
        if heads == 0:
            o_name = linears[(layer, "o")]
            inner = model.get_submodule(o_name) if o_name.startswith(attention_name) else None
            attention.forward = functools.partial(_no_heads, inner)


def _norm_over_dense_width(model: Any, family: Family, geometry: Geometry) -> None:
    """Each narrowed whole-width norm (`families.WidthNorm`) made to divide by the dense
    width, as the unpacked model does: the rows packing removed are zero there, so they add
    nothing to the sum of squares but do count in its mean. An RMS norm over k of n rows,
    w x / sqrt(sum(x^2) / k + eps), gives w x / sqrt(sum(x^2) / n + eps) with eps scaled by
    n / k and w by sqrt(n / k) (done on the loaded weights, never on the file's)."""
    import torch

    for name, module in model.named_modules():
        param = classify(f"{name}.weight", family)
        if param.normalises is None or param.layer is None:
            continue
        heads = geometry.num_heads if param.normalises == "q" else geometry.num_kv_heads
        dense, stored = heads * geometry.head_dim, module.weight.numel()
        if 0 < stored < dense:
            module.variance_epsilon *= dense / stored
            module.weight = torch.nn.Parameter(
                module.weight * math.sqrt(dense / stored), requires_grad=False
            )


def _fit_decoder_attention(
    model: Any, linears: dict[tuple[int, str], str], family: Family, layer: int, head_dim: int
) -> None:
    """Per-layer K/V head counts of a decoder attention whose projections were narrowed.
    Llama-like attention infers head counts from the projections' widths; Phi-3 slices its
    fused QKV by its config's head counts, so its attention gets a config of its own. The
    query heads per K/V group (`num_key_value_groups`) never change: groups go whole."""
    import copy
    import functools

    o_name = linears[(layer, "o")]
    attention = model.get_submodule(o_name.rpartition(".")[0])
    fused = "qkv" in family.fused
    group = attention.num_key_value_groups
    if not fused:
        heads = model.get_submodule(linears[(layer, "q")]).out_features // head_dim
    else:  # fused rows: heads + 2 * heads / group
        qkv = model.get_submodule(linears[(layer, "qkv")])
        heads = qkv.out_features // head_dim * group // (group + 2)
    if hasattr(attention, "num_key_value_heads"):
        attention.num_key_value_heads = heads // group
    if hasattr(attention, "config") and fused:
        attention.config = copy.copy(attention.config)
        attention.config.num_attention_heads = heads
        attention.config.num_key_value_heads = heads // group
    if heads == 0:
        attention.forward = functools.partial(_no_kv_groups, attention)


def _no_kv_groups(
    attention: Any, hidden_states: Any, *args: Any, cache: Any = None, **kwargs: Any
) -> tuple[Any, None]:
    """Attention of a decoder layer whose K/V groups were all removed: it adds nothing (its
    output projection has no input columns, so only its bias, if any). The KV cache still
    grows by one placeholder element per token, so its length (which sets the positions of
    the next tokens) stays right."""
    cache = kwargs.get("past_key_values") if cache is None else cache  # its older name
    if cache is not None:
        placeholder = hidden_states.new_zeros(*hidden_states.shape[:-1], 1, 1).transpose(1, 2)
        cache.update(placeholder, placeholder, attention.layer_idx)
    empty = hidden_states.new_zeros(*hidden_states.shape[:-1], 0)
    return attention.o_proj(empty), None


def _no_heads(out_proj: Any, hidden_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, None]:
    """Attention of a layer whose heads were all removed: an empty context (the output
    projection then gives its bias, where the folded constants live)."""
    empty = hidden_states.new_zeros(*hidden_states.shape[:-1], 0)
    return (empty if out_proj is None else out_proj(empty)), None


# --------------------------------------------------------------------------- writing


def pack(
    path: str | Path | Checkpoint,
    out: str | Path,
    *,
    align: int = 1,
    force: bool = False,
    plan: PackPlan | None = None,
) -> PackResult:
    """Write a packed copy of the checkpoint at `path` to the folder `out`, by `plan` (None:
    decided now).

    The input is only read. `out` must not exist unless `force`; it appears complete or
    not at all.
    """
    checkpoint = open_checkpoint(path)
    _check_out(checkpoint, Path(out), force)
    return write_packed(checkpoint, pack_state(checkpoint, plan, align=align), out, force=force)


def _check_out(checkpoint: Checkpoint, out: Path, force: bool) -> None:
    from analyzer.errors import OutputError

    if out.exists() and not force:
        raise OutputError(out, "already exists (pass --force to replace it)")
    if out.resolve() == checkpoint.root.resolve():
        raise OutputError(out, "is the input checkpoint; choose another folder")


def write_packed(
    checkpoint: Checkpoint, packed: Packed, out: str | Path, *, force: bool = False
) -> PackResult:
    """Write `packed` (from `pack_state(checkpoint)`) to the folder `out`, with the
    checkpoint's tokenizer files."""
    from safetensors.torch import save_file

    out = Path(out)
    _check_out(checkpoint, out, force)
    src = _open(checkpoint)
    with staged_dir(out, force=force) as tmp:
        save_file(
            {k: v.contiguous() for k, v in packed.state.items()},
            str(tmp / "model.safetensors"),
            metadata={"format": "pt"},
        )
        text = json.dumps(packed.config, indent=2) + "\n"
        (tmp / "config.json").write_text(text, encoding="utf-8")
        copy_tokenizer_files(checkpoint.root, tmp)
        packed_bytes = (tmp / "model.safetensors").stat().st_size
    return PackResult(
        out=out,
        layers=packed.layers,
        num_heads=src.geometry.num_heads,
        intermediate_size=src.geometry.intermediate_size,
        align=packed.align,
        original_bytes=sum(f.stat().st_size for f in checkpoint.weight_files),
        packed_bytes=packed_bytes,
        num_kv_heads=src.geometry.num_kv_heads if src.family.kind == "decoder" else 0,
    )
