"""compressed-tensors checkpoints (what llm-compressor saves), read tensor by tensor.

config.json's `quantization_config` with `quant_method: compressed-tensors` (or the older
top-level `compression_config`) says how the weights are stored: a `sparsity_config` whose
format is `dense` (zeros stored as zeros), `sparse-bitmask` (a module's `compressed` non-zero
values, a `bitmask` of their positions, the dense `shape`, `row_offsets`) or
`sparse-24-bitmask` (the two kept values of every group of four and their bitmask), and
quantization `config_groups`, each stored in its format: `float-quantized` (FP8 weights and a
scale), `int-quantized` (INT8), `pack-quantized` (INT4 / INT8 packed into int32
`weight_packed`, with `weight_shape` and scales, zero points when asymmetric).

The stored file is the truth: a module is decoded from the parts it stores, by the
library's own compressors (`BaseCompressor` registry: the quantization compressors'
`decompress` of one module's state dict). compressed-tensors 0.15 dropped its sparse
compressors, so the two bitmask layouts, fixed since they were written, are undone here with
the library's `unpack_bitmasks`. A checkpoint lists its *logical* tensors (each module's
`weight` at its dense shape, in the dtype it decompresses to), so every command sees the
floating-point model the checkpoint serves; the stored parts stay listed for stored bytes.

What config.json states about the sparsity and the quantization (global_sparsity,
sparsity_structure, targets, ignore) is a claim, checked against the measured weights by
`config_claims`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError
from analyzer.records import (
    LINEAR_ROLES,
    Compression,
    ConfigClaim,
    MatrixStats,
    QuantGroup,
)
from analyzer.text import fixed
from analyzer.weights.patterns import STRAY_SHARE

__all__ = [
    "COMPRESSED_METHOD",
    "INSTALL_HINT",
    "CompressedLayout",
    "compression_spec",
    "config_claims",
    "plain_config",
    "read_layout",
]

COMPRESSED_METHOD = "compressed-tensors"
INSTALL_HINT = "pip install 'prunecard[compressed]'"
SPEC_FIELDS = ("quantization_config", "compression_config")  # the newer spelling first
# sparsity format -> the parts a compressed module stores instead of its `weight`
SPARSE_PARTS = {
    "sparse-bitmask": ("shape", "compressed", "bitmask", "row_offsets"),
    "sparse-24-bitmask": ("shape", "compressed", "bitmask"),
}
SPARSE_FORMATS = ("dense", *SPARSE_PARTS)
# formats no installed library decodes on a CPU -> what to do instead
UNDECODABLE = {
    "marlin-24": "the 2:4 + 4-bit layout of the Marlin kernel, which compressed-tensors "
    "never decompressed and no longer reads; analyze the checkpoint before compression, "
    "or one saved as sparse-24-bitmask or pack-quantized",
}
# parts that calibrate activations or the KV cache: stored bytes, never a weight
_ACTIVATION_PARTS = frozenset(
    {
        "input_scale",
        "input_zero_point",
        "input_global_scale",
        "output_scale",
        "output_zero_point",
        "k_scale",
        "v_scale",
        "q_scale",
    }
)
_QUANT_PARTS = frozenset(
    {"weight_packed", "weight_scale", "weight_zero_point", "weight_shape", "weight_global_scale"}
)
_SPARSE_ALL = frozenset(p for parts in SPARSE_PARTS.values() for p in parts)
_FLOAT8 = ("float8_e4m3fn", "float8_e5m2")


@dataclass(frozen=True)
class _Module:
    """One compressed module: its logical weight and the stored tensors it is decoded from."""

    weight: str  # logical name, "<module>.weight"
    shape: tuple[int, ...]  # dense shape
    dtype: str  # the dtype it decompresses to
    parts: Mapping[str, Any]  # local name ("weight_packed", "bitmask", ...) -> TensorRef
    sparse: bool  # stored as bitmask values
    group: str  # the config group that quantized it; "" when not quantized


@dataclass(frozen=True)
class CompressedLayout:
    """How a compressed-tensors checkpoint stores its weights, and how to decode them."""

    field: str  # "quantization_config" or "compression_config"
    spec: Mapping[str, Any]  # that field, as stated
    sparsity: Mapping[str, Any]  # its sparsity_config ({} when none)
    quantization: Any  # compressed_tensors QuantizationConfig, or None
    modules: Mapping[str, _Module]  # logical weight name -> module
    stored: Mapping[str, Any]  # every stored tensor's TensorRef, by stored name

    @property
    def sparse_format(self) -> str:
        return str(self.sparsity.get("format") or "")

    def decode(self, name: str, read: Any) -> Any:
        """The logical tensor `name` (a torch.Tensor); `read(ref)` reads a stored tensor."""
        import torch

        module = self.modules[name]
        state = {local: read(ref) for local, ref in module.parts.items()}
        if module.sparse:
            state["weight"] = _unbitmask(state, module.shape)
        if module.group:
            scheme = self.quantization.config_groups[module.group]
            compressor = _compressor(self, scheme)
            state = compressor.decompress(
                {k: v for k, v in state.items() if k not in _ACTIVATION_PARTS}, scheme
            )
        return state["weight"].to(getattr(torch, module.dtype))

    def describe(self, claims: tuple[ConfigClaim, ...] = ()) -> Compression:
        """The typed record of the scheme, with stored and decompressed byte counts."""
        stored = sum(_nbytes(ref.shape, ref.dtype) for ref in self.stored.values())
        decoded_parts = {ref.name for m in self.modules.values() for ref in m.parts.values()}
        plain = sum(
            _nbytes(ref.shape, ref.dtype)
            for ref in self.stored.values()
            if ref.name not in decoded_parts
            and ref.name.rpartition(".")[2] not in _ACTIVATION_PARTS
        )
        decompressed = plain + sum(_nbytes(m.shape, m.dtype) for m in self.modules.values())
        quant = self.quantization
        return Compression(
            method=COMPRESSED_METHOD,
            config_field=self.field,
            version=str(self.spec.get("version") or ""),
            sparsity_format=self.sparse_format,
            sparsity_structure=str(self.sparsity.get("sparsity_structure") or ""),
            quantization_format=str(getattr(quant, "format", "") or ""),
            groups=tuple(
                _group(self, n, s) for n, s in (quant.config_groups if quant else {}).items()
            ),
            ignore=tuple(str(i) for i in (quant.ignore or ())) if quant else (),
            sparse_matrices=sum(m.sparse for m in self.modules.values()),
            quantized_matrices=sum(bool(m.group) for m in self.modules.values()),
            stored_bytes=stored,
            decompressed_bytes=decompressed,
            claims=claims,
        )


def compression_spec(config: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """(field, spec) when config.json describes a compressed-tensors checkpoint."""
    for field in SPEC_FIELDS:
        spec = config.get(field)
        if not isinstance(spec, dict) or not spec:
            continue
        method = spec.get("quant_method")
        if method == COMPRESSED_METHOD or (
            field == "compression_config" and method in (None, "sparseml")
        ):
            return field, spec
    return None


def plain_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """config.json of the decompressed model: without the compression it no longer has."""
    spec = compression_spec(config)
    return {k: v for k, v in config.items() if spec is None or k != spec[0]}


def read_layout(
    config: Mapping[str, Any],
    config_path: Path,
    stored: Mapping[str, Any],
    read: Callable[[Any], Any],
) -> tuple[CompressedLayout, dict[str, Any]] | None:
    """The layout and the logical tensors (name -> TensorRef) of a compressed-tensors
    checkpoint; None for any other. Reads (by `read`, one stored ref -> its tensor) only the
    small `shape` / `weight_shape` tensors."""
    found = compression_spec(config)
    if found is None:
        return None
    field, spec = found
    sparsity = _sparsity_config(spec, config_path, field)
    quant_spec = _quantization_spec(spec)
    transform = spec.get("transform_config")
    if transform:
        raise CheckpointError(
            config_path,
            f"compressed-tensors checkpoint with a transform_config ({field}): its weights are "
            "stored rotated, so their zeros are not the model's; analyze the checkpoint "
            "before the transform",
        )
    for fmt in (sparsity.get("format"), spec.get("format"), (quant_spec or {}).get("format")):
        if fmt in UNDECODABLE:
            raise CheckpointError(
                config_path,
                f"compressed-tensors format {fmt!r} cannot be decoded: " + UNDECODABLE[fmt],
            )
    if sparsity.get("format") not in (None, *SPARSE_FORMATS):
        raise CheckpointError(
            config_path,
            f"unknown compressed-tensors sparsity format {sparsity.get('format')!r} "
            f"(prunecard reads {', '.join(SPARSE_FORMATS)})",
        )
    by_module: dict[str, dict[str, Any]] = {}
    for name, ref in stored.items():
        module, _, local = name.rpartition(".")
        by_module.setdefault(module, {})[local] = ref
    if any("scale_packed" in p and "meta" in p for p in by_module.values()):
        raise CheckpointError(
            config_path,
            "compressed-tensors format 'marlin-24' cannot be decoded: " + UNDECODABLE["marlin-24"],
        )
    needs_library = bool(quant_spec) or any(_SPARSE_ALL & set(p) for p in by_module.values())
    quantization = _quantization(quant_spec, config_path) if needs_library else None
    modules: dict[str, _Module] = {}
    logical: dict[str, Any] = {}
    small = _small_tensors(by_module, read)
    for module, parts in by_module.items():
        entry = _module(module, parts, quantization, small, config_path)
        if entry is None:  # stored as it is (activation and KV-cache scales: not weights)
            logical.update(
                (ref.name, ref) for local, ref in parts.items() if local not in _ACTIVATION_PARTS
            )
            continue
        modules[entry.weight] = entry
        main = parts.get("compressed") or parts.get("weight_packed") or parts.get("weight")
        logical[entry.weight] = _logical_ref(entry, main)
        for local, ref in parts.items():
            if local not in entry.parts and local not in (*_ACTIVATION_PARTS, "weight"):
                logical[ref.name] = ref  # a bias beside a compressed weight
    layout = CompressedLayout(field, spec, sparsity, quantization, modules, stored)
    return layout, logical


# --------------------------------------------------------------------------- claims


def _pruned(matrix: MatrixStats) -> bool:
    """Holds zeros that pruning left: rounding's few (under `STRAY_SHARE`, the share that
    makes a matrix's pattern `dense`) do not count, also where no pattern is measured."""
    if matrix.pattern is not None:
        return matrix.pattern.kind != "dense"
    weights = _numel(matrix.dense_shape)
    return weights - matrix.nnz >= STRAY_SHARE * weights


