"""`prunecard report PRUNED --tasks ... --dense-base DENSE` end to end: the report runs lm-eval
on the pruned model and on its dense base; its card table, model-index and `.eval_results`,
the site's model page, and `audit --eval` of the model-index and `.eval_results` copies
(an edited one a mismatch naming the task and both figures; a task the record lacks not
checkable; without a record, an edit is caught against the card's own table). Every
expected figure is computed from lm-eval's own results (tests/lmeval_models.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from lmeval_models import TASKS, expected_rows, headline

from analyzer.cli.main import main
from analyzer.records import Benchmarks, load_record, write_record


@pytest.fixture(scope="module")
def report_dir(lm_eval_family, lm_eval_tasks, tmp_path_factory) -> Path:
    dense, pruned = lm_eval_family
    out = tmp_path_factory.mktemp("report") / "report"
    tasks = ["--tasks", ",".join(TASKS), "--include-path", str(lm_eval_tasks)]
    argv = ["report", str(pruned), "--no-bench", "--no-eval", *tasks, "--dense-base", str(dense)]
    assert main([*argv, "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_report_runs_the_tasks_on_the_model_and_its_dense_base(lm_eval_raw, report_dir):
    raw_dense, raw_pruned = lm_eval_raw
    record = load_record(Benchmarks, report_dir / "benchmarks.json")
    assert record.base is not None
    for run, results in ((record, raw_pruned), (record.base, raw_dense)):
        assert sorted(t.task for t in run.tasks) == sorted(TASKS)
        for task in run.tasks:
            for m in task.metrics:
                assert m.value == pytest.approx(results["results"][task.task][f"{m.name},none"])
    text = (report_dir / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    for row in expected_rows(raw_dense, raw_pruned):
        assert row in lines, row
    front = yaml.safe_load(text.split("---\n")[1])
    results = front["model-index"][0]["results"]
    for task in TASKS:
        metric, value = headline(raw_pruned, task)
        (entry,) = [r for r in results if r["task"].get("name") == f"lm-eval {task}"]
        assert (entry["metrics"][0]["type"], entry["metrics"][0]["value"]) == (metric, float(value))
        (scores,) = yaml.safe_load((report_dir / ".eval_results" / f"{task}.yaml").read_text())
        assert scores["value"] == float(value) and scores["notes"].startswith(metric)


@pytest.mark.slow
def test_the_site_model_page_lists_the_tasks(lm_eval_raw, report_dir, tmp_path):
    from analyzer.publish.site import build_site

    build_site([report_dir], tmp_path / "site")
    (page,) = (tmp_path / "site" / "docs" / "models").glob("*/index.md")
    text = page.read_text(encoding="utf-8")
    details = text[text.index("### lm-evaluation-harness tasks") :]
    lines = details.splitlines()
    assert "| Task | Shots | Metric | Dense | Pruned | Recovery |" in lines
    for row in expected_rows(*lm_eval_raw):  # the card's rows, shots in their own column
        cells = [c.strip() for c in row.strip("|").split("|")]
        task, _, shots = cells[0].partition(" (")
        shots = shots.removesuffix("-shot)")
        assert f"| {' | '.join([task, shots, *cells[1:]])} |" in lines, row
    assert "| Dense base | tiny-llama-dense |" in lines
    assert "subset" not in details.split("| Detail")[0]  # no --limit: nothing marked


def _audit(checkpoint: Path, readme: Path, out: Path, record: Path | None = None) -> list[dict]:
    argv = ["audit", str(checkpoint), "--card", str(readme), "--json", str(out)]
    main([*argv, *(["--eval", str(record)] if record else [])])
    return [f for f in json.loads(out.read_text())["findings"] if f["quantity"] == "task_score"]


def _edit(folder: Path, old: str, new: str) -> None:
    path = folder / "README.md"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.slow
def test_audit_checks_model_index_and_eval_results_against_the_record(
    lm_eval_family, lm_eval_raw, report_dir, tmp_path
):
    _, pruned = lm_eval_family
    raw_pruned = lm_eval_raw[1]
    record = report_dir / "benchmarks.json"
    found = _audit(pruned, report_dir / "README.md", tmp_path / "a.json", record)
    # each task twice (model-index, .eval_results), each checked against the record and
    # against the card's table
    for check in ("evaluation", "internal"):
        checked = [f for f in found if f["check"] == check]
        assert len(checked) == 2 * len(TASKS) and {f["verdict"] for f in checked} == {"ok"}
    for f in (f for f in found if f["check"] == "evaluation"):
        task = next(t for t in TASKS if t in f["text"])
        assert f["measured"] == str(headline(raw_pruned, task)[1])
    # an edited model-index value and an edited .eval_results file: mismatches naming
    # the task, the claimed and the recorded figure
    card = tmp_path / "card"
    card.mkdir()
    (card / ".eval_results").mkdir()
    _, pick = headline(raw_pruned, "tiny_pick")
    _, choice = headline(raw_pruned, "tiny_choice")
    text = (report_dir / "README.md").read_text(encoding="utf-8")
    (card / "README.md").write_text(text, encoding="utf-8")
    _edit(card, f"      value: {float(pick)}\n", f"      value: {float(pick) + 1}\n")
    for task in TASKS:
        scores = (report_dir / ".eval_results" / f"{task}.yaml").read_text(encoding="utf-8")
        if task == "tiny_choice":
            scores = scores.replace(f"value: {float(choice)}", f"value: {float(choice) + 2}")
        (card / ".eval_results" / f"{task}.yaml").write_text(scores, encoding="utf-8")
    found = _audit(pruned, card / "README.md", tmp_path / "b.json", record)
    bad = {(f["file"], f["check"]): f for f in found if f["verdict"] == "mismatch"}
    assert set(bad) == {
        ("", "evaluation"),
        ("", "internal"),
        (".eval_results/tiny_choice.yaml", "evaluation"),
        (".eval_results/tiny_choice.yaml", "internal"),
    }
    index = bad[("", "evaluation")]
    assert "tiny_pick" in index["text"] and index["claimed"] == str(float(pick) + 1)
    assert index["measured"] == str(pick) and f"the record {pick}" in index["reason"]
    scores = bad[(".eval_results/tiny_choice.yaml", "evaluation")]
    assert "tiny_choice" in scores["text"] and scores["claimed"] == str(float(choice) + 2)
    assert scores["measured"] == str(choice)
    # without a record the edits are caught against the card's own table
    found = _audit(pruned, card / "README.md", tmp_path / "c.json")
    assert {(f["file"], f["check"]) for f in found if f["verdict"] == "mismatch"} == {
        ("", "internal"),
        (".eval_results/tiny_choice.yaml", "internal"),
    }
    assert {f["verdict"] for f in found if f["check"] == "evaluation"} == {"not checkable"}
    # a record without tiny_rolling: its copies are not checkable, and say why
    full = load_record(Benchmarks, record)
    fewer = dataclasses.replace(
        full, tasks=tuple(t for t in full.tasks if t.task != "tiny_rolling")
    )
    write_record(fewer, tmp_path / "fewer.json")
    found = _audit(pruned, report_dir / "README.md", tmp_path / "d.json", tmp_path / "fewer.json")
    rolling = [f for f in found if "tiny_rolling" in f["text"] and f["check"] == "evaluation"]
    assert len(rolling) == 2 and {f["verdict"] for f in rolling} == {"not checkable"}
    assert all(
        f["reason"] == "the lm-eval record has no task tiny_rolling (it ran tiny_choice, tiny_pick)"
        for f in rolling
    )


GSM8K = {  # lm-eval's output shape for gsm8k: exact_match under two filters, no "none"
    "results": {"gsm8k": {"exact_match,strict-match": 0.25, "exact_match,flexible-extract": 0.375}},
    "configs": {
        "gsm8k": {
            "metric_list": [{"metric": "exact_match"}],
            "dataset_path": "openai/gsm8k",
            "dataset_name": "main",
            "test_split": "test",
        }
    },
    "higher_is_better": {"gsm8k": {"exact_match": True}},
    "n-shot": {"gsm8k": 5},
    "n-samples": {"gsm8k": {"original": 1319, "effective": 1319}},
    "versions": {"gsm8k": 3.0},
}


def test_an_exact_match_task_score_is_lm_evals_not_squads(tmp_path):
    """gsm8k's `exact_match` in the model-index is the task's score (never read as SQuAD's
    exact match); a card without a dense base; the filter the table shows (flexible-extract:
    no unfiltered one, the first by name) is the one the model-index copy is held to."""
    from decoder_reports import report

    from analyzer.audit.against_records import EvalScores
    from analyzer.audit.checks import audit_claims
    from analyzer.audit.walker import read_card
    from analyzer.lmeval.results import task_results
    from analyzer.publish.card import render_card

    record = Benchmarks(
        tasks=task_results(GSM8K), lm_eval_version="0.4.13", checkpoint="x", file_sha256={}
    )
    text = render_card(report(benchmarks=record))
    shown = f"{100 * GSM8K['results']['gsm8k']['exact_match,flexible-extract']:.2f}"
    assert f"| gsm8k (5-shot) | exact_match | {shown} |" in text.splitlines()
    card = tmp_path / "README.md"
    card.write_text(text, encoding="utf-8")
    evaluation = EvalScores({}, "", "benchmarks.json", record)
    found = audit_claims(read_card(card), None, evaluation).findings
    assert not [f for f in found if f.quantity in ("exact", "f1")]
    scores = [f for f in found if f.quantity == "task_score"]
    assert {(f.check, f.verdict) for f in scores} == {("evaluation", "ok"), ("internal", "ok")}
    strict = 100 * GSM8K["results"]["gsm8k"]["exact_match,strict-match"]
    card.write_text(text.replace(f"value: {float(shown)}", f"value: {strict}"), encoding="utf-8")
    found = audit_claims(read_card(card), None, evaluation).findings
    bad = {f.check: f for f in found if f.quantity == "task_score" and f.verdict == "mismatch"}
    assert set(bad) == {"evaluation", "internal"}
    assert bad["evaluation"].measured == shown and "gsm8k" in bad["evaluation"].reason
