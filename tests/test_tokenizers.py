"""Tokenizers as LLM publishers ship them (tests/data/tokenizers, built by
scripts/make_tokenizers.py): Llama 2 / Mistral's SentencePiece-only folder, Llama 3's and
Qwen2.5's byte-level BPE tokenizer.json, none of the Llama ones with a pad token, each with
its chat template. Each goes through eval (perplexity), bench --quick, report, a card and
a site page; the records say what padded; bad tokenizer files are one line naming the file.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest
import sentencepiece
import torch
from badio import one_line_error, tiny_qa
from conftest import DATA
from decoders import build_decoder
from fake_timer import patch_bench
from tokenizers import Tokenizer

from analyzer import load_record
from analyzer.cli.main import main
from analyzer.errors import CheckpointError
from analyzer.perplexity.text import bundled_text
from analyzer.publish.report import read_report
from analyzer.records import Bench, Perplexity, TokenizerInfo, from_dict, to_dict
from analyzer.runtime import tokenizer as tokenizer_module
from analyzer.runtime.bench import EQUIVALENCE_TEXT
from analyzer.runtime.demo import minilm_path
from analyzer.runtime.qa import answer_batch, load_qa_model
from analyzer.runtime.tokenizer import load_tokenizer, pad_token
from analyzer.squad.data import bundled_sample_path, read_squad

TOKENIZERS = DATA / "tokenizers"


@dataclass(frozen=True)
class Style:
    family: str  # the model_type it ships with
    files: frozenset[str]
    bos: str | None
    eos: str
    pad: str | None  # None: the published tokenizer has no pad token
    marker: str  # a token of its chat template


STYLES = {
    "mistral": Style(
        "mistral",
        frozenset({"tokenizer.model", "tokenizer_config.json"}),
        "<s>",
        "</s>",
        None,
        "[INST]",
    ),
    "llama3": Style(
        "llama",
        frozenset({"tokenizer.json", "tokenizer_config.json"}),
        "<|begin_of_text|>",
        "<|eot_id|>",
        None,
        "<|start_header_id|>",
    ),
    "qwen2": Style(
        "qwen2",
        frozenset({"tokenizer.json", "tokenizer_config.json"}),
        None,
        "<|im_end|>",
        "<|endoftext|>",
        "<|im_start|>",
    ),
}
SIZES = dict(layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64)
STEADY_DENSE = STEADY_PACKED = [12.5, 12.6]  # unpruned models: a speedup of 1.00x
SHAPES = ["--batch", "1", "--seq", "16", "--prompt-tokens", "8", "--new-tokens", "4"]
TOKENS = 200  # one window of the models' 256 positions: perplexity is transformers' loss


def _library_ids(style: str, text: str) -> list[int]:
    """The ids the style's own library gives (SentencePiece or tokenizers), special tokens
    as the published tokenizers add them: Llama's BOS first, Qwen2's nothing."""
    folder = TOKENIZERS / style
    if style == "mistral":
        processor = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
        return [processor.bos_id(), *processor.encode(text)]
    return Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text).ids


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizers")
    return {
        name: build_decoder(root / name, style.family, tokenizer=TOKENIZERS / name, **SIZES)
        for name, style in STYLES.items()
    }


@pytest.mark.parametrize("style", STYLES)
def test_each_style_loads_as_published(style):
    expected = STYLES[style]
    folder = TOKENIZERS / style
    assert {p.name for p in folder.iterdir()} == expected.files
    tokenizer = load_tokenizer(folder)
    specials = (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token)
    assert specials == (expected.bos, expected.eos, expected.pad)
    assert expected.marker in tokenizer.chat_template
    text = EQUIVALENCE_TEXT[0][1]
    ids = tokenizer(text)["input_ids"]
    # the plain text, tokenized as its own library does: no chat template applied
    assert ids == _library_ids(style, text)
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert max(ids) < len(tokenizer) <= 1010


@pytest.mark.parametrize("style", STYLES)
def test_a_batch_pads_with_the_own_pad_token_else_eos(style):
    tokenizer = load_tokenizer(TOKENIZERS / style)
    pad = STYLES[style].pad
    expected = ("own", pad) if pad else ("eos", STYLES[style].eos)
    pad_id, source = pad_token(tokenizer)
    assert (source, tokenizer.convert_ids_to_tokens(pad_id)) == expected
    bert = load_tokenizer(minilm_path())
    assert pad_token(bert) == (bert.convert_tokens_to_ids("[PAD]"), "own")


@pytest.mark.parametrize("style", STYLES)
def test_perplexity_is_transformers_loss_on_the_same_tokens(style, checkpoints, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "ppl.json"
    assert (
        main(["eval", str(checkpoints[style]), "--limit-tokens", str(TOKENS), "--json", str(out)])
        == 0
    )
    record = load_record(Perplexity, out)

    tokenizer = AutoTokenizer.from_pretrained(checkpoints[style])
    ids = tokenizer(bundled_text().content)["input_ids"][:TOKENS]
    assert ids[:12] == _library_ids(style, bundled_text().content)[:12]
    model = AutoModelForCausalLM.from_pretrained(checkpoints[style]).eval()
    with torch.no_grad():
        loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss
    assert record.windows == 1 and record.tokens == TOKENS
    assert record.perplexity == pytest.approx(math.exp(float(loss)), rel=1e-5)
    bos, eos = STYLES[style].bos, STYLES[style].eos
    assert record.tokenizer == TokenizerInfo(
        name=type(tokenizer).__name__,
        vocab_size=len(tokenizer),
        pad="none",
        pad_token="",
        bos_token=bos or "",
        eos_token=eos,
        chat_template=True,
    )
    printed = capsys.readouterr().out
    assert (
        f"tokenizer       {record.tokenizer.name}, {len(tokenizer):,} tokens, one window" in printed
    )


@pytest.mark.parametrize("style", STYLES)
def test_bench_quick_pads_the_equivalence_batch(style, checkpoints, tmp_path, monkeypatch):
    patch_bench(monkeypatch, STEADY_DENSE, STEADY_PACKED)
    out = tmp_path / "bench.json"
    argv = ["bench", str(checkpoints[style]), "--quick", "--device", "cpu", "--no-profile"]
    assert main([*argv, *SHAPES, "--json", str(out)]) == 0
    record = load_record(Bench, out)
    lengths = {len(_library_ids(style, context)) for _, context in EQUIVALENCE_TEXT}
    assert len(lengths) > 1  # the paragraphs differ in length: the batch had to be padded
    eos, pad = STYLES[style].eos, STYLES[style].pad
    assert (record.tokenizer.pad, record.tokenizer.pad_token) == (
        ("own", pad) if pad else ("eos", eos)
    )
    assert record.equivalence.inputs.endswith(
        ", padded, fp32" if pad else ", padded with EOS, fp32"
    )
    assert record.equivalence.max_abs_diff <= record.equivalence.tolerance


def test_a_batch_without_any_pad_token_is_cut_to_one_length(checkpoints, tmp_path, monkeypatch):
    """A tokenizer with neither pad nor EOS token: the texts are cut, not padded."""
    folder = tmp_path / "no-eos"
    shutil.copytree(checkpoints["llama3"], folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    del config["eos_token"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    patch_bench(monkeypatch, STEADY_DENSE, STEADY_PACKED)
    out = tmp_path / "bench.json"
    argv = ["bench", str(folder), "--quick", "--device", "cpu", "--no-profile", *SHAPES]
    assert main([*argv, "--json", str(out)]) == 0
    record = load_record(Bench, out)
    assert (record.tokenizer.pad, record.tokenizer.pad_token) == ("none", "")
    assert ", cut to one length, fp32" in record.equivalence.inputs


@pytest.fixture(scope="module")
def reports(checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as monkeypatch:
        for style, checkpoint in checkpoints.items():
            patch_bench(monkeypatch, STEADY_DENSE, STEADY_PACKED)
            args = ["report", str(checkpoint), "--out", str(root / style), "--quick"]
            assert main([*args, "--limit-tokens", "300", "--name", f"tiny-{style}"]) == 0
    return {style: root / style for style in checkpoints}


@pytest.mark.parametrize("style", STYLES)
def test_report_reaches_a_card_and_says_what_padded(style, reports, checkpoints):
    out = reports[style]
    report = read_report(out)
    pad = STYLES[style].pad
    assert report.bench.tokenizer.pad == ("own" if pad else "eos")
    assert report.perplexity.tokenizer.pad == "none"
    assert report.perplexity.tokens == 300
    # pack copied the tokenizer as published: a SentencePiece-only folder stays one
    assert STYLES[style].files <= {p.name for p in (out / "packed").iterdir()}
    card = (out / "README.md").read_text()
    name, vocab = report.perplexity.tokenizer.name, report.perplexity.tokenizer.vocab_size
    assert f"| Tokenizer (vocabulary) | `{name}` ({vocab:,} tokens)" in card
    assert "padded with EOS" in card if not pad else ", padded, fp32" in card
    # and the card's claims check out against the weights and the records it came from
    report_json = str(out / "report.json")
    audit = ["audit", str(checkpoints[style]), "--card", str(out / "README.md")]
    assert main([*audit, "--eval", report_json, "--bench", report_json]) == 0


def test_a_llama_tokenizer_without_pad_token_reaches_a_site_page(reports, tmp_path):
    site = tmp_path / "site"
    assert main(["site", str(reports["mistral"]), str(reports["llama3"]), "--out", str(site)]) == 0
    page = (site / "site" / "models" / "tiny-mistral" / "index.html").read_text()
    ppl = read_report(reports["mistral"]).perplexity
    assert f"<strong>{ppl.perplexity:,.2f}</strong>" in page
    info = ppl.tokenizer
    assert f"<code>{info.name}</code> ({info.vocab_size:,} tokens)" in page


def test_a_chat_template_is_never_rendered(checkpoints, tmp_path):
    """A template that raises when rendered, saved the way transformers 5 saves one
    (chat_template.jinja): eval and pack run, and pack carries it along."""
    folder = tmp_path / "trapped"
    shutil.copytree(checkpoints["llama3"], folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    del config["chat_template"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    trap = "{{ raise_exception('prunecard rendered the chat template') }}"
    (folder / "chat_template.jinja").write_text(trap)
    assert load_tokenizer(folder).chat_template == trap
    out = tmp_path / "ppl.json"
    assert main(["eval", str(folder), "--limit-tokens", "50", "--json", str(out)]) == 0
    assert load_record(Perplexity, out).tokenizer.chat_template
    assert main(["pack", str(folder), str(tmp_path / "packed")]) == 0
    assert (tmp_path / "packed" / "chat_template.jinja").read_text() == trap


def _corrupt_json(folder):
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {')
    return "tokenizer.json", "not a tokenizers file: EOF while parsing"


def _foreign_json(folder):
    (folder / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "Frob"}}')
    return "tokenizer.json", "not a tokenizers file"


def _not_sentencepiece(folder):
    (folder / "tokenizer.model").write_bytes(b"\x08\x01 this is no protobuf \xff\xfe" * 50)
    return "tokenizer.model", "not a SentencePiece model"


def _unknown_class(folder):
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "Frob"}))
    return "tokenizer_config.json", "tokenizer_class 'Frob' is not a tokenizer class"


def _corrupt_config(folder):
    (folder / "tokenizer_config.json").write_text('{"tokenizer_class": ')
    return "tokenizer_config.json", "not a readable JSON file"


@pytest.mark.parametrize(
    ("style", "damage"),
    [
        ("llama3", _corrupt_json),
        ("qwen2", _foreign_json),
        ("mistral", _not_sentencepiece),
        ("qwen2", _unknown_class),
        ("mistral", _corrupt_config),
    ],
)
@pytest.mark.parametrize("command", ["eval", "bench"])
def test_a_bad_tokenizer_file_is_one_line_naming_it(
    style, damage, command, checkpoints, tmp_path, capsys
):
    folder = tmp_path / style
    shutil.copytree(checkpoints[style], folder)
    name, problem = damage(folder)
    out = tmp_path / "out.json"
    code = main(
        [command, str(folder), "--json", str(out), *(["--quick"] if command == "bench" else [])]
    )
    line = one_line_error(code, capsys.readouterr(), f"{folder / name}: ", problem)
    assert not out.exists()
    assert f"{folder}: " not in line  # the file, not its folder


def _tokens_added(folder):
    """Tokens added to a decoder's tokenizer and its embedding never resized, as a
    fine-tune that adds a pad or chat token without `resize_token_embeddings` publishes."""
    tokenizer = load_tokenizer(folder)
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(3)])
    tokenizer.save_pretrained(folder)
    return len(tokenizer)


@pytest.mark.parametrize(
    "command",
    [
        ["eval"],  # perplexity
        ["bench", "--quick"],  # the equivalence batch
        ["eval", "--tasks", "tiny_choice"],  # lm-eval
    ],
    ids=["perplexity", "bench", "lm-eval"],
)
def test_a_tokenizer_past_the_embedding_is_one_line(
    command, checkpoints, lm_eval_tasks, tmp_path, capsys
):
    folder = tmp_path / "llama3"
    shutil.copytree(checkpoints["llama3"], folder)
    rows = json.loads((folder / "config.json").read_text())["vocab_size"]
    tokens = _tokens_added(folder)
    assert tokens == rows + 3  # the builder sizes the embedding to the tokenizer
    out = tmp_path / "out.json"
    include = ["--include-path", str(lm_eval_tasks)] if "--tasks" in command else []
    code = main([*command, str(folder), *include, "--json", str(out)])
    one_line_error(
        code,
        capsys.readouterr(),
        f"{folder / 'config.json'}: vocab_size {rows:,} is smaller than the tokenizer's "
        f"{tokens:,} tokens",
    )
    assert not out.exists()


def test_squad_eval_of_a_tokenizer_past_the_embedding_is_one_line(tmp_path, capsys):
    folder = tiny_qa(tmp_path / "qa", tokenizer=True, vocab=200)  # MiniLM's 30,522 tokens
    code = main(["eval", str(folder), "--out", str(tmp_path / "out"), "--limit", "4"])
    one_line_error(
        code,
        capsys.readouterr(),
        f"{folder / 'config.json'}: vocab_size 200 is smaller than the tokenizer's 30,522",
    )
    assert not (tmp_path / "out").exists()


def test_a_sentencepiece_folder_without_the_library_says_what_to_install(monkeypatch):
    find_spec = tokenizer_module.importlib.util.find_spec
    monkeypatch.setattr(
        tokenizer_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sentencepiece" else find_spec(name, *a),
    )
    with pytest.raises(CheckpointError) as caught:
        load_tokenizer(TOKENIZERS / "mistral")
    assert caught.value.path == str(TOKENIZERS / "mistral" / "tokenizer.model")
    assert "pip install sentencepiece" in caught.value.problem
    assert load_tokenizer(TOKENIZERS / "llama3") is not None  # a tokenizer.json needs neither


def test_tokenizer_info_round_trips_and_old_records_read(checkpoints, tmp_path):
    out = tmp_path / "ppl.json"
    assert (
        main(["eval", str(checkpoints["qwen2"]), "--limit-tokens", "50", "--json", str(out)]) == 0
    )
    record = load_record(Perplexity, out)
    assert from_dict(Perplexity, to_dict(record)) == record
    old = {k: v for k, v in to_dict(record).items() if k != "tokenizer"}
    assert from_dict(Perplexity, old).tokenizer is None


def test_the_builder_rewrites_the_committed_files(tmp_path):
    """tests/data/tokenizers is what scripts/make_tokenizers.py builds, byte for byte."""
    script = DATA.parent.parent / "scripts" / "make_tokenizers.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    built = {
        str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()
    }
    committed = {
        str(p.relative_to(TOKENIZERS)): p.read_bytes() for p in TOKENIZERS.rglob("*") if p.is_file()
    }
    assert built == committed


def test_qa_batches_without_a_pad_token_pad_under_the_mask(tmp_path):
    """SQuAD windows bucketed to one length (as on a GPU) with a tokenizer that has neither
    pad nor EOS token: the answers are those of unpadded batches."""
    model, tokenizer = load_qa_model(tiny_qa(tmp_path / "qa", tokenizer=True, vocab=30522))
    data = read_squad(bundled_sample_path())
    questions = [q.question for q in data.questions[:12]]
    contexts = [q.context for q in data.questions[:12]]
    plain = answer_batch(model, tokenizer, questions, contexts, batch_size=4, device="cpu")
    tokenizer.pad_token = None
    assert pad_token(tokenizer) == (None, "none")
    padded = answer_batch(model, tokenizer, questions, contexts, batch_size=4, bucket=64)
    assert [a.text for a in plain] == [a.text for a in padded]
    assert [a.na_prob for a in plain] == pytest.approx([a.na_prob for a in padded], abs=1e-5)