def config_claims(
    layout: CompressedLayout,
    matrices: Sequence[MatrixStats],
    overall_nnz: int,
    overall_stored: int,
) -> tuple[ConfigClaim, ...]:
    """What config.json states, each against the measured weights.

    `global_sparsity` is llm-compressor's figure: zero parameters over all parameters
    (`ModuleSparsificationInfo`), matched within the precision it is stated to (at least
    0.005 percentage points). `sparsity_structure` must be the pattern of every targeted
    linear matrix; the targets and ignore lists must be where the zeros and the
    quantized weights are."""
    claims: list[ConfigClaim] = []
    sparsity = layout.sparsity
    linear = [m for m in matrices if _is_linear(m)]
    if "global_sparsity" in sparsity and isinstance(sparsity["global_sparsity"], int | float):
        stated = float(sparsity["global_sparsity"])
        measured = 1 - overall_nnz / overall_stored if overall_stored else 0.0
        tolerance = max(_half_unit(sparsity["global_sparsity"]), 5e-5)
        claims.append(
            ConfigClaim(
                field="global_sparsity",
                stated=f"{stated:.6g}",
                measured=fixed(measured, 6),
                verdict=_verdict(abs(measured - stated) <= tolerance),
                rule=f"zero parameters / all parameters, within {tolerance:.2g}",
            )
        )
    targets = list(sparsity.get("targets") or ())
    ignore = list(sparsity.get("ignore") or ())
    structure = sparsity.get("sparsity_structure")
    targeted = [m for m in linear if _targeted(m.name, targets, ignore)] if targets else linear
    if isinstance(structure, str) and structure and not _nm(structure):
        kinds = sorted({m.pattern.kind for m in targeted if m.pattern})
        claims.append(
            ConfigClaim(
                field="sparsity_structure",
                stated=structure,
                measured=f"patterns of the targeted matrices: {', '.join(kinds) or 'none'}",
                verdict=_verdict(True),
                rule=f"{structure!r} names no pattern the weights must follow",
            )
        )
    if isinstance(structure, str) and _nm(structure):
        broken = [m.name for m in targeted if not _fits(m, _nm(structure))]
        claims.append(
            ConfigClaim(
                field="sparsity_structure",
                stated=structure,
                measured=f"{len(targeted) - len(broken)} of {len(targeted)} targeted matrices "
                f"are {structure}" + (f" (not: {_names(broken)})" if broken else ""),
                verdict=_verdict(bool(targeted) and not broken),
                rule=f"every targeted linear matrix holds at most {structure} non-zeros",
            )
        )
    if targets:
        stray = [m.name for m in linear if _pruned(m) and not _targeted(m.name, targets, ignore)]
        claims.append(
            ConfigClaim(
                field="sparsity targets",
                stated=", ".join(map(str, targets)),
                measured="every sparse matrix is targeted"
                if not stray
                else f"sparse but not targeted: {_names(stray)}",
                verdict=_verdict(not stray),
                rule="every linear matrix holding zeros is targeted and not ignored",
            )
        )
    if ignore:
        pruned = [m.name for m in linear if _matches(m.name, ignore) and _pruned(m)]
        claims.append(
            ConfigClaim(
                field="sparsity ignore",
                stated=", ".join(map(str, ignore)),
                measured="every ignored matrix is dense"
                if not pruned
                else f"pruned: {_names(pruned)}",
                verdict=_verdict(not pruned),
                rule="matrices the sparsity ignores hold no zeros",
            )
        )
    claims += _quantization_claims(layout, linear)
    return tuple(claims)


