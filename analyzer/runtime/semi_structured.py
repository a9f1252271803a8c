"""2:4 matrices as semi-structured sparse tensors, for NVIDIA's sparse tensor cores.

A weight is 2:4 when every group of 4 consecutive weights along its input dimension holds
at most 2 non-zeros (the pattern SparseGPT, Wanda and NVIDIA ASP produce). Ampere and
later GPUs multiply such a matrix at up to twice the dense rate through
`torch.sparse.to_sparse_semi_structured` (cuSPARSELt or CUTLASS kernels, fp16/bf16 only);
on a CPU there is nothing to convert to.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["is_2of4", "semi_structured_copy"]


def is_2of4(weight: Any) -> bool:
    """At most 2 non-zeros in every group of 4 along the input (last) dimension."""
    if weight.ndim != 2 or weight.shape[1] % 4 or weight.numel() == 0:
        return False
    per_group = weight.ne(0).reshape(weight.shape[0], -1, 4).sum(dim=2)
    return bool((per_group <= 2).all())


def semi_structured_copy(model: Any, layers: str = "layers.") -> tuple[Any, dict[str, tuple]]:
    """A copy of `model` (on CUDA, fp16/bf16) whose 2:4 Linear weights inside repeated
    blocks (names containing `layers`) are semi-structured sparse, and the (out, in)
    shape of each converted weight by module name. Weights the kernels refuse (shapes
    below their minimum tile) stay dense and are left out of the map."""
    import torch
    from torch.sparse import to_sparse_semi_structured

    sparse = copy.deepcopy(model)
    converted: dict[str, tuple] = {}
    for name, module in sparse.named_modules():
        if not isinstance(module, torch.nn.Linear) or layers not in name:
            continue
        if not is_2of4(module.weight):
            continue
        try:
            weight = to_sparse_semi_structured(module.weight.detach())
        except (RuntimeError, ValueError):
            continue
        module.weight = torch.nn.Parameter(weight, requires_grad=False)
        converted[name] = tuple(module.weight.shape)
    return sparse, converted
