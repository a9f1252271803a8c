"""What a bench times unless told otherwise: the one place its default shapes, decoding
runs, protocol and profiling are written (`bench`, `report` and `audit --rebench` take them
from here; the CLI's help prints them).

`--quick` on a causal LM is sized to stay under a minute on a CPU for a 1B model with a
128k vocabulary (benchmarks/quick_bench_1b.py): one short prompt, its timed forwards
computing the last position's logits only (`analyzer.runtime.bench.measure` times the
lm_head once apart), and decoding one sequence for a few tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from analyzer.runtime.decode import DECODE_BATCHES, NEW_TOKENS, PROMPT_TOKENS
from analyzer.runtime.timing import DEFAULT, QUICK, Protocol

__all__ = ["FULL", "QUICK_LM_PLAN", "QUICK_PLAN", "BenchPlan", "bench_plan"]


@dataclass(frozen=True)
class BenchPlan:
    """What a bench times unless told otherwise: the one place its defaults are written
    (the CLI's `bench`, `report` and `audit --rebench` take them from here)."""

    batches: tuple[int, ...]  # prefill shapes: every batch size at every sequence length
    seqs: tuple[int, ...]
    decode_batches: tuple[int, ...]  # causal LMs: greedy decoding per batch size
    prompt_tokens: int
    new_tokens: int
    protocol: Protocol
    profile_runs: int  # torch.profiler passes per model and shape, after timing

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        return tuple((b, s) for s in self.seqs for b in self.batches)


# SQuAD's windows of 384 tokens, for one user and a small batch
FULL = BenchPlan((1, 8), (384,), DECODE_BATCHES, PROMPT_TOKENS, NEW_TOKENS, DEFAULT, 3)
# `--quick`, for trying things: one short shape, one profile pass
QUICK_PLAN = replace(FULL, batches=(1,), seqs=(128,), protocol=QUICK, profile_runs=1)
# `--quick` on a causal LM (see the module docstring)
QUICK_LM_PLAN = replace(QUICK_PLAN, seqs=(32,), decode_batches=(1,), prompt_tokens=16, new_tokens=4)


def bench_plan(*, quick: bool, causal: bool) -> BenchPlan:
    """The default plan of a bench (`--quick` or not) for a causal LM or an encoder."""
    if not quick:
        return FULL
    return QUICK_LM_PLAN if causal else QUICK_PLAN
