"""A fake clock for the timing protocol: time moves only when a fake model runs."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence


class FakeTimer:
    """`timer()` reads the time in seconds; `timer.model([ms, ...])` is a runner that
    advances it by the next of those durations (cycling) each time it is called."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def model(self, times_ms: Sequence[float]) -> Callable[[], None]:
        durations = itertools.cycle(times_ms)

        def run() -> None:
            self.now += next(durations) / 1000

        return run


def patch_bench(monkeypatch, dense_ms: Sequence[float], packed_ms: Sequence[float]) -> None:
    """Make `prunecard bench` / `report` time fake models on a fake clock, on a quiet
    machine: the real models are still built and compared, only the timed runs are fake
    (prefill and decoding alike: runners are made in dense, packed order)."""
    import os

    from analyzer.runtime import bench as bench_module

    timer = FakeTimer()
    made: list[str] = []

    def runner(model, inputs, graphs, new_tokens=0):
        made.append("dense" if len(made) % 2 == 0 else "packed")
        return timer.model(dense_ms if made[-1] == "dense" else packed_ms)

    monkeypatch.setattr(bench_module, "_runner", runner)
    monkeypatch.setattr(bench_module, "_clocks", lambda device: (timer, None))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.2, 0.3))
