"""Evaluation counts: questions, examples and tokenized windows are different numbers.

SQuAD's dev sets hold 10,570 (v1.1) and 11,873 (v2.0) questions; a SQuAD example is one
question. The example scripts count something else: run_qa.py's `eval_samples` is the
number of tokenized windows (features), one question giving several when its context is
longer than `max_seq_length` (cut every `doc_stride` tokens). With bert-base-uncased's
tokenizer, max_seq_length 384 and doc_stride 128, SQuAD v1.1 dev gives 10,784 windows
(the `eval_samples = 10784` of the transformers examples and of cards built on them).
A count matching no known size is flagged with the sizes it could be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import Claim, scale
from analyzer.audit.claims import number as _number
from analyzer.audit.consistency import declared_dataset
from analyzer.audit.registry import Family, register

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = ["KNOWN_SIZES", "Counts", "SplitSize", "code_block", "internal", "measured", "prose"]


@dataclass(frozen=True)
class SplitSize:
    dataset: str  # Hub id: "squad" (v1.1) or "squad_v2"
    split: str  # "dev" or "train"
    kind: str  # "questions" or "windows"
    count: int
    note: str = ""  # how windows were cut

    @property
    def label(self) -> str:
        version = "SQuAD v2" if self.dataset == "squad_v2" else "SQuAD v1.1"
        return f"{version} {self.split}: {self.count:,} {self.kind}" + (
            f" ({self.note})" if self.note else ""
        )


_WINDOWS_384 = "bert-base-uncased tokenizer, max_seq_length 384, doc_stride 128"
KNOWN_SIZES = (
    SplitSize("squad", "dev", "questions", 10_570),
    SplitSize("squad", "train", "questions", 87_599),
    SplitSize("squad_v2", "dev", "questions", 11_873),
    SplitSize("squad_v2", "train", "questions", 130_319),
    SplitSize("squad", "dev", "windows", 10_784, _WINDOWS_384),
)
_KIND = {  # claim quantity -> (split, what it counts)
    "eval_questions": ("dev", "questions"),
    "eval_examples": ("dev", "questions"),
    "eval_windows": ("dev", "windows"),
    "predict_windows": ("dev", "windows"),
    "predict_questions": ("dev", "questions"),
    "train_windows": ("train", "windows"),
    "train_samples": ("train", "samples"),
}

_SETTING = re.compile(
    r"\b(max_seq_length|max_seq_len|doc_stride)\b\"?\s{0,3}[:=]?\s{0,3}(\d{1,5})\b", re.I
)
_COUNT = r"(\d{1,3}(?:,\d{3}){1,2}|\d{1,7})"
_STATED = re.compile(
    rf"\b{_COUNT} (?:dev |development |validation |evaluation |eval )?"
    r"(questions|examples|features|windows)\b",
    re.I,
)
_EVAL_CONTEXT = re.compile(r"\b(?:dev|development|validation|evaluation|evaluated|eval)\b", re.I)


def _settings(text: str, line: int, section: str, source: str) -> list[Claim]:
    out = []
    for m in _SETTING.finditer(text):
        quantity = "doc_stride" if m.group(1).lower() == "doc_stride" else "max_seq_length"
        value, decimals = _number(m.group(2))
        out.append(Claim(quantity, m.group(0), line, section, source, value, decimals))
    return out


def prose(plain: str, line: int, section: str) -> list[Claim]:
    """Window settings, and "10,570 questions" / "10,784 features" where the line is
    about evaluation."""
    out = _settings(plain, line, section, "prose")
    if _EVAL_CONTEXT.search(plain):
        for m in _STATED.finditer(plain):
            kind = m.group(2).lower()
            quantity = {"questions": "eval_questions", "examples": "eval_examples"}.get(
                kind, "eval_windows"
            )
            value, decimals = _number(m.group(1))
            out.append(Claim(quantity, m.group(0), line, section, "prose", value, decimals))
    return out


def code_block(block: list[str], first_line: int, section: str) -> list[Claim]:
    """`--max_seq_length 384 --doc_stride 128` in the command that made the figures."""
    return [
        claim
        for offset, raw in enumerate(block)
        for claim in _settings(raw, first_line + offset, section, "example code")
    ]


def measured(
    claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
) -> findings.AuditFinding | None:
    if claim.quantity in ("max_seq_length", "doc_stride"):
        return findings.unchecked(claim, "a preprocessing setting, not measured")
    if claim.quantity.endswith("_windows"):
        return findings.unchecked(
            claim,
            "tokenized windows: their number depends on the tokenizer, max_seq_length and "
            "doc_stride; see the count check",
        )
    if claim.quantity == "eval_examples":
        if evaluation is None or "eval_questions" not in evaluation.values:
            return findings.unchecked(claim, "no evaluation given (--eval)", "evaluation")
        return findings.compare(
            claim,
            "evaluation",
            evaluation.values["eval_questions"],
            0,
            rule="a SQuAD example is one question: must equal the count scored",
        )
    return None


def _setting(partners: findings.Partners, quantity: str) -> str:
    found = partners.first(quantity)
    return f"{found.value:g}" if found is not None and found.value is not None else "not stated"


def internal(partners: findings.Partners) -> list[findings.AuditFinding]:
    """Each count against the known split sizes, and against the card's dataset."""
    declared = declared_dataset(partners)
    dataset = declared.name if declared is not None else ""
    windows = (
        f"the card's max_seq_length: {_setting(partners, 'max_seq_length')}, "
        f"doc_stride: {_setting(partners, 'doc_stride')}"
    )
    rule = "a count is compared with the known split sizes: " + "; ".join(
        s.label for s in KNOWN_SIZES
    )
    out = []
    for claim in (c for quantity in _KIND for c in partners.named(quantity)):
        if claim.value is None:
            continue
        split, kind = _KIND[claim.quantity]
        count = claim.value * scale(claim)
        slack = findings.half(claim)
        same = [s for s in KNOWN_SIZES if s.split == split and abs(s.count - count) <= slack]
        candidates = [s for s in KNOWN_SIZES if s.split == split]
        could = "; ".join(s.label for s in candidates)
        match = next(iter(same), None)
        if match is None:
            verdict = findings.WARNING
            shown = "no known split size"
            reason = (
                f"matches no known {split} split size; it could be: {could}; or tokenized "
                f"windows (at least as many as the questions; {windows}), or a subset"
            )
        elif dataset in ("squad", "squad_v2") and match.dataset != dataset:
            verdict, shown = findings.MISMATCH, match.label
            reason = f"the card's dataset is {dataset}, but this count is {match.label}"
        elif kind == "windows" and match.kind == "windows":
            verdict, shown = findings.WARNING, match.label
            reason = (
                f"counts tokenized windows, not questions: {match.label}; the split has "
                f"{_questions(match):,} questions ({windows})"
            )
        elif kind != "windows" and match.kind == "windows":
            verdict, shown = findings.WARNING, match.label
            reason = f"a count of tokenized windows stated as {kind}: {match.label}"
        elif kind == "samples":
            verdict, shown = findings.WARNING, match.label
            reason = f"'samples' is ambiguous: this equals {match.label}"
        else:
            verdict, shown, reason = findings.OK, match.label, ""
        out.append(findings.finding(claim, "internal", shown, rule, verdict, reason, count))
    return out


def _questions(windows: SplitSize) -> int:
    return next(
        s.count
        for s in KNOWN_SIZES
        if (s.dataset, s.split, s.kind) == (windows.dataset, windows.split, "questions")
    )


@register("counts")
class Counts(Family):
    prose = staticmethod(prose)
    code_block = staticmethod(code_block)
    measured = staticmethod(measured)
    internal = staticmethod(internal)
