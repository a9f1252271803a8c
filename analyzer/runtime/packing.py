"""Packed models: heads and FFN units that cannot change the output, physically removed.

transformers 5 ignores `pruned_heads`, so every checkpoint is turned into a state dict the
model can take as it is, in one of three layouts:

- "dense": every head and FFN unit present; heads a legacy checkpoint removed come back as
  zeros, so the model runs at the dense model's cost with the same outputs;
- "packed": heads and units found removed by the analyzer's rule (`heads_alive`,
  `units_alive`) are sliced out; a removed head's constant contribution W_O[:, h] b_V[h]
  is folded into the output bias; kept FFN widths are padded with zero units up to a
  multiple of `align` (GPU tensor-core tiles);
- "stored": whatever the file holds (packed for prunecard-packed checkpoints, dense for
  everything else).

A packed checkpoint keeps transformers 4's `pruned_heads` meaning (dense indices of the
heads missing from Q/K/V/O) and records the stored FFN widths under
`config["prunecard_packing"]`, so `analyze` reports its dense figures and `load` builds
narrower Linear modules (per-layer head counts and FFN widths) from the tensor shapes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError
from analyzer.outputs import staged_dir
from analyzer.weights.architecture import (
    Family,
    Geometry,
    bias_name,
    check_model_config,
    classify,
    detect,
)
from analyzer.weights.checkpoint import Checkpoint, copy_tokenizer_files, open_checkpoint
from analyzer.weights.sparsity import heads_alive, units_alive

__all__ = ["LAYOUTS", "LayerPlan", "PackResult", "load", "pack", "packed_state"]

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


@dataclass(frozen=True)
class PackResult:
    out: Path
    layers: tuple[LayerPlan, ...]
    num_heads: int
    intermediate_size: int
    align: int
    original_bytes: int  # the input's weight files
    packed_bytes: int  # the packed model.safetensors

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
    names: dict[tuple[int, str, str], str]  # (layer, role, "weight"/"bias") -> tensor name

    def name(self, layer: int, role: str, kind: str = "weight") -> str | None:
        return self.names.get((layer, role, kind))

    @property
    def packed(self) -> bool:
        return bool(self.checkpoint.config.get("prunecard_packing"))


def _open(path: str | Path) -> _Source:
    checkpoint = open_checkpoint(path)
    config_path = checkpoint.root / "config.json"
    family, geometry = detect(checkpoint.config, config_path)
    if family is None or geometry is None:
        raise CheckpointError(
            config_path,
            f"model_type {checkpoint.config.get('model_type')!r} is not supported for "
            "loading or packing (supported: BERT, RoBERTa, DistilBERT)",
        )
    names: dict[tuple[int, str, str], str] = {}
    for name in checkpoint.tensors:
        param = classify(name, family)
        if param.layer is not None and param.role in ("q", "k", "v", "o", "ffn_in", "ffn_out"):
            names[(param.layer, param.role, param.kind)] = name
    for layer in range(geometry.num_layers):
        for role in ("q", "k", "v", "o", "ffn_in", "ffn_out"):
            if (layer, role, "weight") not in names:
                raise CheckpointError(config_path, f"layer {layer} has no {role} weight")
    return _Source(checkpoint, family, geometry, names)


# --------------------------------------------------------------------------- state dicts


def packed_state(
    path: str | Path, *, align: int = 1
) -> tuple[dict[str, Any], dict[str, Any], tuple[LayerPlan, ...]]:
    """The packed tensors, config.json and per-layer plan of a checkpoint (nothing written)."""
    return _pack(_open(path), align)


def _pack(src: _Source, align: int) -> tuple[dict[str, Any], dict[str, Any], tuple[LayerPlan, ...]]:
    import torch

    if align < 1:
        raise ValueError(f"align must be at least 1, got {align}")
    g, state = src.geometry, src.checkpoint.state_dict()
    hd = g.head_dim
    plans: list[LayerPlan] = []
    removed_heads: dict[str, list[int]] = {}
    for layer in range(g.num_layers):
        w = {r: state[src.name(layer, r)] for r in ("q", "k", "v", "o", "ffn_in", "ffn_out")}
        stored = g.kept_heads(layer)
        alive = heads_alive(w["v"].ne(0).any(dim=1), w["o"].ne(0).any(dim=0), hd).tolist()
        keep = [i for i, ok in enumerate(alive) if ok]
        rows = torch.tensor([i * hd + j for i in keep for j in range(hd)], dtype=torch.long)
        dead = torch.tensor(
            [i * hd + j for i, ok in enumerate(alive) if not ok for j in range(hd)],
            dtype=torch.long,
        )
        o_name = src.name(layer, "o")
        v_bias = src.name(layer, "v", "bias")
        if len(dead) and v_bias is not None:
            o_bias = bias_name(o_name)
            bias = state.get(o_bias, torch.zeros(g.hidden_size, dtype=w["o"].dtype))
            fold = w["o"][:, dead].double() @ state[v_bias][dead].double()
            state[o_bias] = (bias.double() + fold).to(w["o"].dtype)
        for role in _ATTN_ROLES:
            state[src.name(layer, role)] = w[role][rows].contiguous()
            b = src.name(layer, role, "bias")
            if b is not None:
                state[b] = state[b][rows].contiguous()
        state[o_name] = w["o"][:, rows].contiguous()
        kept_heads = tuple(stored[i] for i in keep)
        gone = [h for h in range(g.num_heads) if h not in kept_heads]
        if gone:
            removed_heads[str(layer)] = gone

        units = units_alive(w["ffn_in"].ne(0).any(dim=1), w["ffn_out"].ne(0).any(dim=0))
        idx = units.nonzero().squeeze(1)
        width = -(-len(idx) // align) * align
        in_name, out_name = src.name(layer, "ffn_in"), src.name(layer, "ffn_out")
        state[in_name] = _take(w["ffn_in"], idx, width, dim=0)
        state[out_name] = _take(w["ffn_out"], idx, width, dim=1)
        in_bias = src.name(layer, "ffn_in", "bias")
        if in_bias is not None:
            state[in_bias] = _take(state[in_bias], idx, width, dim=0)
        plans.append(LayerPlan(layer, kept_heads, len(idx), width))

    config = dict(src.checkpoint.config)
    config["pruned_heads"] = removed_heads
    config["prunecard_packing"] = {
        "format": PACKING_FORMAT,
        "intermediate_sizes": [p.width for p in plans],
        "units_kept": [p.units for p in plans],
        "align": align,
        "note": "pruned_heads: dense indices of heads absent from Q/K/V/O (transformers 4 "
        "meaning); intermediate_sizes: stored FFN widths per layer, zero units padding "
        "units_kept up to a multiple of align. Load with prunecard "
        "(analyzer.runtime.packing.load).",
    }
    return state, config, tuple(plans)


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

    g, state = src.geometry, src.checkpoint.state_dict()
    hd = g.head_dim
    for layer in range(g.num_layers):
        rows = torch.tensor(
            [h * hd + j for h in g.kept_heads(layer) for j in range(hd)], dtype=torch.long
        )
        if len(rows) != g.hidden_size:
            for role in _ATTN_ROLES:
                name = src.name(layer, role)
                state[name] = _place(state[name], rows, g.hidden_size, dim=0)
                b = src.name(layer, role, "bias")
                if b is not None:
                    state[b] = _place(state[b], rows, g.hidden_size, dim=0)
            name = src.name(layer, "o")
            state[name] = _place(state[name], rows, g.hidden_size, dim=1)
        width = state[src.name(layer, "ffn_in")].shape[0]
        if width != g.intermediate_size:
            if width > g.intermediate_size:
                raise CheckpointError(
                    src.checkpoint.root / "config.json",
                    f"layer {layer} stores {width} FFN units, more than intermediate size "
                    f"{g.intermediate_size}",
                )
            units = torch.arange(width)
            for role, dim in (("ffn_in", 0), ("ffn_out", 1)):
                name = src.name(layer, role)
                state[name] = _place(state[name], units, g.intermediate_size, dim=dim)
            b = src.name(layer, "ffn_in", "bias")
            if b is not None:
                state[b] = _place(state[b], units, g.intermediate_size, dim=0)
    return state


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
    path: str | Path,
    *,
    dtype: Any = None,
    device: str = "cpu",
    layout: str = "stored",
    align: int = 1,
) -> Any:
    """A transformers 5 model (eval mode) for an unpacked, legacy-pruned or packed checkpoint.

    `path` is a local folder or file, or a Hub id ("owner/name") that is not one, fetched
    with huggingface_hub into its cache (offline, a cached copy is used). `dtype` defaults
    to the checkpoint's weights' dtype; `layout` picks "stored", "dense" or "packed" (see
    the module docstring); `align` applies to "packed".
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    src = _open(_local(path))
    config = dict(src.checkpoint.config)
    if layout == "packed":
        state, config, _ = _pack(src, align)
    elif layout == "dense" or not src.packed:
        state = _dense_state(src)
        config.pop("prunecard_packing", None)
        config["pruned_heads"] = {}
    else:
        state = src.checkpoint.state_dict()
    return _build(src, config, state, dtype=dtype, device=device)


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_HUB_FILES = ("*.json", "*.safetensors", "*.bin", "*.txt", "*.model")  # weights, config, tokenizer


