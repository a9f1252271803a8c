"""The phrasing families of LLM and encoder cards: cards written for these tests
(tests/data/cards/, in the styles of published 2:4, width/depth, MoE and encoder cards),
the claims each holds listed by hand, and inconsistent variants of each."""

from __future__ import annotations

from pathlib import Path

import decoder_reports as spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.audit.benchmarks import check_table_against
from analyzer.audit.checks import audit, audit_claims
from analyzer.audit.registry import UnknownFamily, family, registered
from analyzer.audit.walker import extract_claims

CARDS = Path(__file__).parent / "data" / "cards"


def card(name: str) -> str:
    return (CARDS / name).read_text()


def claims(text: str) -> set[tuple[str, float | str | None, str]]:
    return {
        (c.quantity, c.value if c.value is not None else c.name,
         f"{c.cell.row}/{c.cell.column}" if c.cell else c.about)
        for c in extract_claims(text).claims
    }  # fmt: skip


def findings(text: str, verdict: str) -> list[tuple[str, str, str]]:
    report = audit_claims(extract_claims(text))
    return [(f.quantity, f.claimed, f.measured) for f in report.findings if f.verdict == verdict]


def test_benchmark_table_and_sentences_are_read_cell_by_cell():
    found = claims(card("llm_benchmarks.md"))
    expected = {  # typed in from the card
        ("metric_name", "accuracy", ""), ("metric_name", "exact_match", ""),
        ("sparsity_pattern", "2:4", ""), ("weights_dtype", "bf16", ""),
        ("arch_layers", 32.0, ""), ("arch_hidden", 4096.0, ""), ("arch_kv_heads", 8.0, ""),
        ("arch_context", 8192.0, ""), ("stated_params", 8.0, ""), ("model_size", 16.1, ""),
        ("benchmark", 71.3, "MMLU/this model"), ("benchmark", 64.2, "GSM8K/this model"),
        ("benchmark_average", 61.0, "average/this model"),
        ("benchmark_average", 62.5, "average/the dense model"),
        ("benchmark_recovery", 97.6, "average/this model"),
        ("benchmark", 66.6, "MMLU/Llama-3-8B (dense)"),
        ("benchmark", 64.3, "MMLU/Sparse-Llama-3-8B"),
        ("benchmark_recovery", 96.5, "MMLU/Sparse-Llama-3-8B"),
        ("benchmark_stderr", 1.4, "ARC-Challenge/Llama-3-8B (dense)"),
        ("benchmark", 57.8, "ARC-Challenge/Sparse-Llama-3-8B"),
        ("benchmark_average", 69.37, "Average/Llama-3-8B (dense)"),
        ("benchmark_average", 67.53, "Average/Sparse-Llama-3-8B"),
        ("benchmark_recovery", 97.3, "Average/Sparse-Llama-3-8B"),
        ("placeholder", "/path/to/model", ""), ("placeholder", "YOUR_TOKEN", ""),
        ("placeholder", "<your-model>", ""),
    }  # fmt: skip
    assert expected <= found
    # metrics: are metric names, never datasets; no pattern out of a URL or a model id
    assert not {c for c in found if c[0] == "dataset"}
    assert {c[1] for c in found if c[0] == "sparsity_pattern"} == {"2:4"}
    assert findings(card("llm_benchmarks.md"), "mismatch") == []


def test_columns_in_either_order_and_the_base_named_dense():
    text = card("llm_benchmarks.md").replace(
        "| Task | Shots | Llama-3-8B (dense) | Sparse-Llama-3-8B | Recovery |",
        "| Task | Shots | Sparse-Llama-3-8B | Llama-3-8B (dense) | Recovery |",
    )
    lines = text.splitlines()
    for i, line in enumerate(lines):  # swap the two model cells of each body row
        cells = line.split("|")
        if len(cells) == 7 and cells[1].strip() not in ("Task", "---"):
            cells[3], cells[4] = cells[4], cells[3]
            lines[i] = "|".join(cells)
    assert findings("\n".join(lines), "mismatch") == []


