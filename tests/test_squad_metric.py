"""The SQuAD v2 metric against the official script's outputs and hand-computed cases."""

from __future__ import annotations

import json
import math

import pytest
from conftest import METRIC_ORACLE, SQUAD_DEV_HALF, one_paragraph_squad
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.records import to_dict
from analyzer.squad.data import parse_squad, read_squad
from analyzer.squad.metric import (
    answer_length_bucket,
    bootstrap_ci,
    breakdown,
    compute_exact,
    compute_f1,
    normalize_answer,
    question_type,
    score_predictions,
)

OFFICIAL_KEYS = [
    "exact",
    "f1",
    "total",
    "HasAns_exact",
    "HasAns_f1",
    "HasAns_total",
    "NoAns_exact",
    "NoAns_f1",
    "NoAns_total",
    "best_exact",
    "best_exact_thresh",
    "best_f1",
    "best_f1_thresh",
]


@pytest.fixture(scope="module")
def oracle():
    return json.loads(METRIC_ORACLE.read_text())


@pytest.fixture(scope="module")
def dev_half():
    return read_squad(SQUAD_DEV_HALF)


def official(scores) -> dict:
    return {k: v for k, v in to_dict(scores).items() if v is not None}


def test_every_oracle_case_is_reproduced(oracle, dev_half):
    assert len(oracle["cases"]) >= 3
    for case in oracle["cases"]:
        got = official(score_predictions(dev_half, case["predictions"], case["na_probs"]).scores)
        want = case["official"]
        assert list(got) == list(want), case["name"]
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-9, rel=0), (case["name"], key)


def test_keys_follow_the_official_script(oracle, dev_half):
    with_probs = next(c for c in oracle["cases"] if c["na_probs"] is not None)
    result = score_predictions(dev_half, with_probs["predictions"], with_probs["na_probs"])
    assert list(official(result.scores)) == OFFICIAL_KEYS
    without = score_predictions(dev_half, with_probs["predictions"])
    assert list(official(without.scores)) == OFFICIAL_KEYS[:9]


def data_of(*qas) -> object:
    """A one-paragraph data set: each qa is (id, question, [gold answers])."""
    return parse_squad(
        one_paragraph_squad(
            "context",
            [
                {
                    "id": i,
                    "question": q,
                    "answers": [{"text": a, "answer_start": 0} for a in golds],
                }
                for i, q, golds in qas
            ],
        ),
        "hand.json",
    )


def test_normalisation_drops_case_punctuation_articles_and_space():
    assert normalize_answer("  The  Quick, brown fox!! ") == "quick brown fox"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theory") == "theory"  # an article only as a whole word
    assert normalize_answer("The.") == ""


def test_f1_by_hand():
    # gold tokens [cat, sat]; predicted [cat, sat, down]: precision 2/3, recall 1
    assert compute_f1("the cat sat", "cat sat down") == pytest.approx(0.8)
    assert compute_f1("x b b", "b b b c") == pytest.approx(2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3))
    # "a" is an article: gold tokens [b, b], recall 1
    assert compute_f1("a b b", "b b b c") == pytest.approx(2 * (2 / 4) * 1 / (2 / 4 + 1))
    assert compute_f1("", "") == 1.0
    assert compute_f1("", "x") == 0.0
    assert compute_f1("cat", "dog") == 0.0
    assert compute_exact("The Cat.", "cat") == 1


def test_empty_and_multiple_golds():
    data = data_of(
        ("u1", "What?", []),
        ("u2", "What?", []),
        ("m", "Who?", ["Paris", "the city of Paris"]),
        ("e", "When?", ["the"]),  # every gold normalises to "": only "" is right
    )
    result = score_predictions(data, {"u1": "", "u2": "x", "m": "city of paris!", "e": ""})
    assert result.exact == (1, 0, 1, 1)
    assert result.f1 == (1, 0, 1, 1)
    s = result.scores
    assert (s.exact, s.total, s.HasAns_total, s.NoAns_total) == (75.0, 4, 2, 2)
    assert s.best_exact is None


def test_threshold_ties_follow_the_probability_file_order():
    data = data_of(("a", "q", ["yes"]), ("b", "q", []), ("c", "q", []), ("d", "q", ["no"]))
    preds = {"a": "yes", "b": "wrong", "c": "", "d": "maybe"}
    # start: abstain everywhere = 2 right (b, c). Walk c (0.2): +0; then the tie at 0.5.
    first = score_predictions(data, preds, {"c": 0.2, "a": 0.5, "b": 0.5, "d": 0.9}).scores
    assert (first.best_exact, first.best_exact_thresh) == (75.0, 0.5)  # a first: 3 right
    second = score_predictions(data, preds, {"c": 0.2, "b": 0.5, "a": 0.5, "d": 0.9}).scores
    assert (second.best_exact, second.best_exact_thresh) == (50.0, 0.0)  # b first: 1, then 2
    assert first.exact == second.exact == 50.0


