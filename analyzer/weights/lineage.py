"""A width- or depth-pruned decoder against the dense model it came from (`--base-config`).

Minitron, Sheared-LLaMA, LLM-Pruner and SliceGPT remove whole layers, hidden dimensions,
MLP channels or heads and save a smaller dense model: its own weights are 100% dense, so
only a comparison with the base's config.json shows what was pruned. The base's parameter
count is computed from its config alone (no weights are needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analyzer.errors import InputError
from analyzer.inputs import CONFIG_LIMIT
from analyzer.records import BaseComparison, ShapeChange, read_json
from analyzer.weights.architecture import MAX_VOCAB, Geometry, detect
from analyzer.weights.families import ALWAYS, Family

__all__ = ["base_parameters", "compare_with_base", "lineage_notes"]


def compare_with_base(
    source: str | Path,
    config: dict[str, Any],
    family: Family | None,
    geometry: Geometry | None,
) -> BaseComparison:
    """The checkpoint's shapes (`config`, `family`, `geometry`) against the base's config.json
    at `source` (the file, or a folder holding it); the base must be the same family."""
    source = Path(source)
    path = source / "config.json" if source.is_dir() else source
    if family is None or geometry is None or family.kind != "decoder":
        kind = family.name if family else "a model of unknown family"
        raise InputError(
            source, f"a base config is compared with decoder LLMs only; the checkpoint is {kind}"
        )
    base = read_json(path, InputError, CONFIG_LIMIT)
    if not isinstance(base, dict):
        raise InputError(path, "must hold a JSON object (the base model's config.json)")
    if base.get("model_type") != config.get("model_type"):
        raise InputError(
            path,
            f"model_type is {base.get('model_type')!r}, but the checkpoint's is "
            f"{config.get('model_type')!r}: the base must be the dense model it was pruned from",
        )
    for key in family.stated:
        if key not in base:
            raise InputError(
                path,
                f"{key} is missing: transformers' default for {family.name} is a fixed number, "
                "not derived from the other sizes, so the base's shapes are unknown",
            )
    base_family, base_geometry = detect(base, path)
    assert base_family is family and base_geometry is not None  # same model_type, same family
    b, m = base_geometry, geometry
    changes = (
        ShapeChange("layers", b.num_layers, m.num_layers),
        ShapeChange("hidden size", b.hidden_size, m.hidden_size),
        ShapeChange("intermediate size", b.intermediate_size, m.intermediate_size),
        ShapeChange("query heads", b.num_heads, m.num_heads),
        ShapeChange("KV heads", b.num_kv_heads, m.num_kv_heads),
        ShapeChange("head dim", b.head_dim, m.head_dim),
    )
    return BaseComparison(
        source=str(source),
        changes=changes,
        base_parameters=base_parameters(base, family, b, path),
    )


def base_parameters(config: dict[str, Any], family: Family, g: Geometry, path: Path) -> int:
    """Parameters of a dense decoder of `family` with this config: embeddings, per layer
    attention (grouped-query K and V), gated MLP, the biases the family's flags add and
    its norms, the final norm, and the LM head unless tied to the embeddings."""
    hidden, inter = g.hidden_size, g.intermediate_size
    q, kv = g.num_heads * g.head_dim, g.num_kv_heads * g.head_dim
    width = {"q": q, "k": kv, "v": kv, "o": hidden, "ffn_gate": inter, "ffn_in": inter}
    width["ffn_out"] = hidden
    weights = 2 * hidden * q + 2 * hidden * kv + 3 * hidden * inter
    biases = sum(
        width[role]
        for flag, roles in family.biases.items()
        if flag == ALWAYS or _flag(config, flag, False, path)
        for role in roles
    )
    norms = family.norms_per_layer * hidden + len(family.head_norms) * g.head_dim
    norms += sum(width[n.role] for n in family.width_norms)
    vocab = config.get("vocab_size")
    if isinstance(vocab, bool) or not isinstance(vocab, int) or not 0 < vocab <= MAX_VOCAB:
        raise InputError(path, f"vocab_size must be an integer from 1 to {MAX_VOCAB:,}")
    tied = _flag(config, "tie_word_embeddings", family.tied_by_default, path)
    layer = weights + biases + norms
    return vocab * hidden * (1 if tied else 2) + g.num_layers * layer + hidden


def _flag(config: dict[str, Any], key: str, default: bool, path: Path) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise InputError(path, f"{key} must be true or false, got {value!r}")
    return value


def lineage_notes(family: Family | None, base: BaseComparison | None) -> tuple[str, ...]:
    """Without a base, a decoder's dense figures describe its own (maybe already narrowed)
    shapes: say so, so a reader does not take 100% dense for unpruned."""
    if family is None or family.kind != "decoder" or base is not None:
        return ()
    return ("dense figures are relative to this checkpoint's own shapes (config.json): layers, "
            "heads or widths removed before saving are not counted; give the dense model's "
            "config.json (analyze --base-config) to compare with it",)  # fmt: skip
