"""Report folders for the site tests: real analyses of pruned MiniLMs with hand-set timings
and scores, so the home table's figures are known independently of the site code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conftest import EXAMPLE_SPEC, LINEAR_DENSE, PruneSpec, build_minilm

from analyzer import analyze
from analyzer.publish.card import write_card
from analyzer.records import (
    Bench,
    BenchShape,
    ConfidenceInterval,
    Environment,
    Equivalence,
    Evaluation,
    Provenance,
    Publication,
    Report,
    SquadScores,
)

LIGHT_SPEC = PruneSpec(zero_heads={2: (3,)}, zero_units={1: tuple(range(10))})

ENV = Environment(
    python="3.11.2",
    platform="Linux",
    cpu="Test CPU",
    cores=2,
    torch="2.13.0",
    transformers="5.24.0",
    device="cpu",
)


@dataclass(frozen=True)
class Expected:
    title: str
    density: float
    heads_removed: int


def bench(speedup_dense_ms: float, packed_ms: float) -> Bench:
    shape = BenchShape(
        batch=8,
        seq=128,
        dense_ms=speedup_dense_ms,
        packed_ms=packed_ms,
        dense_spread_ms=0.5,
        packed_spread_ms=0.25,
        speedup=speedup_dense_ms / packed_ms,
        flop_bound=3.0,
        fraction_of_bound=speedup_dense_ms / packed_ms / 3.0,
        repeats=20,
    )
    small = BenchShape(1, 16, 2.0, 1.8, 0.1, 0.1, 2.0 / 1.8, 2.5, 0.44, 20)
    equivalence = Equivalence(max_abs_diff=2e-6, tolerance=1e-4, inputs="8 x 128 random tokens")
    return Bench(
        threads=2,
        device="cpu",
        dtype="float32",
        shapes=(small, shape),
        equivalence=equivalence,
        environment=ENV,
    )


def evaluation(exact: float, f1: float, n: int) -> Evaluation:
    scores = SquadScores(
        exact=exact,
        f1=f1,
        total=n,
        HasAns_exact=50.0,
        HasAns_f1=55.0,
        HasAns_total=n // 2,
        NoAns_exact=70.0,
        NoAns_f1=70.0,
        NoAns_total=n // 2,
    )
    ci = ConfidenceInterval(exact - 3, exact + 3, f1 - 3, f1 + 3, 0.95, 1000, 0)
    return Evaluation(
        scores=scores,
        ci=ci,
        n=n,
        data="data/squad_v2_dev_half.json",
        data_sha256="ab" * 32,
        packed=True,
        limit=n,
        seed=0,
    )


def write_report_dir(
    out: Path, checkpoint: Path, title: str, *, bench_record=None, evaluation_record=None
) -> Path:
    """A report folder as `prunecard card` writes it (README.md, report.json, assets/)."""
    provenance = Provenance(
        tool_version="0.1.0",
        command=f"prunecard card {checkpoint.name}",
        checkpoint=str(checkpoint),
        file_sha256={"model.safetensors": "cd" * 32},
        created="2025-01-31T12:00:00Z",
        environment=ENV,
    )
    report = Report(
        provenance=provenance,
        analysis=analyze(checkpoint),
        bench=bench_record,
        evaluation=evaluation_record,
        publication=Publication(model_id=title, license="apache-2.0"),
    )
    return write_card(out, report)


def make_reports(base: Path) -> tuple[list[Path], list[Expected]]:
    """Two report folders: one fully measured (listed first on the home page, it has the
    only speedup), one with analysis only."""
    heavy = build_minilm(base / "ckpt-heavy", EXAMPLE_SPEC)
    light = build_minilm(base / "ckpt-light", LIGHT_SPEC)
    dirs = [
        write_report_dir(base / "minilm-light", light, "MiniLM light"),
        write_report_dir(
            base / "minilm-heavy",
            heavy,
            "MiniLM heavy",
            bench_record=bench(10.0, 4.0),
            evaluation_record=evaluation(61.25, 64.5, 200),
        ),
    ]
    expected = [
        Expected("MiniLM heavy", 1 - EXAMPLE_SPEC.linear_zeros / LINEAR_DENSE, 6),
        Expected("MiniLM light", 1 - LIGHT_SPEC.linear_zeros / LINEAR_DENSE, 1),
    ]
    return dirs, expected
