"""The model card: golden READMEs, metadata that validates offline, "not measured", rounding,
the usage block run as printed, and the `prunecard card` command.

Goldens are regenerated only with PRUNECARD_UPDATE_GOLDEN=1; dates, versions, the machine
and the checkpoint path are passed in so they are stable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import (
    EXAMPLE_SPEC,
    FFN,
    HIDDEN,
    LAYERS,
    SEED_CARD,
    PruneSpec,
    build_minilm,
    build_nn_pruning,
    nn_pruning_record,
)
from huggingface_hub import ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results

from analyzer import analyze
from analyzer.audit.walker import extract_claims
from analyzer.cli.main import main
from analyzer.errors import InputError
from analyzer.pipeline import build_report
from analyzer.publish.card import (
    CardOptions,
    Reference,
    eval_results_yaml,
    load_reference,
    packed_params_as_benchmarked,
    render_card,
    validate_card,
    write_card,
)
from analyzer.publish.report import portable, read_report
from analyzer.records import (
    HEAD_RULE,
    Bench,
    BenchShape,
    ConfidenceInterval,
    Environment,
    Equivalence,
    Evaluation,
    Publication,
    Report,
    SquadScores,
)
from analyzer.text import signed_difference

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PRUNECARD_UPDATE_GOLDEN") == "1"
ENV = Environment(
    python="3.11.7",
    platform="Linux-x86_64",
    cpu="Example CPU",
    cores=2,
    torch="2.13.0+cpu",
    transformers="5.24.0",
    device="cpu",
)
BENCH = Bench(
    threads=2,
    device="cpu",
    dtype="float32",
    shapes=(
        BenchShape(1, 128, 20.0, 12.5, 1.0, 0.5, 1.6, 1.9, 1.6 / 1.9, 30, 1.1, 0.6),
        BenchShape(8, 384, 600.0, 400.0, 12.0, 9.0, 1.5, 1.9, 1.5 / 1.9, 10, 30.0, 16.0),
    ),
    equivalence=Equivalence(2.1e-6, 1e-4, "8 SQuAD v2 questions"),
    environment=ENV,
    packed_bytes=80_123_456,
    original_bytes=90_868_000,
)
EVAL = Evaluation(
    scores=SquadScores(
        exact=12.5,
        f1=15.555,  # rounds up to 15.56
        total=200,
        HasAns_exact=3.0,
        HasAns_f1=9.11,
        HasAns_total=100,
        NoAns_exact=22.0,
        NoAns_f1=22.0,
        NoAns_total=100,
    ),
    ci=ConfidenceInterval(8.0, 17.0, 11.004, 20.0, 0.95, 1000, 0),
    n=200,
    data="squad_v2_dev_half.json",
    data_sha256="0" * 64,
    packed=True,
    limit=200,
    seed=0,
)
# Reference F1 85.854 displays as 85.85; 15.555 displays as 15.56: difference -70.29, not
# the raw -70.299 rounded to -70.30.
REFERENCE = Reference(exact=80.0, f1=85.854, source="reference.json", total=11873)


def _report(path: Path, fixed_path: str, publication=None, **records) -> Report:
    report = build_report(
        path,
        command="prunecard card",
        created="2025-01-31T12:00:00Z",
        environment=ENV,
        tool_version="0.1.0",
        **records,
    )
    return dataclasses.replace(
        report,
        provenance=dataclasses.replace(report.provenance, checkpoint=fixed_path),
        publication=publication,
    )


def minilm_report_files(report: Report) -> list[Path]:
    root = Path(report.analysis.checkpoint)
    return [root / f.path for f in report.analysis.files]


def _check_golden(name: str, text: str) -> None:
    golden = GOLDEN / name
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"{golden} missing: run with PRUNECARD_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text[4 : text.index("\n---\n", 3)])


MINILM_PUBLICATION = Publication(
    model_id="prunecard/minilm-pruned-squad2",
    base_model="sentence-transformers/all-MiniLM-L6-v2",
    license="apache-2.0",
)
MINILM_OPTIONS = CardOptions(reference=REFERENCE)


@pytest.fixture(scope="module")
def minilm_report(pruned_minilm) -> Report:
    return _report(
        pruned_minilm,
        "checkpoints/minilm-pruned",
        MINILM_PUBLICATION,
        analysis=analyze(pruned_minilm),
        bench=BENCH,
        evaluation=EVAL,
    )


def test_golden_minilm(minilm_report):
    text = render_card(minilm_report, MINILM_OPTIONS, ("density", "heads", "blocks"))
    _check_golden("minilm_card.md", text)
    size = sum(f.stat().st_size for f in minilm_report_files(minilm_report))
    assert f"| Weight files: as stored / packed | {size / 1e6:.1f} MB / 80.1 MB |" in text
    assert "90.9 MB" not in text  # bench's own original_bytes never contradicts the files


def test_golden_nn_pruning(tmp_path):
    """bert-base with published nn_pruning structure; its published scores, no bench."""
    index = 2
    path = build_nn_pruning(tmp_path / "nn", index)
    scores = SquadScores(**nn_pruning_record(index)["eval_metrics"])
    ci = ConfidenceInterval(69.85, 71.49, 73.31, 74.85, 0.95, 1000, 0)  # hand-made
    evaluation = dataclasses.replace(
        EVAL,
        scores=scores,
        ci=ci,
        n=scores.total,
        data="dev-v2.0.json",
        limit=None,
        seed=None,
        packed=False,
    )
    publication = Publication(model_id="nn-pruning-hybrid", base_model="bert-base-uncased")
    report = _report(
        path,
        "checkpoints/nn-pruning-hybrid",
        publication,
        analysis=analyze(path),
        evaluation=evaluation,
    )
    text = render_card(report, CardOptions(), ("density", "heads", "blocks"))
    _check_golden("nn_pruning_card.md", text)
    removed = sum(len(v) for v in nn_pruning_record(index)["stats"]["pruned_heads"].values())
    assert f"**{removed} of 144 heads" in text
    assert "Speedup, packed vs dense | not measured" in text


def test_metadata_validates_and_round_trips(minilm_report):
    text = render_card(minilm_report, MINILM_OPTIONS)
    assert validate_card(text) == []
    data = _front_matter(text)
    card_data = ModelCardData(**data)
    assert card_data.pipeline_tag == "question-answering"
    assert card_data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    name, results = model_index_to_eval_results(data["model-index"])
    assert name == "prunecard/minilm-pruned-squad2"
    assert {r.metric_type: r.metric_value for r in results} == {"exact_match": 12.5, "f1": 15.56}
    assert all(w["text"] and w["context"] for w in data["widget"])


def test_seed_card_fails_validation():
    """The seed's widget `context` lines are not indented, so its front matter is not YAML."""
    seed = SEED_CARD.read_text(encoding="utf-8")
    problems = validate_card(seed[seed.index("---\n") :])
    assert len(problems) == 1 and "not valid YAML" in problems[0]


