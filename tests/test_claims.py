"""Claim extraction on the real reference cards: every figure is read with its place."""

from __future__ import annotations

import re
import textwrap

import pytest
from conftest import NN_PRUNING_CARDS as CARDS
from conftest import SEED_CARD as SEED

from analyzer.audit.claims import dataset_id
from analyzer.audit.walker import extract_claims, read_card
from analyzer.errors import InputError

# Typed in from the six cards' text: linear %, overall %, heads removed, heads %, speedup
# phrase, F1, F1 reference, F1 variation, EM, EM variation, file size MB, params M.
EXPECTED = {
    "x1.16": (
        8.0,
        28.0,
        22,
        15.3,
        "bert-base-uncased",
        88.11,
        88.5,
        -0.39,
        80.94,
        0.14,
        398,
        152.0,
    ),
    "x1.84": (36.0, 50.0, 48, 33.3, "the dense model", 88.72, 88.5, 0.22, 81.69, 0.89, 379, 218.0),
    "x1.96": (
        27.0,
        43.0,
        55,
        38.2,
        "bert-base-uncased",
        88.33,
        88.5,
        -0.17,
        81.31,
        0.51,
        374,
        191.0,
    ),
    "x2.01": (
        30.0,
        45.0,
        55,
        38.2,
        "bert-base-uncased",
        89.19,
        88.5,
        0.69,
        82.21,
        1.41,
        374,
        200.0,
    ),
    "x2.32": (
        15.0,
        34.0,
        63,
        43.8,
        "bert-base-uncased",
        86.64,
        88.5,
        -1.86,
        78.77,
        -2.03,
        368,
        165.0,
    ),
    "x2.44": (
        26.0,
        42.0,
        80,
        55.6,
        "the original model",
        87.71,
        88.5,
        -0.79,
        80.03,
        -0.77,
        355,
        189.0,
    ),
}


def by(claims, quantity, source=None):
    return [c for c in claims if c.quantity == quantity and (source is None or c.source == source)]


def one(claims, quantity, source=None):
    found = by(claims, quantity, source)
    assert len(found) == 1, (quantity, source, found)
    return found[0]


def test_seed_prose_claims():
    claims = read_card(SEED).claims
    linear = one(claims, "linear_density", "prose")
    assert (linear.value, linear.decimals, linear.unit) == (16.0, 1, "%")
    assert linear.line == 22 and "linear layers contains 16.0%" in linear.text
    assert one(claims, "overall_density", "prose").value == 24.0
    heads = [one(claims, q) for q in ("heads_removed", "heads_total", "heads_removed_pct")]
    assert [h.value for h in heads] == [190, 384, 49.5]
    assert {h.line for h in heads} == {31} and heads[0].section == "Fine-Pruning details"
    speed = one(claims, "speedup", "prose")
    assert speed.value == 2.63 and speed.about == "bert-large-uncased-whole-word-masking"
    f1 = one(claims, "f1", "prose")
    assert (f1.value, f1.decimals, f1.line) == (82.57, 2, 27)
    assert one(claims, "f1_reference", "prose").value == 85.85
    assert one(claims, "f1_variation", "prose").value == -3.28  # "a F1 drop of 3.28"
    size = one(claims, "file_size")
    assert (size.value, size.unit, size.decimals) == (1084, "MB", 0)
    assert one(claims, "reference_file_size").value == 1228.0
    params = one(claims, "params_dense", "example code")
    assert (params.value, params.unit, params.line) == (445.0, "M", 82)


def test_seed_results_table_json_and_model_id():
    claims = read_card(SEED).claims
    table = {c.quantity: c for c in claims if c.source == "results table"}
    assert table["exact"].value == 79.70 and table["exact"].decimals == 2
    assert table["exact_reference"].value == 82.83
    assert table["exact_variation"].value == -4.13
    assert table["f1"].value == 82.57 and table["f1_variation"].value == -3.28
    assert table["exact"].line == 51 and table["f1"].line == 52
    assert table["exact"].section == "Results"
    js = {c.quantity: c.value for c in claims if c.source == "metrics JSON"}
    assert js["f1"] == pytest.approx(82.56816761071981)
    assert js["exact"] == pytest.approx(79.70184452118251)
    assert js["eval_questions"] == 11873 and js["HasAns_total"] == 5928
    ids = {c.quantity: c for c in claims if c.source == "model id"}
    assert ids["speedup"].value == 2.63 and ids["f1"].value == 82.6
    assert ids["linear_density"].value == 16 and ids["linear_density"].decimals == 0
    samples = one(claims, "eval_questions", "dataset table")
    assert (samples.value, samples.unit, samples.decimals) == (11.9, "k", 1)


