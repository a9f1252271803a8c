"""The papers' perplexity protocol and the dataset a perplexity names: SparseGPT's and
Wanda's computation redone here with transformers' own loss, `--dataset wikitext2` read
through `datasets` offline (from a folder laid out as the Hub's repository, then from the
cache, and a one-line error without either), the options each protocol refuses, and
version 1 records still read."""

from __future__ import annotations

import hashlib
import json
import re
import sys

import datasets
import huggingface_hub
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from badio import one_line_error, tiny_qa
from decoders import build_decoder
from hypothesis import assume, given
from hypothesis import strategies as st

from analyzer.audit.against_records import load_eval
from analyzer.cli.main import main
from analyzer.errors import InputError
from analyzer.perplexity.evaluate import evaluate_perplexity
from analyzer.perplexity.model import load_causal_lm
from analyzer.perplexity.text import bundled_text, read_text
from analyzer.perplexity.windows import Window, plan_blocks
from analyzer.records import PERPLEXITY_SCHEMA, Perplexity, load_record, to_dict

SEQLEN = 32
WIKITEXT = ("wikitext", "wikitext-2-raw-v1", "test")
WIKITEXT_ERROR_NAME = "wikitext (wikitext-2-raw-v1, test split)"


# --------------------------------------------------------------------------- the plan


@given(st.integers(2, 5000), st.integers(2, 600))
def test_papers_windows_are_whole_disjoint_and_in_order(tokens, seqlen):
    assume(tokens >= seqlen)
    windows = plan_blocks(tokens, seqlen)
    assert len(windows) == tokens // seqlen  # SparseGPT's nsamples = numel // seqlen
    assert [w.begin for w in windows] == [i * seqlen for i in range(len(windows))]
    assert all(w.end - w.begin == seqlen and w.scored == w.begin + 1 for w in windows)
    assert sum(w.tokens for w in windows) == len(windows) * (seqlen - 1)
    assert 0 <= tokens - windows[-1].end < seqlen  # only a partial window is dropped


def test_a_papers_plan_by_hand():
    # 10 tokens in windows of 4: tokens 0-3 (scoring 1-3), 4-7 (scoring 5-7); 8-9 dropped
    assert plan_blocks(10, 4) == (Window(0, 4, 1), Window(4, 8, 5))
    assert plan_blocks(4, 4) == (Window(0, 4, 1),)
    with pytest.raises(InputError, match="fewer than one window of --seqlen 4"):
        plan_blocks(3, 4)
    with pytest.raises(InputError, match="--seqlen must be at least 2"):
        plan_blocks(10, 1)


# --------------------------------------------------------------------------- the figure


@pytest.fixture
def raw_file(tmp_path):
    """A text laid out as WikiText's wiki.test.raw: a heading line, blank lines, then
    paragraphs (the bundled text's first five) one per line, spaces around."""
    paragraphs = bundled_text().documents[:5]
    lines = [" = Normans = ", "", *(x for p in paragraphs for x in (f" {p} ", ""))]
    path = tmp_path / "wiki.test.raw"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rows(path) -> list[str]:
    """The rows WikiText's `datasets` builder yields from a raw file: each line with its
    newline, a blank line as ""."""
    with open(path, encoding="utf-8") as f:
        return [row if row.strip() else "" for row in f]