def test_non_empty_prediction_that_normalises_to_nothing_counts_against_the_threshold():
    data = data_of(("u", "q", []))
    s = score_predictions(data, {"u": " . "}, {"u": 0.3}).scores
    assert s.exact == 100.0  # " . " normalises to "", the right answer
    assert (s.best_exact, s.best_exact_thresh) == (100.0, 0.0)  # abstaining scores it, -1 after


def test_probability_above_na_prob_thresh_abstains():
    data = data_of(("a", "q", ["yes"]), ("u", "q", []))
    r = score_predictions(data, {"a": "yes", "u": "x"}, {"a": 0.9, "u": 0.9}, na_prob_thresh=0.5)
    assert r.exact == (0.0, 1.0)


def test_missing_predictions_count_as_wrong_and_extra_ids_are_ignored():
    data = data_of(("a", "q", ["yes"]), ("u", "q", []))
    result = score_predictions(data, {"a": "yes", "zzz": "x"}, {"a": 0.1, "zzz": 0.2})
    assert (result.missing, result.extra) == (1, 1)
    assert result.scores.total == 2 and result.scores.exact == 50.0
    assert result.scores.NoAns_exact == 0.0
    assert result.scores.best_exact == 50.0  # the missing no-answer question never counts


def test_breakdown_groups():
    assert question_type("In what year?") == "other"
    assert question_type(" What, exactly?") == "what"
    assert question_type("How many") == "how"
    data = data_of(
        ("a", "Who won?", ["Paris"]), ("b", "Who lost?", ["a b c d"]), ("c", "Where?", [])
    )
    assert [answer_length_bucket(q) for q in data.questions] == ["1", "3-5", "no answer"]
    groups = breakdown(data, score_predictions(data, {"a": "Paris", "b": "x", "c": ""}))
    rows = {(g.kind, g.label): (g.n, g.exact) for g in groups}
    assert rows[("question_type", "who")] == (2, 50.0)
    assert rows[("question_type", "where")] == (1, 100.0)
    assert rows[("answer_length", "3-5")] == (1, 0.0)
    assert sum(g.n for g in groups if g.kind == "answer_length") == 3


def test_bootstrap_is_reproducible_and_brackets_the_mean():
    exact = [1.0] * 60 + [0.0] * 40
    f1 = [0.5] * 100
    ci = bootstrap_ci(exact, f1, resamples=500, seed=3)
    assert ci == bootstrap_ci(exact, f1, resamples=500, seed=3)
    assert ci.exact_low < 60.0 < ci.exact_high
    # binomial standard error sqrt(.6 * .4 / 100) = 4.9 points: the 95% interval spans ~19
    assert 14 < ci.exact_high - ci.exact_low < 25
    assert ci.f1_low == ci.f1_high == 50.0
    assert (ci.level, ci.resamples, ci.seed) == (0.95, 500, 3)


words = st.text(alphabet="abc ,.The", max_size=12)


@settings(max_examples=200, deadline=None)
@given(words, words)
def test_f1_is_symmetric_and_bounded(a, b):
    assert compute_f1(a, b) == pytest.approx(compute_f1(b, a))
    assert 0.0 <= compute_f1(a, b) <= 1.0
    assert compute_f1(a, a) == 1.0 and compute_exact(a, a) == 1
    assert normalize_answer(normalize_answer(a)) == normalize_answer(a)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(["", "x", "yes"]), st.floats(0, 1)),
        min_size=1,
        max_size=20,
    )
)
def test_best_scores_are_at_least_the_plain_and_abstain_all_scores(rows):
    data = data_of(*((str(i), "q", ["yes"] if ans else []) for i, (ans, _, _) in enumerate(rows)))
    preds = {str(i): p for i, (_, p, _) in enumerate(rows)}
    probs = {str(i): prob for i, (_, _, prob) in enumerate(rows)}
    s = score_predictions(data, preds, probs).scores
    no_answer = 100.0 * sum(1 for ans, _, _ in rows if not ans) / len(rows)
    assert s.best_exact >= max(s.exact, no_answer) - 1e-9
    assert s.best_f1 >= s.f1 - 1e-9
    assert 0.0 <= s.exact <= 100.0 and not math.isnan(s.f1)
