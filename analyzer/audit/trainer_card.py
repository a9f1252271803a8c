"""Claims of the card the HF Trainer writes, and of the example scripts' metric printouts.

`Trainer.create_model_card` (transformers/modelcard.py) writes "It achieves the following
results on the evaluation set:" and one `- Name: value` line per metric: the key without
its `eval_` prefix, each word capitalised (`eval_exact_match` -> "Exact Match", SQuAD v2's
`eval_HasAns_f1` -> "Hasans F1"), rounded to 4 decimals; then "Training hyperparameters"
(`- learning_rate: 3e-05`) and "Framework versions" (`- Transformers 4.12.0`) lists. The
example scripts (run_qa.py) print their metrics with `trainer.log_metrics`
(`  eval_f1 = 88.1129`) and save them as `all_results.json` (`"eval_f1": 88.1129`); cards
paste either in a code block or a table. Every pattern is anchored and bounded.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit.claims import Claim, dataset_id
from analyzer.audit.claims import number as _number
from analyzer.audit.claims import plain as _plain
from analyzer.audit.findings import AuditFinding, unchecked
from analyzer.audit.registry import Family, register

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = ["TrainerCard", "code_block", "measured", "metric_quantity", "prose", "table"]

_VALUE = r"([+-]?\d{1,9}(?:\.\d{1,12})?(?:[eE][+-]?\d{1,3})?)"
# `key = value`, `key: value`, `"key": value,` and `- Key Name: value` (one per line)
_KEYED = re.compile(
    r'\s{0,12}(?:[-*]\s{1,3})?"?(?:(eval|predict|test|train)_)?([A-Za-z][A-Za-z0-9_ ]{0,40}?)"?'
    rf'\s{{0,40}}[:=]\s{{0,40}}"?{_VALUE}"?\s{{0,3}},?\s{{0,8}}'
)
_BASE = {  # a metric key without its split prefix, lower case -> what it counts
    "exact_match": "exact",
    "exact": "exact",
    "em": "exact",
    "f1": "f1",
    "total": "questions",
    "samples": "windows",
    "loss": "loss",
    **{
        f"{group.lower()}_{key}": f"{group}_{key}"
        for group in ("HasAns", "NoAns")
        for key in ("exact", "f1", "total")
    },
    **{k: k for k in ("best_exact", "best_f1", "best_exact_thresh", "best_f1_thresh")},
}
_HYPER = re.compile(r"- ([A-Za-z][\w.]{0,60}): (.{1,200})")
_FRAMEWORK = re.compile(r"- ([A-Za-z][\w.-]{0,40}) (\d[\w.+-]{0,40})")
_RESULTS_LIST = "results list"
# "This model is a fine-tuned version of [bert-base-uncased](...) on the squad dataset."
_FINE_TUNED_ON = re.compile(r"\bfine-tuned version of .{1,400}? on the ([\w/.-]{1,80}) dataset\b")


def metric_quantity(split: str | None, key: str) -> str | None:
    """The claim quantity of a metric key: ('eval', 'exact_match') -> 'exact',
    ('eval', 'samples') -> 'eval_windows', ('predict', 'f1') -> 'predict_f1'."""
    base = _BASE.get(key.strip().lower().replace(" ", "_"))
    if base is None:
        return None
    split = "predict" if split == "test" else (split or "eval")
    if split == "train":
        return {"windows": "train_windows", "loss": "train_loss"}.get(base)
    if split == "eval":
        return {"windows": "eval_windows", "loss": "eval_loss", "questions": "eval_questions"}.get(
            base, base
        )
    return f"predict_{base}"


def _keyed(text: str, line: int, section: str, source: str, bare: bool) -> list[Claim]:
    """One `key = value` line; a key without a split prefix only where `bare`."""
    m = _KEYED.fullmatch(text)
    if m is None or (m.group(1) is None and not bare):
        return []
    quantity = metric_quantity(m.group(1), m.group(2))
    if quantity is None:
        return []
    value, decimals = _number(m.group(3))
    return [Claim(quantity, _plain(text), line, section, source, value, decimals)]


def prose(plain: str, line: int, section: str) -> list[Claim]:
    """The results list, the hyperparameter and framework lists (by their headings)."""
    heading = section.lower()
    if heading == "training hyperparameters":
        m = _HYPER.fullmatch(plain)
        if m is None:
            return []
        return [Claim("hyperparameter", plain, line, section, "hyperparameters", name=plain[2:])]
    if heading == "framework versions":
        m = _FRAMEWORK.fullmatch(plain)
        if m is None:
            return []
        name = f"{m.group(1)} {m.group(2)}"
        return [Claim("framework", plain, line, section, "framework versions", name=name)]
    if m := _FINE_TUNED_ON.search(plain):
        text = f"on the {m.group(1)} dataset"
        return [Claim("dataset", text, line, section, "prose", name=dataset_id(m.group(1)))]
    if not plain.startswith(("- ", "* ")):
        return []
    return _keyed(plain, line, section, _RESULTS_LIST, bare=True)


def code_block(block: list[str], first_line: int, section: str) -> list[Claim]:
    """`log_metrics` printouts and `all_results.json`; a JSON block's bare `f1`/`exact`
    keys are the official script's, read by `claims.py`."""
    bare = not "\n".join(block).lstrip().startswith("{")
    return [
        claim
        for offset, raw in enumerate(block)
        for claim in _keyed(raw, first_line + offset, section, "metrics block", bare)
    ]


def table(rows: list[tuple[int, list[str]]], section: str) -> list[Claim]:
    """`| eval_f1 | 88.11 |` rows, or a header of metric keys over a row of values."""
    cells = [(n, [_plain(c) for c in raw]) for n, raw in rows]
    out = [
        claim
        for n, row in cells[1:]
        if len(row) >= 2
        for claim in _keyed(f"{row[0]} = {row[1]}", n, section, "metrics table", bare=False)
    ]
    header = cells[0][1]
    if any(_KEYED.fullmatch(f"{h} = 0") and h.startswith(("eval_", "predict_")) for h in header):
        for n, row in cells[1:]:
            for key, value in zip(header, row, strict=False):
                out += _keyed(f"{key} = {value}", n, section, "metrics table", bare=False)
    return out


def measured(
    claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
) -> AuditFinding | None:
    """Training settings and predict-split scores are not measured; say why."""
    reasons = {
        "hyperparameter": "a training setting: the training run is not given",
        "framework": "a label: the library versions used for training",
        "eval_loss": "the loss depends on the training head and labels; not measured",
        "train_loss": "the training run is not given",
    }
    if claim.quantity in reasons:
        return unchecked(claim, reasons[claim.quantity])
    if claim.quantity.startswith("predict_"):
        return unchecked(
            claim, "a score on the predict (test) split; --eval holds the dev split", "evaluation"
        )
    return None


@register("trainer")
class TrainerCard(Family):
    prose = staticmethod(prose)
    code_block = staticmethod(code_block)
    table = staticmethod(table)
    measured = staticmethod(measured)