def test_the_papers_protocol_is_sparsegpts_computation(tiny_llama_model, raw_file):
    """SparseGPT's `opt_eval` / Wanda's `eval_ppl_wikitext` with transformers' own loss:
    the rows joined with "\\n\\n", tokenized once, nsamples = numel // seqlen windows, each
    window's mean loss times seqlen, exp(sum / (nsamples * seqlen))."""
    model, tokenizer = tiny_llama_model
    enc = torch.tensor([tokenizer("\n\n".join(_rows(raw_file)))["input_ids"]])
    n = enc.numel() // SEQLEN
    assert n >= 10 and enc.numel() % SEQLEN  # many windows, and a partial one to drop
    nlls = []
    with torch.no_grad():
        for i in range(n):
            w = enc[:, i * SEQLEN : (i + 1) * SEQLEN]
            nlls.append(model(input_ids=w, labels=w).loss.float() * SEQLEN)
    expected = torch.exp(torch.stack(nlls).sum() / (n * SEQLEN)).item()

    record = evaluate_perplexity(
        model, tokenizer, read_text(raw_file), protocol="papers", window=SEQLEN
    )
    assert record.perplexity == pytest.approx(expected, rel=1e-5)
    assert (record.protocol, record.windows, record.window, record.stride) == (
        "papers",
        n,
        SEQLEN,
        SEQLEN,
    )
    assert (record.tokens, record.scored) == (enc.numel(), n * (SEQLEN - 1))
    assert record.dropped == enc.numel() - n * SEQLEN
    assert (
        record.dataset == ""
        and record.text_sha256 == hashlib.sha256(raw_file.read_bytes()).hexdigest()
    )
    # the papers' text is the rows joined with "\n\n", not the file as the sliding window
    # reads it (MiniLM's WordPiece tokenizer drops the difference, white space)
    text = read_text(raw_file)
    assert text.joined() == "\n\n".join(_rows(raw_file)) != text.content