def _quantization_claims(
    layout: CompressedLayout, linear: Sequence[MatrixStats]
) -> list[ConfigClaim]:
    quant = layout.quantization
    if quant is None or not quant.config_groups:
        return []
    ignore = list(quant.ignore or ())
    quantized = {m.weight for m in layout.modules.values() if m.group}
    targets = [str(t) for s in quant.config_groups.values() for t in (s.targets or ())]
    missed = [
        m.name for m in linear if _targeted(m.name, targets, ignore) and m.name not in quantized
    ]
    claims = [
        ConfigClaim(
            field="quantization targets",
            stated=", ".join(targets),
            measured=f"{len(quantized)} matrices stored quantized"
            + (f"; targeted but stored unquantized: {_names(missed)}" if missed else ""),
            verdict=_verdict(not missed),
            rule="every targeted, not ignored linear matrix is stored quantized",
        )
    ]
    if ignore:
        stray = [m.name for m in linear if _matches(m.name, ignore) and m.name in quantized]
        claims.append(
            ConfigClaim(
                field="quantization ignore",
                stated=", ".join(ignore),
                measured="every ignored matrix is stored unquantized"
                if not stray
                else f"ignored but stored quantized: {_names(stray)}",
                verdict=_verdict(not stray),
                rule="matrices the quantization ignores are stored in floating point",
            )
        )
    return claims