def test_eval_results_file(minilm_report):
    """Exact match and F1, each saying that 200 random questions are not the dev set."""
    entries = yaml.safe_load(eval_results_yaml(minilm_report))
    subset = (
        "subset: 200 of the 11,873 questions of the validation split, a random sample of "
        "200 drawn with seed 0 from squad_v2_dev_half.json (sha256 000000000000)"
    )
    common = {
        "dataset": {"id": "rajpurkar/squad_v2", "task_id": "squad_v2"},
        "date": "2025-01-31",
        "source": {
            "url": "https://huggingface.co/prunecard/minilm-pruned-squad2",
            "name": "Model card",
        },
    }
    assert entries == [
        {**common, "value": 12.5, "notes": f"exact match, percent; {subset}"},
        {**common, "value": 15.56, "notes": f"F1, percent; {subset}"},
    ]
    assert list(entries[0]) == ["dataset", "value", "date", "source", "notes"]
    (index,) = _front_matter(render_card(minilm_report))["model-index"]
    assert {r["dataset"]["name"] for r in index["results"]} == {f"SQuAD v2 validation ({subset})"}
    assert eval_results_yaml(dataclasses.replace(minilm_report, evaluation=None)) is None


def test_eval_results_full_split_has_no_notes(minilm_report):
    full = dataclasses.replace(EVAL, n=11873, limit=None, seed=None, data="dev-v2.0.json")
    entries = yaml.safe_load(eval_results_yaml(dataclasses.replace(minilm_report, evaluation=full)))
    assert [e["notes"] for e in entries] == ["exact match, percent", "F1, percent"]
    every = dataclasses.replace(full, n=306, data="/home/me/squad_v2_sample.json")
    entries = yaml.safe_load(
        eval_results_yaml(dataclasses.replace(minilm_report, evaluation=every))
    )
    assert entries[1]["notes"] == (
        "F1, percent; subset: 306 of the 11,873 questions of the validation split, every "
        "question of squad_v2_sample.json (sha256 000000000000)"
    )


