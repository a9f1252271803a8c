"""CUDA graphs: a forward pass captured for an input shape, then replayed.

A small batch on a GPU is bound by kernel launches (hundreds of small kernels per pass,
each launched from Python); a replayed graph launches them all at once. Capture needs
fixed shapes and fixed input tensors, so each shape gets its own graph with its own static
inputs, which new values are copied into before each replay. Capturing costs a few passes,
so a shape is captured only when it comes back: shapes seen once run eagerly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

__all__ = ["GraphedForward", "capture"]


def capture(model: Any, inputs: dict[str, Any], pool: Any = None) -> tuple[Any, Any]:
    """Capture `model(**inputs)`: returns the graph and the outputs it refills on replay
    (`inputs` become the graph's static inputs)."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # let cuBLAS and SDPA pick their kernels before capture
            model(**inputs)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        outputs = model(**inputs)
    return graph, outputs


class GraphedForward:
    """`model(**inputs)`, eagerly the first time an input shape is seen, through a CUDA
    graph captured on its second sight and replayed from then on; the graphs share one
    memory pool (they never run at the same time)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._seen: Counter[tuple] = Counter()
        self._graphs: dict[tuple, tuple[dict[str, Any], Callable[[], None], Any]] = {}
        self._pool: Any = None

    def __call__(self, inputs: dict[str, Any]) -> Any:
        import torch

        key = tuple((name, tuple(value.shape)) for name, value in sorted(inputs.items()))
        self._seen[key] += 1
        if key not in self._graphs:
            if self._seen[key] < 2:
                return self.model(**inputs)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            static = {name: value.clone() for name, value in inputs.items()}
            graph, outputs = capture(self.model, static, self._pool)
            self._graphs[key] = (static, graph.replay, outputs)
        static, replay, outputs = self._graphs[key]
        for name, value in inputs.items():
            static[name].copy_(value)
        replay()
        return outputs
