"""One read, one plan: `report` and `eval` open their checkpoint once, `pack` reads no
weight twice, and the packed folder `report` keeps is the model its bench timed.

The rule counted: every step of `report` (the architecture check, analyze, pack, bench's
dense and packed models, eval) reads the input through one `Checkpoint`, so each of its
weight files is opened with `safetensors.safe_open` exactly once; the packed folder
report writes is never opened again (bench and eval run the model built from the state
that was written).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import safetensors
import torch
from badio import tiny_qa
from conftest import build_minilm
from decoders import build_decoder, layer_weight
from safetensors.torch import load_file

from analyzer.cli.main import main
from analyzer.pipeline import PerplexityOptions, ReportOptions, run_report
from analyzer.records import Publication

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from read_counter import ReadCounter  # the benchmarks' counter, shared

LLAMA3 = Path(__file__).parent / "data" / "tokenizers" / "llama3"  # has no pad token

ALIGN = 8  # not the CPU's default of 1: the folder must be packed as bench timed it


def _counting(monkeypatch: pytest.MonkeyPatch) -> ReadCounter:
    counter = ReadCounter()
    monkeypatch.setattr(safetensors, "safe_open", counter.safe_open)
    return counter


def _capture_timed(monkeypatch: pytest.MonkeyPatch) -> list:
    """The packed models bench times, as `measure` receives them."""
    import analyzer.runtime.bench as bench

    timed, real = [], bench.measure

    def measure(dense, packed, **kwargs):
        timed.append(packed)
        return real(dense, packed, **kwargs)

    monkeypatch.setattr(bench, "measure", measure)
    return timed


def test_report_opens_its_checkpoint_once_and_keeps_the_model_it_timed(tmp_path, monkeypatch):
    folder = build_minilm(tmp_path / "in")
    weights = folder / "model.safetensors"
    counting = _counting(monkeypatch)
    timed = _capture_timed(monkeypatch)
    options = ReportOptions(limit=4, quick=True, accept_unstable=True, align=ALIGN)
    out = tmp_path / "report"
    run_report(folder, out, Publication(model_id="m"), options, say=lambda _: None)

    assert counting.opens == {str(weights.resolve()): 1}  # the packed folder: never reopened
    # analysis reads every tensor once, bench's dense model once more, packing the rows it
    # keeps: under three times the file (it was five: analyze, pack, dense, packed, eval)
    assert counting.bytes < 3 * weights.stat().st_size

    # the folder kept is the model bench timed: the same tensors, packed at bench's align
    (model,) = timed
    written = load_file(str(out / "packed" / "model.safetensors"))
    config = json.loads((out / "packed" / "config.json").read_text())
    bench = json.loads((out / "bench.json").read_text())
    assert config["prunecard_packing"]["align"] == bench["align"] == ALIGN
    widths = config["prunecard_packing"]["intermediate_sizes"]
    units = config["prunecard_packing"]["units_kept"]
    assert all(w % ALIGN == 0 for w in widths) and widths != units  # padded: not align 1
    timed_state = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    layers = [n for n in written if ".layer." in n]
    assert len(layers) == 16 * 6  # every encoder matrix, bias and norm of the six layers
    for name in layers:  # the file's names may lack the model's prefix ("bert.")
        (key,) = [k for k in timed_state if k == name or k.endswith("." + name)]
        assert torch.equal(timed_state.pop(key), written[name]), name
    for key, tensor in timed_state.items():  # embeddings, the QA head: also as written
        assert torch.equal(tensor, written[key]), key
    assert bench["packed_bytes"] == (out / "packed" / "model.safetensors").stat().st_size
    intermediate = [
        m.out_features for n, m in model.named_modules() if n.endswith("intermediate.dense")
    ]
    assert intermediate == widths


def test_a_causal_lm_report_opens_its_checkpoint_once(tmp_path, monkeypatch):
    """The perplexity path too: the stored model is built through the same Checkpoint."""
    folder = build_decoder(tmp_path / "llama", "llama")
    counting = _counting(monkeypatch)
    options = ReportOptions(
        perplexity=PerplexityOptions(limit_tokens=64), quick=True, accept_unstable=True
    )
    run_report(folder, tmp_path / "r", Publication(model_id="m"), options, say=lambda _: None)
    assert counting.opens == {str((folder / "model.safetensors").resolve()): 1}


def test_a_report_with_lm_eval_tasks_opens_its_checkpoint_once(
    tmp_path, monkeypatch, lm_eval_tasks
):
    """The tasks step loads the model through the report's Checkpoint, not its path."""
    from analyzer.lmeval.options import LmEvalOptions, TaskSources

    folder = build_decoder(tmp_path / "llama", tokenizer=LLAMA3)
    counting = _counting(monkeypatch)
    tasks = TaskSources(LmEvalOptions(tasks=("tiny_choice",), include_path=lm_eval_tasks))
    options = ReportOptions(
        perplexity=PerplexityOptions(limit_tokens=64),
        quick=True,
        accept_unstable=True,
        benchmark=False,
        tasks=tasks,
    )
    report = run_report(
        folder, tmp_path / "r", Publication(model_id="m"), options, say=lambda _: None
    )
    assert counting.opens == {str((folder / "model.safetensors").resolve()): 1}
    assert [t.task for t in report.benchmarks.tasks] == ["tiny_choice"]