def test_missing_records_say_not_measured(pruned_minilm):
    report = _report(pruned_minilm, "ckpt", Publication("bare"))
    text = render_card(report)
    assert validate_card(text) == []
    for line in (
        "| Sparsity, heads, FFN units, parameter counts | not measured |",
        "| Speedup, packed vs dense | not measured |",
        "| SQuAD v2 exact match and F1 | not measured |",
        "| Weight files: as stored / packed | not measured / not measured |",
        "Sparsity was not measured",
        "Speed was not measured",
        "Accuracy was not measured",
    ):
        assert line in text
    assert "model-index" not in _front_matter(text)
    assert "%" not in text.split("## Usage")[0].replace("percentages", "")


def test_rounding_is_never_truncation(minilm_report):
    a = minilm_report.analysis
    linear = dataclasses.replace(a.linear, density=0.169996)
    report = dataclasses.replace(minilm_report, analysis=dataclasses.replace(a, linear=linear))
    text = render_card(report, MINILM_OPTIONS)
    assert "**17.0%** (" in text and "16.9%" not in text
    assert "| **F1** | **15.56** | 11.00 to 20.00 | 85.85 | -70.29 |" in text
    assert signed_difference(82.566, 85.854) == "-3.28"  # 82.57 - 85.85, as displayed
    assert signed_difference(83.125, 83.125) == "0.00"


def test_head_rule_and_counts_stated(minilm_report):
    text = render_card(minilm_report, MINILM_OPTIONS)
    assert HEAD_RULE in text
    removed = EXAMPLE_SPEC.heads_removed
    assert f"**{removed} of 72** ({100 * removed / 72:.1f}%)" in text
    kept_units = 6 * 1536 - 100 - 536
    assert f"**{kept_units:,} of 9,216**" in text
    assert "| 0 | " in text and "| 1, 5 |" in text  # layer 0 lost heads 1 and 5


@pytest.fixture(scope="module")
def minilm_benches(pruned_minilm) -> dict[tuple[str, int], Bench]:
    """Real bench records of the example checkpoint (one tiny shape: sizes, not times)."""
    from analyzer.runtime.bench import bench
    from analyzer.runtime.timing import Protocol

    return {
        (dtype, align): bench(
            pruned_minilm,
            device="cpu",
            dtype=dtype,
            align=align,
            shapes=[(1, 16)],
            protocol=Protocol(warmup=0, min_repeats=1),
            profile_runs=0,
            progress=False,
        )
        for dtype, align in (("fp32", 1), ("fp32", 64), ("fp16", 64))
    }


def test_packed_params_unpadded_match_the_analysis(minilm_report, minilm_benches):
    a, b = minilm_report.analysis, minilm_benches["fp32", 1]
    assert packed_params_as_benchmarked(a, b) == a.overall.packed
    # why bench.packed_parameters alone is not the count: the QA model loads no pooler
    assert b.packed_parameters == a.overall.packed - (HIDDEN * HIDDEN + HIDDEN)
    assert b.packed_bytes == 4 * b.packed_parameters  # fp32


