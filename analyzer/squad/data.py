"""SQuAD v2 (or v1.1) data in the official JSON format: reading, checking, reproducible subsets.

The official format (`version`, `data[].paragraphs[].qas[]`) is kept as it is, so a subset
written back with `write_squad` is a file the official evaluation script accepts.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import InputError
from analyzer.records import read_json

__all__ = [
    "SQUAD_VERSIONS",
    "SquadData",
    "SquadQuestion",
    "bundled_sample_path",
    "paragraph_sample",
    "parse_squad",
    "read_squad",
    "subset",
    "write_squad",
]


SQUAD_VERSIONS = ("2.0", "1.1")


@dataclass(frozen=True)
class SquadQuestion:
    """One question with its paragraph, flattened out of the nested official format."""

    id: str
    question: str
    context: str
    answers: tuple[str, ...]  # gold answer texts; empty for an unanswerable question
    title: str = ""

    @property
    def has_answer(self) -> bool:
        """The official script's rule: answerable iff the `answers` list is non-empty."""
        return bool(self.answers)


@dataclass(frozen=True)
class SquadData:
    """A data set: the official JSON as read (for writing back) and its questions in order."""

    source: str  # the file it came from, for messages and records
    raw: dict[str, Any]  # the official JSON object
    questions: tuple[SquadQuestion, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(q.id for q in self.questions)

    @property
    def version(self) -> str:
        """ "2.0" or "1.1": the `version` field, else the structure (v2 marks questions
        `is_impossible` and leaves their `answers` empty; v1.1 has neither)."""
        stated = str(self.raw.get("version", "")).removeprefix("v")
        if stated in SQUAD_VERSIONS:
            return stated
        unanswerable = any(not q.has_answer for q in self.questions)
        flagged = any(
            "is_impossible" in qa
            for article in self.raw["data"]
            for paragraph in article["paragraphs"]
            for qa in paragraph["qas"]
        )
        return "2.0" if unanswerable or flagged else "1.1"


def bundled_sample_path() -> Path:
    """The SQuAD v2 sample shipped in the package (CC BY-SA 4.0; SQUAD_LICENSE.md beside it)."""
    return Path(__file__).parent.parent / "data" / "squad_v2_sample.json"


def read_squad(path: str | Path, version: str = "2.0") -> SquadData:
    """Read and check an official SQuAD JSON file of the given version ("2.0" or "1.1").

    v1.1 data read as v2 is refused: its scores would silently lack every unanswerable
    question. v2 data may be read as v1.1 only if all its questions have answers."""
    data = parse_squad(read_json(path), str(path))
    if data.version == "1.1" and version == "2.0":
        raise InputError(
            path,
            "is SQuAD v1.1 data (no unanswerable questions, no is_impossible flags); "
            "pass --squad-version 1.1 to score it as v1.1",
        )
    unanswerable = sum(1 for q in data.questions if not q.has_answer)
    if version == "1.1" and unanswerable:
        raise InputError(
            path, f"holds {unanswerable} unanswerable question(s): SQuAD v2 data, not v1.1"
        )
    return data


def parse_squad(raw: Any, source: str) -> SquadData:
    """Check the official structure; every problem names where in the file it is."""

    def fail(where: str, problem: str) -> InputError:
        return InputError(source, f"not SQuAD JSON: {where}: {problem}")

    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise fail("top level", 'expected an object with a "data" list (official SQuAD format)')
    questions: list[SquadQuestion] = []
    seen: set[str] = set()
    for a, article in enumerate(raw["data"]):
        where = f"data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise fail(where, 'expected an object with a "paragraphs" list')
        title = article.get("title", "")
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise fail(where, 'expected an object with a "context" string')
            if not isinstance(paragraph.get("qas"), list):
                raise fail(where, 'expected a "qas" list')
            for i, qa in enumerate(paragraph["qas"]):
                questions.append(_parse_qa(qa, f"{where}.qas[{i}]", fail, paragraph, title))
                if questions[-1].id in seen:
                    raise fail(f"{where}.qas[{i}]", f"duplicate id {questions[-1].id!r}")
                seen.add(questions[-1].id)
    if not questions:
        raise fail("data", "no questions")
    return SquadData(source=source, raw=raw, questions=tuple(questions))


def _parse_qa(
    qa: Any,
    where: str,
    fail: Callable[[str, str], InputError],
    paragraph: dict[str, Any],
    title: Any,
) -> SquadQuestion:
    if not isinstance(qa, dict):
        raise fail(where, "expected an object")
    for key in ("id", "question"):
        if not isinstance(qa.get(key), str):
            raise fail(where, f'expected a "{key}" string')
    answers = qa.get("answers")
    if not isinstance(answers, list) or not all(
        isinstance(x, dict) and isinstance(x.get("text"), str) for x in answers
    ):
        raise fail(where, 'expected an "answers" list of {"text": ..., "answer_start": ...}')
    return SquadQuestion(
        id=qa["id"],
        question=qa["question"],
        context=paragraph["context"],
        answers=tuple(x["text"] for x in answers),
        title=title if isinstance(title, str) else "",
    )


def subset(data: SquadData, limit: int, seed: int) -> SquadData:
    """`limit` questions drawn uniformly without replacement with `seed`, in file order.

    The same data, limit and seed always give the same questions; paragraphs and articles
    left without questions are dropped.
    """
    if limit < 1:
        raise InputError(None, f"--limit must be at least 1, got {limit}")
    if limit >= len(data.questions):
        return data
    chosen = set(random.Random(seed).sample(data.ids, limit))
    return _keep(data, lambda qa: qa["id"] in chosen)


def paragraph_sample(data: SquadData, questions: int, seed: int) -> SquadData:
    """Whole paragraphs drawn with `seed` until at least `questions` questions are in.

    This is how the bundled sample was made: `paragraph_sample(dev, 300, seed=0)`.
    """
    keys = [
        (a, p)
        for a, article in enumerate(data.raw["data"])
        for p in range(len(article["paragraphs"]))
    ]
    random.Random(seed).shuffle(keys)
    chosen: set[tuple[int, int]] = set()
    count = 0
    for a, p in keys:
        if count >= questions:
            break
        chosen.add((a, p))
        count += len(data.raw["data"][a]["paragraphs"][p]["qas"])
    raw = copy.deepcopy(data.raw)
    for a, article in enumerate(raw["data"]):
        article["paragraphs"] = [
            par for p, par in enumerate(article["paragraphs"]) if (a, p) in chosen
        ]
    raw["data"] = [article for article in raw["data"] if article["paragraphs"]]
    return parse_squad(raw, data.source)


def _keep(data: SquadData, keep: Callable[[dict[str, Any]], bool]) -> SquadData:
    raw = copy.deepcopy(data.raw)
    for article in raw["data"]:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [qa for qa in paragraph["qas"] if keep(qa)]
        article["paragraphs"] = [p for p in article["paragraphs"] if p["qas"]]
    raw["data"] = [article for article in raw["data"] if article["paragraphs"]]
    return parse_squad(raw, data.source)


def write_squad(data: SquadData, path: str | Path) -> Path:
    """Write the data in the official format (atomically)."""
    from analyzer.outputs import atomic_write_text

    return atomic_write_text(Path(path), json.dumps(data.raw, ensure_ascii=False) + "\n")
