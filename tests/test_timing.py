"""The timing protocol on a fake clock: when it stops, what it keeps, what it calls stable."""

from __future__ import annotations

import dataclasses

import pytest
from fake_timer import FakeTimer
from site_reports import ENV

from analyzer.records import Bench, BenchShape, Equivalence, TimeShare, from_dict, to_dict
from analyzer.runtime.profile import elementwise_traffic, kind_of, memory_bound
from analyzer.runtime.timing import (
    MAX_SPREAD,
    Protocol,
    implausible,
    iqr,
    relative_spread,
    time_interleaved,
    verdict,
)
from analyzer.weights.flops import LayerShape


def _time(dense_ms, packed_ms, **protocol):
    timer = FakeTimer()
    samples = time_interleaved(
        timer.model(dense_ms),
        timer.model(packed_ms),
        Protocol(**protocol),
        clock=timer,
        cpu_clock=None,
    )
    return samples, timer


def test_quiet_runs_stop_at_the_minimum_repeats():
    samples, _ = _time([100.0, 101.0], [50.0, 50.5], warmup=2, min_repeats=10)
    # spread 1% < 5%: judged after the 10th round and stopped there
    assert len(samples.dense_ms) == len(samples.packed_ms) == 10
    # two warm-up runs of each came first, so each side's samples start at its third duration
    assert samples.dense_ms[:2] == pytest.approx((100.0, 101.0))
    assert samples.elapsed_s == pytest.approx(5 * (100 + 101 + 50 + 50.5) / 1000)


def test_noisy_runs_go_on_until_the_budget_is_spent():
    # dense alternates 10 / 12 ms: IQR / median = 2 / 11, never under 5%
    samples, _ = _time([10.0, 12.0], [5.0], warmup=0, min_repeats=4, budget_s=1.0)
    per_round = (11.0 + 5.0) / 1000  # two rounds take 32 ms
    assert samples.elapsed_s >= 1.0 > samples.elapsed_s - 2 * per_round
    assert len(samples.dense_ms) < 200


def test_max_repeats_bounds_a_clock_that_never_reaches_the_budget():
    samples, _ = _time([10.0, 12.0], [5.0], warmup=0, min_repeats=4, max_repeats=30)
    assert len(samples.dense_ms) == 30


def test_rounds_are_interleaved():
    order: list[str] = []
    timer = FakeTimer()
    time_interleaved(
        lambda: order.append("d"),
        lambda: order.append("p"),
        Protocol(warmup=1, min_repeats=3, max_repeats=3),
        clock=timer,
        cpu_clock=None,
    )
    assert "".join(order) == "dp" + "dp" + "pd" + "dp"


def test_iqr_and_relative_spread():
    assert iqr([1.0, 2.0, 3.0, 4.0, 5.0]) == 2.0
    assert iqr([7.0]) == 0.0
    assert relative_spread([10.0, 10.0, 12.0, 12.0]) == pytest.approx(2 / 11)
    assert relative_spread([]) == float("inf")


def _shape(dense, packed, bound=3.0, **extra) -> BenchShape:
    import statistics

    from analyzer.runtime.timing import speedup_spread

    d, p = statistics.median(dense), statistics.median(packed)
    return BenchShape(
        8,
        384,
        d,
        p,
        iqr(dense),
        iqr(packed),
        d / p,
        bound,
        d / p / bound,
        len(dense),
        speedup_spread=speedup_spread(dense, packed),
        dense_samples_ms=tuple(dense),
        packed_samples_ms=tuple(packed),
        **extra,
    )


def _judge(shape, cpu_share=None, load=0.1, threads=0):
    return verdict(
        shape, threshold=0.05, cpu_share=cpu_share, load_before=load, cores=2, threads=threads
    )


def test_verdicts_name_each_reason():
    quiet = _shape([100.0, 101.0] * 5, [50.0, 50.5] * 5)
    assert _judge(quiet) == "stable"
    noisy = _shape([100.0, 120.0] * 5, [50.0, 50.5] * 5)  # 20 / 110 = 18.2%
    assert _judge(noisy).startswith("unstable (dense spread 18.2% of the median after 10 runs")
    assert "other processes competed" in _judge(quiet, cpu_share=0.5)
    assert _judge(quiet, cpu_share=0.9) == "stable"
    assert "load average 2.50 on 2 cores" in _judge(quiet, load=2.5)
    # 2.5 less this process's 2 threads leaves 0.5 for others: not a loaded machine
    assert _judge(quiet, load=2.5, threads=2) == "stable"
    assert "load average 4.10 on 2 cores" in _judge(quiet, load=4.1, threads=2)