@pytest.mark.parametrize("dtype", ["fp32", "fp16"])
def test_packed_params_padded_add_zero_units(minilm_report, minilm_benches, dtype):
    a = minilm_report.analysis
    units = [FFN - len(EXAMPLE_SPEC.zero_units.get(layer, ())) for layer in range(LAYERS)]
    assert [s.ffn_units_kept for s in a.layers] == units  # 1436, 1536, ..., 1000, 1536
    # each zero unit adds an FFN-in row and bias and an FFN-out column
    padding = sum((-(-u // 64) * 64 - u) * (2 * HIDDEN + 1) for u in units)
    assert padding == (36 + 24) * 769
    assert packed_params_as_benchmarked(a, minilm_benches[dtype, 64]) == (
        a.overall.packed + padding
    )


def test_card_shows_padded_count_only_when_padded(minilm_report, minilm_benches):
    packed = minilm_report.analysis.overall.packed
    padded = packed + (36 + 24) * (2 * HIDDEN + 1)
    report = dataclasses.replace(minilm_report, bench=minilm_benches["fp32", 64])
    text = render_card(report, MINILM_OPTIONS)
    padding = "FFN widths padded to multiples of 64, as benchmarked on cpu"
    assert f" / {packed:,} ({padded:,} with {padding}) |" in text
    prose = "FFN widths were padded with zero units to multiples of 64, giving"
    assert f"As benchmarked on cpu, {prose} {padded:,} packed parameters." in text
    # the audit still reads the unpadded count from the table and the prose
    claims = [c for c in extract_claims(text).claims if c.quantity == "params_packed"]
    assert [c.value for c in claims] == [packed, packed]
    unpadded = dataclasses.replace(minilm_report, bench=minilm_benches["fp32", 1])
    assert "FFN widths" not in render_card(unpadded, MINILM_OPTIONS)


@pytest.mark.parametrize(
    ("spec", "routes"),
    [
        (EXAMPLE_SPEC, ["prunecard"]),  # heads removed via pruned_heads: transformers cannot
        (PruneSpec(zero_heads={1: (2,)}), ["transformers", "prunecard"]),  # dense shapes
    ],
)
def test_usage_blocks_run_as_printed(tmp_path, spec, routes):
    """The card's python blocks, extracted and executed in a fresh interpreter; the plain
    transformers route comes first wherever `from_pretrained` can load the checkpoint."""
    path = build_minilm(tmp_path / "ckpt", spec)
    report = build_report(
        path, analysis=analyze(path), environment=ENV, created="2025-01-31T12:00:00Z"
    )
    text = render_card(report)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    shown = [
        "transformers" if "AutoModelForQuestionAnswering" in b else "prunecard" for b in blocks
    ]
    assert shown == routes
    for i, code in enumerate(blocks):
        assert 'model_id = "ckpt"' in code  # the folder's name: no --name, no path
        script = tmp_path / f"usage{i}.py"
        script.write_text(code)
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("'")  # the answer's repr
    assert "no-answer probability" in done.stdout


def test_custom_template(tmp_path, minilm_report):
    template = tmp_path / "mine.md.j2"
    template.write_text("# {{ model_name }}\n\nF1 {{ evaluation.scores.f1 | fixed(1) }}\n")
    text = render_card(minilm_report, dataclasses.replace(MINILM_OPTIONS, template=template))
    assert text.endswith("# prunecard/minilm-pruned-squad2\n\nF1 15.6\n")
    template.write_text("{{ no_such_variable }}")
    with pytest.raises(InputError, match="no_such_variable"):
        render_card(minilm_report, dataclasses.replace(MINILM_OPTIONS, template=template))


def test_reference_file(tmp_path):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"exact": 79.70184452118251, "f1": 82.56816761071966}))
    assert load_reference(ref) == Reference(79.70184452118251, 82.56816761071966, "ref.json")
    ref.write_text(json.dumps({"EM": 80}))
    with pytest.raises(InputError, match="neither 'exact' nor 'f1'"):
        load_reference(ref)


def test_write_card_folder(tmp_path, minilm_report):
    out = write_card(tmp_path / "card", minilm_report, MINILM_OPTIONS)
    names = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert names == {
        "README.md",
        "report.json",
        ".eval_results/squad_v2.yaml",
        ".prunecard-output",  # lets a later --force replace this folder
        *(f"assets/{s}.{e}" for s in ("density", "heads", "blocks") for e in ("png", "svg")),
    }
    assert read_report(out) == portable(minilm_report)


# --------------------------------------------------------------------------- CLI


def test_cli_default_folder_and_refusals(tmp_path, monkeypatch, capsys):
    ckpt = build_minilm(tmp_path / "mymodel", EXAMPLE_SPEC)
    before = {p.name: p.stat().st_mtime_ns for p in ckpt.iterdir()}
    monkeypatch.chdir(tmp_path)
    assert main(["card", str(ckpt), "--license", "apache-2.0"]) == 0
    out = tmp_path / "mymodel-card"
    text = (out / "README.md").read_text()
    assert validate_card(text) == [] and "license: apache-2.0" in text
    assert not (out / ".eval_results").exists()  # no evaluation, no score file
    assert {p.name: p.stat().st_mtime_ns for p in ckpt.iterdir()} == before
    assert main(["card", str(ckpt)]) == 2  # exists, no --force
    assert "already exists" in capsys.readouterr().err
    assert main(["card", str(ckpt), "--eval", str(tmp_path / "nope.json"), "--out", "x"]) == 2
    assert not (tmp_path / "x").exists()


def test_cli_into_checkpoint_keeps_weights(tmp_path):
    ckpt = build_minilm(tmp_path / "model", EXAMPLE_SPEC)
    weights = (ckpt / "model.safetensors").read_bytes()
    assert main(["card", str(ckpt), "--out", str(ckpt)]) == 0
    assert (ckpt / "README.md").exists() and (ckpt / "assets" / "density.png").exists()
    assert (ckpt / "model.safetensors").read_bytes() == weights
    assert main(["card", str(ckpt), "--out", str(ckpt)]) == 2
    assert main(["card", str(ckpt), "--out", str(ckpt), "--force"]) == 0
    assert not [p for p in ckpt.iterdir() if p.name.startswith(".prunecard")]


