"""Which parameter is which: (layer, role) per name, and the dense shapes a model had.

Supported families are recognised from config.json's `model_type`; each maps its own
module names to roles (q, k, v, o, ffn_in, ffn_out, ffn_gate, the fused qkv / ffn_gate_up),
all written in `analyzer.weights.families`. Decoders use grouped-query attention:
`num_kv_heads` K/V heads, each shared by `num_heads / num_kv_heads` query heads. Anything
else is "generic": every
2-D weight still gets statistics, those inside repeated blocks (`layers.N.`, `layer.N.`,
`h.N.`, `blocks.N.`) count as linear layers, and no heads or FFN units are inferred.

Legacy checkpoints (transformers 4, nn_pruning) list removed heads in `pruned_heads` and
store smaller Q/K/V/O matrices; packed checkpoints written by prunecard also store
narrower FFN matrices and record their widths under `prunecard_packing`; packed decoders
store only the K/V groups of the query heads they keep (`pruned_heads` names whole groups).
Dense shapes undo all of it, so removed heads and units count as zeros at their original
size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError
from analyzer.weights.checkpoint import Checkpoint
from analyzer.weights.families import Family, find_family

__all__ = [
    "GENERIC_LINEAR",
    "Geometry",
    "Param",
    "bias_name",
    "check_model_config",
    "check_shapes",
    "classify",
    "dense_shape",
    "detect",
    "fused_sizes",
    "usable_positions",
]


_OPTIONAL_KEYS = ("num_kv_heads", "head_dim")


@dataclass(frozen=True)
class Geometry:
    """The dense model's shape, plus what the checkpoint already removed physically."""

    num_layers: int
    num_heads: int  # query heads
    hidden_size: int
    intermediate_size: int
    pruned_heads: dict[int, tuple[int, ...]]  # layer -> dense indices of removed heads
    ffn_widths: dict[int, int]  # layer -> stored FFN width, for prunecard-packed checkpoints
    num_kv_heads: int = 0  # K/V heads (grouped-query attention); 0: one per query head
    head_dim: int = 0  # 0: hidden_size / num_heads

    def __post_init__(self) -> None:
        if not self.num_kv_heads:
            object.__setattr__(self, "num_kv_heads", self.num_heads)
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)

    @property
    def group_size(self) -> int:
        """Query heads per K/V head."""
        return self.num_heads // self.num_kv_heads

    def kept_heads(self, layer: int) -> tuple[int, ...]:
        """Dense indices of the heads stored in `layer`, in storage order."""
        removed = set(self.pruned_heads.get(layer, ()))
        return tuple(h for h in range(self.num_heads) if h not in removed)

    def kept_kv_groups(self, layer: int) -> tuple[int, ...]:
        """Dense indices of the K/V groups stored in `layer`: those with a stored query
        head (packing removes a group only with all its query heads)."""
        return tuple(sorted({h // self.group_size for h in self.kept_heads(layer)}))

    def stored_rows(self, layer: int, role: str) -> int:
        """Rows the checkpoint stores for the unfused `role` (q, k, v, ffn_gate, ffn_in)."""
        if role == "q":
            return len(self.kept_heads(layer)) * self.head_dim
        if role in ("k", "v"):
            return len(self.kept_kv_groups(layer)) * self.head_dim
        return self.ffn_widths.get(layer, self.intermediate_size)


def fused_sizes(family: Family, geometry: Geometry, layer: int, role: str) -> tuple[int, ...]:
    """The stored rows of each part of the fused matrix `role` in `layer`, in order."""
    return tuple(geometry.stored_rows(layer, part) for part in family.fused[role])


@dataclass(frozen=True)
class Param:
    """What one parameter name means."""

    layer: int | None
    role: str  # one of records.ROLES
    kind: str  # "weight", "bias" or "other" (buffers)
    normalises: str | None = None  # a whole-width norm (OLMo2's q_norm): the role it norms


def detect(config: dict[str, Any], config_path: Path) -> tuple[Family | None, Geometry | None]:
    """The family and dense geometry described by config.json (None, None: generic).

    Raises CheckpointError for a field of the wrong type that picks the model class or
    family (`architectures` given as a string, a `model_type` that is not one)."""
    _check_types(config, config_path)
    family = find_family(config.get("model_type"))
    if family is None:
        return None, None
    values = {}
    for field_name, key in family.keys.items():
        value = config.get(key)
        if value is None and field_name in _OPTIONAL_KEYS:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise CheckpointError(config_path, f"{key} must be a positive integer, got {value!r}")
        values[field_name] = value
    if "head_dim" not in values and values["hidden_size"] % values["num_heads"]:
        raise CheckpointError(
            config_path,
            f"{family.keys['hidden_size']} {values['hidden_size']} is not divisible by "
            f"{values['num_heads']} heads",
        )
    if values["num_heads"] % values.get("num_kv_heads", values["num_heads"]):
        raise CheckpointError(
            config_path,
            f"num_attention_heads {values['num_heads']} is not a multiple of "
            f"num_key_value_heads {values['num_kv_heads']}",
        )
    geometry = Geometry(
        **values,
        pruned_heads=_pruned_heads(config, config_path, values["num_layers"], values["num_heads"]),
        ffn_widths=_ffn_widths(config, config_path),
    )
    for layer, heads in geometry.pruned_heads.items():
        whole = len({h // geometry.group_size for h in heads}) * geometry.group_size
        if family.kind == "decoder" and len(heads) != whole:
            raise CheckpointError(
                config_path,
                f"pruned_heads[{layer}] removes part of a K/V group (groups of "
                f"{geometry.group_size} query heads are removed whole)",
            )
    return family, geometry


def _check_types(config: dict[str, Any], config_path: Path) -> None:
    """`architectures` and `model_type` as transformers writes them; read leniently, a
    string "BertModel" would be taken letter by letter ("B": no such class)."""
    architectures = config.get("architectures")
    if architectures is not None and (
        not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures)
    ):
        raise CheckpointError(
            config_path,
            f'architectures must be a list of class names (e.g. ["LlamaForCausalLM"]), got '
            f"{architectures!r:.80}",
        )
    model_type = config.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise CheckpointError(config_path, f"model_type must be a string, got {model_type!r:.80}")


def _pruned_heads(
    config: dict[str, Any], config_path: Path, num_layers: int, num_heads: int
) -> dict[int, tuple[int, ...]]:
    raw = config.get("pruned_heads") or {}
    if not isinstance(raw, dict):
        raise CheckpointError(config_path, "pruned_heads must map layer -> list of heads")
    out: dict[int, tuple[int, ...]] = {}
    for key, heads in raw.items():
        try:
            layer = int(key)
        except (TypeError, ValueError):
            raise CheckpointError(config_path, f"pruned_heads key {key!r} is not a layer") from None
        if not 0 <= layer < num_layers or not isinstance(heads, list):
            raise CheckpointError(config_path, f"pruned_heads entry {key!r} is out of range")
        if any(
            isinstance(h, bool) or not isinstance(h, int) or not 0 <= h < num_heads for h in heads
        ):
            raise CheckpointError(config_path, f"pruned_heads[{key!r}] names a head out of range")
        if heads:
            out[layer] = tuple(sorted(set(heads)))
    return out


def _ffn_widths(config: dict[str, Any], config_path: Path) -> dict[int, int]:
    packing = config.get("prunecard_packing")
    if not packing:
        return {}
    widths = packing.get("intermediate_sizes") if isinstance(packing, dict) else None
    if not isinstance(widths, list) or not all(isinstance(w, int) and w >= 0 for w in widths):
        raise CheckpointError(config_path, "prunecard_packing.intermediate_sizes must list widths")
    return dict(enumerate(widths))


GENERIC_LINEAR = "block_linear"  # a weight (or its bias) in a repeated block of an unknown family
# the repeated blocks of the models people publish: BERT's layer.N, Llama's layers.N,
# GPT-2's h.N, and blocks.N
_REPEATED_BLOCK = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks)\.(\d{1,6})\.")


def classify(name: str, family: Family | None) -> Param:
    """Layer and role of a parameter name."""
    suffix = name.rsplit(".", 1)[-1]
    kind = suffix if suffix in ("weight", "bias") else "other"
    if family is None and kind != "other" and (block := _REPEATED_BLOCK.search(name)):
        return Param(int(block.group(1)), GENERIC_LINEAR, kind)
    if family is not None:
        match = family.layer_pattern.match(name)
        if match:
            module = match.group(2).rsplit(".", 1)[0]
            norm = family.width_norm(module)
            if norm is not None:
                return Param(int(match.group(1)), "other", kind, normalises=norm.role)
            role = family.roles.get(module, "other")
            return Param(int(match.group(1)), role, kind)
    if ("embeddings" in name or "embed_tokens" in name) and kind == "weight":
        return Param(None, "embedding", kind)
    return Param(None, "other", kind)


def bias_name(weight_name: str) -> str:
    """The bias beside a weight: the last dotted part, which `classify` reads as the kind,
    becomes "bias" ("x.dense.weight" -> "x.dense.bias", "weight" -> "bias")."""
    module, dot, _ = weight_name.rpartition(".")
    return f"{module}{dot}bias"


def dense_shape(
    name: str, shape: tuple[int, ...], param: Param, geometry: Geometry | None, where: Path
) -> tuple[int, ...]:
    """The shape `name` had before heads or FFN units were physically removed.

    Raises CheckpointError when the stored shape contradicts config.json.
    """
    if geometry is None or param.layer is None:
        return shape
    if param.normalises is not None:  # narrowed with the rows it normalises
        stored = geometry.stored_rows(param.layer, param.normalises)
        heads = geometry.num_heads if param.normalises == "q" else geometry.num_kv_heads
        if tuple(shape) != (stored,):
            raise CheckpointError(
                where, f"{name} has shape {list(shape)} but config.json implies {[stored]}"
            )
        return (heads * geometry.head_dim,)
    if param.role in ("other", "embedding"):
        return shape
    g = geometry
    if param.layer >= g.num_layers:
        raise CheckpointError(
            where,
            f"{name} belongs to layer {param.layer}, but config.json's layer count is "
            f"{g.num_layers}",
        )
    hidden, inter = g.hidden_size, g.intermediate_size
    q_dense, kv_dense = g.num_heads * g.head_dim, g.num_kv_heads * g.head_dim
    heads_kept = len(g.kept_heads(param.layer)) * g.head_dim
    kv_kept = len(g.kept_kv_groups(param.layer)) * g.head_dim
    ffn_kept = g.ffn_widths.get(param.layer, inter)
    expected_stored, dense = {
        ("q", "weight"): ((heads_kept, hidden), (q_dense, hidden)),
        ("k", "weight"): ((kv_kept, hidden), (kv_dense, hidden)),
        ("v", "weight"): ((kv_kept, hidden), (kv_dense, hidden)),
        ("q", "bias"): ((heads_kept,), (q_dense,)),
        ("k", "bias"): ((kv_kept,), (kv_dense,)),
        ("v", "bias"): ((kv_kept,), (kv_dense,)),
        ("qkv", "weight"): ((heads_kept + 2 * kv_kept, hidden), (q_dense + 2 * kv_dense, hidden)),
        ("qkv", "bias"): ((heads_kept + 2 * kv_kept,), (q_dense + 2 * kv_dense,)),
        ("o", "weight"): ((hidden, heads_kept), (hidden, q_dense)),
        ("o", "bias"): ((hidden,), (hidden,)),
        ("ffn_gate", "weight"): ((ffn_kept, hidden), (inter, hidden)),
        ("ffn_gate", "bias"): ((ffn_kept,), (inter,)),
        ("ffn_in", "weight"): ((ffn_kept, hidden), (inter, hidden)),
        ("ffn_in", "bias"): ((ffn_kept,), (inter,)),
        ("ffn_gate_up", "weight"): ((2 * ffn_kept, hidden), (2 * inter, hidden)),
        ("ffn_gate_up", "bias"): ((2 * ffn_kept,), (2 * inter,)),
        ("ffn_out", "weight"): ((hidden, ffn_kept), (hidden, inter)),
        ("ffn_out", "bias"): ((hidden,), (hidden,)),
    }.get((param.role, param.kind), (tuple(shape), tuple(shape)))
    if tuple(shape) != expected_stored:
        detail = ""
        kv = f", {g.num_kv_heads} KV heads" if g.num_kv_heads != g.num_heads else ""
        if param.role in ("q", "k", "v", "o") and g.pruned_heads.get(param.layer):
            detail = f", pruned_heads {list(g.pruned_heads[param.layer])}"
        raise CheckpointError(
            where,
            f"{name} has shape {list(shape)} but config.json (hidden size {hidden}, "
            f"{g.num_heads} heads{kv}, FFN {inter}{detail}) implies {list(expected_stored)}",
        )
    return dense


def check_shapes(
    checkpoint: Checkpoint, family: Family | None, geometry: Geometry | None
) -> dict[str, tuple[int, ...]]:
    """The dense shape of every stored parameter, once each agrees with config.json and
    every layer holds its linear weights (an unknown family: the stored shapes).

    From the files' headers alone: checked before any weight is read or model built, so a
    config that contradicts its weights is refused in one line, never allocated at its own
    size (a huge intermediate_size) nor filled with randomly initialised layers (a layer
    count above the stored one)."""
    config_path = checkpoint.root / "config.json"
    present: set[tuple[int, str]] = set()
    dense: dict[str, tuple[int, ...]] = {}
    for ref in checkpoint.tensors.values():
        if not ref.is_parameter:
            continue
        param = classify(ref.name, family)
        dense[ref.name] = dense_shape(ref.name, ref.shape, param, geometry, ref.file)
        if param.layer is not None and param.kind == "weight":
            present.add((param.layer, param.role))
    if family is not None and geometry is not None:
        for layer in range(geometry.num_layers):
            missing = [r for r in family.layer_roles if (layer, r) not in present]
            if missing:
                raise CheckpointError(
                    config_path,
                    f"config.json's layer count is {geometry.num_layers}, but layer {layer} has "
                    f"no {', '.join(missing)} weights in the checkpoint",
                )
    return dense


# --------------------------------------------------------------------------- building models

# Far above any real model (the largest vocabularies are ~1M tokens), far below what would
# make torch allocate terabytes for an embedding before the weights are even read.
MAX_VOCAB = 1 << 22
MAX_POSITIONS = 1 << 20
MAX_TOKEN_TYPES = 1 << 10


def check_model_config(config: Any, config_path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse config values that would make torch fail (or allocate without end) while
    building the model: sizes out of range, an unknown activation, embedding tables whose
    size contradicts the stored ones. `config` is the transformers config (defaults filled);
    `shapes` maps tensor names to stored shapes."""
    from transformers.activations import ACT2FN

    vocab_tables = ("word_embeddings.weight", "embed_tokens.weight", "lm_head.weight")
    sizes = (  # config key, bound, the stored tables whose rows it counts
        ("vocab_size", MAX_VOCAB, vocab_tables),
        ("max_position_embeddings", MAX_POSITIONS, ("position_embeddings.weight",)),
        ("type_vocab_size", MAX_TOKEN_TYPES, ("token_type_embeddings.weight",)),
    )
    for key, most, tables in sizes:
        if not hasattr(config, key):
            continue
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= most:
            raise CheckpointError(
                config_path, f"{key} must be an integer from 1 to {most:,}, got {value!r}"
            )
        for name, shape in shapes.items():
            table = next((t for t in tables if name.endswith(t)), None)
            if table is not None and shape and shape[0] != value:
                raise CheckpointError(
                    config_path, f"{key} is {value:,} but the stored {table} has {shape[0]:,} rows"
                )
    pad = getattr(config, "pad_token_id", None)
    vocab = getattr(config, "vocab_size", 0)
    if pad is not None and (
        isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < vocab
    ):
        raise CheckpointError(config_path, f"pad_token_id {pad!r} is outside the vocabulary")
    # DistilBERT, Gemma2, GPT-2 and OPT, the rest
    names = ("activation", "hidden_activation", "activation_function", "hidden_act")
    key = next((k for k in names if getattr(config, k, None) is not None), "hidden_act")
    act = getattr(config, key, None)
    if not isinstance(act, str) or act not in ACT2FN:
        known = ", ".join(sorted(k for k in ACT2FN if k.isidentifier())[:8])
        raise CheckpointError(
            config_path, f"{key} {act!r} is not a known activation ({known}, ...)"
        )
    eps = getattr(config, "layer_norm_eps", 1e-12)
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1:
        raise CheckpointError(
            config_path, f"layer_norm_eps must be a small positive number, got {eps!r}"
        )


def usable_positions(config: Any) -> int:
    """Tokens a model can take at once: RoBERTa-style position ids start after padding_idx."""
    family = find_family(config.model_type)
    after_padding = family is not None and family.positions_after_padding
    offset = (config.pad_token_id or 0) + 1 if after_padding else 0
    return config.max_position_embeddings - offset
