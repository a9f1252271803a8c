"""`prunecard score` through the real entry point: the oracle, counts and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import METRIC_ORACLE, SQUAD_DEV_HALF, one_paragraph_squad

from analyzer.cli.main import main
from analyzer.records import Evaluation, load_record, to_dict

DATA = SQUAD_DEV_HALF


@pytest.fixture(scope="module")
def oracle():
    return json.loads(METRIC_ORACLE.read_text())


def write(path: Path, value) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def test_oracle_cases_through_the_cli(oracle, tmp_path, capsys):
    for case in oracle["cases"]:
        args = ["score", str(DATA), str(write(tmp_path / "p.json", case["predictions"]))]
        if case["na_probs"] is not None:
            args += ["--na-probs", str(write(tmp_path / "na.json", case["na_probs"]))]
        out = tmp_path / f"{case['name']}.json"
        assert main([*args, "--out", str(out)]) == 0
        ev = load_record(Evaluation, out)
        got = {k: v for k, v in to_dict(ev.scores).items() if v is not None}
        assert got.keys() == case["official"].keys()
        for key, value in case["official"].items():
            assert got[key] == pytest.approx(value, abs=1e-9, rel=0)
        assert ev.n == 6078 and ev.ci.exact_low < ev.scores.exact < ev.ci.exact_high
        assert {g.kind for g in ev.groups} == {"question_type", "answer_length"}
    printed = capsys.readouterr().out
    assert "EM" in printed and "95% CI" in printed and "what" in printed


def test_missing_and_extra_ids_are_counted(oracle, tmp_path, capsys):
    preds = dict(oracle["cases"][0]["predictions"])
    dropped = list(preds)[:5]
    for qid in dropped:
        del preds[qid]
    preds["not-a-question"] = "x"
    out = tmp_path / "ev.json"
    preds_file = write(tmp_path / "p.json", preds)
    assert main(["score", str(DATA), str(preds_file), "--out", str(out)]) == 0
    ev = load_record(Evaluation, out)
    assert (ev.missing_predictions, ev.extra_predictions, ev.scores.total) == (5, 1, 6078)
    assert "5 missing" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("which", "content", "problem"),
    [
        ("predictions", "{oops", "not a readable JSON file"),
        ("predictions", '["a list"]', "expected a JSON object"),
        ("predictions", '{"x": 3}', "answer for id 'x' is 3, not a string"),
        ("na_probs", '{"x": 1.5}', "not a number in [0, 1]"),
        ("na_probs", '{"x": -0.1}', "not a number in [0, 1]"),
        ("na_probs", '{"x": true}', "not a number in [0, 1]"),
        ("na_probs", '{"x": "0.3"}', "not a number in [0, 1]"),
        ("na_probs", "{}", "no probability for 1 predicted id(s)"),
    ],
)
def test_bad_inputs_exit_2_with_one_line_naming_the_file(tmp_path, capsys, which, content, problem):
    data = write(
        tmp_path / "data.json",
        one_paragraph_squad("c", [{"id": "x", "question": "q?", "answers": []}]),
    )
    preds = write(tmp_path / "predictions.json", {"x": ""})
    probs = write(tmp_path / "na_probs.json", {"x": 0.5})
    bad = write(tmp_path / f"bad_{which}.json", content)
    args = [
        "score",
        str(data),
        str(bad if which == "predictions" else preds),
        "--na-probs",
        str(bad if which == "na_probs" else probs),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and problem in err[0]


def test_bad_data_file_exits_2(tmp_path, capsys):
    bad = write(tmp_path / "data.json", '{"data": 3}')
    preds = write(tmp_path / "p.json", {})
    assert main(["score", str(bad), str(preds)]) == 2
    assert str(bad) in capsys.readouterr().err
