"""compressed-tensors checkpoints as llm-compressor writes them, built from a dense folder.

Quantization goes through the library's own compressors (`BaseCompressor` registry:
`compress` of one module's state dict, with scales from its `calculate_qparams`), and
config.json's `quantization_config` is the library's `QuantizationConfig.model_dump()` with
the keys llm-compressor's `ModelCompressor.update_config` adds (version, quant_method,
sparsity_config, transform_config). compressed-tensors 0.15 removed its sparse compressors,
so the two bitmask layouts are written here as its 0.14 `Sparse24BitMaskTensor` and
`BitmaskTensor` wrote them, with the library's `pack_bitmasks`.

Each build also returns what the weights are once decompressed, computed here by the
quantization formulas themselves (not by the library's decompress), so that tests count
their expected figures from it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

# preset -> (compressed-tensors scheme preset, strategy override)
SCHEMES = {
    "fp8": "FP8_DYNAMIC",  # float-quantized, per-channel weights, dynamic activations
    "int8": "W8A8",  # int-quantized, per-channel weights, dynamic per-token activations
    "w4a16": "W4A16",  # pack-quantized, groups of 128 (here: of 32, the tiny model's width)
    "w4a16-asym": "W4A16_ASYM",
    "w8a16-channel": "W8A16",
}
GROUP_SIZE = 32
SPARSITY_TARGETS = ["Linear"]
IGNORE = ["lm_head"]


@dataclass(frozen=True)
class Built:
    path: Path
    expected: dict[str, torch.Tensor]  # every parameter as the decompressed model holds it
    quantized: tuple[str, ...]  # weights stored quantized
    stored_sparse: tuple[str, ...]  # weights stored as bitmask values


def scheme_for(preset: str):
    from compressed_tensors.quantization import preset_name_to_scheme

    scheme = preset_name_to_scheme(SCHEMES[preset], ["Linear"])
    if preset == "w8a16-channel":
        scheme.weights.strategy = "channel"
        scheme.weights.group_size = None
    elif scheme.weights.strategy == "group":
        scheme.weights.group_size = GROUP_SIZE
    return scheme


def targeted(name: str, tensor: torch.Tensor) -> bool:
    """The decoder layers' linear weights (llm-compressor's "Linear" minus lm_head)."""
    return ".layers." in name and name.endswith(".weight") and tensor.ndim == 2


def compress(
    dense: Path,
    out: Path,
    *,
    sparsity: str | None = None,
    quantization: str | None = None,
    global_sparsity: float | None = None,
    structure: str = "2:4",
    field: str = "quantization_config",
) -> Built:
    """A compressed copy of the dense checkpoint folder `dense` in `out`: `sparsity` one of
    "dense", "sparse-bitmask", "sparse-24-bitmask"; `quantization` a key of SCHEMES.
    `global_sparsity` defaults to llm-compressor's figure for these weights (zero
    parameters over all parameters, decompressed)."""
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.compressors.format import infer_module_format
    from compressed_tensors.quantization import QuantizationConfig

    state = load_file(dense / "model.safetensors")
    scheme = scheme_for(quantization) if quantization else None
    fmt = infer_module_format(torch.nn.Linear, scheme).value if scheme else None
    stored: dict[str, torch.Tensor] = {}
    expected: dict[str, torch.Tensor] = {}
    quantized, stored_sparse = [], []
    for name, tensor in state.items():
        module = name.removesuffix(".weight")
        if not targeted(name, tensor):
            stored[name] = expected[name] = tensor
            continue
        parts = {"weight": tensor}
        if scheme is not None:
            scale, zero_point = _qparams(tensor, scheme.weights)
            expected[name] = _dequantized(tensor, scale, zero_point, scheme.weights)
            compressor = BaseCompressor.get_value_from_registry(fmt)
            parts = compressor.compress(
                {"weight": tensor, "weight_scale": scale, "weight_zero_point": zero_point}, scheme
            )
            quantized.append(name)
        else:
            expected[name] = tensor
        if sparsity in ("sparse-bitmask", "sparse-24-bitmask") and "weight" in parts:
            weight = parts.pop("weight")
            parts = {**parts, **_bitmask(weight, sparsity)}
            stored_sparse.append(name)
        stored.update({f"{module}.{k}": v.contiguous() for k, v in parts.items()})
    out.mkdir(parents=True)
    for file in dense.iterdir():
        if file.name != "model.safetensors":
            shutil.copy2(file, out / file.name)
    save_file(stored, out / "model.safetensors", metadata={"format": "pt"})

    spec: dict = {"version": _version(), "quant_method": "compressed-tensors"}
    if sparsity is not None:
        if global_sparsity is None:
            zeros = sum(t.numel() - int(t.count_nonzero()) for t in expected.values())
            global_sparsity = zeros / sum(t.numel() for t in expected.values())
        spec["sparsity_config"] = {
            "format": sparsity,
            "global_sparsity": global_sparsity,
            "sparsity_structure": structure,
            "targets": SPARSITY_TARGETS,
            "ignore": IGNORE,
            "registry_requires_subclass": False,
        }
    spec["transform_config"] = {}
    if scheme is not None:
        qconfig = QuantizationConfig(
            config_groups={"group_0": scheme},
            format=fmt,
            quantization_status="compressed",
            ignore=IGNORE,
        )
        spec.update(qconfig.model_dump(exclude=["quant_method"]))
    config = json.loads((dense / "config.json").read_text())
    config[field] = spec
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return Built(out, expected, tuple(quantized), tuple(stored_sparse))


def _version() -> str:
    import compressed_tensors

    return compressed_tensors.__version__


def _qparams(weight: torch.Tensor, args) -> tuple[torch.Tensor, torch.Tensor]:
    """Scales and zero points from each group's min and max (llm-compressor's min-max
    observer), by the library's `calculate_qparams`."""
    from compressed_tensors.quantization.utils import calculate_qparams

    if args.strategy == "group":
        grouped = weight.reshape(weight.shape[0], -1, args.group_size)
        low, high = grouped.amin(-1), grouped.amax(-1)
    elif args.strategy == "channel":
        low, high = weight.amin(-1, keepdim=True), weight.amax(-1, keepdim=True)
    else:
        low, high = weight.amin().reshape(1), weight.amax().reshape(1)
    return calculate_qparams(low.clamp(max=0), high.clamp(min=0), args)


