"""A pruned tiny Llama against its dense base on the bundled lm-eval tasks, end to end:
`eval --dense-base` (stored and packed), the card's table (dense, pruned, Average, recovery), its
model-index and `.eval_results`, the site's table, and `audit --eval` (all ok; one edited
cell a mismatch). Every expected figure is computed here from lm-eval's own results dict,
run directly through `lm_eval.simple_evaluate`, never from prunecard's record."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from lmeval_models import DATA, TASKS, expected_rows, half_up, headline, results_file

from analyzer.cli.main import main
from analyzer.records import Benchmarks, load_record


def _eval(args: list[str], capsys) -> tuple[int, str]:
    code = main(["eval", *args])
    return code, capsys.readouterr().err.strip()


@pytest.fixture(scope="module")
def record_file(lm_eval_family, lm_eval_tasks, tmp_path_factory) -> Path:
    dense, pruned = lm_eval_family
    out = tmp_path_factory.mktemp("records") / "benchmarks.json"
    tasks = ["--tasks", ",".join(TASKS), "--include-path", str(lm_eval_tasks)]
    assert main(["eval", str(pruned), *tasks, "--dense-base", str(dense), "--json", str(out)]) == 0
    return out


@pytest.mark.slow
def test_eval_base_records_both_models_stored_and_packed(
    lm_eval_family, lm_eval_raw, record_file, lm_eval_tasks, tmp_path
):
    dense, pruned = lm_eval_family
    record = load_record(Benchmarks, record_file)
    assert record.base is not None and record.base.checkpoint == str(dense)
    for run, results in ((record, lm_eval_raw[1]), (record.base, lm_eval_raw[0])):
        for task in run.tasks:
            for m in task.metrics:
                assert m.value == pytest.approx(results["results"][task.task][f"{m.name},none"])
    packed_out = tmp_path / "packed.json"
    tasks = ["--tasks", ",".join(TASKS), "--include-path", str(lm_eval_tasks)]
    base = ["--dense-base", str(dense), "--packed", "--json", str(packed_out)]
    assert main(["eval", str(pruned), *tasks, *base]) == 0
    packed = load_record(Benchmarks, packed_out)
    assert packed.packed and not record.packed
    for a, b in zip(record.tasks, packed.tasks, strict=True):  # packing changes no figure
        for ma, mb in zip(a.metrics, b.metrics, strict=True):
            assert mb.value == pytest.approx(ma.value, rel=1e-4)
    # the local JSONL is named by file and sha256 in the record
    choice = next(t for t in record.tasks if t.task == "tiny_choice")
    digest = hashlib.sha256((DATA / "tiny_choice.jsonl").read_bytes()).hexdigest()
    assert [(f.name, f.sha256) for f in choice.data_files] == [("tiny_choice.jsonl", digest)]


@pytest.fixture(scope="module")
def card(lm_eval_family, record_file, tmp_path_factory) -> Path:
    _, pruned = lm_eval_family
    out = tmp_path_factory.mktemp("card") / "card"
    assert main(["card", str(pruned), "--benchmarks", str(record_file), "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_card_table_model_index_and_eval_results(lm_eval_raw, card):
    text = (card / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    for row in expected_rows(*lm_eval_raw):
        assert row in lines, row
    assert "| Task | Metric | Dense | Pruned | Recovery |" in lines
    front = yaml.safe_load(text.split("---\n")[1])
    results = front["model-index"][0]["results"]
    version = lm_eval_raw[1]["lm_eval_version"]
    for task in TASKS:
        metric, value = headline(lm_eval_raw[1], task)
        (entry,) = [r for r in results if r["task"].get("name") == f"lm-eval {task}"]
        digest = hashlib.sha256((DATA / f"{task}.jsonl").read_bytes()).hexdigest()
        assert entry["task"]["type"] == "text-generation"
        assert entry["dataset"]["type"] == f"{task}.jsonl"  # no Hub id is made up
        assert digest[:12] in entry["dataset"]["name"]
        assert entry["metrics"][0]["type"] == metric
        assert entry["metrics"][0]["value"] == float(value)
        assert entry["source"]["name"] == f"lm-evaluation-harness {version}"
        (scores,) = yaml.safe_load((card / ".eval_results" / f"{task}.yaml").read_text())
        assert scores["value"] == float(value) and "id" not in scores["dataset"]
        assert digest[:12] in scores["notes"] and scores["notes"].startswith(metric)


@pytest.mark.slow
def test_site_table_gains_the_tasks_and_the_average(lm_eval_raw, card, tmp_path):
    from analyzer.publish.site import build_site

    build_site([card], tmp_path / "site")
    home = (tmp_path / "site" / "docs" / "index.md").read_text(encoding="utf-8")
    for task in TASKS:
        _, value = headline(lm_eval_raw[1], task)
        assert f"<th>lm-eval {task} (0-shot)</th>" in home
        assert f'<td data-sort="{value}">{value}</td>' in home
    average = expected_rows(*lm_eval_raw)[2].split(" | ")[3]
    assert "<th>lm-eval Average</th>" in home and f">{average}</td>" in home


@pytest.mark.slow
def test_audit_checks_every_figure_against_the_record(
    lm_eval_family, lm_eval_raw, card, record_file, tmp_path
):
    _, pruned = lm_eval_family
    readme = card / "README.md"
    out = tmp_path / "audit.json"
    args = ["audit", str(pruned), "--card", str(readme), "--eval", str(record_file)]
    assert main([*args, "--json", str(out)]) == 0
    findings = json.loads(out.read_text())["findings"]
    lines = readme.read_text(encoding="utf-8").splitlines()
    rows = expected_rows(*lm_eval_raw)
    table = [lines.index(r) + 1 for r in rows]
    checked = [f for f in findings if f["line"] in table and f["check"] == "evaluation"]
    # 4 tasks' dense and pruned cells, the Average's two, and the 3 recoveries shown
    figures = sum(c.strip()[:1].isdigit() for r in rows for c in r.split("|")[3:])
    assert len(checked) == figures and {f["verdict"] for f in checked} == {"ok"}
    # one edited cell: a mismatch on that line
    pick = next(i for i, line in enumerate(lines) if line.startswith("| tiny_pick"))
    cells = lines[pick].split(" | ")
    cells[3] = f"{Decimal(cells[3]) + Decimal('0.01')}"
    lines[pick] = " | ".join(cells)
    edited = tmp_path / "README.md"
    edited.write_text("\n".join(lines) + "\n", encoding="utf-8")
    again = tmp_path / "again.json"
    argv = ["audit", str(pruned), "--card", str(edited), "--eval", str(record_file)]
    assert main([*argv, "--json", str(again)]) == 1
    bad = [f for f in json.loads(again.read_text())["findings"] if f["verdict"] == "mismatch"]
    assert {f["line"] for f in bad if f["check"] == "evaluation"} == {pick + 1}
    assert any(f["quantity"] == "benchmark" for f in bad if f["line"] == pick + 1)


@pytest.mark.slow
def test_imported_base_results_are_bound_and_compared(
    lm_eval_family, lm_eval_raw, tmp_path, capsys
):
    dense, pruned = lm_eval_family
    mine = results_file(tmp_path / "pruned.json", lm_eval_raw[1], f"/cluster/{pruned.name}")
    base = results_file(tmp_path / "dense.json", lm_eval_raw[0], f"/cluster/{dense.name}")
    out = tmp_path / "b.json"
    code, _ = _eval([str(pruned), "--results", str(mine), "--base-results", str(base),
                     "--json", str(out)], capsys)  # fmt: skip
    assert code == 0
    record = load_record(Benchmarks, out)
    assert record.base is not None and record.base.checkpoint == f"/cluster/{dense.name}"
    # the pruned model's own results given as its base: refused in one line
    code, err = _eval([str(pruned), "--results", str(mine), "--base-results", str(mine)], capsys)
    assert code == 2 and "made for the pruned model itself" in err and "\n" not in err
    # bound to --dense-base: results of another model refused
    bound = ["--dense-base", str(dense), "--base-results", str(mine)]
    code, err = _eval([str(pruned), "--results", str(mine), *bound], capsys)
    assert code == 2 and f"was made for /cluster/{pruned.name}, not for" in err
    # other shots: not comparable
    shots = {task: 5 for task in TASKS}
    other = results_file(
        tmp_path / "5shot.json", lm_eval_raw[0], "/cluster/dense", **{"n-shot": shots}
    )
    code, err = _eval([str(pruned), "--results", str(mine), "--base-results", str(other)], capsys)
    assert code == 2 and "ran tiny_choice at 5-shot on 4 documents instead of 0-shot" in err


@pytest.mark.slow
def test_report_carries_the_benchmarks_into_its_card(lm_eval_family, lm_eval_raw, tmp_path):
    dense, pruned = lm_eval_family
    mine = results_file(tmp_path / "pruned.json", lm_eval_raw[1], f"/cluster/{pruned.name}")
    base = results_file(tmp_path / "dense.json", lm_eval_raw[0], f"/cluster/{dense.name}")
    out = tmp_path / "report"
    argv = ["report", str(pruned), "--no-bench", "--no-eval", "--out", str(out)]
    assert main([*argv, "--results", str(mine), "--base-results", str(base)]) == 0
    lines = (out / "README.md").read_text(encoding="utf-8").splitlines()
    for row in expected_rows(*lm_eval_raw):
        assert row in lines, row
    assert load_record(Benchmarks, out / "benchmarks.json").base is not None


def test_a_limit_run_without_a_base_is_marked_a_subset_and_names_its_hub_dataset():
    from decoder_reports import report

    from analyzer.lmeval.results import task_results
    from analyzer.publish.card import render_card

    results = {  # lm-eval's output shape for a --limit 2 run of a Hub task
        "results": {"arc_easy": {"acc,none": 0.5, "acc_stderr,none": 0.5, "acc_norm,none": 1.0}},
        "configs": {
            "arc_easy": {
                "metric_list": [{"metric": "acc"}, {"metric": "acc_norm"}],
                "dataset_path": "allenai/ai2_arc",
                "dataset_name": "ARC-Easy",
                "test_split": "test",
            }
        },
        "higher_is_better": {"arc_easy": {"acc": True, "acc_norm": True}},
        "n-shot": {"arc_easy": 5},
        "n-samples": {"arc_easy": {"original": 2376, "effective": 2}},
        "versions": {"arc_easy": 1.0},
    }
    record = Benchmarks(
        tasks=task_results(results), lm_eval_version="0.4.13", checkpoint="x", file_sha256={}
    )
    text = render_card(report(benchmarks=record))
    lines = text.splitlines()
    shown = half_up(100 * results["results"]["arc_easy"]["acc_norm,none"], 2)
    assert "| Task | Metric | Pruned |" in lines
    assert f"| arc_easy (5-shot) | acc_norm, 2 of 2,376 documents (subset) | {shown} |" in lines
    assert "marked tasks are a subset (`--limit`)" in text
    front = yaml.safe_load(text.split("---\n")[1])
    (entry,) = [r for r in front["model-index"][0]["results"] if "lm-eval" in r["task"]["name"]]
    assert (entry["dataset"]["type"], entry["dataset"]["config"]) == ("allenai/ai2_arc", "ARC-Easy")
    assert "subset: 2 of 2,376 documents" in entry["metrics"][0]["name"]


def test_a_bad_base_is_refused_in_one_line_before_anything_runs(
    lm_eval_family, lm_eval_tasks, tmp_path, capsys
):
    _, pruned = lm_eval_family
    tasks = [str(pruned), "--tasks", "tiny_choice", "--include-path", str(lm_eval_tasks)]
    for extra, problem in (
        (["--dense-base", str(tmp_path / "nope")], "--dense-base: no such checkpoint"),
        (["--dense-base", str(pruned)], "--dense-base is the pruned checkpoint itself"),
        (["--base-results", str(tmp_path / "nope.json")], "no such file"),
        (["--results", str(tmp_path / "r.json")], "--results imports them: not both"),
    ):
        code, err = _eval([*tasks, *extra], capsys)
        assert code == 2 and problem in err and "\n" not in err, err
