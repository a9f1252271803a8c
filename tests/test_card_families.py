"""Cards other tools write: the HF Trainer's card and the example scripts' metrics,
model-index and `.eval_results/`, sparsity statements, evaluation counts, internal
consistency without weights, and the warning verdict.

Each phrasing is written from the format's public documentation or a published card, named
beside it. Expected values come from the phrasing's own text or from arithmetic on it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import NN_PRUNING_CARDS
from hypothesis import example, given, settings
from hypothesis import strategies as st

from analyzer.audit import counts, families, sparsity_phrases, trainer_card
from analyzer.audit.checks import audit, audit_claims
from analyzer.audit.model_index import with_eval_results
from analyzer.audit.walker import extract_claims, read_card
from analyzer.cli.main import main

CARDS = Path(__file__).parent / "data" / "cards"
TRAINER_CARD = CARDS / "trainer_run_qa_no_front_matter.md"
NN_PRUNING = next(p for p in NN_PRUNING_CARDS if "x1.96" in p.name)
FRONT = "---\nlicense: mit\n---\n\n"  # a card that has front matter, so the tests stay quiet


def claims_of(text: str) -> list[tuple[str, float | str | None]]:
    """(quantity, value or name) of every claim of a card's text."""
    return [(c.quantity, c.value if c.value is not None else c.name)
            for c in extract_claims(FRONT + text).claims]  # fmt: skip


def verdicts(text: str, quantity: str, check: str = "internal") -> list[str]:
    report = audit_claims(extract_claims(FRONT + text))
    return [f.verdict for f in report.findings if f.quantity == quantity and f.check == check]


# --------------------------------------------------------------------------- Trainer card


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # transformers modelcard.py: the key without "eval_", words capitalised, 4 decimals
        ("- Exact Match: 80.9082", ("exact", 80.9082)),
        ("- F1: 88.2226", ("f1", 88.2226)),
        ("- Loss: 1.0735", ("eval_loss", 1.0735)),
        # the same writer on run_qa.py --version_2_with_negative (eval_HasAns_f1 -> Hasans F1)
        ("- Hasans F1: 80.5553", ("HasAns_f1", 80.5553)),
        ("- Total: 11873", ("eval_questions", 11873)),
        ("- Best F1 Thresh: 0.0", ("best_f1_thresh", 0.0)),
    ],
)
def test_trainer_results_list(line, expected):
    text = f"It achieves the following results on the evaluation set:\n{line}\n"
    assert claims_of(text) == [expected]


def test_trainer_hyperparameters_and_framework_versions():
    # the "Training hyperparameters" and "Framework versions" lists of modelcard.py
    text = TRAINER_CARD.read_text()
    found = extract_claims(text).claims
    hyper = [c.name for c in found if c.quantity == "hyperparameter"]
    assert hyper[:3] == ["learning_rate: 3e-05", "train_batch_size: 12", "eval_batch_size: 8"]
    assert len(hyper) == 7
    frameworks = [c.name for c in found if c.quantity == "framework"]
    assert frameworks == ["Transformers 4.30.2", "Pytorch 2.0.1+cu117", "Datasets 2.13.1",
                          "Tokenizers 0.13.3"]  # fmt: skip
    # "- Loss: ..." outside the hyperparameter list is not a hyperparameter, and the reverse
    assert ("hyperparameter", "seed: 42") in claims_of("### Training hyperparameters\n- seed: 42")
    assert claims_of("### Framework versions\n- learning_rate: 3e-05") == []


