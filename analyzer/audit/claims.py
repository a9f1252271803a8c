"""The records of a card's claims, and the text primitives every phrasing family shares.

A card states figures in its YAML front matter, in prose, list items, headings, tables and
code blocks. `walker.py` walks the card once and hands each piece to the phrasing families
(`registry.py`); each family returns `Claim`s, with the number of decimals they were
printed with so the audit can say how precisely each one must match. This module imports
nothing else of `audit/`, so every family can import it without a cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_DIGITS",
    "NUM",
    "CardClaims",
    "Cell",
    "Claim",
    "FormatProblem",
    "LineFinder",
    "as_list",
    "dataset_id",
    "masked",
    "number",
    "plain",
    "scale",
]


@dataclass(frozen=True)
class Cell:
    """Where a figure of a results table sits: the table (its header's line), the row
    (a task, "average", "seed 1"), the model or metric column, and the task's shots."""

    table: int
    row: str
    column: str
    shots: int | None = None


@dataclass(frozen=True)
class Claim:
    """One figure or name a card states."""

    quantity: str  # what it is about: "linear_density", "f1_variation", "benchmark", ...
    text: str  # the card's words, Markdown emphasis removed
    line: int  # 1-based line in the card file
    section: str  # the heading above it ("front matter" for metadata)
    source: str  # "metadata", "prose", "results table", "benchmark table", ...
    value: float | None = None  # the number as printed, in `unit`
    decimals: int = 0  # decimals printed: the precision the claim commits to
    unit: str = ""  # "%", "x", "MB", "GiB", "B", "M", "k" or "" (a bare number)
    name: str = ""  # the value for named claims (datasets, tags), the task of a benchmark
    about: str = ""  # the model a reference figure describes ("bert-base-uncased")
    file: str = ""  # the file it was read from when not the card (".eval_results/x.yaml")
    cell: Cell | None = None  # its place in a results table (or a sentence comparing two)
    mean_of: str = ""  # an average: the quantity of the rows it averages (same table, column)
    base: str = ""  # a recovery or change: the column (model) it is relative to
    approximate: bool = False  # printed with "~", "about", "approximately"

    @property
    def printed(self) -> str:
        if self.value is None:
            return self.name
        return (
            f"{self.value:+.{self.decimals}f}"
            if "variation" in self.quantity
            else (f"{self.value:.{self.decimals}f}{self.unit}")
        )


@dataclass(frozen=True)
class FormatProblem:
    """Something that makes the card itself defective (not a figure)."""

    line: int
    text: str
    problem: str
    verdict: str = "mismatch"  # "warning" where the Hub accepts the card (no front matter)


@dataclass(frozen=True)
class CardClaims:
    path: str
    claims: tuple[Claim, ...]
    problems: tuple[FormatProblem, ...]
    metadata: dict[str, Any]


# Base units per printed unit. Sizes are in bytes: GB and MB decimal, GiB and MiB binary
# (nn_pruning's "MB" is read both ways by the file-size check, which says so).
_SCALE = {
    "": 1.0,
    "%": 1.0,
    "x": 1.0,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "B": 1e9,
    "T": 1e12,
    "MB": 1.0,
}
SIZE_BYTES = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 2**10, "MiB": 2**20,
              "GiB": 2**30, "TiB": 2**40}  # fmt: skip
MAX_DIGITS = 30  # digits of one printed figure: a card's longest real one has 15


def scale(claim: Claim) -> float:
    """Base units per printed unit: 1000 for '11.9k'."""
    return _SCALE.get(claim.unit, 1.0)


def number(text: str) -> tuple[float, int]:
    """A printed number and its decimals: '-4.13' -> (-4.13, 2), '1,234' -> (1234.0, 0)."""
    text = text.replace(",", "")
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    return float(text), decimals