def test_cli_records_and_report_mismatch(tmp_path, minilm_report, pruned_minilm):
    from analyzer.records import write_record

    write_record(EVAL, tmp_path / "eval.json")
    write_record(BENCH, tmp_path / "bench.json")
    (tmp_path / "ref.json").write_text(json.dumps({"exact": 80.0, "f1": 85.854}))
    args = ["card", str(pruned_minilm), "--eval", str(tmp_path / "eval.json")]
    args += ["--bench", str(tmp_path / "bench.json"), "--reference-metrics"]
    args += [str(tmp_path / "ref.json"), "--out", str(tmp_path / "c")]
    assert main(args) == 0
    text = (tmp_path / "c" / "README.md").read_text()
    assert "| **F1** | **15.56** | 11.00 to 20.00 | 85.85 | -70.29 |" in text
    assert "**1.60x**" in text and "80.1 MB" in text
    other = build_minilm(tmp_path / "other", dataclasses.replace(EXAMPLE_SPEC, zero_units={}))
    args = ["card", str(other), "--report", str(tmp_path / "c"), "--out", str(tmp_path / "d")]
    assert main(args) == 2
    assert not (tmp_path / "d").exists()


def test_speed_paragraph_names_the_runtime_settings(minilm_report, minilm_benches):
    bench = dataclasses.replace(minilm_benches["fp32", 64], graphs=True, packed_fused=True)
    text = render_card(dataclasses.replace(minilm_report, bench=bench), MINILM_OPTIONS)
    assert "FFN widths padded to multiples of 64, forward passes replayed as CUDA graphs" in text
    assert "LayerNorm in one kernel) for the packed model only" in text
    both = dataclasses.replace(bench, dense_fused=True)
    assert ") for both models" in render_card(
        dataclasses.replace(minilm_report, bench=both), MINILM_OPTIONS
    )


def test_card_files_are_byte_identical_across_processes(tmp_path, minilm_report):
    """The same report rendered here and, a second later, in another interpreter: the same
    bytes in every file (figures included: no dates, fixed SVG ids)."""
    first = write_card(tmp_path / "a", minilm_report)
    time.sleep(1.1)
    code = (
        "import sys\n"
        "from analyzer.publish.card import write_card\n"
        "from analyzer.publish.report import read_report\n"
        "write_card(sys.argv[2], read_report(sys.argv[1]))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(first), str(tmp_path / "b")], check=True, timeout=300
    )

    def files(folder: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()
        }

    assert len(files(first)) == 10  # 9 card files and the output marker
    assert files(tmp_path / "b") == files(first)


def test_time_is_the_measurements_never_the_render(monkeypatch, minilm_report):
    from analyzer.pipeline import utc_now

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1738324800")
    assert utc_now() == "2025-01-31T12:00:00Z"
    text = render_card(minilm_report)
    assert "Measured by prunecard 0.1.0 on 2025-01-31T12:00:00Z" in text
    assert time.strftime("%Y-%m-%d") not in text


def test_portable_report_names_no_path(minilm_report):
    """What goes into the card folder: every path reduced to a name, measurements kept."""
    home = str(Path.home())
    report = dataclasses.replace(
        minilm_report,
        provenance=dataclasses.replace(
            minilm_report.provenance,
            checkpoint=f"{home}/models/minilm-pruned",
            command=f"prunecard report {home}/models/minilm-pruned --data=/data/dev.json "
            "--out rel/report --name org/m",
        ),
        evaluation=dataclasses.replace(EVAL, data="/data/dev.json", checkpoint="/x/minilm"),
    )
    out = portable(report)
    assert out.provenance.checkpoint == "minilm-pruned"
    assert out.provenance.command == (
        "prunecard report minilm-pruned --data=dev.json --out rel/report --name org/m"
    )
    assert (out.evaluation.data, out.evaluation.checkpoint) == ("dev.json", "minilm")
    assert out.analysis.checkpoint == Path(minilm_report.analysis.checkpoint).name
    assert (
        out.evaluation.scores == EVAL.scores and out.analysis.matrices == report.analysis.matrices
    )
    assert portable(out) == out


def test_publication_round_trips_through_report_json(tmp_path, minilm_report):
    from analyzer.publish.report import write_report

    publication = Publication("org/m", "mit", "bert-base-uncased", ("org/a", "org/b"), tags=("x",))
    write_report(tmp_path, dataclasses.replace(minilm_report, publication=publication))
    assert read_report(tmp_path).publication == publication