def _verdict(ok: bool) -> str:
    return "matches" if ok else "does not match"


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _half_unit(value: float) -> float:
    """Half a unit of the last decimal `value` is written with (0.5 -> 0.05)."""
    text = repr(float(value))
    if "e" in text:
        return 0.0
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0**-decimals


def _nm(structure: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d+):(\d+)\s*", structure)
    n, m = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    return (n, m) if 0 < n < m else None


def _fits(matrix: MatrixStats, nm: tuple[int, int] | None) -> bool:
    """A matrix whose measured pattern is n:m satisfies N:M when every group of M holds at
    most N non-zeros (1:4 is 2:4, 2:4 is 4:8); a layer of zeros satisfies any."""
    kind = matrix.pattern.kind if matrix.pattern else ""
    if kind == "layer":
        return True
    own = _nm(kind)
    if nm is None or own is None:
        return False
    (n, m), (big_n, big_m) = own, nm
    return big_m % m == 0 and n * (big_m // m) <= big_n


def _is_linear(matrix: MatrixStats) -> bool:
    """A linear layer's weight, the class target "Linear" matches (lm_head included)."""
    return (
        len(matrix.shape) == 2
        and matrix.role != "embedding"
        and (matrix.role in LINEAR_ROLES or matrix.name.endswith(".weight"))
    )


def _targeted(weight: str, targets: Sequence[str], ignore: Sequence[str]) -> bool:
    return _matches(weight, targets) and not _matches(weight, ignore)


def _matches(weight: str, targets: Sequence[str]) -> bool:
    """compressed-tensors' module matching by name (`re:` regular expressions or exact
    names); a class target ("Linear") matches every linear weight."""
    module = weight.removesuffix(".weight")
    for target in targets:
        target = str(target)
        if target.startswith("re:"):
            if re.match(target[3:], module):
                return True
        elif target == module or target == "Linear":
            return True
    return False


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# --------------------------------------------------------------------------- reading


def _sparsity_config(spec: Mapping[str, Any], config_path: Path, field: str) -> Mapping[str, Any]:
    sparsity = spec.get("sparsity_config") or {}
    if not isinstance(sparsity, dict):
        raise CheckpointError(config_path, f"{field}.sparsity_config must be an object")
    return sparsity


def _quantization_spec(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The quantization part: the spec itself (config_groups beside sparsity_config), or
    a nested quantization_config (the older compression_config spelling)."""
    nested = spec.get("quantization_config")
    if isinstance(nested, dict) and nested.get("config_groups"):
        return nested
    if spec.get("config_groups"):
        return {k: v for k, v in spec.items() if k not in ("sparsity_config", "transform_config")}
    return None


def _quantization(quant_spec: dict[str, Any] | None, config_path: Path) -> Any:
    try:
        from compressed_tensors.quantization import QuantizationConfig
    except ImportError:
        raise CheckpointError(
            config_path,
            "compressed-tensors checkpoint: reading it needs the compressed-tensors library "
            f"({INSTALL_HINT})",
        ) from None
    if quant_spec is None:
        return None
    try:
        return QuantizationConfig.model_validate(
            {k: v for k, v in quant_spec.items() if k != "version"}
        )
    except Exception as exc:  # pydantic's ValidationError: a field the library rejects
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            config_path, f"compressed-tensors quantization_config rejected ({line})"
        ) from None


def _compressor(layout: CompressedLayout, scheme: Any) -> Any:
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.compressors.format import infer_module_format
    from torch.nn import Linear

    fmt = scheme.format or layout.quantization.format
    if not fmt or fmt in ("mixed-precision", "dense"):
        fmt = infer_module_format(Linear, scheme).value
    return BaseCompressor.get_value_from_registry(str(getattr(fmt, "value", fmt)))


def _small_tensors(
    by_module: Mapping[str, dict[str, Any]], read: Callable[[Any], Any]
) -> dict[str, tuple[int, ...]]:
    """The dense shapes stored as tensors (`shape`, `weight_shape`), read once at opening."""
    wanted = [
        ref
        for parts in by_module.values()
        for local, ref in parts.items()
        if local in ("shape", "weight_shape")
    ]
    shapes: dict[str, tuple[int, ...]] = {}
    for file in dict.fromkeys(ref.file for ref in wanted):
        if file.suffix != ".safetensors":
            raise CheckpointError(file, "compressed-tensors checkpoints are stored as .safetensors")
        for ref in wanted:
            if ref.file == file:
                shapes[ref.name] = tuple(int(v) for v in read(ref).flatten().tolist())
    return shapes


def _module(
    module: str,
    parts: dict[str, Any],
    quantization: Any,
    small: Mapping[str, tuple[int, ...]],
    config_path: Path,
) -> _Module | None:
    """The module's compressed weight, or None when it stores its weight as it is."""
    sparse = {"compressed", "bitmask", "shape"} <= set(parts)
    quantized = "weight_scale" in parts and (
        "weight_packed" in parts or "weight" in parts or sparse
    )
    if not (sparse or quantized):
        return None
    weight = f"{module}.weight" if module else "weight"
    # one of the three is there: sparse has "compressed", quantized "weight_packed" or "weight"
    where = parts.get("compressed") or parts.get("weight_packed") or parts["weight"]
    if "weight_g_idx" in parts:
        raise CheckpointError(
            where.file,
            f"{weight}: compressed-tensors activation-ordered groups (weight_g_idx) are not "
            "decoded; analyze the checkpoint before quantization",
        )
    group = ""
    if quantized:
        group = _group_of(weight, quantization)
        if not group:
            raise CheckpointError(
                config_path, f"{weight} is stored quantized, but no config_groups entry targets it"
            )
    if sparse:
        shape = small[parts["shape"].name]
        local = SPARSE_PARTS["sparse-bitmask" if "row_offsets" in parts else "sparse-24-bitmask"]
    elif "weight_packed" in parts:
        shape = small[parts["weight_shape"].name]
        local = ()
    else:
        shape = parts["weight"].shape
        local = ("weight",)
    _check_shape(weight, tuple(shape), parts, where)
    if quantized:
        scheme = quantization.config_groups[group]
        names = set(_compressor_names(quantization, scheme)) | (_QUANT_PARTS & set(parts))
        local = (*local, *sorted(n for n in names if n in parts and n != "weight"))
        dtype = parts["weight_scale"].dtype
    else:
        dtype = parts["compressed"].dtype
    local = (*local, *sorted(_ACTIVATION_PARTS & set(parts)))
    if dtype in _FLOAT8 or dtype.startswith("int") or dtype.startswith("uint"):
        dtype = "float32"  # a scale stored in 8 bits: dequantized values are computed in fp32
    return _Module(
        weight=weight,
        shape=tuple(shape),
        dtype=dtype,
        parts={n: parts[n] for n in dict.fromkeys(local)},
        sparse=sparse,
        group=group,
    )


def _check_shape(weight: str, shape: tuple[int, ...], parts: Mapping[str, Any], where: Any) -> None:
    """The dense shape a module states must be the one its stored parts hold, so that a
    hostile `shape` tensor cannot make decompression allocate more than the file holds."""
    rows = shape[0] if len(shape) == 2 else -1
    expected = []
    if "bitmask" in parts:
        expected.append(("bitmask", (rows, -(-shape[-1] // 8))))
    if "compressed" in parts and "row_offsets" not in parts:  # 2:4: half the columns
        expected.append(("compressed", (rows, shape[-1] // 2)))
    if "weight_packed" in parts:
        words = parts["weight_packed"].shape[-1]
        if len(shape) != 2 or not any(-(-shape[-1] * b // 32) == words for b in range(1, 9)):
            expected.append(("weight_packed", (rows, -1)))
    for local, want in expected:
        if len(shape) != 2 or parts[local].shape != want:
            raise CheckpointError(
                where.file,
                f"{weight}: stated shape {list(shape)} does not fit its stored {local} "
                f"{list(parts[local].shape)}",
            )


def _compressor_names(quantization: Any, scheme: Any) -> tuple[str, ...]:
    from compressed_tensors.compressors import BaseCompressor

    fmt = scheme.format or quantization.format
    try:
        return tuple(BaseCompressor.get_value_from_registry(fmt).compression_param_names(scheme))
    except Exception:  # a format without the classmethod interface: the stored parts decide
        return ()


def _group_of(weight: str, quantization: Any) -> str:
    """The config group whose targets name the module (the stored parts say it is
    quantized; `ignore` is a claim, checked by `config_claims`)."""
    for name, scheme in (quantization.config_groups if quantization else {}).items():
        if _matches(weight, [str(t) for t in scheme.targets or ()]):
            return str(name)
    return ""


def _logical_ref(module: _Module, main: Any) -> Any:
    from analyzer.weights.checkpoint import TensorRef

    return TensorRef(module.weight, module.shape, module.dtype, main.file)


def _unbitmask(state: dict[str, Any], shape: tuple[int, ...]) -> Any:
    """The dense weight of a sparse-bitmask or sparse-24-bitmask module: its values put
    back where the bitmask says, zeros elsewhere (compressed-tensors 0.14's decompress)."""
    import torch
    from compressed_tensors.utils import unpack_bitmasks

    values = state.pop("compressed")
    mask = unpack_bitmasks(state.pop("bitmask"), list(shape))
    state.pop("shape", None)
    state.pop("row_offsets", None)
    raw = values.view(torch.uint8) if values.element_size() == 1 else values
    dense = torch.zeros(shape, dtype=raw.dtype)
    flat = raw.flatten()
    if int(mask.sum()) != flat.numel():
        raise ValueError(f"bitmask marks {int(mask.sum())} values, {flat.numel()} stored")
    dense[mask] = flat
    return dense.view(values.dtype) if raw is not values else dense


def _group(layout: CompressedLayout, name: str, scheme: Any) -> QuantGroup:
    weights = scheme.weights
    acts = scheme.input_activations
    activations = ""
    if acts is not None:
        kind = "fp" if _value(acts.type) == "float" else "int"
        how = "dynamic" if acts.dynamic else "static"
        activations = f"{kind}{acts.num_bits} {how} per {_value(acts.strategy)}"
    return QuantGroup(
        name=name,
        format=str(_value(scheme.format or layout.quantization.format) or ""),
        num_bits=int(weights.num_bits) if weights else 0,
        type=str(_value(weights.type)) if weights else "",
        strategy=str(_value(weights.strategy)) if weights else "",
        group_size=int(weights.group_size) if weights and weights.group_size else 0,
        symmetric=bool(weights.symmetric) if weights else True,
        activations=activations,
        targets=tuple(str(t) for t in scheme.targets or ()),
        matrices=sum(m.group == name for m in layout.modules.values()),
    )


def _value(x: Any) -> Any:
    return getattr(x, "value", x)


def _nbytes(shape: Sequence[int], dtype: str) -> int:
    import torch

    return _numel(shape) * torch.empty((), dtype=getattr(torch, dtype)).element_size()


def iter_decoded(
    layout: CompressedLayout,
    refs: Sequence[Any],
    files: Sequence[Path],
    read: Callable[[Any], Any],
) -> Iterator[tuple[Any, Any]]:
    """(logical ref, tensor) file by file: each compressed module decoded when reached, its
    stored parts read by `read` (the checkpoint's handles: a module's parts may lie in two
    shards)."""
    for path in files:
        for ref in refs:
            if ref.file != path:
                continue
            if ref.name in layout.modules:
                try:
                    yield ref, layout.decode(ref.name, read)
                except CheckpointError:
                    raise
                except Exception as exc:  # a part missing or of the wrong shape
                    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    raise CheckpointError(
                        ref.file, f"{ref.name}: cannot be decompressed ({line})"
                    ) from None
            else:
                yield ref, read(ref)