def test_implausible_above_the_bound_or_a_quarter_spread():
    above = _shape([100.0, 101.0] * 5, [20.0, 20.2] * 5, bound=3.0)  # 5x of a 3x bound
    wild = _shape([100.0, 200.0] * 5, [50.0, 50.5] * 5)  # dense spread 100 / 150 = 67%
    within = _shape([110.0, 130.0, 111.0, 129.0], [40.0] * 4, bound=2.9)  # 3.00x
    bench = Bench(2, "cpu", "fp32", (above, wild), Equivalence(0.0, 1e-4, "x"), ENV)
    lines = implausible(bench)
    assert len(lines) == 2
    assert lines[0].startswith("batch 8 x 384: speedup 5.00x is above the FLOP bound 3.00x")
    assert f"over {100 * MAX_SPREAD:.1f}%" in lines[1]
    assert "unstable (speedup 5.00x" in _judge(above)
    # above the bound by less than the spread of the per-round ratios: not implausible
    assert within.speedup > within.flop_bound
    assert within.speedup - within.flop_bound < within.speedup_spread
    assert implausible(dataclasses.replace(bench, shapes=(within,))) == []


def test_bench_record_round_trips_with_every_sample():
    shape = _shape(
        [100.0, 101.0] * 5,
        [50.0, 50.5] * 5,
        cpu_share=0.97,
        verdict="stable",
        dense_profile=(TimeShare("linear layers", 60.0), TimeShare("LayerNorm", 20.0)),
        packed_profile=(TimeShare("linear layers", 20.0),),
        memory_bound=2.1,
    )
    bench = Bench(
        2,
        "cpu",
        "fp32",
        (shape,),
        Equivalence(0.0, 1e-4, "x"),
        ENV,
        load_before=(0.5, 0.4, 0.3),
        load_after=(1.5, 0.6, 0.4),
        threshold=0.05,
        budget_s=20.0,
        quick=True,
    )
    assert from_dict(Bench, to_dict(bench)) == bench
    # a record written before the protocol still loads: verdict "" means not judged
    old = to_dict(bench)
    for key in ("speedup_spread", "dense_samples_ms", "verdict", "memory_bound"):
        del old["shapes"][0][key]
    assert from_dict(Bench, old).shapes[0].verdict == ""


def test_operator_names_map_to_kinds_of_work():
    assert kind_of("aten::addmm") == "linear layers"
    assert kind_of("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention"
    assert kind_of("aten::bmm") == "attention"
    assert kind_of("aten::_softmax") == "softmax"
    assert kind_of("aten::native_layer_norm") == "LayerNorm"
    assert kind_of("aten::gelu") == "other"


def test_memory_bound_adds_the_work_packing_does_not_shrink():
    layers = [LayerShape(heads=12, head_dim=64, hidden=768, ffn=3072)]
    packed = [LayerShape(heads=6, head_dim=64, hidden=768, ffn=768)]
    # per token: 10 x 768 + 2 x 3072 = 13,824 elements dense; 10 x 768 + 2 x 768 packed
    assert elementwise_traffic(layers, 4) == 4 * 13_824
    ratio = elementwise_traffic(packed, 4) / elementwise_traffic(layers, 4)
    assert ratio == pytest.approx(9_216 / 13_824)
    # the dense model spent 75% of its time in products: 1 / (0.75 / 4 + 0.25 x ratio)
    profile = (TimeShare("linear layers", 60.0), TimeShare("attention", 15.0))
    profile += (TimeShare("LayerNorm", 10.0), TimeShare("other", 15.0))
    assert memory_bound(profile, 4.0, ratio) == pytest.approx(1 / (0.75 / 4 + 0.25 * ratio))
    assert memory_bound(profile, 4.0, ratio) < 4.0
    assert memory_bound((), 4.0, ratio) is None