@pytest.mark.parametrize(
    ("old", "new", "quantity", "claimed"),
    [
        ("| 69.37 | 67.53 |", "| 69.38 | 67.53 |", "benchmark_average", "69.38"),  # last digit
        ("| 82.10 | 80.50 | 98.1% |", "| 82.10 | 80.50 | 99.1% |", "benchmark_recovery", "99.1%"),
        ("(97.6% recovery)", "(95.6% recovery)", "benchmark_recovery", "95.6%"),
        ("Disk size: 16.1 GB", "Disk size: 4.1 GB", "model_size", "4.1GB"),
    ],
)
def test_an_inconsistent_figure_is_a_mismatch_naming_both(old, new, quantity, claimed):
    text = card("llm_benchmarks.md")
    assert old in text
    bad = findings(text.replace(old, new), "mismatch")
    assert [(q, c) for q, c, _ in bad] == [(quantity, claimed)]
    assert bad[0][2]  # the figure it was compared with


def test_moe_and_size_arithmetic():
    text = card("moe_sizes.md")
    found = claims(text)
    assert {("experts_removed", 16.0, ""), ("experts_total", 64.0, ""),
            ("experts_removed_pct", 25.0, ""), ("experts_per_layer", 48.0, ""),
            ("experts_active", 8.0, ""), ("stated_params", 56.6, ""),
            ("stated_active_params", 3.0, ""), ("model_size", 56.0, ""),
            ("size_reduction_pct", 50.0, ""), ("weights_dtype", "fp8", ""),
            ("linear_sparsity", 57.92, ""), ("linear_sparsity", 90.0, "")} <= found  # fmt: skip
    assert findings(text, "mismatch") == []
    bad = findings(text.replace("leaving 48", "leaving 40"), "mismatch")
    assert bad == [("experts_per_layer", "40", "48")]
    bad = findings(text.replace("50% smaller", "30% smaller"), "mismatch")
    assert [q for q, _, _ in bad] == ["size_reduction_pct"]


def test_encoder_seed_table_and_em_f1_cells():
    text = card("encoder_seeds.md")
    found = claims(text)
    assert {("exact", 81.29, ""), ("f1", 88.47, ""), ("seed_score", 81.47, "3/EM"),
            ("exact", 81.29, "Mean/EM"), ("f1", 88.47, "Mean/F1")} <= found  # fmt: skip
    assert findings(text, "mismatch") == []
    bad = findings(text.replace("| 3 | 81.47 |", "| 3 | 81.77 |"), "mismatch")
    assert ("exact", "81.29") in [(q, c) for q, c, _ in bad]  # the mean of the seeds
    bad = findings(text.replace("81.29/88.47", "81.29/88.74"), "mismatch")
    assert ("f1", "88.74") in [(q, c) for q, c, _ in bad]  # against model-index


def test_check_table_against_an_lm_eval_mapping():
    found = extract_claims(card("llm_benchmarks.md")).claims
    record = {("mmlu", 5): 0.643, ("arc_challenge", 25): 0.578, ("hellaswag", 10): 0.801}
    verdicts = {f.claimed: f.verdict for f in check_table_against(found, record)
                if f.source == "benchmark table"}  # fmt: skip
    assert verdicts == {"64.30": "ok", "57.80": "ok", "80.50": "mismatch"}


def test_registry_names_unknown_families():
    assert family("benchmarks") in registered()
    with pytest.raises(
        UnknownFamily, match=r"unknown claim family 'nope'; registered: .*benchmarks"
    ):
        family("nope")