@pytest.mark.parametrize(
    "block",
    [
        # trainer.log_metrics as printed by run_qa.py (the published card
        # jimypbr/bert-base-uncased-squad)
        "```\n***** eval metrics *****\n  epoch            =     3.0\n"
        "  eval_exact_match = 80.6906\n  eval_f1          = 88.1129\n"
        "  eval_samples     =   10784\n```",
        # all_results.json / eval_results.json as the Trainer saves them (save_metrics)
        '```json\n{\n    "epoch": 3.0,\n    "eval_exact_match": 80.6906,\n    "eval_f1": 88.1129,\n'
        '    "eval_samples": 10784\n}\n```',
        # the same metrics pasted as a two-column table
        "| Metric | Value |\n| --- | --- |\n| eval_exact_match | 80.6906 |\n| eval_f1 | 88.1129 |\n"
        "| eval_samples | 10784 |",
        # ... or with the keys as the header
        "| eval_exact_match | eval_f1 | eval_samples |\n| --- | --- | --- |\n"
        "| 80.6906 | 88.1129 | 10784 |",
    ],
    ids=["log_metrics", "all_results.json", "key-value table", "header table"],
)
def test_eval_blocks(block):
    assert claims_of(block) == [("exact", 80.6906), ("f1", 88.1129), ("eval_windows", 10784)]


def test_predict_and_bare_keys():
    # run_qa.py --do_predict prints predict_* ; its README shows bare "f1 = 88.52"
    text = (
        "```\n  predict_exact_match = 81.0\n  predict_f1 = 88.4\n  predict_samples = 10784\n```\n"
    )
    assert claims_of(text) == [("predict_exact", 81.0), ("predict_f1", 88.4),
                               ("predict_windows", 10784)]  # fmt: skip
    assert claims_of("```\nf1 = 88.52\nexact_match = 81.22\n```") == [("f1", 88.52),
                                                                    ("exact", 81.22)]  # fmt: skip
    # a JSON block's bare keys are the official script's, read once (by claims.py)
    assert claims_of('```\n{"exact_match": 81.22, "f1": 88.52}\n```') == []
    assert trainer_card.metric_quantity("test", "exact_match") == "predict_exact"


def test_trainer_card_without_front_matter_through_the_cli(capsys):
    """The issue's case: 0 claims and a failure before; now EM/F1/samples are read, the
    missing front matter and the windows are warnings, and the audit passes."""
    assert main(["audit", "--no-weights", "--card", str(TRAINER_CARD)]) == 0
    out = capsys.readouterr().out
    report = audit(TRAINER_CARD)
    read = {(f.quantity, f.claimed) for f in report.findings}
    assert {("exact", "78.5241"), ("f1", "86.4138"), ("eval_windows", "10784")} <= read
    assert [f.quantity for f in report.findings if f.verdict == "warning"] == [
        "card format", "eval_windows"]  # fmt: skip
    assert report.count("mismatch") == 0
    assert "counts tokenized windows, not questions" in out and "10,570 questions" in out
    assert "max_seq_length: 384, doc_stride: 128" in out  # the card's own settings
    assert "-> PASS" in out
    # --strict fails on the warnings
    assert main(["audit", "--no-weights", "--strict", "--card", str(TRAINER_CARD)]) == 1
    assert "-> FAIL" in capsys.readouterr().out


# --------------------------------------------------------------------------- model-index


MODEL_INDEX = """---
model-index:
- name: questionanswering-v2
  results:
  - task:
      type: question-answering
      name: Question Answering
    dataset:
      name: squad
      type: squad
      config: plain_text
      split: validation
    metrics:
    - type: exact_match
      value: 79.5998
      name: Exact Match
    - type: squad
      value: 86.9965
      name: F1
    - type: accuracy
      value: 0.91
  - task:
      type: question-answering
    dataset:
      name: SQuAD v2
      type: squad_v2
    metrics:
    - type: squad_v2
      value: 71.2
      name: EM
---
"""


def test_model_index_every_task_dataset_and_metric():
    # Hub model card spec (model-index); the first result is the published card
    # abdalrahmanshahrour/questionanswering-v2, the others vary metric types and names
    card = extract_claims(MODEL_INDEX)
    found = [(c.quantity, c.value if c.value is not None else c.name) for c in card.claims]
    assert found.count(("task", "question-answering")) == 2
    assert ("dataset_config", "plain_text") in found and ("dataset_split", "validation") in found
    assert ("exact", 79.5998) in found  # type exact_match (read by claims.py)
    assert ("f1", 86.9965) in found  # type squad, named F1
    assert ("metric:accuracy", 0.91) in found
    assert ("exact", 71.2) in found  # type squad_v2, named EM
    assert ("dataset", "squad_v2") in found
    line = next(c.line for c in card.claims if c.quantity == "f1")
    assert MODEL_INDEX.splitlines()[line - 1].strip() == "value: 86.9965"


