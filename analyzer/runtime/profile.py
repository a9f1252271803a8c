"""Where a forward pass spends its time, and the bound that memory traffic leaves.

The FLOP bound assumes time follows the matrix products. Work that runs at full hidden
width (residual adds, LayerNorm, embeddings) is as large in the packed model as in the
dense one and is limited by memory, not arithmetic, so it caps the speedup. A few profiled
forward passes (`torch.profiler`, self time per operator) split each model's time into
kinds of work; the dense split then gives the *memory bound*:

    memory_bound = 1 / (p / flop_bound + (1 - p) * r)

where p is the dense model's share of time in products (linear layers and attention) and
r is packed / dense elements moved by the element-wise work (`elementwise_traffic`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from analyzer.records import PRODUCT_KINDS, TIME_KINDS, TimeShare
from analyzer.weights.flops import LayerShape

__all__ = ["elementwise_traffic", "kind_of", "memory_bound", "profile_shares"]

# operator (CPU) or kernel (CUDA) name fragments, first match wins
_PATTERNS = (
    ("attention", ("scaled_dot_product", "attention", "fmha", "flash", "bmm")),
    ("softmax", ("softmax",)),
    ("LayerNorm", ("layer_norm", "layernorm")),
    ("linear layers", ("addmm", "aten::mm", "aten::linear", "matmul", "gemm", "gemv", "cutlass")),
)


def kind_of(name: str) -> str:
    """The kind of work an operator or kernel name stands for."""
    low = name.lower()
    return next((kind for kind, keys in _PATTERNS if any(k in low for k in keys)), "other")


def profile_shares(run: Callable[[], Any], runs: int, device: str) -> tuple[TimeShare, ...]:
    """Milliseconds per forward pass by kind of work, over `runs` profiled calls: operator
    self time on the CPU, kernel time on CUDA."""
    import os

    import torch

    # kineto prints a line on stderr per profiler start and stop unless told otherwise;
    # it reads this when the first profile starts
    os.environ.setdefault("KINETO_LOG_LEVEL", "99")
    from torch.profiler import ProfilerActivity, profile

    cuda = device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(runs):
            run()
        if cuda:
            torch.cuda.synchronize()
    totals = dict.fromkeys(TIME_KINDS, 0.0)
    for event in prof.key_averages():
        if cuda:
            if event.device_type != torch.autograd.DeviceType.CUDA:
                continue
            us = event.self_device_time_total
        else:
            us = event.self_cpu_time_total
        totals[kind_of(event.key)] += us
    return tuple(TimeShare(k, totals[k] / runs / 1000) for k in TIME_KINDS if totals[k] > 0)


def elementwise_traffic(layers: Sequence[LayerShape], tokens: int) -> int:
    """Elements read and written per forward pass by the element-wise work of the layers:
    per layer two residual adds (read 2, write 1 at hidden width), two norms (read 1,
    write 1) and the FFN activation (read 1, write 1 at the kept FFN width; a gated MLP
    also multiplies by the up projection: read 2, write 1)."""
    return sum(tokens * (10 * s.hidden + (5 if s.gated else 2) * s.ffn) for s in layers)


def memory_bound(
    dense_profile: Sequence[TimeShare], flop_bound: float, traffic_ratio: float
) -> float | None:
    """The speedup if products sped up by the FLOP bound and the rest by the traffic
    ratio (None without a dense profile)."""
    total = sum(t.ms for t in dense_profile)
    if total <= 0:
        return None
    products = sum(t.ms for t in dense_profile if t.kind in PRODUCT_KINDS) / total
    return 1 / (products / flop_bound + (1 - products) * traffic_ratio)