def test_seed_datasets_and_format_problems():
    card = read_card(SEED)
    named = {(c.line, c.source): c.name for c in card.claims if c.quantity == "dataset"}
    assert named[(12, "metadata")] == "squad_v2"  # datasets: squad_v2
    assert named[(21, "heading")] == "squad_v2"  # "fine-tuned on SQuAD v2"
    assert named[(34, "heading")] == "squad"  # "Details of the SQuAD1.1 dataset"
    assert named[(37, "dataset table")] == "squad_v2"
    problems = " ".join(p.problem for p in card.problems)
    assert "not valid YAML" in problems and "before the front matter" in problems
    assert one(card.claims, "tag").name == "question-answering"  # read despite the bad YAML


@pytest.mark.parametrize("path", CARDS, ids=lambda p: p.stem)
def test_nn_pruning_cards(path):
    card = read_card(path)
    assert card.problems == ()
    claims = card.claims
    key = re.search(r"-(x\d\.\d\d)-", path.stem).group(1)
    linear, overall, removed, pct, versus, f1, ref, var, em, em_var, size, params = EXPECTED[key]
    assert one(claims, "linear_density", "prose").value == linear
    assert one(claims, "overall_density", "prose").value == overall
    assert one(claims, "heads_removed").value == removed
    assert one(claims, "heads_total").value == 144
    assert one(claims, "heads_removed_pct").value == pct
    speed = one(claims, "speedup", "prose")
    assert speed.value == float(key[1:]) and speed.about == versus
    assert one(claims, "f1", "prose").value == f1
    assert one(claims, "f1_reference", "prose").value == ref
    assert one(claims, "f1_variation", "prose").value == pytest.approx(var)
    assert one(claims, "f1_variation", "results table").value == pytest.approx(var)
    assert one(claims, "exact", "results table").value == em
    assert one(claims, "exact_variation", "results table").value == pytest.approx(em_var)
    assert one(claims, "file_size").value == size
    assert one(claims, "params_dense").value == params
    # the model id encodes speedup, F1 and linear density
    m = re.search(r"-x([\d.]+)-f([\d.]+)-d(\d+)-", path.stem)
    ids = {
        c.quantity: c.value
        for c in by(claims, "speedup", "model id")
        + by(claims, "f1", "model id")
        + by(claims, "linear_density", "model id")
    }
    assert ids == {
        "speedup": float(m.group(1)),
        "f1": float(m.group(2)),
        "linear_density": float(m.group(3)),
    }
    assert {c.name for c in by(claims, "dataset")} == {"squad"}


def test_prunecard_phrasings():
    text = textwrap.dedent("""\
        ---
        datasets:
        - rajpurkar/squad_v2
        ---
        ## Summary
        | Figure | Value |
        | --- | --- |
        | Attention heads removed | **6 of 72** (8.3%) |
        | FFN units kept | **8,580 of 9,216** (93.1%) |
        | Speedup, packed vs dense, batch 8 x 384 tokens (cpu) | **1.43x** (FLOP bound 1.50x) |

        The encoder's linear layers hold **93.6%** of their dense weights as non-zeros.
        **6 of 72 heads (8.3%) are removed.** Rule used: ...

        | Layer | Linear density | Heads kept | Heads removed | FFN units kept | Packed linear weights |
        | ---: | ---: | ---: | --- | ---: | ---: |
        | 4 | 76.7% | 12 of 12 | none | 1,000 of 1,536 (65.1%) | 1,357,824 |

        | Metric | Value | 95% CI | Reference | Difference |
        | --- | --- | --- | --- | --- |
        | **Exact match** | **79.70** | 79.00 to 80.40 | 82.83 | -3.13 |
        | Exact match / F1, unanswerable (5,945) | 84.58 / 84.57 | | | |
        """)  # noqa: E501 (the table's real header width)
    claims = extract_claims(text).claims
    assert one(claims, "ffn_units_kept").value == 8580
    assert one(claims, "speedup").about == "batch 8 x 384"
    assert one(claims, "flop_bound").value == 1.5
    assert one(claims, "linear_density").value == 93.6
    assert [c.value for c in by(claims, "heads_removed")] == [6, 6]
    assert one(claims, "layer_linear_packed").value == 1357824
    assert one(claims, "layer_ffn_units_kept").about == "layer 4"
    assert one(claims, "exact_variation").value == -3.13
    assert one(claims, "NoAns_f1").value == 84.57 and one(claims, "NoAns_total").value == 5945


def test_dataset_names():
    for name in ("SQuAD 2.0", "SQuAD2.0", "SQuAD v2", "squad_v2", "rajpurkar/squad_v2"):
        assert dataset_id(name) == "squad_v2"
    for name in ("SQuAD1.1", "SQuAD v1", "squad"):
        assert dataset_id(name) == "squad"


def test_unreadable_cards(tmp_path):
    with pytest.raises(InputError, match="no such card"):
        read_card(tmp_path / "README.md")
    (tmp_path / "empty.md").write_text("  \n")
    with pytest.raises(InputError, match="empty"):
        read_card(tmp_path / "empty.md")
    (tmp_path / "bin.md").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="UTF-8"):
        read_card(tmp_path / "bin.md")
