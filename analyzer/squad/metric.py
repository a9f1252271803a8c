"""The official SQuAD v2 metric (evaluate-v2.0.py), figure for figure, plus bootstrap CIs
and per-group breakdowns.

Reproduced from the official script, including its quirks:
- answers are normalised (lower case, punctuation and the articles a/an/the removed,
  white space collapsed); gold answers that normalise to "" are dropped, and a question
  left with none has the single gold answer "";
- EM and F1 are the maximum over gold answers; F1 is 1 when both sides normalise to no
  tokens, 0 when only one does;
- a question is answerable iff its `answers` list is non-empty (HasAns / NoAns);
- a prediction is replaced by "no answer" when its no-answer probability exceeds
  `na_prob_thresh` (1.0 by default, so never for probabilities in [0, 1]);
- `best_exact` / `best_f1` walk the questions in increasing no-answer probability (a stable
  sort over the probabilities in the order given) and keep the first threshold at which the
  running score is highest; an unanswerable question counts -1 there whenever its prediction
  is a non-empty string, even one that normalises to "". They appear only when
  probabilities are given, as in the official script.

SQuAD v1.1 data (`score --squad-version 1.1`) goes through the same code: every question
has answers, so EM and F1 are those of evaluate-v1.1.py (same normalisation, maximum over
gold answers) and no NoAns figures appear.

One deliberate difference: a question without a prediction counts as wrong (0 for EM and
F1, and never right at any threshold) and stays in every total. The official v2 script
prints "Missing prediction" and then fails; v1.1 counted such questions as wrong.
"""

from __future__ import annotations

import collections
import functools
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analyzer.records import ConfidenceInterval, ScoreGroup, SquadScores
from analyzer.squad.data import SquadData, SquadQuestion

__all__ = [
    "QUESTION_WORDS",
    "MetricResult",
    "answer_length_bucket",
    "bootstrap_ci",
    "breakdown",
    "compute_exact",
    "compute_f1",
    "normalize_answer",
    "question_type",
    "score_predictions",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)