def _local(path: str | Path) -> Path:
    """A local path as it is; a Hub id that names no local path, downloaded (or found in
    the cache) by `huggingface_hub.snapshot_download`."""
    if Path(path).exists() or not _HUB_ID.fullmatch(str(path)):
        return Path(path)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(path), allow_patterns=list(_HUB_FILES)))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise CheckpointError(
            path,
            "no such local folder, and the Hub id could not be fetched (offline or not found: "
            f"{reason}); download the model folder and pass its path",
        ) from None


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
    with no_init_weights():
        model = (
            cls.from_config(config, attn_implementation="sdpa")
            if cls.__name__.startswith("AutoModel")
            else cls._from_config(config, attn_implementation="sdpa")
        )
    state = _rename(state, model)
    tied = model.get_expanded_tied_weights_keys() or {}
    for alias, target in tied.items():  # a file may keep the alias and drop the target
        if target not in state and alias in state:
            state[target] = state.pop(alias)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    _fit_modules(model, state, src.family, src.geometry.head_dim)
    result = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if k not in tied]
    if missing:
        raise CheckpointError(
            config_path,
            f"{cls.__name__} needs {len(missing)} tensor(s) the checkpoint lacks, e.g. "
            f"{missing[0]!r} (does `architectures` match the weights?)",
        )
    if tied:
        model.tie_weights()
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


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
        if isinstance(module, torch.nn.Linear):
            param = classify(f"{name}.weight", family)
            if param.layer is not None and param.role != "other":
                linears[(param.layer, param.role)] = name
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


