"""Perplexity of causal LMs: the window plan, the figure against independent computations on
a tiny real Llama, the bootstrap over windows, bad text files, and `eval` / `report` end to
end."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
import torch
from badio import one_line_error, tiny_qa
from decoders import DECODER_TYPES, VOCAB, build_decoder, decoder_config
from hypothesis import given
from hypothesis import strategies as st

from analyzer.cli.main import main
from analyzer.errors import InputError
from analyzer.perplexity.evaluate import evaluate_perplexity, perplexity_interval
from analyzer.perplexity.model import is_causal_lm, load_causal_lm
from analyzer.perplexity.text import BUNDLED_TEXT, bundled_text, read_text
from analyzer.perplexity.windows import Window, plan_windows
from analyzer.records import Perplexity, from_dict, load_record, to_dict
from analyzer.squad.data import bundled_sample_path

TEXT = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to "
    "Normandy, a region in France. They were descended from Norse raiders and pirates from "
    "Denmark, Iceland and Norway who, under their leader Rollo, agreed to swear fealty to "
    "King Charles III of West Francia."
)


# --------------------------------------------------------------------------- the window plan


@st.composite
def plans(draw):
    window = draw(st.integers(2, 300))
    return draw(st.integers(2, 3000)), window, draw(st.integers(1, window - 1))


@given(plans())
def test_every_token_after_the_first_is_scored_exactly_once(plan):
    tokens, window, stride = plan
    windows = plan_windows(tokens, window, stride)
    scored = [t for w in windows for t in range(w.scored, w.end)]
    assert scored == list(range(1, tokens))
    assert sum(w.tokens for w in windows) == tokens - 1


@given(plans())
def test_windows_stay_inside_the_text_and_the_model(plan):
    tokens, window, stride = plan
    windows = plan_windows(tokens, window, stride)
    for i, w in enumerate(windows):
        assert 0 <= w.begin < w.scored < w.end <= tokens
        assert w.end - w.begin <= window  # context never exceeds the window
        assert w.begin == i * stride
    assert windows[0].scored == 1 and windows[-1].end == tokens
    # after the first window, the first scored token sees exactly window - stride before it
    assert all(w.scored - w.begin == window - stride for w in windows[1:])
    assert len(windows) == 1 + max(0, math.ceil((tokens - window) / stride))


def test_a_plan_by_hand():
    # 10 tokens, windows of 4 starting 2 apart: tokens 1-3, then 4-5, 6-7, 8-9
    assert plan_windows(10, 4, 2) == (
        Window(0, 4, 1),
        Window(2, 6, 4),
        Window(4, 8, 6),
        Window(6, 10, 8),
    )
    assert plan_windows(3, 8, 4) == (Window(0, 3, 1),)


@pytest.mark.parametrize(
    ("tokens", "window", "stride", "problem"),
    [
        (100, 1, 1, "--window must be at least 2"),
        (100, 8, 0, "--stride must be from 1 to window - 1 (7), got 0"),
        (100, 8, 8, "--stride must be from 1 to window - 1 (7), got 8"),
        (1, 8, 4, "perplexity needs at least 2"),
    ],
)
def test_impossible_plans_are_refused(tokens, window, stride, problem):
    with pytest.raises(InputError, match=re.escape(problem)):
        plan_windows(tokens, window, stride)


# --------------------------------------------------------------------------- a real model


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "normans.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_one_window_equals_the_models_own_loss(tiny_llama_model, text_file):
    model, tokenizer = tiny_llama_model
    ids = torch.tensor([tokenizer(TEXT)["input_ids"]])
    assert ids.shape[1] < 256  # fits one window of the model's 256 positions
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss  # transformers' mean NLL, shifted
    record = evaluate_perplexity(model, tokenizer, read_text(text_file))
    assert record.windows == 1 and record.window == 256 and record.stride == 128
    assert (record.tokens, record.scored) == (ids.shape[1], ids.shape[1] - 1)
    assert record.perplexity == pytest.approx(math.exp(loss.item()), rel=1e-5)


@pytest.mark.parametrize("model_type", DECODER_TYPES)
def test_every_decoder_family_loads_and_matches_its_loss(model_type, tmp_path, text_file):
    model, tokenizer = load_causal_lm(build_decoder(tmp_path / model_type, model_type))
    ids = torch.tensor([tokenizer(TEXT)["input_ids"][:40]])
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    record = evaluate_perplexity(model, tokenizer, read_text(text_file), limit_tokens=40)
    assert record.windows == 1 and record.scored == 39
    assert record.perplexity == pytest.approx(math.exp(loss.item()), rel=1e-5)


def test_strided_windows_equal_a_token_by_token_loop(tiny_llama_model, text_file):
    model, tokenizer = tiny_llama_model
    window, stride, n = 16, 6, 50
    ids = tokenizer(TEXT)["input_ids"][:n]
    nll = 0.0
    with torch.no_grad():
        for t in range(1, n):
            # the window that scores token t starts at k * stride: the first one (k = 0)
            # scores tokens up to window - 1, window k ends at k * stride + window
            k = 0 if t < window else (t - window) // stride + 1
            context = torch.tensor([ids[k * stride : t]])
            logits = model(input_ids=context).logits[0, -1].float()
            nll -= torch.log_softmax(logits, dim=-1)[ids[t]].item()
    record = evaluate_perplexity(
        model, tokenizer, read_text(text_file), window=window, stride=stride, limit_tokens=n
    )
    assert record.windows == 1 + math.ceil((n - window) / stride)
    assert (record.tokens, record.scored, record.limit_tokens) == (n, n - 1, n)
    assert record.perplexity == pytest.approx(math.exp(nll / (n - 1)), rel=1e-5)


def test_uniform_logits_give_the_vocabulary_size(tmp_path, text_file):
    def zero_head(state):
        state["lm_head.weight"].zero_()

    model, tokenizer = load_causal_lm(build_decoder(tmp_path / "flat", "llama", prune=zero_head))
    record = evaluate_perplexity(model, tokenizer, read_text(text_file), window=8, stride=3)
    assert record.windows > 1
    for figure in (record.perplexity, record.ci_low, record.ci_high):
        assert figure == pytest.approx(VOCAB, rel=1e-5)


def test_the_ci_contains_the_estimate_and_is_reproducible(tiny_llama_model, text_file):
    model, tokenizer = tiny_llama_model
    options = dict(window=12, stride=4)
    record = evaluate_perplexity(model, tokenizer, read_text(text_file), **options)
    assert record.windows > 10
    assert record.ci_low < record.perplexity < record.ci_high
    again = evaluate_perplexity(model, tokenizer, read_text(text_file), **options)
    assert (again.ci_low, again.ci_high) == (record.ci_low, record.ci_high)
    assert (record.level, record.resamples, record.seed) == (0.95, 1000, 0)
    assert from_dict(Perplexity, json.loads(json.dumps(to_dict(record)))) == record


def test_the_bootstrap_resamples_windows_as_a_ratio():
    # equal NLL per token in every window: every resample has the same ratio
    low, high = perplexity_interval([2.0, 6.0, 4.0], [1, 3, 2], resamples=200, seed=1, level=0.9)
    assert low == pytest.approx(math.exp(2.0)) and high == pytest.approx(math.exp(2.0))
    # windows that disagree: a reproducible interval, wider for a higher level, strictly
    # inside the range of per-window perplexities exp(1) .. exp(3)
    nll, tokens = [1.0, 3.0, 2.0, 6.0, 1.0, 9.0], [1, 1, 1, 2, 1, 3]
    ci = perplexity_interval(nll, tokens, resamples=500, seed=7, level=0.95)
    assert ci == perplexity_interval(nll, tokens, resamples=500, seed=7, level=0.95)
    narrow = perplexity_interval(nll, tokens, resamples=500, seed=7, level=0.5)
    assert math.exp(1) < ci[0] <= narrow[0] < narrow[1] <= ci[1] < math.exp(3)
    point = math.exp(sum(nll) / sum(tokens))
    assert ci[0] < point < ci[1]


# --------------------------------------------------------------------------- text


def test_the_bundled_text_is_the_samples_paragraphs_in_order():
    raw = json.loads(bundled_sample_path().read_text(encoding="utf-8"))
    paragraphs = []
    for article in raw["data"]:
        for paragraph in article["paragraphs"]:
            if paragraph["context"] not in paragraphs:
                paragraphs.append(paragraph["context"])
    text = bundled_text()
    assert text.content == "\n\n".join(paragraphs)
    assert len(paragraphs) == 36  # the sample's 36 whole paragraphs (SQUAD_LICENSE.md)
    assert text.name == BUNDLED_TEXT and "CC BY-SA 4.0" in text.name
    assert text.sha256 == hashlib.sha256(bundled_sample_path().read_bytes()).hexdigest()


def test_a_text_file_is_read_as_utf8(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffZürich, 1.5 °C".encode())
    text = read_text(path)
    assert text.content == "Zürich, 1.5 °C"  # the byte-order mark is not text
    assert text.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert text.name == str(path)


BAD_TEXTS = {
    "empty": (b"", "holds no text"),
    "blank": (b" \n\t\n", "holds no text"),
    "binary": (b"GIF89a\x00\x01\x02", "binary file"),
    "latin1": ("café".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3)"),
}


@pytest.mark.parametrize("name", sorted(BAD_TEXTS))
def test_bad_text_files_are_one_line_errors(name, tiny_llama, tmp_path, capsys):
    content, problem = BAD_TEXTS[name]
    path = tmp_path / f"{name}.txt"
    path.write_bytes(content)
    code = main(["eval", str(tiny_llama), "--text", str(path), "--json", str(tmp_path / "p.json")])
    assert problem in one_line_error(code, capsys.readouterr(), str(path))
    assert not (tmp_path / "p.json").exists()


def test_an_oversized_text_a_folder_and_a_fifo_are_refused(
    tiny_llama, tmp_path, capsys, monkeypatch
):
    big = tmp_path / "big.txt"
    big.write_text("word " * 400)
    monkeypatch.setattr("analyzer.perplexity.text.DATA_LIMIT", 1000)
    assert "over the" in one_line_error(
        main(["eval", str(tiny_llama), "--text", str(big)]), capsys.readouterr(), str(big)
    )
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo):
        one_line_error(main(["eval", str(tiny_llama), "--text", str(path)]), capsys.readouterr())


# --------------------------------------------------------------------------- the CLI


def _three_decimals(x: float) -> str:
    """3 decimals, halves rounded up from the printed value, no thousands separators."""
    return str(Decimal(repr(x)).quantize(Decimal("0.001"), ROUND_HALF_UP))


def test_eval_writes_the_record_and_prints_the_figures(
    tiny_llama, tiny_llama_model, text_file, tmp_path, capsys
):
    out = tmp_path / "ppl.json"
    args = ["eval", str(tiny_llama), "--text", str(text_file), "--window", "12", "--stride", "5"]
    assert main([*args, "--json", str(out)]) == 0
    record = load_record(Perplexity, out)
    expected = evaluate_perplexity(*tiny_llama_model, read_text(text_file), window=12, stride=5)
    assert record.perplexity == pytest.approx(expected.perplexity, rel=1e-6)
    assert (record.window, record.stride, record.windows) == (12, 5, expected.windows)
    assert (record.text, record.checkpoint, record.packed) == (
        str(text_file),
        str(tiny_llama),
        False,
    )
    assert (record.device, record.dtype) == ("cpu", "fp32") and record.tokens_per_second > 0
    printed = capsys.readouterr().out
    shown = [_three_decimals(x) for x in (record.perplexity, record.ci_low)]
    assert f"perplexity      {shown[0]}  (95% CI {shown[1]}" in printed  # as the card prints
    assert f"{record.scored:,} in {record.windows:,} windows" in printed
    assert f"perplexity written to {out}" in printed


def test_eval_defaults_to_the_bundled_text(tiny_llama, tmp_path, capsys):
    out = tmp_path / "ppl.json"
    assert main(["eval", str(tiny_llama), "--limit-tokens", "300", "--json", str(out)]) == 0
    record = load_record(Perplexity, out)
    assert (record.text, record.tokens, record.limit_tokens) == (BUNDLED_TEXT, 300, 300)
    assert (record.window, record.stride) == (256, 128)  # the model's positions, halved
    assert record.text_sha256 == bundled_text().sha256
    assert BUNDLED_TEXT in capsys.readouterr().out


def test_one_window_claims_no_interval(tiny_llama, capsys):
    assert main(["eval", str(tiny_llama), "--limit-tokens", "50"]) == 0
    printed = capsys.readouterr().out
    assert "one window: no confidence interval" in printed and "CI" not in printed


def test_the_packed_model_has_the_perplexity_of_the_stored_one(tmp_path):
    """Packing removes only what cannot change the output: a GQA Llama that loses a whole
    K/V group and some MLP channels scores the same text to float32 rounding."""
    from decoders import layer_weight

    def prune(state):
        layer_weight(state, 0, "self_attn.v_proj")[:8] = 0  # K/V group 0 of layer 0
        layer_weight(state, 1, "mlp.down_proj")[:, :20] = 0  # 20 channels of layer 1

    tiny_llama = build_decoder(tmp_path / "llama", "llama", prune=prune, heads=4, kv_heads=2)
    records = []
    for extra in ([], ["--packed"]):
        out = tmp_path / f"ppl{len(extra)}.json"
        args = ["eval", str(tiny_llama), "--limit-tokens", "200", "--json", str(out), *extra]
        assert main(args) == 0
        records.append(load_record(Perplexity, out))
    stored, packed = records
    assert (stored.packed, packed.packed) == (False, True)
    packed_config = load_causal_lm(tiny_llama, packed=True)[0].config
    assert packed_config.prunecard_packing["kv_heads"] == [1, 2]  # the group is really gone
    assert packed.perplexity == pytest.approx(stored.perplexity, rel=1e-5)
    assert packed.scored == stored.scored == 199


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--data", "x.json"], "is a causal LM: --data is a SQuAD v2 option"),
        (["--out", "folder"], "is a causal LM: --out is a SQuAD v2 option"),
        (["--no-pack"], "is a causal LM: --no-pack is a SQuAD v2 option"),
        (["--window", "512"], "--window 512 exceeds the model's 256 positions"),
        (["--window", "64", "--stride", "64"], "--stride must be from 1 to window - 1 (63)"),
        (["--limit-tokens", "1"], "--limit-tokens must be at least 2"),
    ],
)
def test_options_that_do_not_fit_a_causal_lm_are_refused(
    options, problem, tiny_llama, tmp_path, capsys
):
    code = main(["eval", str(tiny_llama), *options, "--json", str(tmp_path / "p.json")])
    assert problem in one_line_error(code, capsys.readouterr())
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "folder").exists()


@pytest.mark.parametrize("option", [["--text", "t.txt"], ["--packed"], ["--json", "p.json"]])
def test_a_qa_model_refuses_the_perplexity_options(option, tmp_path, capsys):
    qa = tiny_qa(tmp_path / "qa", tokenizer=True)
    code = main(["eval", str(qa), *option, "--out", str(tmp_path / "e")])
    line = one_line_error(code, capsys.readouterr(), str(qa))
    assert f"is not a causal LM: {option[0]} is a perplexity option" in line


def test_a_tokenizer_beyond_the_vocabulary_is_refused(tmp_path, text_file, capsys):
    from transformers import AutoModelForCausalLM

    from analyzer.runtime.demo import minilm_path
    from analyzer.weights.checkpoint import copy_tokenizer_files

    config = decoder_config("llama")
    config.vocab_size = 1000  # MiniLM's tokenizer has 30,522 tokens
    small = tmp_path / "small"
    AutoModelForCausalLM.from_config(config).save_pretrained(small)
    copy_tokenizer_files(minilm_path(), small)
    capsys.readouterr()  # transformers' saving bar
    line = one_line_error(main(["eval", str(small), "--text", str(text_file)]), capsys.readouterr())
    assert f"{small / 'config.json'}: vocab_size 1,000 is smaller than the tokenizer's" in line


def test_a_qa_model_still_needs_out(tmp_path, capsys):
    qa = tiny_qa(tmp_path / "qa", tokenizer=True)
    assert "--out DIR is required" in one_line_error(main(["eval", str(qa)]), capsys.readouterr())


def test_which_configs_are_causal_lms():
    assert is_causal_lm({"model_type": "llama"}) and is_causal_lm({"model_type": "phi3"})
    assert is_causal_lm({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel", "X"]}) is False
    assert is_causal_lm({"model_type": "opt", "architectures": ["OPTForCausalLM"]})
    assert not is_causal_lm({"model_type": "bert", "architectures": ["BertForQuestionAnswering"]})


# --------------------------------------------------------------------------- report


def test_report_on_a_causal_lm_measures_perplexity(tmp_path, capsys):
    from analyzer.pipeline import PerplexityOptions, ReportOptions, run_report
    from analyzer.publish.report import read_report
    from analyzer.records import Publication

    # query heads = KV heads: packing (part of `report`) handles this layout on every branch
    tiny_llama = build_decoder(tmp_path / "llama", "llama", kv_heads=4)
    out = tmp_path / "report"
    options = ReportOptions(benchmark=False, perplexity=PerplexityOptions(limit_tokens=200))
    report = run_report(tiny_llama, out, Publication(model_id="tiny-llama"), options, say=print)
    assert report.evaluation is None and report.perplexity is not None
    assert report.perplexity.tokens == 200 and report.perplexity.text == BUNDLED_TEXT
    assert load_record(Perplexity, out / "perplexity.json") == report.perplexity
    stored = read_report(out)
    assert stored.perplexity is not None
    assert stored.perplexity.perplexity == report.perplexity.perplexity
    assert stored.perplexity.checkpoint == "llama"  # no machine-local path in report.json
    assert (out / "README.md").is_file()
    # `card --report` re-renders with the record it holds; `card --perplexity` takes eval's
    card = tmp_path / "card"
    assert (
        main(["card", str(tiny_llama), "--report", str(out / "report.json"), "--out", str(card)])
        == 0
    )
    assert read_report(card).perplexity == stored.perplexity
    record = tmp_path / "ppl.json"
    assert main(["eval", str(tiny_llama), "--limit-tokens", "40", "--json", str(record)]) == 0
    card = tmp_path / "card2"
    assert main(["card", str(tiny_llama), "--perplexity", str(record), "--out", str(card)]) == 0
    assert read_report(card).perplexity.tokens == 40


def test_report_refuses_squad_options_for_a_causal_lm(tiny_llama, tmp_path):
    from analyzer.pipeline import ReportOptions, run_report
    from analyzer.records import Publication

    options = ReportOptions(benchmark=False, limit=10)
    with pytest.raises(InputError, match=r"is a causal LM .*: --limit does not apply"):
        run_report(tiny_llama, tmp_path / "r", Publication(model_id="m"), options)
    assert not (tmp_path / "r").exists()
