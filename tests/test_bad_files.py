"""Hostile or mistaken input files, command by command: each is one line naming the file,
exit 2, no traceback, no hang, and the input left byte for byte as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from badio import digest, leftovers, one_line_error, tiny_qa
from hypothesis import given
from hypothesis import strategies as st

from analyzer.cli.main import main
from analyzer.errors import printable
from analyzer.inputs import CONFIG_LIMIT, DATA_LIMIT, TOKENIZER_LIMIT
from analyzer.weights.architecture import MAX_VOCAB


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_qa(tmp_path_factory.mktemp("files") / "weights")


def _squad(folder: Path, *, version: str | None = "v2.0", flag: bool = True) -> Path:
    """Two questions on one paragraph, answers written out by hand."""
    qas = [
        {"id": "k1", "question": "Who built the kiln?", "answers": [{"text": "Mara"}]},
        {"id": "k2", "question": "How hot did it get?", "answers": [{"text": "1200 degrees"}]},
    ]
    if flag:
        for qa in qas:
            qa["is_impossible"] = False
    raw = {
        "data": [
            {
                "title": "Kilns",
                "paragraphs": [
                    {"context": "Mara built the kiln; it reached 1200 degrees.", "qas": qas}
                ],
            }
        ]
    }
    if version is not None:
        raw["version"] = version
    path = folder / "kilns.json"
    path.write_text(json.dumps(raw))
    return path


def _answers(folder: Path, answers: dict | None = None) -> Path:
    path = folder / "answers.json"
    path.write_text(json.dumps(answers or {"k1": "Mara", "k2": "1200"}))
    return path


# --------------------------------------------------------------------------- JSON bombs

DEEP = "[" * 200_000 + "]" * 200_000
LONG_INT = '{"exact": ' + "7" * 6000 + "}"

# Where each JSON input sits: (tmp, model, payload) -> (argv, the file the error must name)
JSON_INPUTS: dict[str, Callable[[Path, Path, str], tuple[list[str], Path]]] = {}


def _json_input(name: str):
    def register(build):
        JSON_INPUTS[name] = build
        return build

    return register


@_json_input("config.json")
def _config(tmp, model, payload):
    ck = tiny_qa(tmp / "ck")
    (ck / "config.json").write_text(payload)
    return ["analyze", str(ck)], ck / "config.json"


@_json_input("shard index")
def _index(tmp, model, payload):
    ck = tiny_qa(tmp / "ck")
    (ck / "model.safetensors.index.json").write_text(payload)
    return ["analyze", str(ck)], ck / "model.safetensors.index.json"


@_json_input("score data")
def _data(tmp, model, payload):
    (tmp / "data.json").write_text(payload)
    return ["score", str(tmp / "data.json"), str(_answers(tmp))], tmp / "data.json"


@_json_input("score predictions")
def _predictions(tmp, model, payload):
    (tmp / "preds.json").write_text(payload)
    return ["score", str(_squad(tmp)), str(tmp / "preds.json")], tmp / "preds.json"


@_json_input("score na-probs")
def _na_probs(tmp, model, payload):
    (tmp / "na.json").write_text(payload)
    argv = ["score", str(_squad(tmp)), str(_answers(tmp)), "--na-probs", str(tmp / "na.json")]
    return argv, tmp / "na.json"


@_json_input("card --analysis")
def _analysis(tmp, model, payload):
    (tmp / "a.json").write_text(payload)
    argv = ["card", str(model), "--analysis", str(tmp / "a.json"), "--out", str(tmp / "c")]
    return argv, tmp / "a.json"


@_json_input("card --reference-metrics")
def _reference(tmp, model, payload):
    (tmp / "ref.json").write_text(payload)
    argv = ["card", str(model), "--reference-metrics", str(tmp / "ref.json")]
    return [*argv, "--out", str(tmp / "c")], tmp / "ref.json"


@_json_input("audit --eval")
def _audit_eval(tmp, model, payload):
    (tmp / "card.md").write_text("# A card\n\nF1 80.0 on SQuAD v2.\n")
    (tmp / "ev.json").write_text(payload)
    argv = ["audit", str(tmp / "card.md"), "--no-weights", "--eval", str(tmp / "ev.json")]
    return argv, tmp / "ev.json"


@pytest.mark.parametrize("payload", [DEEP, LONG_INT], ids=["nested-200k", "6000-digit-int"])
@pytest.mark.parametrize("where", sorted(JSON_INPUTS))
def test_json_bombs_are_one_line(where, payload, tmp_path, model, capsys):
    argv, named = JSON_INPUTS[where](tmp_path, model, payload)
    before = digest(tmp_path)
    code = main(argv)
    one_line_error(code, capsys.readouterr(), named.name)
    assert digest(tmp_path) == before
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------- not regular files


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Through the real entry point, with a timeout: a blocked read must fail the test."""
    return subprocess.run(
        [sys.executable, "-m", "analyzer.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_fifo_config_does_not_block(tmp_path, model):
    ck = tiny_qa(tmp_path / "ck")
    (ck / "config.json").unlink()
    os.mkfifo(ck / "config.json")
    done = _run(["analyze", str(ck)])
    one_line_error(done.returncode, done, "config.json", "not a regular file")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_behind_a_json_input_is_not_read(tmp_path, device):
    (tmp_path / "preds.json").symlink_to(device)
    done = _run(["score", str(_squad(tmp_path)), str(tmp_path / "preds.json")])
    one_line_error(done.returncode, done, "preds.json", "not a regular file")


def test_a_device_as_weights_is_refused(tmp_path):
    ck = tiny_qa(tmp_path / "ck")
    (ck / "model.safetensors").unlink()
    (ck / "model.safetensors").symlink_to("/dev/zero")
    done = _run(["analyze", str(ck)])
    one_line_error(done.returncode, done, "model.safetensors", "not a regular file")


@pytest.mark.parametrize(
    ("name", "limit"), [("config.json", CONFIG_LIMIT), ("answers.json", DATA_LIMIT)]
)
def test_inputs_over_their_size_limit_are_refused_unread(tmp_path, name, limit, capsys):
    ck = tiny_qa(tmp_path / "ck")
    big = ck / "config.json" if name == "config.json" else tmp_path / name
    with big.open("wb") as handle:  # sparse: no disk used, no time spent
        handle.truncate(limit + 1)
    argv = (
        ["analyze", str(ck)]
        if name == "config.json"
        else ["score", str(_squad(tmp_path)), str(big)]
    )
    line = one_line_error(main(argv), capsys.readouterr(), name)
    assert f"over the {limit >> 20} MB limit" in line


# --------------------------------------------------------------------------- paths


def test_a_path_component_too_long(tmp_path, capsys):
    code = main(["analyze", str(tmp_path / ("n" * 300) / "model.safetensors")])
    one_line_error(code, capsys.readouterr(), "too long")


def test_a_symlink_loop(tmp_path, capsys):
    (tmp_path / "ping.json").symlink_to(tmp_path / "pong.json")
    (tmp_path / "pong.json").symlink_to(tmp_path / "ping.json")
    code = main(["score", str(_squad(tmp_path)), str(tmp_path / "ping.json")])
    one_line_error(code, capsys.readouterr(), "ping.json", "symbolic links")
    code = main(["analyze", str(_squad(tmp_path)), "--json", str(tmp_path / "ping.json")])
    one_line_error(code, capsys.readouterr(), "ping.json")
    code = main(["analyze", str(tmp_path / "ping.json")])
    one_line_error(code, capsys.readouterr(), "ping.json", "symbolic links")


# --------------------------------------------------------------------------- forged lines


def test_a_newline_in_a_folder_name_cannot_forge_a_line(tmp_path, capsys):
    folder = tmp_path / "plain\nprunecard: error: your disk is failing"
    folder.mkdir()
    line = one_line_error(main(["analyze", str(folder)]), capsys.readouterr())
    assert "plain\\nprunecard: error: your disk is failing" in line


def test_a_newline_in_a_tensor_name_cannot_forge_a_line(tmp_path, capsys):
    import torch
    from safetensors.torch import load_file, save_file

    ck = tiny_qa(tmp_path / "ck")
    forged = "decoy\r\nprunecard: error: \x1b[2Kall good.weight"
    state = {**load_file(ck / "model.safetensors"), forged: torch.full((4, 4), float("nan"))}
    save_file(state, str(ck / "model.safetensors"))
    line = one_line_error(main(["analyze", str(ck)]), capsys.readouterr(), "model.safetensors")
    assert "decoy\\r\\nprunecard: error: \\x1b[2Kall good.weight" in line


@given(st.text())
def test_escaped_text_is_one_line_and_plain_text_is_untouched(text):
    shown = printable(text)
    assert len(shown.splitlines()) <= 1 and "\x1b" not in shown
    assert not any(unicodedata.category(c) == "Cc" for c in shown)
    if not any(unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cf") for c in text):
        assert shown == text


def test_a_newline_in_a_missing_file_name_cannot_forge_a_line(tmp_path, capsys):
    ghost = tmp_path / "gone.json\nprunecard: error: fake.json: fake problem"
    code = main(["score", str(ghost), str(_answers(tmp_path))])
    line = one_line_error(code, capsys.readouterr(), "gone.json\\nprunecard: error: fake.json")
    assert "\n" not in line


# --------------------------------------------------------------------------- config values

CONFIG_VALUES = {
    "vocabulary of ten billion": ({"vocab_size": 10**10}, "vocab_size"),
    "vocabulary contradicting the embeddings": ({"vocab_size": 150}, "vocab_size"),
    "unknown activation": ({"hidden_act": "sparkle"}, "hidden_act"),
    "activation not a string": ({"hidden_act": ["gelu"]}, "hidden_act"),
    "six position embeddings": ({"max_position_embeddings": 6}, "max_position_embeddings"),
    "negative token types": ({"type_vocab_size": -2}, "type_vocab_size"),
    "padding id past the vocabulary": ({"pad_token_id": 5000}, "pad_token_id"),
    "negative epsilon": ({"layer_norm_eps": -0.5}, "layer_norm_eps"),
    "epsilon as text": ({"layer_norm_eps": "tiny"}, "layer_norm_eps"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_VALUES))
def test_config_values_are_checked_before_torch_sees_them(case, tmp_path, capsys):
    values, named = CONFIG_VALUES[case]
    ck = tiny_qa(tmp_path / "ck", **values)
    before = digest(ck)
    code = main(["bench", str(ck), "--quick", "--device", "cpu", "--repeats", "1"])
    one_line_error(code, capsys.readouterr(), "config.json", named)
    assert digest(ck) == before


def test_positions_too_few_for_the_run(tmp_path, capsys):
    """A consistent model of 64 positions cannot run 128-token sequences."""
    ck = tiny_qa(tmp_path / "ck", positions=64)
    code = main(["bench", str(ck), "--quick", "--device", "cpu", "--seq", "128"])
    one_line_error(code, capsys.readouterr(), "config.json", "64")


def test_bench_runs_a_model_with_a_tiny_vocabulary(tmp_path, capsys):
    """Token ids must be drawn inside a 200-token vocabulary (no tokenizer to take them from)."""
    ck = tiny_qa(tmp_path / "ck", vocab=200)
    out = tmp_path / "bench.json"
    code = main(
        [
            *("bench", str(ck), "--quick", "--device", "cpu", "--repeats", "1"),
            *("--json", str(out)),
            "--accept-unstable",  # the vocabulary is under test here, not this machine's timing
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "random token ids" in json.loads(out.read_text())["equivalence"]["inputs"]


# --------------------------------------------------------------------------- tokenizers


def test_eval_refuses_a_checkpoint_without_tokenizer(tmp_path, capsys):
    ck = tiny_qa(tmp_path / "ck")
    code = main(["eval", str(ck), "--limit", "2", "--out", str(tmp_path / "ev")])
    one_line_error(code, capsys.readouterr(), "ck", "tokenizer")
    assert not (tmp_path / "ev").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "damage",
    ["truncated tokenizer.json", "unknown tokenizer class", "tokenizer.json a folder"],
)
def test_eval_refuses_an_unusable_tokenizer(damage, tmp_path, capsys):
    ck = tiny_qa(tmp_path / "ck", tokenizer=True, vocab=30522)
    if damage == "truncated tokenizer.json":
        text = (ck / "tokenizer.json").read_text()
        (ck / "tokenizer.json").write_text(text[: len(text) // 3])
    elif damage == "unknown tokenizer class":
        (ck / "tokenizer.json").unlink()
        settings = json.loads((ck / "tokenizer_config.json").read_text())
        (ck / "tokenizer_config.json").write_text(
            json.dumps({**settings, "tokenizer_class": "WhaleSongTokenizer"})
        )
    else:
        (ck / "tokenizer.json").unlink()
        (ck / "tokenizer.json").mkdir()
    before = digest(ck)
    code = main(["eval", str(ck), "--limit", "2", "--out", str(tmp_path / "ev")])
    one_line_error(code, capsys.readouterr(), "ck")
    assert digest(ck) == before and not (tmp_path / "ev").exists()


# --------------------------------------------------------------------------- reference scores


@pytest.mark.parametrize("text", ['{"exact": NaN, "f1": 80}', '{"f1": Infinity}', '{"f1": 812}'])
def test_reference_scores_must_be_scores(text, tmp_path, model, capsys):
    (tmp_path / "theirs.json").write_text(text)
    argv = ["card", str(model), "--reference-metrics", str(tmp_path / "theirs.json")]
    code = main([*argv, "--out", str(tmp_path / "card")])
    one_line_error(code, capsys.readouterr(), "theirs.json")
    assert not (tmp_path / "card").exists()


# --------------------------------------------------------------------------- SQuAD versions


@pytest.mark.parametrize(
    ("version", "flag"), [("1.1", False), (None, False)], ids=["stated", "by-structure"]
)
def test_score_refuses_v1_data_as_v2(version, flag, tmp_path, capsys):
    data = _squad(tmp_path, version=version, flag=flag)
    code = main(["score", str(data), str(_answers(tmp_path))])
    one_line_error(code, capsys.readouterr(), "kilns.json", "--squad-version 1.1")


def test_score_v1_data_as_v1(tmp_path, capsys):
    """k1 exact; k2 "1200" against "1200 degrees": precision 1, recall 1/2, F1 2/3."""
    data = _squad(tmp_path, version="1.1", flag=False)
    out = tmp_path / "scores.json"
    argv = [
        "score",
        str(data),
        str(_answers(tmp_path)),
        "--squad-version",
        "1.1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    scores = json.loads(out.read_text())["scores"]
    assert scores["exact"] == pytest.approx(100 * (1 + 0) / 2)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert scores.get("NoAns_total") is None


def test_v2_data_with_unanswerable_questions_is_not_v1(tmp_path, capsys):
    data = _squad(tmp_path)
    raw = json.loads(data.read_text())
    raw["data"][0]["paragraphs"][0]["qas"][1].update(answers=[], is_impossible=True)
    data.write_text(json.dumps(raw))
    code = main(["score", str(data), str(_answers(tmp_path)), "--squad-version", "1.1"])
    one_line_error(code, capsys.readouterr(), "kilns.json", "unanswerable")


def test_the_readme_states_the_limits_the_code_enforces():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    safety = text[text.index("## Safety") : text.index("## Definitions")]
    for limit in (CONFIG_LIMIT, TOKENIZER_LIMIT, DATA_LIMIT):
        assert f"{limit >> 20} MB" in safety
    assert f"{MAX_VOCAB:,}" in safety
