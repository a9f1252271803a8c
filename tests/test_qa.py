"""Extractive QA on the demo checkpoint, and `prunecard eval` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import one_paragraph_squad
from hypothesis import given
from hypothesis import strategies as st

from analyzer.cli.main import main
from analyzer.records import Evaluation, load_record
from analyzer.runtime.demo import demo_checkpoint
from analyzer.runtime.qa import (
    QASettings,
    QuestionTooLong,
    _tokenize,
    answer,
    answer_batch,
    load_qa_model,
    plan_batches,
)
from analyzer.squad.data import bundled_sample_path, read_squad
from analyzer.squad.metric import score_predictions

CONTEXT = "Paris is the capital of France. It lies on the Seine, which flows to the sea."


@pytest.fixture(scope="module")
def qa():
    return load_qa_model(demo_checkpoint())


def check(ans, context):
    assert 0.0 <= ans.na_prob <= 1.0
    assert (ans.text == "") == (ans.na_prob > 0.5)
    assert ans.spans and [s.score for s in ans.spans] == sorted(
        (s.score for s in ans.spans), reverse=True
    )
    for s in ans.spans:
        assert context[s.start : s.end] == s.text and s.text.strip()
    if ans.text:
        assert ans.text == ans.spans[0].text


def test_answer_is_a_span_of_the_context(qa):
    model, tokenizer = qa
    ans = answer(model, tokenizer, "What is the capital of France?", CONTEXT)
    check(ans, CONTEXT)
    assert len(ans.spans) == QASettings().n_best


def test_batches_give_the_answers_of_single_questions(qa):
    model, tokenizer = qa
    questions = ["Where?", "What is the capital of France?", "Which river?"]
    contexts = [CONTEXT, "France " * 3, CONTEXT + " " + CONTEXT]
    batched = answer_batch(model, tokenizer, questions, contexts, batch_size=2)
    for q, c, got in zip(questions, contexts, batched, strict=True):
        alone = answer(model, tokenizer, q, c)
        assert got.text == alone.text
        assert got.na_prob == pytest.approx(alone.na_prob, abs=1e-5)


def test_long_contexts_are_split_into_windows_and_spans_come_from_all_of_them(qa):
    model, tokenizer = qa
    context = " ".join(f"word{i}" for i in range(900))  # several 384-token windows
    ans = answer(model, tokenizer, "Which word?", context, settings=QASettings(n_best=200))
    check(ans, context)
    assert max(s.start for s in ans.spans) > len(context) // 2
    assert all(len(tokenizer.tokenize(s.text)) <= 30 for s in ans.spans)


def test_equal_logits_tie_and_the_span_is_kept(qa):
    import copy

    import torch

    model, tokenizer = copy.deepcopy(qa[0]), qa[1]
    with torch.no_grad():
        model.qa_outputs.weight.zero_()
        model.qa_outputs.bias.zero_()
    ans = answer(model, tokenizer, "What?", CONTEXT)
    assert ans.na_prob == pytest.approx(0.5)  # null and best span equally likely
    assert ans.text != ""  # a tie keeps the span (null must be strictly higher)
    cls_only = answer(model, tokenizer, "What?", "")  # no context tokens: no span at all
    assert cls_only.text == "" and cls_only.na_prob == 1.0 and cls_only.spans == ()


def test_left_padding_tokenizers_put_the_context_first(qa):
    model, tokenizer = qa
    tokenizer.padding_side = "left"
    try:
        ans = answer(model, tokenizer, "What is the capital of France?", CONTEXT)
    finally:
        tokenizer.padding_side = "right"
    check(ans, CONTEXT)


def test_eval_end_to_end(tmp_path, capsys):
    out = tmp_path / "eval"
    assert (
        main(["eval", "--limit", "12", "--seed", "4", "--out", str(out), "--batch-size", "4"]) == 0
    )
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        ".prunecard-output",  # lets a later --force replace this folder
        "eval_data.json",
        "eval_metrics.json",
        "evaluation.json",
        "na_probs.json",
        "predictions.json",
    ]
    data = read_squad(out / "eval_data.json")
    preds = json.loads((out / "predictions.json").read_text())
    probs = json.loads((out / "na_probs.json").read_text())
    metrics = json.loads((out / "eval_metrics.json").read_text())
    assert len(data.questions) == 12 and set(preds) == set(probs) == set(data.ids)
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    # the official computation on the written files gives the written figures
    again = score_predictions(data, preds, probs).scores
    for key in ("exact", "f1", "total", "best_exact", "best_exact_thresh", "best_f1"):
        assert metrics[key] == pytest.approx(getattr(again, key), abs=1e-9)
    assert metrics["n"] == 12 and metrics["ci"]["resamples"] == 1000
    ev = load_record(Evaluation, out / "evaluation.json")
    assert ev.packed and (ev.limit, ev.seed, ev.n) == (12, 4, 12)
    assert (ev.tokenizer.pad, ev.tokenizer.pad_token) == ("own", "[PAD]")  # BERT's own
    assert "EM" in capsys.readouterr().out
    assert main(["eval", "--limit", "12", "--out", str(out)]) == 2  # exists: no --force
    assert "already exists" in capsys.readouterr().err


@given(
    lengths=st.lists(st.integers(1, 384), min_size=1, max_size=60),
    batch_size=st.integers(1, 16),
    bucket=st.sampled_from([1, 8, 64]),
    mix=st.booleans(),
)
def test_batch_plans_cover_every_window_once_in_few_shapes(lengths, batch_size, bucket, mix):
    lengths = np.array(lengths)
    plan = plan_batches(lengths, batch_size, bucket, 384, mix=mix)
    rows = np.concatenate([b.rows for b in plan])
    assert sorted(rows.tolist()) == list(range(len(lengths)))  # each window exactly once
    assert [b.length for b in plan] == sorted((b.length for b in plan), reverse=True)
    for b in plan:
        assert 1 <= len(b.rows) <= batch_size
        assert b.length >= lengths[b.rows].max()  # nothing cut
        assert b.length % bucket == 0 or b.length == 384
        assert (b.length - lengths[b.rows].max()) < bucket  # no bucket of pure padding
    if mix:  # full batches but the last: as few shapes as batches allow
        assert all(len(b.rows) == batch_size for b in plan[:-1])
    else:  # one rounded length per batch; a length holds at most one partial batch
        for b in plan:
            assert (b.length - lengths[b.rows] < bucket).all()
        for length in {b.length for b in plan}:
            sizes = [len(b.rows) for b in plan if b.length == length]
            assert all(n == batch_size for n in sizes[:-1])


def test_bucketed_batches_give_the_same_answers(qa):
    model, tokenizer = qa
    data = read_squad(bundled_sample_path())
    questions = [q.question for q in data.questions[:24]]
    contexts = [q.context for q in data.questions[:24]]
    plain = answer_batch(model, tokenizer, questions, contexts, batch_size=5, device="cpu")
    padded = answer_batch(model, tokenizer, questions, contexts, batch_size=5, bucket=64)
    assert [a.text for a in plain] == [a.text for a in padded]
    assert [a.na_prob for a in plain] == pytest.approx([a.na_prob for a in padded], abs=1e-5)


def test_windows_are_those_of_the_tokenizer_call(qa):
    """The one parallel call to the Rust tokenizer gives what transformers' own call gives."""
    _, tokenizer = qa
    questions = ["  Which word?", "Where?"]
    contexts = [" ".join(f"word{i}" for i in range(700)), CONTEXT]
    settings = QASettings()
    before = tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding
    windows = _tokenize(tokenizer, questions, contexts, settings)
    assert (tokenizer.backend_tokenizer.truncation, tokenizer.backend_tokenizer.padding) == before
    enc = tokenizer(
        [q.lstrip() for q in questions],
        contexts,
        truncation="only_second",
        max_length=settings.max_length,
        stride=settings.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    mapping = enc["overflow_to_sample_mapping"]
    assert windows.example.tolist() == mapping and mapping.count(0) > 2 and mapping[-1] == 1
    for w, ids in enumerate(enc["input_ids"]):
        tokens = slice(windows.first[w], windows.first[w] + windows.lengths[w])
        assert windows.ids[tokens].tolist() == ids
        assert windows.types[tokens].tolist() == enc["token_type_ids"][w]
        assert [tuple(o) for o in windows.offsets[tokens].tolist()] == enc["offset_mapping"][w]
        assert windows.context[tokens].tolist() == [s == 1 for s in enc.sequence_ids(w)]


def test_eval_runs_in_the_precision_asked_and_records_it(tmp_path, capsys):
    out = tmp_path / "eval"
    args = ["eval", "--limit", "6", "--out", str(out), "--device", "cpu", "--dtype", "bf16"]
    assert main([*args, "--align", "8"]) == 0
    assert load_record(Evaluation, out / "evaluation.json").dtype == "bf16"
    assert "cpu, bf16" in capsys.readouterr().out
    if not torch.cuda.is_available():  # a clear error, not a traceback
        assert main(["eval", "--out", str(tmp_path / "gpu"), "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err


def test_a_question_that_leaves_its_context_no_room_is_a_clear_error(qa, tmp_path, capsys):
    model, tokenizer = qa
    context = "Paris is the capital of France. " * 40
    # "why" is one token: 252 + [CLS] + 2 [SEP] leave 129 context tokens, one over the stride
    assert answer(model, tokenizer, "why " * 252, context).spans
    with pytest.raises(QuestionTooLong, match="253 tokens long") as caught:
        answer_batch(model, tokenizer, ["Where?", "why " * 253], [context, context])
    assert caught.value.index == 1
    question = {"id": "q1", "question": "why " * 300, "answers": [], "is_impossible": True}
    data = one_paragraph_squad(context, [question])
    path = tmp_path / "long.json"
    path.write_text(json.dumps(data))
    assert main(["eval", "--data", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "'q1'" in err
    assert not (tmp_path / "out").exists()
