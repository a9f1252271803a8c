"""No command may overwrite, replace or write into what the user gave it as input, and
`--force` replaces only what prunecard wrote; a signal leaves the old output as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from badio import digest, leftovers, one_line_error, tiny_qa

from analyzer.cli.main import main
from analyzer.outputs import MARKER


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_qa(tmp_path_factory.mktemp("io") / "weights")


@pytest.fixture(scope="module")
def card_dir(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("io-card") / "rendered"
    assert main(["card", str(model), "--out", str(out)]) == 0
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _squad(tmp: Path) -> tuple[Path, Path]:
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "Rivers",
                "paragraphs": [
                    {
                        "context": "The Danube flows through ten countries.",
                        "qas": [
                            {
                                "id": "d1",
                                "question": "What flows through ten countries?",
                                "answers": [{"text": "The Danube", "answer_start": 0}],
                                "is_impossible": False,
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (tmp / "rivers.json").write_text(json.dumps(data))
    (tmp / "guesses.json").write_text(json.dumps({"d1": "Danube"}))
    return tmp / "rivers.json", tmp / "guesses.json"


# Each case: (tmp, model, card_dir) -> (argv, the inputs that must stay unchanged, text named)
def _report_onto_itself(tmp, model, card_dir):
    ck = _copy(model, tmp / "mine")
    return ["report", str(ck), "--out", str(ck), "--force", "--no-eval", "--no-bench"], [ck]


def _eval_onto_itself(tmp, model, card_dir):
    ck = _copy(model, tmp / "mine")
    return ["eval", str(ck), "--out", str(ck), "--force", "--limit", "1"], [ck]


def _site_onto_its_report(tmp, model, card_dir):
    rep = _copy(card_dir, tmp / "rep")
    (rep / MARKER).unlink()  # a report folder the user copied or made by hand
    return ["site", str(rep), "--out", str(rep), "--force"], [rep]


def _pack_around_the_input(tmp, model, card_dir):
    ck = _copy(model, tmp / "zoo" / "bert-tiny")
    return ["pack", str(ck), str(tmp / "zoo"), "--force"], [ck]


def _pack_inside_the_input(tmp, model, card_dir):
    ck = _copy(model, tmp / "mine")
    return ["pack", str(ck), str(ck / "slim")], [ck]


def _pack_through_a_symlink(tmp, model, card_dir):
    ck = _copy(model, tmp / "mine")
    (tmp / "alias").symlink_to(ck)
    return ["pack", str(ck), str(tmp / "alias"), "--force"], [ck]


def _analyze_json_over_weights(tmp, model, card_dir):
    ck = _copy(model, tmp / "mine")
    weights = ck / "model.safetensors"
    return ["analyze", str(weights), "--json", str(weights)], [ck]


def _bench_json_into_checkpoint(tmp, model, card_dir):
    ck = _copy(model, tmp / "mine")
    return ["bench", str(ck), "--json", str(ck / "config.json"), "--quick"], [ck]


def _score_over_predictions(tmp, model, card_dir):
    data, preds = _squad(tmp)
    return ["score", str(data), str(preds), "--out", str(preds)], [data, preds]


def _score_over_data_via_hard_link(tmp, model, card_dir):
    data, preds = _squad(tmp)
    os.link(data, tmp / "scores.json")
    return ["score", str(data), str(preds), "--out", str(tmp / "scores.json")], [data, preds]


def _audit_markdown_over_card(tmp, model, card_dir):
    rep = _copy(card_dir, tmp / "rep")
    card = rep / "README.md"
    return ["audit", str(card), "--no-weights", "--markdown", str(card)], [rep]


def _card_around_its_records(tmp, model, card_dir):
    rep = _copy(card_dir, tmp / "rep")
    return [
        "card",
        str(model),
        "--report",
        str(rep / "report.json"),
        "--out",
        str(tmp),
        "--force",
    ], [rep]


def _card_into_checkpoint_over_its_report(tmp, model, card_dir):
    ck = _copy(model, tmp / "mine")
    (ck / "report.json").write_text((card_dir / "report.json").read_text())
    argv = ["card", str(ck), "--report", str(ck / "report.json"), "--out", str(ck), "--force"]
    return [*argv, "--license", "mit"], [ck]  # a license its report.json does not hold


def _force_over_a_user_folder(tmp, model, card_dir):
    (tmp / "thesis").mkdir()
    (tmp / "thesis" / "chapter1.tex").write_text("\\chapter{One}")
    return ["pack", str(model), str(tmp / "thesis"), "--force"], [tmp / "thesis"]


CASES = {
    "report --out the checkpoint": (_report_onto_itself, "is the input"),
    "eval --out the checkpoint": (_eval_onto_itself, "is the input"),
    "site --out its report folder": (_site_onto_its_report, "is the input"),
    "pack into the folder holding the input": (_pack_around_the_input, "contains the input"),
    "pack into a subfolder of the input": (_pack_inside_the_input, "lies inside the input"),
    "pack onto a symlink to the input": (_pack_through_a_symlink, "is the input"),
    "analyze --json onto the weights file": (_analyze_json_over_weights, "is the input"),
    "bench --json into the checkpoint": (_bench_json_into_checkpoint, "lies inside"),
    "score --out onto the predictions": (_score_over_predictions, "is the input"),
    "score --out onto a hard link of the data": (_score_over_data_via_hard_link, "is the input"),
    "audit --markdown onto the card": (_audit_markdown_over_card, "is the input"),
    "card --out around its records": (_card_around_its_records, "contains the input"),
    "card into the checkpoint, changing its own --report": (
        _card_into_checkpoint_over_its_report,
        "is the card's own record",
    ),
    "--force over a folder prunecard did not write": (
        _force_over_a_user_folder,
        "not written by prunecard",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_never_touch_inputs(case, tmp_path, model, card_dir, capsys):
    build, problem = CASES[case]
    argv, inputs = build(tmp_path, model, card_dir)
    before = digest(*inputs)
    code = main(argv)
    one_line_error(code, capsys.readouterr(), problem)
    assert digest(*inputs) == before, "an input changed"
    assert all(p.exists() for p in inputs)
    assert leftovers(tmp_path) == []


def test_a_card_re_renders_in_place_from_its_own_report(tmp_path, model, card_dir, capsys):
    """The publish hook: `card CKPT --report CKPT/report.json --out CKPT` leaves every file
    as it was when the records are unchanged (nothing to regenerate, nothing modified)."""
    ck = _copy(model, tmp_path / "mine")
    assert main(["card", str(ck), "--out", str(ck)]) == 0
    before = digest(ck)
    argv = ["card", str(ck), "--report", str(ck / "report.json"), "--out", str(ck), "--force"]
    assert main(argv) == 0, capsys.readouterr().err
    assert digest(ck) == before


def test_force_replaces_what_prunecard_wrote(tmp_path, model, capsys):
    out = tmp_path / "slim"
    assert main(["pack", str(model), str(out)]) == 0
    assert (out / MARKER).is_file()
    (out / "stale.txt").write_text("from last time")
    assert main(["pack", str(model), str(out), "--force"]) == 0
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()


def test_a_json_output_replaces_an_earlier_one(tmp_path, model, capsys):
    """Single-file outputs replace a regular file the user named, never a folder."""
    out = tmp_path / "analysis.json"
    out.write_text("{}")
    assert main(["analyze", str(model), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["schema"].startswith("prunecard.analysis")
    (tmp_path / "folder.json").mkdir()
    code = main(["analyze", str(model), "--json", str(tmp_path / "folder.json")])
    one_line_error(code, capsys.readouterr(), "folder.json")


def test_the_longest_legal_output_names_work(tmp_path, model, capsys):
    """255 bytes is the limit of a name; temporary names must not push it past that."""
    json_name, folder_name = "a" * 250 + ".json", "p" * 250
    assert main(["analyze", str(model), "--json", str(tmp_path / json_name)]) == 0
    assert main(["pack", str(model), str(tmp_path / folder_name)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [json_name, folder_name]


def test_an_output_name_past_the_limit_is_one_line(tmp_path, model, capsys):
    code = main(["pack", str(model), str(tmp_path / ("q" * 256))])
    one_line_error(code, capsys.readouterr(), "too long")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- signals

_SLOW_PACK = textwrap.dedent(
    """
    import sys, time
    import safetensors.torch
    from analyzer.cli.main import main

    real = safetensors.torch.save_file

    def slow(*args, **kwargs):  # the packed file is half made: now is when a signal lands
        real(*args, **kwargs)
        print("writing", flush=True)
        time.sleep(120)

    safetensors.torch.save_file = slow
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_run_keeps_the_old_output(tmp_path, model, signum):
    out = tmp_path / "slim"
    assert main(["pack", str(model), str(out)]) == 0
    before = digest(out)
    run = subprocess.Popen(
        [sys.executable, "-c", _SLOW_PACK, "pack", str(model), str(out), "--force"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert run.stdout.readline().strip() == "writing"
        assert leftovers(tmp_path), "the staged output should exist while writing"
        began = time.monotonic()
        run.send_signal(signum)
        _, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert time.monotonic() - began < 30, "the signal did not stop the run"
    assert run.returncode == 2, err
    assert err.strip() == (
        f"prunecard: error: stopped by {signal.Signals(signum).name}; no partial output was kept"
    )
    assert leftovers(tmp_path) == [], "the staged output was left behind"
    assert digest(out) == before, "the old output changed"
