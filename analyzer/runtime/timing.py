"""The timing protocol: warm up, interleave, calibrate until the spread is small, then say
whether the figures can be trusted.

Modelled on pyperf (warm-up runs, many samples, a warning when the spread is large) and
`torch.utils.benchmark.Timer.adaptive_autorange` (keep sampling until IQR / median falls
under a threshold or a time budget runs out). Neither is used directly: both time one
statement at a time, and a speedup needs the two models interleaved in one loop (dense,
packed, packed, dense, ...) so that a change in clock speed or load hits both alike. The
clocks are parameters, so tests drive the protocol with a fake timer.

Verdicts, per shape: `stable`, or `unstable (why)` naming every reason: a side whose
relative spread stayed above the threshold, a speedup above the FLOP bound by more than its
spread, a timing thread that was off the CPU for much of the time it ran (other
processes competed), a machine already fully loaded by others before timing. A subset is
*implausible* (`implausible`): the figure cannot be published without `--accept-unstable`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from analyzer.records import Bench, BenchShape
from analyzer.text import fixed, percent, ratio

__all__ = [
    "DEFAULT",
    "MAX_SPREAD",
    "MIN_CPU_SHARE",
    "QUICK",
    "Clock",
    "ImplausibleTiming",
    "Protocol",
    "Samples",
    "implausible",
    "iqr",
    "relative_spread",
    "require_plausible",
    "speedup_spread",
    "time_interleaved",
    "verdict",
]

Clock = Callable[[], float]  # seconds, monotonic
MAX_SPREAD = 0.25  # IQR / median above this is implausible, whatever the threshold
MIN_CPU_SHARE = 0.75  # timing thread's CPU time / wall time under this: others took the CPU


@dataclass(frozen=True)
class Protocol:
    """How long to time one (batch, seq) shape."""

    warmup: int = 2  # untimed runs of each model first (allocator, caches, kernel choice)
    min_repeats: int = 10  # timed runs of each model before the spread is judged
    max_repeats: int = 200  # a bound for fast models on a noisy machine
    threshold: float = 0.05  # stop once IQR / median of both sides is under this
    budget_s: float = 20.0  # ... or once this much time was spent timing the shape


DEFAULT = Protocol()
QUICK = Protocol(warmup=1, min_repeats=5, budget_s=5.0)  # `--quick`: for trying things


class ImplausibleTiming(Exception):
    """A bench whose figures must not be published as measured (exit 1 in the CLI)."""


@dataclass(frozen=True)
class Samples:
    """What one shape's timing loop saw."""

    dense_ms: tuple[float, ...]
    packed_ms: tuple[float, ...]
    elapsed_s: float  # wall time of the timed runs, warm-up excluded
    cpu_share: float | None  # the timing thread's CPU time / wall time; None when not known


def time_interleaved(
    dense: Callable[[], object],
    packed: Callable[[], object],
    protocol: Protocol,
    *,
    clock: Clock = time.perf_counter,
    cpu_clock: Clock | None = time.thread_time,
    on_run: Callable[[], None] = lambda: None,
) -> Samples:
    """Milliseconds per run of each model, in interleaved rounds, until both sides'
    IQR / median is under `protocol.threshold` (after `min_repeats`), the budget is spent
    or `max_repeats` is reached. `clock` must include any device synchronisation."""
    for run in (dense, packed):
        for _ in range(protocol.warmup):
            run()
            on_run()
    runs = (dense, packed)
    times: tuple[list[float], list[float]] = ([], [])
    began, cpu_began = clock(), cpu_clock() if cpu_clock else None
    for r in range(protocol.max_repeats):
        for i in (0, 1) if r % 2 == 0 else (1, 0):
            start = clock()
            runs[i]()
            times[i].append(1000 * (clock() - start))
            on_run()
        if r + 1 >= protocol.min_repeats and (
            all(relative_spread(t) <= protocol.threshold for t in times)
            or clock() - began >= protocol.budget_s
        ):
            break
    elapsed = clock() - began
    share = None
    if cpu_clock is not None and cpu_began is not None and elapsed > 0:
        share = (cpu_clock() - cpu_began) / elapsed
    return Samples(tuple(times[0]), tuple(times[1]), elapsed, share)


def iqr(values: Sequence[float]) -> float:
    """Interquartile range (inclusive quartiles; 0 for fewer than two values)."""
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]


def relative_spread(values: Sequence[float]) -> float:
    """IQR / median: the figure the threshold applies to (inf for no values)."""
    if not values:
        return float("inf")
    median = statistics.median(values)
    return iqr(values) / median if median > 0 else float("inf")


def speedup_spread(dense_ms: Sequence[float], packed_ms: Sequence[float]) -> float:
    """IQR of the per-round ratios dense / packed: the rounds are paired (interleaved)."""
    return iqr([d / p for d, p in zip(dense_ms, packed_ms, strict=True) if p > 0])


def verdict(
    shape: BenchShape,
    *,
    threshold: float,
    cpu_share: float | None,
    load_before: float | None,
    cores: int,
    threads: int = 0,
) -> str:
    """`stable`, or `unstable (reason; reason)` for one timed shape. The load average
    counts this process too: up to `threads` of it may be its own earlier work."""
    reasons = _implausible_reasons(shape)
    for side, samples in (("dense", shape.dense_samples_ms), ("packed", shape.packed_samples_ms)):
        spread = relative_spread(samples)
        if threshold < spread <= MAX_SPREAD:
            reasons.append(
                f"{side} spread {percent(spread)} of the median after {len(samples)} runs, "
                f"over the {percent(threshold)} threshold"
            )
    if cpu_share is not None and cpu_share < MIN_CPU_SHARE:
        reasons.append(
            f"the timing thread was on a CPU {percent(cpu_share)} of the time "
            "(other processes competed)"
        )
    if load_before is not None and load_before - threads >= cores:
        reasons.append(
            f"load average {fixed(load_before)} on {cores} cores before timing, "
            f"{threads} of it at most this process's"
        )
    return "stable" if not reasons else f"unstable ({'; '.join(reasons)})"


def implausible(bench: Bench) -> list[str]:
    """One line per shape whose figures cannot be published as measured: a speedup above
    the FLOP bound by more than its spread, or a spread above a quarter of the median."""
    lines = []
    for s in bench.shapes:
        reasons = _implausible_reasons(s)
        if reasons:
            lines.append(f"batch {s.batch} x {s.seq}: {'; '.join(reasons)}")
    return lines


def require_plausible(bench: Bench) -> None:
    """Raise `ImplausibleTiming` naming each implausible shape, in one line."""
    lines = implausible(bench)
    if lines:
        raise ImplausibleTiming(
            "implausible timing at "
            + "; at ".join(lines)
            + " (rerun on a quiet machine, or pass --accept-unstable to publish it marked)"
        )


def _implausible_reasons(s: BenchShape) -> list[str]:
    reasons = []
    if s.speedup - s.flop_bound > s.speedup_spread:
        reasons.append(
            f"speedup {ratio(s.speedup)} is above the FLOP bound {ratio(s.flop_bound)} by more "
            f"than its spread ({ratio(s.speedup_spread)})"
        )
    for side, median, spread in (
        ("dense", s.dense_ms, s.dense_spread_ms),
        ("packed", s.packed_ms, s.packed_spread_ms),
    ):
        if median > 0 and spread / median > MAX_SPREAD:
            reasons.append(
                f"{side} spread {fixed(spread)} ms is {percent(spread / median)} of the median "
                f"{fixed(median)} ms (over {percent(MAX_SPREAD)})"
            )
    return reasons
