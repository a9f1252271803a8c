"""Telling a quantized checkpoint from one that merely holds integer buffers.

transformers 4 saved integer buffers (`embeddings.position_ids`, `token_type_ids`) next to
floating-point weights, so an integer dtype alone proves nothing. Quantized checkpoints
announce themselves instead: by a `quantization_config` in config.json, by the companion
tensors their schemes store beside each weight (scales, zero points, packed weights), by
weights stored in float8, or by a `.weight` held in integers. compressed-tensors checkpoints
are read (`analyzer.weights.compressed`, before this module is asked); every other scheme is
refused in one line naming it and the way out, because no library installed with prunecard
decodes it on a CPU (GPTQ and AWQ kernels, bitsandbytes, fp8 block scales), and the non-zero
counts of packed integers would not be the model's.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.errors import CheckpointError

if TYPE_CHECKING:
    from analyzer.weights.checkpoint import TensorRef

__all__ = ["QUANTIZED_KEYS", "QUANTIZED_MODULES", "refuse_quantized"]

CONFIG_FIELDS = ("quantization_config", "compression_config")
# last component of a tensor name -> the scheme that stores it beside its weights
QUANTIZED_KEYS = {
    "SCB": "bitsandbytes 8-bit",
    "weight_format": "bitsandbytes 8-bit",
    "absmax": "bitsandbytes 4-bit",
    "quant_map": "bitsandbytes 4-bit",
    "nested_absmax": "bitsandbytes 4-bit",
    "nested_quant_map": "bitsandbytes 4-bit",
    "qweight": "GPTQ or AWQ",
    "qzeros": "GPTQ or AWQ",
    "scales": "GPTQ or AWQ",
    "g_idx": "GPTQ",
    "weight_scale": "fp8 or compressed-tensors",
    "weight_scale_inv": "fp8",
    "input_scale": "fp8",
    "weight_zero_point": "compressed-tensors",
    "weight_packed": "compressed-tensors",
}
# a module name anywhere in a tensor name -> its scheme
QUANTIZED_MODULES = {
    "quant_state": "bitsandbytes 4-bit",  # weight.quant_state.bitsandbytes__nf4
    "_packed_params": "PyTorch dynamic quantization",
}
_FLOAT8 = "float8"
_FIX = "prunecard measures floating-point weights only (analyze the unquantized checkpoint)"
# config.json's quant_method -> the scheme's name and what to do instead
_CONVERT = (
    "analyze the unquantized checkpoint, or convert this one to compressed-tensors "
    "(compressed_tensors.entrypoints.convert) and analyze that"
)
METHODS = {
    "gptq": ("GPTQ", "no installed library decodes GPTQ's packed weights on a CPU; " + _CONVERT),
    "awq": ("AWQ", "no installed library decodes AWQ's packed weights on a CPU; " + _CONVERT),
    "bitsandbytes": (
        "bitsandbytes",
        "bitsandbytes decodes its 4-bit and 8-bit weights on CUDA only; analyze the "
        "unquantized checkpoint",
    ),
    "fp8": ("fp8 (block scales)", "no installed library dequantizes it on a CPU; " + _CONVERT),
}


def refuse_quantized(config: dict[str, Any], config_path: Path, refs: Iterable[TensorRef]) -> None:
    """Raise CheckpointError, naming the evidence, if the checkpoint is quantized."""
    for field_name in CONFIG_FIELDS:
        if config.get(field_name):
            spec = config[field_name]
            method = spec.get("quant_method") if isinstance(spec, dict) else None
            key = next((k for k in METHODS if k in str(method).lower()), "")
            if key:
                name, fix = METHODS[key]
                raise CheckpointError(
                    config_path,
                    f"{name}-quantized checkpoint (config.json {field_name}, quant_method "
                    f"{method!r}): {fix}",
                )
            how = f" (quant_method {method!r})" if method else ""
            raise CheckpointError(
                config_path, f"quantized checkpoint: config.json has {field_name}{how}; " + _FIX
            )
    refs = list(refs)
    for ref in refs:
        scheme = _scheme(ref.name)
        if scheme:
            raise CheckpointError(
                ref.file, f"quantized checkpoint ({scheme}): tensor {ref.name!r}; " + _FIX
            )
    for ref in refs:
        if ref.dtype.startswith(_FLOAT8) or (
            not ref.is_float and ref.name.rsplit(".", 1)[-1] == "weight"
        ):
            raise CheckpointError(
                ref.file, f"quantized checkpoint: tensor {ref.name!r} is {ref.dtype}; " + _FIX
            )


def _scheme(name: str) -> str | None:
    parts = name.split(".")
    module = next((QUANTIZED_MODULES[p] for p in parts if p in QUANTIZED_MODULES), None)
    return module or QUANTIZED_KEYS.get(parts[-1])