def test_eval_results_folder(tmp_path):
    # the Hub's .eval_results/*.yaml (docs/hub/eval-results): a list of dataset + value
    (tmp_path / ".eval_results").mkdir()
    (tmp_path / ".eval_results" / "squad.yaml").write_text(
        "- dataset:\n    id: rajpurkar/squad\n    task_id: f1\n  value: 88.1\n"
        "- dataset:\n    id: rajpurkar/squad\n    task_id: exact_match\n  value: 81.31\n"
        "  date: '2025-01-15'\n"
    )
    (tmp_path / ".eval_results" / "gpqa.yaml").write_text(
        "- dataset:\n    id: Idavidrein/gpqa\n    task_id: gpqa_diamond\n  value: 63.3\n"
    )
    card = with_eval_results(extract_claims(FRONT), tmp_path)
    found = [(c.quantity, c.value, c.section, c.line) for c in card.claims if c.value is not None]
    assert found == [("metric:gpqa_diamond", 63.3, ".eval_results/gpqa.yaml", 4),
                     ("f1", 88.1, ".eval_results/squad.yaml", 4),
                     ("exact", 81.31, ".eval_results/squad.yaml", 8)]  # fmt: skip
    # the audit reads them from the card's folder; F1 disagreeing with the card is caught
    (tmp_path / "README.md").write_text(FRONT + "Its **F1 is 88.33**.\n")
    report = audit(tmp_path / "README.md")
    f1 = [f for f in report.findings if f.quantity == "f1" and f.check == "internal"]
    assert [f.verdict for f in f1] == ["mismatch"]  # 88.05-88.15 and 88.325-88.335 are apart
    (tmp_path / ".eval_results" / "bad.yaml").write_text("- [unclosed\n")
    problems = [f.measured for f in audit(tmp_path / "README.md").findings if f.check == "format"]
    assert any("not readable YAML (its line " in p for p in problems)  # names where


# --------------------------------------------------------------------------- sparsity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Neural Magic / SparseML (oBERT cards: "90% sparse", recipes: final_sparsity)
        ("This model is 90% sparse.", [("linear_sparsity", 90)]),
        ("pruned to 80% unstructured sparsity", [("linear_sparsity", 80)]),
        ("final_sparsity: 0.9", [("linear_sparsity", 90)]),
        # Intel Prune OFA cards ("sparsity: 80%", "85% sparse", "80% 1x4 block sparse")
        ("Sparsity: 85%", [("linear_sparsity", 85)]),
        ("80% 1x4 block sparse BERT-Base",
         [("linear_sparsity", 80), ("sparsity_pattern", "1x4 block")]),
        # "N% of the weights are zero"
        ("93.5% of the weights are zero", [("linear_sparsity", 93.5)]),
        ("40% of all parameters are zero", [("overall_sparsity", 40)]),
        # movement pruning (Sanh et al.): what remains
        ("with 10% of the encoder's weights remaining", [("linear_density", 10)]),
        ("Remaining weights: 3%", [("linear_density", 3)]),
    ],
)  # fmt: skip
def test_sparsity_levels(text, expected):
    assert claims_of(text) == expected


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("2:4 structured sparsity for Ampere GPUs", "2:4"),  # NVIDIA ASP / SparseML
        ("semi-structured (2:4) pruning", "2:4"),
        ("4:8 sparse", "4:8"),
        ("pruned in 1x4 blocks", "1x4 block"),  # Intel
        ("block size 32x32", "32x32 block"),  # nn_pruning / block movement pruning
        ("4-block pruned", "4-block"),  # Neural Magic oBERT "4-block"
        ("a model with pruned heads", "pruned heads"),
    ],
)
def test_sparsity_patterns(text, name):
    assert claims_of(text) == [("sparsity_pattern", name)]