def _dequantized(weight, scale, zero_point, args) -> torch.Tensor:
    """q = clamp(round(w / s) + z), w' = (q - z) * s for ints; fp8 rounds w / s to
    float8_e4m3fn. Computed here, independently of the library's decompress."""
    columns = weight.shape[1]
    if args.strategy == "group":
        scale = scale.repeat_interleave(args.group_size, dim=1)[:, :columns]
        zero_point = zero_point.repeat_interleave(args.group_size, dim=1)[:, :columns]
    if args.type == "float":
        q = (weight / scale).clamp(-448, 448).to(torch.float8_e4m3fn).to(torch.float32)
        return q * scale
    low, high = -(2 ** (args.num_bits - 1)), 2 ** (args.num_bits - 1) - 1
    zp = zero_point.to(torch.float32)
    q = torch.clamp(torch.round(weight / scale) + zp, low, high)
    return (q - zp) * scale


def _bitmask(weight: torch.Tensor, sparsity: str) -> dict[str, torch.Tensor]:
    """The stored parts of compressed-tensors 0.14's bitmask compressors."""
    from compressed_tensors.utils import pack_bitmasks

    raw = weight.view(torch.int8) if weight.dtype == torch.float8_e4m3fn else weight
    rows, cols = weight.shape
    if sparsity == "sparse-24-bitmask":  # the two largest of every 4 (get_24_bytemasks)
        magnitude = weight.to(torch.float32).abs().reshape(-1, 4)
        keep = torch.zeros_like(magnitude, dtype=torch.bool)
        keep.scatter_(1, magnitude.topk(2, dim=1, sorted=False).indices, True)
        keep = keep.reshape(rows, cols)
        values = raw[keep].reshape(rows, cols // 2)
        shape = torch.tensor([rows, cols]).reshape(-1, 1)
        extra = {}
    else:
        keep = weight != 0
        values = raw[keep]
        counts = keep.sum(dim=-1)
        extra = {"row_offsets": torch.cumsum(counts, 0) - counts}
        shape = torch.tensor([rows, cols])
    if weight.dtype == torch.float8_e4m3fn:
        values = values.view(torch.float8_e4m3fn)
    return {"shape": shape, "compressed": values, "bitmask": pack_bitmasks(keep), **extra}
