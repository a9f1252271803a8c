"""`bench --quick` and `report`'s one bench, by structure (no timing: speed figures live in
benchmarks/quick_bench_1b.py): the quick plan of a causal LM, its lm_head timed once per
shape while the timed forwards keep only the last position's logits, and `report` running
one bench whose record the card and bench.json share."""

from __future__ import annotations

import json

import pytest
from decoders import build_decoder
from fake_timer import patch_bench
from test_decoder_packing import SIZES, prune_spec

from analyzer import load_record
from analyzer.cli.main import main
from analyzer.publish.report import read_report
from analyzer.records import Bench, to_dict
from analyzer.runtime import bench as bench_module
from analyzer.runtime import packing
from analyzer.runtime.plan import FULL, QUICK_LM_PLAN, QUICK_PLAN, bench_plan

STEADY_DENSE, STEADY_PACKED = [12.5, 12.6], [10.0, 10.05]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return build_decoder(
        tmp_path_factory.mktemp("quick") / "llama", "llama", prune=prune_spec(), **SIZES
    )


def _tokens(plan) -> int:
    """Tokens one timed run of each model processes: every prefill shape, every decode run."""
    prefill = sum(b * s for b, s in plan.shapes)
    return prefill + sum(b * (plan.prompt_tokens + plan.new_tokens) for b in plan.decode_batches)


def test_the_quick_plan_of_a_causal_lm_is_one_short_prompt_and_one_short_decode():
    plan = bench_plan(quick=True, causal=True)
    assert plan is QUICK_LM_PLAN and len(plan.shapes) == 1 and plan.decode_batches == (1,)
    (batch, seq), encoder = plan.shapes[0], bench_plan(quick=True, causal=False)
    assert batch == 1 and seq < encoder.shapes[0][1]
    # the quick plan before: batch 1 x 128 tokens, decoding batches 1 and 16 for 32 + 32 tokens
    before = 1 * 128 + (1 + 16) * (32 + 32)
    assert _tokens(plan) * 20 <= before
    assert bench_plan(quick=False, causal=True) is bench_plan(quick=False, causal=False) is FULL
    assert encoder is QUICK_PLAN and plan.protocol == encoder.protocol


def test_quick_bench_times_the_lm_head_once_per_shape(llama, tmp_path, monkeypatch, capsys):
    """Hooks on both models' lm_head see its inputs: full-length ones (batch x seq) come
    only from the one timing apart; every timed or profiled forward gives it 1 position."""
    seen: list[tuple[int, ...]] = []
    real_load = packing.load

    def load(*args, **kwargs):
        model = real_load(*args, **kwargs)
        model.get_output_embeddings().register_forward_hook(
            lambda module, inputs, output: seen.append(tuple(inputs[0].shape[:2]))
        )
        return model

    timed_apart: list[tuple[int, int]] = []
    real_time = bench_module._time_lm_head

    def time_head(head, batch, seq, clock):
        timed_apart.append((batch, seq))
        return real_time(head, batch, seq, clock)

    monkeypatch.setattr(packing, "load", load)
    monkeypatch.setattr(bench_module, "_time_lm_head", time_head)
    out = tmp_path / "bench.json"
    argv = ["bench", str(llama), "--quick", "--device", "cpu", "--accept-unstable"]
    assert main([*argv, "--repeats", "2", "--budget", "0.1", "--json", str(out)]) == 0

    record = load_record(Bench, out)
    shapes = [(s.batch, s.seq) for s in record.shapes]
    assert shapes == list(QUICK_LM_PLAN.shapes) and timed_apart == shapes
    assert [(d.batch, d.prompt, d.new_tokens) for d in record.decode] == [
        (b, QUICK_LM_PLAN.prompt_tokens, QUICK_LM_PLAN.new_tokens)
        for b in QUICK_LM_PLAN.decode_batches
    ]
    assert record.last_logits and all(s.lm_head_ms is not None for s in record.shapes)
    for shape in shapes:
        assert seen.count(shape) == 1  # the timing apart; never a timed forward
    equivalence = 2  # dense and packed over the real text, full logits: the exactness check
    assert sum(1 for s in seen if s[1] > 1) == len(shapes) + equivalence
    assert json.loads(out.read_text())["last_logits"] is True
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "timed once" in x]
    (s,) = record.shapes
    assert line.endswith(
        f"lm_head over every position timed once: {s.lm_head_ms:.1f} ms at {s.batch} x {s.seq}"
    )


def test_a_full_bench_keeps_every_logit_in_its_timed_forwards(llama, tmp_path, monkeypatch):
    patch_bench(monkeypatch, STEADY_DENSE, STEADY_PACKED)
    out = tmp_path / "bench.json"
    argv = ["bench", str(llama), "--device", "cpu", "--no-profile", "--seq", "16"]
    assert main([*argv, "--batch", "1", "--decode-batch", "1", "--json", str(out)]) == 0
    record = load_record(Bench, out)
    assert not record.last_logits and all(s.lm_head_ms is None for s in record.shapes)


def test_report_runs_one_bench_and_keeps_its_record(llama, tmp_path, monkeypatch):
    patch_bench(monkeypatch, STEADY_DENSE, STEADY_PACKED)
    calls = {"bench": 0, "measure": 0}
    real_bench, real_measure = bench_module.bench, bench_module.measure

    def counted(name, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(bench_module, "bench", counted("bench", real_bench))
    monkeypatch.setattr(bench_module, "measure", counted("measure", real_measure))
    out = tmp_path / "report"
    argv = ["report", str(llama), "--quick", "--no-eval", "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    assert calls == {"bench": 1, "measure": 1}
    record = load_record(Bench, out / "bench.json")
    assert to_dict(read_report(out).bench) == to_dict(record)  # the card's is that record
    assert [(s.batch, s.seq) for s in record.shapes] == list(QUICK_LM_PLAN.shapes)
    card = (out / "README.md").read_text()
    assert "timed once apart" in card and "`logits_to_keep=1`" in card