def test_a_400_digit_number_is_one_warning():
    text = "---\nlicense: mit\n---\n| Figure | Value |\n| --- | --- |\n" + (
        f"| Linear layers | {'9' * 400}% (1 of 2) |\n"
    )
    card_claims = extract_claims(text)
    assert all(c.value is None or c.value < 1e30 for c in card_claims.claims)
    assert [p.verdict for p in card_claims.problems] == ["warning"] * len(card_claims.problems)
    assert card_claims.problems
    audit_claims(card_claims)  # no traceback


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(2000, 9000), st.integers(2000, 9000)), min_size=2, max_size=6)
)
def test_a_card_consistent_by_construction_has_no_mismatch(rows):
    """Cells with 2 decimals; the average and recovery computed from the printed cells and
    rounded half up as printed."""
    from decimal import ROUND_HALF_UP, Decimal

    def fmt(x: Decimal, places: str) -> str:
        return str(x.quantize(Decimal(places), rounding=ROUND_HALF_UP))

    cells = [(Decimal(d) / 100, Decimal(p) / 100) for d, p in rows]
    body = [f"| task{i} | 0 | {fmt(d, '0.01')} | {fmt(p, '0.01')} | {fmt(100 * p / d, '0.1')}% |"
            for i, (d, p) in enumerate(cells)]  # fmt: skip
    mean_d = sum(d for d, _ in cells) / len(cells)
    mean_p = sum(p for _, p in cells) / len(cells)
    average = f"| Average | | {fmt(mean_d, '0.01')} | {fmt(mean_p, '0.01')} | |"
    ratio = 100 * Decimal(fmt(mean_p, "0.01")) / Decimal(fmt(mean_d, "0.01"))
    recovery = f"| Recovery | | | {fmt(ratio, '0.1')}% | |"
    text = "\n".join(["---\nlicense: mit\n---", "| Task | Shots | Dense | Pruned | Recovery |",
                      "| --- | --- | --- | --- | --- |", *body, average, recovery])  # fmt: skip
    assert findings(text, "mismatch") == []


LEVELS_AND_PATTERNS = {"sparsity_pattern", "linear_sparsity", "overall_sparsity", "linear_density"}


@pytest.mark.parametrize(
    ("name", "prose"),
    [
        ("See [it](https://huggingface.co/org/Llama-2-7b-2:4-sparse).", "It is 2:4 sparse."),
        ("Weights: https://example.org/llama-50%-sparse/", "Weights: 50% sparse."),
        ("Load `org/Llama-3-8B-4:8-sparse` with transformers.", "It is 4:8 sparse."),
        ("Load org/llama-90%-sparse with transformers.", "The model is 90% sparse."),
        ("The file model-2:4-sparse.safetensors holds it.", "The file is 2:4 sparse."),
        ("Read config-90%-sparse.json first.", "It is 90% sparse."),
        ("Also in org/bert-32x32-blocks.", "Pruned with 32x32 blocks."),
    ],
)
def test_a_url_model_id_or_file_name_never_states_a_pattern_or_level(name, prose):
    """The same words read as prose are a claim (so the test can fail); inside a URL, a
    link target, a Hub model id or a file name they are a name."""

    def read(line: str) -> list[str]:
        return [c.quantity for c in extract_claims(f"# m\n\n{line}\n").claims
                if c.quantity in LEVELS_AND_PATTERNS]  # fmt: skip

    assert read(prose)
    assert read(name) == []
    report = audit_claims(extract_claims(f"# m\n\n{name}\n"), spec.analysis())
    assert [f for f in report.findings if f.verdict == "mismatch"] == []


def test_placeholders_are_a_warning_at_most(tmp_path):
    """Usage-block and prose placeholders are never the author's machine nor a figure: with
    the weights, every finding on their lines is a warning or not checkable; a real home
    path beside them is a mismatch (so the test can fail)."""
    lines = [
        "Download it to /path/to/weights/model.safetensors and pass <your-model>.",
        "```bash",
        "prunecard audit /path/to/model --token YOUR_TOKEN --card <your-model>/README.md",
        "huggingface-cli download <your-model> --local-dir ~/path/to/model",
        "```",
    ]
    readme = tmp_path / "README.md"
    readme.write_text("---\nlicense: mit\n---\n\n# m\n\n" + "\n".join(lines) + "\n")
    at = {n for n, line in enumerate(readme.read_text().splitlines(), 1) if line in lines}
    found = [f for f in audit(readme, spec.analysis()).findings if f.line in at]
    named = {f.claimed for f in found}
    assert {"/path/to/model", "YOUR_TOKEN", "<your-model>"} <= named
    assert {f.verdict for f in found} <= {"warning", "not checkable"}
    readme.write_text(readme.read_text().replace("/path/to/model ", "/home/me/model "))
    paths = [f for f in audit(readme, spec.analysis()).findings if f.quantity == "local path"]
    assert [f.claimed for f in paths if f.verdict == "mismatch"] == ["/home/me/model"]