_SPACES = re.compile(r"\s+")
# footnote marks after a figure or label: *, †, ‡, §, superscript digits, [1]
_FOOTNOTE = re.compile(
    r"(?<=[^\s*†‡§¹²³⁴⁵⁶⁷⁸⁹⁰])(?:[*†‡§¹²³⁴⁵⁶⁷⁸⁹⁰]{1,3}|\[\d{1,2}\])(?=\s|$|[|)])"
)


def plain(line: str) -> str:
    """A line without Markdown emphasis, inline code marks or footnote marks, for matching
    and quoting."""
    text = line.replace("**", "").replace("__", "").replace("`", "")
    return _SPACES.sub(" ", _FOOTNOTE.sub("", text)).strip()


# What is not prose: a URL, a link target, a Hub model id (owner/name) or a file name.
# Patterns and levels are never read out of them (`Llama-2-7b-pruned50-2of4` is a name).
_NOT_PROSE = re.compile(
    r"\bhttps?://[^\s)\]>\"']{1,2000}|\]\([^)\s]{1,2000}\)"
    r"|(?<![\w/.-])[\w.-]{1,96}/[\w.-]{1,96}(?![\w/])"
    r"|\b[\w.-]{1,200}\.(?:safetensors|bin|json|pt|pth|gguf|onnx|yaml|md)\b"
)


def masked(text: str) -> str:
    """`text` with URLs, link targets, model ids and file names blanked (same length)."""
    return _NOT_PROSE.sub(lambda m: " " * len(m.group(0)), text)


# prose figures: a number starts only where a run of digits starts (the look-behind), so a
# search over a long run of digits tries one start instead of one per digit (quadratic)
NUM = r"(?<![\d.,])([+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[+-]?\d+(?:\.\d+)?)"

_DATASET_MENTION = re.compile(r"squad[\s_-]*(?:v\s*)?(\d)?(?:\.\d)?", re.I)


def dataset_id(name: str) -> str:
    """A dataset's Hub id from how cards name it: 'SQuAD 2.0' -> 'squad_v2'."""
    m = _DATASET_MENTION.search(name)
    if m is None:
        return name.strip().lower()
    return "squad_v2" if m.group(1) == "2" else "squad"


def dataset_mentions(text: str, line: int, section: str, source: str) -> list[Claim]:
    return [
        Claim("dataset", text, line, section, source, name=dataset_id(m.group(0)))
        for m in _DATASET_MENTION.finditer(text)
    ]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [v for v in items if v not in (None, "")]


_META_KEYS = ("datasets", "metrics", "tags", "type", "value", "name", "config", "split")
_KEY_LINE = {key: re.compile(rf"^\s*(?:-\s*)?{key}\s*:") for key in _META_KEYS}


def _holds(line: str, needle: str) -> bool:
    """`line` states `needle`, or begins it: a long value YAML folds over several lines
    has its first part on the line of its key ("name: WikiText-2 raw, test split (...")."""
    if needle in line:
        return True
    head = line.split(":", 1)[-1].strip().strip("'\"")
    return len(head) >= 20 and needle.startswith(head)


class LineFinder:
    """Lines of metadata items, found by one forward pass per key: items are listed in the
    order YAML reads them, so each search resumes where the previous one of its key stopped
    (a scan from the top for every item was quadratic)."""

    def __init__(self, lines: list[str], end: int) -> None:
        self.lines, self.end = lines, end
        self.key_line: dict[str, int] = {}
        self.cursor: dict[str, int] = {}

    def find(self, key: str, needle: str) -> int:
        """1-based line of `needle` at or after `key:` (the key's line as fallback)."""
        if key not in self.key_line:
            pattern = _KEY_LINE[key]
            self.key_line[key] = next(
                (i for i in range(self.end) if pattern.match(self.lines[i])), 0
            )
            self.cursor[key] = self.key_line[key]
        for i in range(self.cursor[key], self.end):
            if needle and _holds(self.lines[i], needle):
                self.cursor[key] = i
                return i + 1
        self.cursor[key] = self.end  # not found: later items of this key fall back too
        return self.key_line[key] + 1