def test_heads_and_ratios():
    assert claims_of("12 of 144 heads are pruned (8.3%)") == [
        ("heads_removed", 12), ("heads_total", 144), ("heads_removed_pct", 8.3)]  # fmt: skip
    assert claims_of("36 attention heads were pruned") == [("heads_removed", 36)]
    assert claims_of("We pruned 44 heads.") == [("heads_removed", 44)]
    assert verdicts("12 of 144 heads are pruned (8.3%)", "heads_removed_pct") == ["ok"]
    assert verdicts("12 of 144 heads are pruned (9.3%)", "heads_removed_pct") == ["mismatch"]
    assert claims_of("3.5x faster on CPU") == [("speedup", 3.5)]
    assert claims_of("up to 10 times faster") == [("speedup", 10)]
    assert claims_of("a speedup of 2.4x") == [("speedup", 2.4)]
    assert claims_of("4x smaller") == [("size_ratio", 4)]
    assert claims_of("2.63x faster than bert-base") == [("speedup", 2.63)]  # claims.py's


def test_sparsity_in_tables():
    # a key-value table is about this model; a comparison table's rows about theirs
    kv = "| Property | Value |\n| --- | --- |\n| Sparsity | 90% |\n| Density | 10% |\n"
    assert claims_of(kv) == [("linear_sparsity", 90), ("linear_density", 10)]
    assert verdicts(kv, "linear_sparsity") == ["ok"]  # 90 + 10 = 100
    compare = ("| Model | Sparsity | F1 |\n| --- | --- | --- |\n| BERT-Base | 85% | 88.4 |\n"
               "| DistilBERT | 80% | 86.1 |\n")  # fmt: skip
    card = extract_claims(FRONT + compare)
    assert [(c.value, c.about) for c in card.claims if c.quantity == "linear_sparsity"] == [
        (85, "BERT-Base"), (80, "DistilBERT")]  # fmt: skip
    report = audit_claims(card)
    assert {f.reason for f in report.findings if f.quantity == "linear_sparsity"} == {
        "a row of a comparison table (BERT-Base): not stated to be this model",
        "a row of a comparison table (DistilBERT): not stated to be this model"}  # fmt: skip


def test_sparsity_against_the_weights(pruned_minilm):
    from analyzer import analyze

    a = analyze(pruned_minilm)
    sparsity = 100 * (1 - a.linear.density)
    for printed, verdict in ((f"{sparsity:.1f}", "ok"), (f"{sparsity + 1:.1f}", "mismatch")):
        card = extract_claims(FRONT + f"The model is {printed}% sparse, with pruned heads.")
        report = audit_claims(card, a)
        found = {f.quantity: f for f in report.findings if f.check == "weights"}
        assert found["linear_sparsity"].verdict == verdict
        assert found["sparsity_pattern"].verdict == "ok"  # the fixture removes heads


# --------------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    ("text", "verdict", "says"),
    [
        ("evaluated on the 10,570 questions of the SQuAD v1.1 dev set", "ok",
         "SQuAD v1.1 dev: 10,570 questions"),
        ("```\neval_samples = 10784\n```", "warning", "counts tokenized windows"),
        ("```\neval_samples = 10784\n```\nThe max_seq_length: 256.", "warning",
         "max_seq_length: 256, doc_stride: not stated"),
        ("We evaluated on 10,784 examples of SQuAD1.1.", "warning",
         "a count of tokenized windows stated as questions"),
        ("| Dataset | Split | # samples |\n| --- | --- | --- |\n| SQuAD1.1 | eval | 11.1k |",
         "warning", "it could be: SQuAD v1.1 dev: 10,570 questions; SQuAD v2 dev: 11,873"),
        ("Evaluated on SQuAD1.1: 11,873 dev questions.", "mismatch",
         "the card's dataset is squad, but this count is SQuAD v2 dev: 11,873 questions"),
    ],
)  # fmt: skip
def test_evaluation_counts(text, verdict, says):
    report = audit_claims(extract_claims(FRONT + text))
    found = [f for f in report.findings if f.check == "internal" and "split sizes" in f.rule]
    assert [f.verdict for f in found] == [verdict]
    assert says in found[0].reason + found[0].measured