def _no_heads(out_proj: Any, hidden_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, None]:
    """Attention of a layer whose heads were all removed: an empty context (the output
    projection then gives its bias, where the folded constants live)."""
    empty = hidden_states.new_zeros(*hidden_states.shape[:-1], 0)
    return (empty if out_proj is None else out_proj(empty)), None


# --------------------------------------------------------------------------- writing


def pack(path: str | Path, out: str | Path, *, align: int = 1, force: bool = False) -> PackResult:
    """Write a packed copy of the checkpoint at `path` to the folder `out`.

    The input is only read. `out` must not exist unless `force`; it appears complete or
    not at all.
    """
    from safetensors.torch import save_file

    src = _open(path)
    out = Path(out)
    if out.exists() and not force:
        from analyzer.errors import OutputError

        raise OutputError(out, "already exists (pass --force to replace it)")
    if out.resolve() == src.checkpoint.root.resolve():
        from analyzer.errors import OutputError

        raise OutputError(out, "is the input checkpoint; choose another folder")
    state, config, plans = _pack(src, align)
    with staged_dir(out, force=force) as tmp:
        save_file(
            {k: v.contiguous() for k, v in state.items()},
            str(tmp / "model.safetensors"),
            metadata={"format": "pt"},
        )
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        copy_tokenizer_files(src.checkpoint.root, tmp)
        packed_bytes = (tmp / "model.safetensors").stat().st_size
    return PackResult(
        out=out,
        layers=plans,
        num_heads=src.geometry.num_heads,
        intermediate_size=src.geometry.intermediate_size,
        align=align,
        original_bytes=sum(f.stat().st_size for f in src.checkpoint.weight_files),
        packed_bytes=packed_bytes,
    )