@functools.lru_cache(maxsize=1 << 16)  # each gold is normalised for EM, F1 and the filter
def normalize_answer(text: str) -> str:
    """Lower case, strip punctuation, drop articles, collapse white space (official order)."""
    text = text.lower().translate(_DROP_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def compute_exact(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def compute_f1(gold: str, prediction: str) -> float:
    """Token-overlap F1; 1 when both are empty after normalisation, 0 when one is."""
    gold_toks, pred_toks = _tokens(gold), _tokens(prediction)
    if not gold_toks or not pred_toks:
        return float(gold_toks == pred_toks)
    same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def _golds(question: SquadQuestion) -> list[str]:
    return [a for a in question.answers if normalize_answer(a)] or [""]


@dataclass(frozen=True)
class MetricResult:
    """The official figures and the per-question scores behind them (in data order)."""

    scores: SquadScores
    exact: tuple[float, ...]  # per question, after the no-answer threshold, 0 or 1
    f1: tuple[float, ...]  # per question, after the no-answer threshold, in [0, 1]
    missing: int  # questions in the data without a prediction (counted as wrong)
    extra: int  # predictions for ids not in the data (ignored)


def score_predictions(
    data: SquadData,
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    *,
    na_prob_thresh: float = 1.0,
) -> MetricResult:
    """Score `predictions` (id -> answer text) as evaluate-v2.0.py does."""
    questions = data.questions
    probs = na_probs if na_probs is not None else {}
    exact_raw: dict[str, float] = {}
    f1_raw: dict[str, float] = {}
    exact: list[float] = []
    f1: list[float] = []
    for q in questions:
        if q.id not in predictions:
            exact.append(0.0)
            f1.append(0.0)
            continue
        pred, golds = predictions[q.id], _golds(q)
        exact_raw[q.id] = max(compute_exact(g, pred) for g in golds)
        f1_raw[q.id] = max(compute_f1(g, pred) for g in golds)
        if probs.get(q.id, 0.0) > na_prob_thresh:
            exact.append(float(not q.has_answer))
            f1.append(float(not q.has_answer))
        else:
            exact.append(exact_raw[q.id])
            f1.append(f1_raw[q.id])
    out = _summary(exact, f1, range(len(questions)))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        rows = [i for i, q in enumerate(questions) if q.has_answer is wanted]
        if rows:
            out.update({f"{prefix}_{k}": v for k, v in _summary(exact, f1, rows).items()})
    if na_probs is not None:
        for key, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, thresh = _best_thresh(questions, predictions, raw, na_probs)
            out[f"best_{key}"], out[f"best_{key}_thresh"] = best, thresh
    ids = {q.id for q in questions}
    return MetricResult(
        scores=SquadScores(**out),
        exact=tuple(exact),
        f1=tuple(f1),
        missing=len(questions) - len(exact_raw),
        extra=sum(1 for k in predictions if k not in ids),
    )


def _summary(exact: Sequence[float], f1: Sequence[float], rows: Sequence[int]) -> dict[str, Any]:
    return {
        "exact": 100.0 * sum(exact[i] for i in rows) / len(rows),
        "f1": 100.0 * sum(f1[i] for i in rows) / len(rows),
        "total": len(rows),
    }


def _best_thresh(
    questions: Sequence[SquadQuestion],
    predictions: Mapping[str, str],
    raw: Mapping[str, float],
    na_probs: Mapping[str, float],
) -> tuple[float, float]:
    """The official find_best_thresh: abstain on every question whose probability is above
    the threshold; start from abstaining everywhere and lower the threshold one question at
    a time, keeping the first strict improvement."""
    has_answer = {q.id: q.has_answer for q in questions}
    score: float = sum(1 for q in questions if not q.has_answer and q.id in raw)
    best = score
    thresh = 0.0
    for qid in sorted((k for k in na_probs if k in raw), key=lambda k: na_probs[k]):
        if has_answer[qid]:
            score += raw[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, thresh = score, na_probs[qid]
    return 100.0 * best / len(questions), thresh


# --------------------------------------------------------------------------- uncertainty


def bootstrap_ci(
    exact: Sequence[float],
    f1: Sequence[float],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> ConfidenceInterval:
    """Percentile bootstrap over questions (resampled with replacement), in percent."""
    from analyzer.bootstrap import percentile_interval, resampled_sums

    n = len(exact)
    means = resampled_sums([exact, f1], resamples=resamples, seed=seed) / n
    (e_lo, f_lo), (e_hi, f_hi) = (100 * bound for bound in percentile_interval(means, level))
    return ConfidenceInterval(
        exact_low=float(e_lo),
        exact_high=float(e_hi),
        f1_low=float(f_lo),
        f1_high=float(f_hi),
        level=level,
        resamples=resamples,
        seed=seed,
    )


# --------------------------------------------------------------------------- breakdowns

QUESTION_WORDS = ("what", "who", "when", "where", "which", "why", "how")


def question_type(question: str) -> str:
    """The question's first word if it is one of QUESTION_WORDS, else "other"."""
    words = question.strip().split()
    first = words[0].lower().strip(string.punctuation) if words else ""
    return first if first in QUESTION_WORDS else "other"


def answer_length_bucket(question: SquadQuestion) -> str:
    """Length in normalised tokens of the shortest gold answer; "no answer" when none."""
    lengths = [len(_tokens(a)) for a in question.answers if normalize_answer(a)]
    if not lengths:
        return "no answer"
    n = min(lengths)
    return "1" if n == 1 else "2" if n == 2 else "3-5" if n <= 5 else "6+"


_LENGTH_ORDER = ("no answer", "1", "2", "3-5", "6+")


def breakdown(data: SquadData, result: MetricResult) -> tuple[ScoreGroup, ...]:
    """EM and F1 per question type and per answer-length bucket (groups that occur only)."""
    groups: list[ScoreGroup] = []
    for kind, key, order in (
        ("question_type", lambda q: question_type(q.question), (*QUESTION_WORDS, "other")),
        ("answer_length", answer_length_bucket, _LENGTH_ORDER),
    ):
        rows: dict[str, list[int]] = collections.defaultdict(list)
        for i, q in enumerate(data.questions):
            rows[key(q)].append(i)
        for label in order:
            if rows[label]:
                s = _summary(result.exact, result.f1, rows[label])
                groups.append(ScoreGroup(kind, label, s["total"], s["exact"], s["f1"]))
    return tuple(groups)