def test_known_sizes_are_the_squad_files():
    sizes = {(s.dataset, s.split, s.kind): s.count for s in counts.KNOWN_SIZES}
    # SQuAD's dev-v1.1.json / dev-v2.0.json question counts (the official scripts' totals)
    assert sizes[("squad", "dev", "questions")] == 10570
    assert sizes[("squad_v2", "dev", "questions")] == 11873
    assert all(s.count >= sizes[(s.dataset, s.split, "questions")]
               for s in counts.KNOWN_SIZES if s.kind == "windows")  # fmt: skip


# --------------------------------------------------------------------------- consistency


def test_params_against_the_stated_size(capsys):
    """nn_pruning's card: "bert-base-uncased parameters: 191.0M" beside "original BERT:
    420MB"; 420 MB of fp32 hold 420e6 / 4 = 105.0M to 420 * 2^20 / 4 = 110.1M."""
    assert main(["audit", "--no-weights", "--card", str(NN_PRUNING)]) == 1
    out = capsys.readouterr().out
    assert "claimed 191.0M, found 105.0M-110.1M (fp32 in 420MB)" in out
    assert "assumed: the card names no dtype" in out

    def params(text: str) -> list[str]:
        return verdicts(text + "\nPytorch model file size: 200MB (original BERT: 420MB)",
                        "params_dense")  # fmt: skip

    assert params('```\nprint("bert-base-uncased parameters: 110.0M")\n```') == ["ok"]
    assert params('```\nprint("bert-base-uncased parameters: 191.0M")\n```') == ["mismatch"]
    # stored in fp16, 420 MB hold 210.0M to 220.2M: 191.0M is within 10% of 210.0M
    fp16 = 'Weights in fp16.\n```\nprint("bert-base-uncased parameters: 191.0M")\n```'
    assert params(fp16) == ["ok"]
    both = 'fp16 and int8 files.\n```\nprint("bert-base-uncased parameters: 191.0M")\n```'
    assert params(both) == ["not checkable"]


def test_density_sparsity_and_size_ratio():
    assert verdicts("The model is 90% sparse. Overall density: 10%. Linear density: 10%",
                    "linear_sparsity") == ["ok"]  # fmt: skip
    assert verdicts("The model is 90% sparse. Linear density: 20%", "linear_sparsity") == [
        "mismatch"]  # fmt: skip
    sizes = "Pytorch model file size: 105MB (original BERT: 420MB). It is {}x smaller."
    assert verdicts(sizes.format(4), "size_ratio") == ["ok"]  # 420 / 105 = 4
    assert verdicts(sizes.format(3), "size_ratio") == ["mismatch"]
    # "3x faster" and the model id's x2.01 state one speedup twice
    text = "bert-base-uncased-squadv1-x2.01-f89.2-d30\n\nIt runs 3x faster."
    assert "mismatch" in verdicts(text, "speedup")


def test_density_against_counts_beside_it():
    row = "| Figure | Value |\n| --- | --- |\n| All parameters | {}% (25,000 of 100,000) |"
    assert verdicts(row.format("25.0"), "overall_density") == ["ok"]
    assert verdicts(row.format("35.0"), "overall_density") == ["mismatch"]


def test_no_front_matter_is_a_warning_not_a_failure(tmp_path):
    (tmp_path / "card.md").write_text("# A model\n\nIts F1 is 88.5.\n")
    report = audit_claims(read_card(tmp_path / "card.md"))
    assert [(f.quantity, f.verdict) for f in report.findings if f.check == "format"] == [
        ("card format", "warning")]  # fmt: skip
    assert report.passed and not report.failed() and report.failed(strict=True)


