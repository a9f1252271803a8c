"""lm-evaluation-harness tasks on a tiny Llama: the two bundled local tasks through the real
harness (stored and packed), the `Benchmarks` record, and imported results bound to the model."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from decoders import build_decoder

from analyzer.errors import InputError
from analyzer.lmeval.options import INSTALL_HINT, LmEvalOptions, parse_tasks, require_lm_eval
from analyzer.lmeval.results import check_model, read_results, task_results
from analyzer.lmeval.run import evaluate_checkpoint, run_tasks
from analyzer.records import Benchmarks, HubSource, from_dict, to_dict

LLAMA3 = Path(__file__).parent / "data" / "tokenizers" / "llama3"
TASKS = ("tiny_choice", "tiny_rolling")


@pytest.fixture(scope="module")
def tasks(lm_eval_tasks) -> Path:
    return lm_eval_tasks


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    return build_decoder(tmp_path_factory.mktemp("llama") / "tiny-llama", tokenizer=LLAMA3)


@pytest.mark.slow
def test_bundled_tasks_run_through_the_harness_stored_and_packed(llama, tasks):
    from analyzer.perplexity.model import load_causal_lm

    options = LmEvalOptions(tasks=TASKS, include_path=tasks)
    model, tokenizer = load_causal_lm(llama)
    raw = run_tasks(model, tokenizer, options)
    record = evaluate_checkpoint(llama, options, name=str(llama))
    packed = evaluate_checkpoint(
        llama, LmEvalOptions(tasks=TASKS, include_path=tasks, packed=True), name=str(llama)
    )
    assert [t.task for t in record.tasks] == sorted(TASKS)
    for task in record.tasks:  # every figure is lm-eval's own, key for key
        out = raw["results"][task.task]
        for m in task.metrics:
            assert m.value == pytest.approx(out[f"{m.name},{m.filter}"], rel=1e-9)
        assert task.documents == task.documents_total == raw["n-samples"][task.task]["original"]
    choice, rolling = record.tasks
    assert [m.name for m in choice.metrics] == ["acc", "acc_norm"]  # metric_list order
    assert choice.headline.name == "acc_norm" and choice.output_type == "multiple_choice"
    assert choice.metrics[0].stderr is not None and choice.metrics[0].higher_is_better
    # 4 questions: an accuracy is a count of right answers over 4
    assert (4 * choice.headline.value) == pytest.approx(round(4 * choice.headline.value))
    # bits per byte and byte perplexity are one figure: byte_perplexity = 2 ** bits_per_byte
    by = {m.name: m.value for m in rolling.metrics}
    assert by["byte_perplexity"] == pytest.approx(2 ** by["bits_per_byte"], rel=1e-9)
    assert rolling.output_type == "loglikelihood_rolling" and rolling.headline.stderr is None
    # the packed model computes the same function: the same figures
    for a, b in zip(record.tasks, packed.tasks, strict=True):
        for ma, mb in zip(a.metrics, b.metrics, strict=True):
            assert mb.value == pytest.approx(ma.value, rel=1e-4)
    assert packed.packed and not record.packed
    assert record.file_sha256 and record.lm_eval_version == "0.4.13"
    assert from_dict(Benchmarks, json.loads(json.dumps(to_dict(record)))) == record


@pytest.mark.slow
def test_model_args_have_lm_eval_load_the_stored_checkpoint_itself(llama, tasks, monkeypatch):
    """`--model-args` passed through: HFLM loads the folder itself (as `parallelize=True`
    needs), and scores what it scores on the model prunecard loads, key for key."""
    from analyzer.perplexity.model import load_causal_lm

    model, tokenizer = load_causal_lm(llama)
    raw = run_tasks(model, tokenizer, LmEvalOptions(tasks=TASKS, include_path=tasks))
    options = LmEvalOptions(tasks=TASKS, include_path=tasks, model_args="dtype=float32")

    def not_prunecard(*args, **kwargs):
        raise AssertionError("prunecard loaded the model: lm-eval was to load it")

    monkeypatch.setattr("analyzer.perplexity.model.load_causal_lm", not_prunecard)
    record = evaluate_checkpoint(llama, options, name=str(llama))
    assert (record.backend, record.model_args, record.packed) == ("hf", "dtype=float32", False)
    for task in record.tasks:
        for m in task.metrics:
            assert m.value == pytest.approx(raw["results"][task.task][f"{m.name},{m.filter}"])


def _results(pretrained: str, sha: str = "") -> dict:
    return {
        "results": {"tiny_choice": {"acc,none": 0.5, "acc_stderr,none": 0.25, "alias": "x"}},
        "configs": {"tiny_choice": {"metric_list": [{"metric": "acc"}]}},
        "versions": {"tiny_choice": 1.0},
        "n-shot": {"tiny_choice": 0},
        "n-samples": {"tiny_choice": {"original": 4, "effective": 2}},
        "config": {
            "model": "hf",
            "model_args": f"pretrained={pretrained},dtype=float16",
            "model_sha": sha,
        },
    }


def test_imported_results_for_another_model_are_refused(tmp_path):
    here = tmp_path / "tiny-llama"
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_results("/cluster/models/other-llama")), encoding="utf-8")
    with pytest.raises(InputError, match="was made for /cluster/models/other-llama, not for"):
        check_model(read_results(path), path, here, None)
    hub = HubSource("org/tiny", "main", "a" * 40)
    wrong = _results("org/tiny", "b" * 40)
    with pytest.raises(InputError, match=f"made for org/tiny@{'b' * 40}, not for org/tiny@"):
        check_model(wrong, path, here, hub)
    check_model(_results("org/tiny", "a" * 40), path, here, hub)  # this model: accepted
    check_model(_results("/cluster/models/tiny-llama/"), path, here, None)


def test_imported_results_keep_every_metric_and_mark_a_subset(tmp_path):
    (task,) = task_results(_results("x"))
    assert (task.documents, task.documents_total, task.subset) == (2, 4, True)
    assert (task.headline.value, task.headline.stderr) == (0.5, 0.25)
    bad = _results("x")
    bad["results"]["tiny_choice"]["acc,none"] = math.inf
    with pytest.raises(InputError, match="acc,none is not a finite number"):
        task_results(bad, "r.json")
    path = tmp_path / "r.json"
    path.write_text('{"results": 3}', encoding="utf-8")
    with pytest.raises(InputError, match="not an lm-eval results JSON"):
        read_results(path)


def test_options_are_checked_and_the_missing_extra_named(monkeypatch):
    assert parse_tasks("arc_easy, hellaswag,arc_easy") == ("arc_easy", "hellaswag")
    with pytest.raises(InputError, match="is not a task name"):
        parse_tasks("arc;rm")
    with pytest.raises(InputError, match="--limit must be a positive integer"):
        LmEvalOptions(tasks=("a",), limit=0)
    with pytest.raises(InputError, match="--backend must be one of hf, vllm"):
        LmEvalOptions(tasks=("a",), backend="tgi")
    for bad, problem in (
        ({"model_args": "parallelize"}, "--model-args takes key=value,key=value"),
        ({"model_args": "pretrained=other"}, "pretrained is the checkpoint prunecard was given"),
        ({"model_args": "parallelize=True", "packed": True}, "give one or the other"),
        ({"backend": "vllm", "packed": True}, "give one or the other"),
    ):
        with pytest.raises(InputError, match=problem):
            LmEvalOptions(tasks=("a",), **bad)
    assert LmEvalOptions(tasks=("a",), model_args="parallelize=True").loads_itself
    assert not LmEvalOptions(tasks=("a",), packed=True).loads_itself
    # vLLM absent: one line naming what to install, before any model is loaded
    import importlib.util

    from analyzer.lmeval.options import VLLM_HINT
    from analyzer.lmeval.run import run_backend

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "vllm" else real(n))
    with pytest.raises(InputError, match="--backend vllm needs vLLM") as caught:
        run_backend(Path("ckpt"), LmEvalOptions(tasks=("a",), backend="vllm"))
    assert VLLM_HINT in str(caught.value)
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "lm_eval", None)
    with pytest.raises(InputError) as caught:
        require_lm_eval()
    assert INSTALL_HINT in str(caught.value) and "\n" not in str(caught.value)


def test_eval_results_cli_imports_this_model_and_refuses_another(llama, tmp_path, capsys):
    from analyzer.cli.main import main
    from analyzer.records import load_record

    other = tmp_path / "other.json"
    other.write_text(json.dumps(_results("/cluster/other-llama")), encoding="utf-8")
    assert main(["eval", str(llama), "--results", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "was made for /cluster/other-llama" in err
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(_results(f"/cluster/{llama.name}")), encoding="utf-8")
    out = tmp_path / "benchmarks.json"
    assert main(["eval", str(llama), "--results", str(mine), "--json", str(out)]) == 0
    record = load_record(Benchmarks, out)
    assert record.source == "mine.json" and record.tasks[0].headline.value == 0.5
    assert "tiny_choice (0-shot, 2 of 4 documents): acc 0.5000" in capsys.readouterr().out