def test_eval_opens_a_qa_checkpoint_once(tmp_path, monkeypatch):
    """The kind check (is it a causal LM?) and the SQuAD run read through one Checkpoint."""
    qa = tiny_qa(tmp_path / "qa", tokenizer=True, vocab=30522)  # MiniLM's tokenizer
    counting = _counting(monkeypatch)
    assert main(["eval", str(qa), "--limit", "2", "--out", str(tmp_path / "e")]) == 0
    assert counting.opens == {str((qa / "model.safetensors").resolve()): 1}


@pytest.mark.parametrize("packed", [[], ["--packed"]])
def test_eval_opens_a_causal_lm_once(tmp_path, monkeypatch, packed):
    folder = build_decoder(tmp_path / "llama", "llama")
    counting = _counting(monkeypatch)
    args = ["eval", str(folder), "--limit-tokens", "64", "--json", str(tmp_path / "p.json")]
    assert main([*args, *packed]) == 0
    assert counting.opens == {str((folder / "model.safetensors").resolve()): 1}


def _tensor_bytes(weights: Path) -> dict[str, int]:
    return {n: t.numel() * t.element_size() for n, t in load_file(str(weights)).items()}


def _prune_llama(state):
    layer_weight(state, 0, "self_attn.v_proj")[:8] = 0  # K/V group 0 of layer 0
    layer_weight(state, 1, "mlp.down_proj")[:, :20] = 0  # 20 channels of layer 1


@pytest.mark.parametrize("model", ["minilm", "llama"])
def test_pack_reads_each_weight_at_most_once(tmp_path, monkeypatch, model):
    """A standalone `pack` decides each layer's plan from the matrices it reads, then slices
    those: one open, no tensor's bytes read twice (it was twice for every layer matrix: once
    for the plan, again by the rows kept), and the same packed model as analysis's plan."""
    from analyzer.runtime.packing import pack
    from analyzer.weights.sparsity import analyze_with_plan

    if model == "minilm":
        folder = build_minilm(tmp_path / "in")
    else:
        folder = build_decoder(tmp_path / "in", "llama", prune=_prune_llama, heads=4, kv_heads=2)
    weights = folder / "model.safetensors"
    sizes = _tensor_bytes(weights)
    counting = _counting(monkeypatch)
    assert main(["pack", str(folder), str(tmp_path / "packed")]) == 0
    assert counting.opens == {str(weights.resolve()): 1}
    assert set(counting.by_name) <= set(sizes)
    twice = {n: (read, sizes[n]) for n, read in counting.by_name.items() if read > sizes[n]}
    assert not twice
    assert counting.bytes <= sum(sizes.values())

    monkeypatch.undo()
    pack(folder, tmp_path / "by-analysis", plan=analyze_with_plan(folder).plan)
    ours = load_file(str(tmp_path / "packed" / "model.safetensors"))
    theirs = load_file(str(tmp_path / "by-analysis" / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[n], theirs[n]) for n in ours)
    stored = load_file(str(weights))
    assert any(ours[n].shape != stored[n].shape for n in ours)  # something was sliced


def test_bench_opens_its_checkpoint_once(tmp_path, monkeypatch):
    qa = tiny_qa(tmp_path / "qa", tokenizer=True, vocab=30522)
    counting = _counting(monkeypatch)
    args = ["bench", str(qa), "--quick", "--repeats", "2", "--budget", "0.5", "--no-profile"]
    assert main([*args, "--accept-unstable", "--json", str(tmp_path / "b.json")]) == 0
    assert counting.opens == {str((qa / "model.safetensors").resolve()): 1}
    bench = json.loads((tmp_path / "b.json").read_text())
    assert [(s["batch"], s["seq"]) for s in bench["shapes"]] == [(1, 128)]  # --quick's shape