def test_audit_needs_a_card_or_a_checkpoint(capsys):
    assert main(["audit", "--no-weights"]) == 2
    assert main(["audit"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(e.startswith("prunecard: error: ") for e in err)


# --------------------------------------------------------------------------- linear time


def _worst_lines() -> list[str]:
    """150 kB lines of letters, digits and spaces shaped to make a backtracking regex slow."""
    n = 150_000
    return [
        "a" * n, "9" * n, "a1 " * (n // 3), "9 " * (n // 2), "9." * (n // 2), "9% " * (n // 3),
        "1x" * (n // 2), "- " + "a " * (n // 2), "eval_" + "a" * n, "- " + "a" * n + ": ",
        "sparsity " * (n // 9), "of the " * (n // 7), "heads " * (n // 6), "1:2 " * (n // 4),
        "fine-tuned version of " + "a " * (n // 2), "max_seq_length " * (n // 15),
        "9 questions " * (n // 12), "block " * (n // 6), "10 times " * (n // 9),
        # many matches on one line: each must cost the same
        "12 of 144 heads are pruned (8.3%) " * (n // 35), "90% sparse " * (n // 11),
    ]  # fmt: skip


def test_patterns_take_linear_time():
    """Every family's reader on worst-case 150 kB lines: a backtracking pattern would take
    minutes; each read takes under a second here, the bound is loose for a shared machine.
    (claims.py's own patterns are another issue's.)"""
    readers = [
        lambda s: families.prose(s, 1, "top"),
        lambda s: families.code_block([s, s], 1, "top"),
        lambda s: families.table([(1, [s, s]), (2, [s, s])], "top"),
        lambda s: trainer_card.prose(s, 1, "Training hyperparameters"),
        lambda s: trainer_card.prose(s, 1, "Framework versions"),
        lambda s: trainer_card.prose(s, 1, "top"),
        lambda s: trainer_card.code_block([s], 1, "top"),
        lambda s: trainer_card.table([(1, [s, s]), (2, [s, s])], "top"),
        lambda s: sparsity_phrases.prose(s, 1, "top"),
        lambda s: sparsity_phrases.table([(1, ["sparsity", s]), (2, [s, s])], "top"),
        lambda s: counts.prose("eval " + s, 1, "top"),
        lambda s: counts.code_block([s], 1, "top"),
    ]
    for line in _worst_lines():
        for index, read in enumerate(readers):
            start = time.perf_counter()
            read(line)
            assert time.perf_counter() - start < 5, (index, line[:40])


def test_cli_entry_point_runs_the_trainer_card():
    exe = Path(sys.executable).with_name("prunecard")
    run = subprocess.run([str(exe), "audit", "--no-weights", "--card", str(TRAINER_CARD)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "eval_windows" in run.stdout and "0 mismatch, 2 warning" in run.stdout


def test_oversized_eval_results_is_bad_input(tmp_path, capsys):
    (tmp_path / ".eval_results").mkdir()
    (tmp_path / ".eval_results" / "big.yaml").write_text("#" * 300_000)
    (tmp_path / "README.md").write_text(FRONT + "Its F1 is 88.3.\n")
    assert main(["audit", "--no-weights", "--card", str(tmp_path / "README.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("prunecard: error: ") and "big.yaml" in err[0]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=200_000))
@example(10_570)
@example(11_873)
@example(10_784)
def test_a_question_count_is_ok_only_at_a_known_dev_size(count):
    text = f"Evaluated on {count:,} dev questions."
    found = verdicts(text, "eval_questions")
    dev = {s.count for s in counts.KNOWN_SIZES if s.split == "dev" and s.kind == "questions"}
    windows = {s.count for s in counts.KNOWN_SIZES if s.split == "dev" and s.kind == "windows"}
    assert found == ["ok" if count in dev else "warning"]
    report = audit_claims(extract_claims(FRONT + text))
    (finding,) = [f for f in report.findings if "split sizes" in f.rule]
    assert (count in windows) == finding.reason.startswith("a count of tokenized windows")