def test_the_default_seqlen_is_the_context_capped_at_2048(tiny_llama_model, tmp_path):
    model, tokenizer = tiny_llama_model  # 256 positions
    record = evaluate_perplexity(model, tokenizer, bundled_text(), protocol="papers")
    assert (record.window, record.stride) == (256, 256)
    assert record.windows == record.tokens // 256
    long = load_causal_lm(build_decoder(tmp_path / "long", "llama", positions=4096))
    record = evaluate_perplexity(*long, bundled_text(), protocol="papers")
    assert (record.window, record.windows) == (2048, record.tokens // 2048)
    # the sliding window keeps its own cap
    assert evaluate_perplexity(*long, bundled_text(), limit_tokens=1500).window == 1024


def test_the_bundled_text_is_filed_under_squad_v2_validation(tiny_llama, tmp_path, capsys):
    out = tmp_path / "p.json"
    args = ["eval", str(tiny_llama), "--protocol", "papers", "--seqlen", "64", "--json", str(out)]
    assert main([*args, "--limit-tokens", "640"]) == 0
    record = load_record(Perplexity, out)
    assert (record.dataset, record.dataset_config, record.dataset_split) == (
        "rajpurkar/squad_v2",
        "squad_v2",
        "validation",
    )
    assert (record.windows, record.scored, record.dropped) == (10, 10 * 63, 0)
    printed = capsys.readouterr().out
    assert "Hub dataset rajpurkar/squad_v2" in printed
    assert "630 in 10 non-overlapping windows of 64 tokens (protocol papers; 0 trailing" in printed


# --------------------------------------------------------------------------- --dataset


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """datasets and huggingface_hub offline, with an empty datasets cache of the test's own
    (the constants both read from the environment when they were imported)."""
    cache = tmp_path / "datasets-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def _hub_folder(root, rows: list[str]) -> None:
    """`root/wikitext` laid out as the Hub's wikitext repository (parquet files, the configs
    in README.md's YAML) with `rows` as the wikitext-2-raw-v1 test split: datasets reads a
    folder of the id's name in the working directory before the Hub."""
    folder = root / "wikitext" / "wikitext-2-raw-v1"
    folder.mkdir(parents=True)
    configs = {"configs": [{"config_name": WIKITEXT[1], "data_files": [
        {"split": "test", "path": "wikitext-2-raw-v1/test-*"}]}]}  # fmt: skip
    (root / "wikitext" / "README.md").write_text(f"---\n{yaml.safe_dump(configs)}---\n")
    pq.write_table(pa.table({"text": rows}), folder / "test-00000-of-00001.parquet")


def test_wikitext2_is_read_through_datasets_offline(
    tiny_llama, raw_file, tmp_path, monkeypatch, offline, capsys
):
    rows = _rows(raw_file)
    _hub_folder(tmp_path / "hub", rows)
    monkeypatch.chdir(tmp_path / "hub")
    papers = ["--protocol", "papers", "--seqlen", str(SEQLEN)]
    out = tmp_path / "w.json"
    assert (
        main(["eval", str(tiny_llama), "--dataset", "wikitext2", *papers, "--json", str(out)]) == 0
    )
    record = load_record(Perplexity, out)
    assert (record.dataset, record.dataset_config, record.dataset_split) == WIKITEXT
    assert record.text == "WikiText-2 raw, test split"
    assert record.text_sha256 == hashlib.sha256("\n\n".join(rows).encode()).hexdigest()
    assert "Hub dataset wikitext" in capsys.readouterr().out

    # the same rows as wiki.test.raw: the same text scored, the same figure, no dataset id
    local = tmp_path / "l.json"
    assert (
        main(["eval", str(tiny_llama), "--text", str(raw_file), *papers, "--json", str(local)]) == 0
    )
    file_record = load_record(Perplexity, local)
    assert (file_record.perplexity, file_record.tokens) == (record.perplexity, record.tokens)
    assert file_record.dataset == "" and file_record.text == str(raw_file)

    # from the datasets cache the first load filled: another folder, still offline
    assert any(offline.iterdir())
    monkeypatch.chdir(tmp_path)
    again = tmp_path / "again.json"
    assert (
        main(["eval", str(tiny_llama), "--dataset", "wikitext2", *papers, "--json", str(again)])
        == 0
    )
    assert load_record(Perplexity, again).perplexity == record.perplexity


def test_wikitext2_offline_without_a_cache_is_one_line(
    tiny_llama, tmp_path, monkeypatch, offline, capsys
):
    from analyzer.pipeline import PerplexityOptions, ReportOptions, run_report
    from analyzer.records import Publication

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "p.json"
    code = main(["eval", str(tiny_llama), "--dataset", "wikitext2", "--json", str(out)])
    line = one_line_error(code, capsys.readouterr(), WIKITEXT_ERROR_NAME)
    assert "not in the datasets cache and the Hub cannot be reached (offline" in line
    assert not out.exists()
    # report loads the text before any step runs: nothing is measured, nothing written
    options = ReportOptions(perplexity=PerplexityOptions(dataset="wikitext2"), benchmark=False)
    with pytest.raises(InputError, match="not in the datasets cache"):
        run_report(tiny_llama, tmp_path / "r", Publication(model_id="m"), options, say=print)
    assert not (tmp_path / "r").exists() and "analyze" not in capsys.readouterr().out


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--protocol", "papers", "--window", "64"], "--window applies to --protocol sliding"),
        (["--protocol", "papers", "--stride", "8"], "--stride applies to --protocol sliding"),
        (["--seqlen", "64"], "--seqlen applies to --protocol papers, not sliding"),
        (["--protocol", "papers", "--seqlen", "512"], "--seqlen 512 exceeds the model's 256"),
        (["--protocol", "papers", "--seqlen", "1"], "--seqlen must be at least 2 tokens"),
        (
            ["--protocol", "papers", "--seqlen", "64", "--limit-tokens", "50"],
            "the text has 50 token(s), fewer than one window of --seqlen 64",
        ),
        (["--text", "t.txt", "--dataset", "wikitext2"], "--text and a dataset name two texts"),
    ],
)
def test_options_of_the_other_protocol_are_refused(options, problem, tiny_llama, tmp_path, capsys):
    code = main(["eval", str(tiny_llama), *options, "--json", str(tmp_path / "p.json")])
    assert problem in one_line_error(code, capsys.readouterr())
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize(
    ("options", "choice"),
    [(["--dataset", "wikitext103"], "wikitext2"), (["--protocol", "x"], "papers")],
)
def test_an_unknown_dataset_or_protocol_is_one_line(options, choice, tiny_llama, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", str(tiny_llama), *options])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert f"invalid choice: {options[1]!r}" in err and choice in err


@pytest.mark.parametrize(
    "option", [["--protocol", "papers"], ["--seqlen", "64"], ["--dataset", "wikitext2"]]
)
def test_a_qa_model_refuses_the_protocol_options(option, tmp_path, capsys):
    qa = tiny_qa(tmp_path / "qa", tokenizer=True)
    code = main(["eval", str(qa), *option, "--out", str(tmp_path / "e")])
    line = one_line_error(code, capsys.readouterr(), str(qa))
    assert f"is not a causal LM: {option[0]} is a perplexity option" in line


def test_report_measures_by_the_papers_protocol(tmp_path):
    from analyzer.pipeline import PerplexityOptions, ReportOptions, run_report
    from analyzer.publish.report import read_report
    from analyzer.records import Publication

    tiny_llama = build_decoder(tmp_path / "llama", "llama", kv_heads=4)
    out = tmp_path / "report"
    options = ReportOptions(
        benchmark=False,
        perplexity=PerplexityOptions(protocol="papers", seqlen=64, limit_tokens=200),
    )
    run_report(tiny_llama, out, Publication(model_id="org/tiny-llama"), options, say=print)
    record = read_report(out).perplexity
    assert (record.protocol, record.window, record.windows, record.dropped) == (
        "papers",
        64,
        3,
        200 - 3 * 64,
    )
    card = (out / "README.md").read_text()
    (result,) = yaml.safe_load(card.split("---\n")[1])["model-index"][0]["results"]
    assert result["dataset"]["type"] == "rajpurkar/squad_v2"
    assert (result["dataset"]["config"], result["dataset"]["split"]) == ("squad_v2", "validation")
    assert "papers protocol, window 64, stride 64" in result["dataset"]["name"]
    (entry,) = yaml.safe_load((out / ".eval_results" / "perplexity.yaml").read_text())
    assert entry["dataset"]["id"] == "rajpurkar/squad_v2"
    with pytest.raises(InputError, match="--window applies to --protocol sliding"):
        papers = PerplexityOptions(protocol="papers", window=64)
        bad = ReportOptions(benchmark=False, perplexity=papers)
        run_report(tiny_llama, tmp_path / "r2", Publication(model_id="m"), bad)
    assert not (tmp_path / "r2").exists()


# --------------------------------------------------------------------------- old records


def _version_1(record: Perplexity) -> dict:
    """`record` as prunecard wrote it before the protocol and the dataset were kept."""
    data = to_dict(record)
    for key in ("protocol", "dataset", "dataset_config", "dataset_split"):
        del data[key]
    return {**data, "schema": "prunecard.perplexity/1"}


def test_a_version_1_record_still_reads(tiny_llama_model, tmp_path):
    record = evaluate_perplexity(*tiny_llama_model, bundled_text(), limit_tokens=100)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(_version_1(record)))
    read = load_record(Perplexity, old)
    assert read.schema == PERPLEXITY_SCHEMA == "prunecard.perplexity/2"
    assert (read.protocol, read.dataset, read.perplexity) == ("sliding", "", record.perplexity)
    assert load_eval(old).values == {"perplexity": record.perplexity}  # audit --eval too
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**to_dict(record), "schema": "prunecard.perplexity/3"}))
    with pytest.raises(InputError, match=re.escape("expected a prunecard.perplexity/2 record")):
        load_record(Perplexity, future)


def test_without_the_datasets_library_the_error_names_the_extra(tiny_llama, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` fails
    code = main(["eval", str(tiny_llama), "--dataset", "wikitext2"])
    line = one_line_error(code, capsys.readouterr(), WIKITEXT_ERROR_NAME)
    assert "needs the datasets library (pip install 'prunecard[datasets]')" in line
