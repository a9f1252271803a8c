"""Claims a model card makes, each with the text it was read from and where.

A card states figures in its YAML front matter (`model-index`, `datasets`, `tags`), in
prose, in tables, in a JSON block of metrics and even in its model id
(`...-x2.63-f82.6-d16-...`). `extract_claims` finds them with the number of decimals they
were printed with, so the audit can say how precisely each one must match. It reads the
phrasings of nn_pruning's card generator and of prunecard's own cards; everything is pure
text processing (no weights needed).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import InputError
from analyzer.front_matter import FrontMatterSyntaxError, load_front_matter, split_front_matter

__all__ = [
    "MAX_CARD_BYTES",
    "CardClaims",
    "Claim",
    "FormatProblem",
    "dataset_id",
    "extract_claims",
    "read_card",
    "scale",
]


@dataclass(frozen=True)
class Claim:
    """One figure or name a card states."""

    quantity: str  # what it is about: "linear_density", "f1", "f1_variation", "dataset", ...
    text: str  # the card's words, Markdown emphasis removed
    line: int  # 1-based line in the card file
    section: str  # the heading above it ("front matter" for metadata)
    source: str  # "metadata", "prose", "results table", "dataset table", "metrics JSON", ...
    value: float | None = None  # the number as printed, in `unit`
    decimals: int = 0  # decimals printed: the precision the claim commits to
    unit: str = ""  # "%", "x", "MB", "M", "k" or "" (a bare number)
    name: str = ""  # the value for named claims (datasets, tags)
    about: str = ""  # the model a reference figure describes ("bert-base-uncased")
    file: str = ""  # the file it was read from when not the card (".eval_results/x.yaml")

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


# --------------------------------------------------------------------------- reading

_SCALE = {"": 1.0, "%": 1.0, "x": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "MB": 1.0}


MAX_CARD_BYTES = 64 << 20  # 64 MiB: a card is text; real ones are a few kB


def read_card(path: str | Path) -> CardClaims:
    """Read a card file; an unreadable, empty, oversized or non-regular file (a FIFO, a
    device) is an InputError."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            raise InputError(path, "not a regular file")
        if path.is_file() and path.stat().st_size > MAX_CARD_BYTES:
            raise InputError(path, f"the card is over {MAX_CARD_BYTES >> 20} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such card (give one with --card)") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a card file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable UTF-8 text file ({exc})") from None
    if not text.strip():
        raise InputError(path, "the card is empty")
    return extract_claims(text, str(path))


def _number(text: str) -> tuple[float, int]:
    """A printed number and its decimals: '-4.13' -> (-4.13, 2)."""
    text = text.replace(",", "")
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    return float(text), decimals


def _plain(line: str) -> str:
    """A line without Markdown emphasis or inline code marks, for matching and quoting."""
    return _SPACES.sub(" ", line.replace("**", "").replace("`", "")).strip()


_SPACES = re.compile(r"\s+")


# --------------------------------------------------------------------------- datasets

_DATASET_MENTION = re.compile(r"squad[\s_-]*(?:v\s*)?(\d)?(?:\.\d)?", re.I)


def dataset_id(name: str) -> str:
    """A dataset's Hub id from how cards name it: 'SQuAD 2.0' -> 'squad_v2'."""
    m = _DATASET_MENTION.search(name)
    if m is None:
        return name.strip().lower()
    return "squad_v2" if m.group(1) == "2" else "squad"


# --------------------------------------------------------------------------- extraction


def extract_claims(text: str, path: str = "<card>") -> CardClaims:
    """Every claim of a card's text, in the order they appear."""
    lines = text.splitlines()
    front, body_start, problems = _front_matter(lines, path)
    from analyzer.audit import families

    claims: list[Claim] = list(_metadata_claims(front, lines, body_start))
    claims += families.metadata(front, lines, body_start)
    claims += _body_claims(lines, body_start)
    sections = _section_map(lines, body_start)
    claims += [
        dataclasses.replace(c, section=sections[c.line - 1])
        for c in _model_id_claims(lines, body_start)
    ]
    claims.sort(key=lambda c: c.line)
    return CardClaims(path=path, claims=tuple(claims), problems=tuple(problems), metadata=front)


def _front_matter(lines: list[str], path: str) -> tuple[dict[str, Any], int, list[FormatProblem]]:
    """The front matter from the first '---' line (page-scrape text before it is tolerated
    and reported), read by the package's one bounded reader; returns (metadata, index of the
    first body line, problems). Aliases, deep nesting and huge integers are InputErrors."""
    start = next((i for i, line in enumerate(lines) if line.strip() == "---"), None)
    if start is None or any(line.startswith("#") for line in lines[:start]):
        missing = "no YAML front matter (--- ... ---): no metadata to check"
        return {}, 0, [FormatProblem(1, lines[0][:80], missing, "warning")]
    split = split_front_matter("\n".join(lines[start:]))
    if split.source is None:
        return {}, 0, [FormatProblem(start + 1, "---", "front matter is never closed by ---")]
    end = start + split.body_line - 1  # the closing '---' line
    problems = []
    if start:
        problems.append(
            FormatProblem(1, lines[0][:80], f"{start} line(s) of text before the front matter")
        )
    try:
        data = load_front_matter(split.source, path) or {}
    except FrontMatterSyntaxError as exc:
        at = start + 1 + split.yaml_line + (exc.line or 0)
        at = min(at, end)
        problems.append(FormatProblem(at, lines[at - 1].strip()[:80], exc.problem))
        data = _lenient_lists(lines[start + 1 : end])
    if not isinstance(data, dict):
        problems.append(FormatProblem(start + 1, "---", "front matter is not a YAML mapping"))
        data = {}
    return data, end + 1, problems


def _lenient_lists(lines: list[str]) -> dict[str, Any]:
    """Top-level `key:` lists and scalars from YAML that does not parse as a whole."""
    data: dict[str, Any] = {}
    key = None
    for line in lines:
        if m := _TOP_KEY.match(line):
            key, value = m.group(1), m.group(2).strip()
            data[key] = value or []
        elif key and isinstance(data[key], list) and (m := _LIST_ITEM.match(line)):
            data[key].append(m.group(1).strip().strip("\"'"))
    return data


# Patterns used with .match/.fullmatch are anchored with ^ as well: unanchored, a search
# would retry them at every position of a long line.
_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*):\s*(.*)$")
_LIST_ITEM = re.compile(r"^\s*-\s+([^:\s][^:]*)$")
_META_KEYS = ("datasets", "metrics", "tags", "type", "value", "name", "config", "split")
_KEY_LINE = {key: re.compile(rf"^\s*(?:-\s*)?{key}\s*:") for key in _META_KEYS}


class _LineFinder:
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
            if needle and needle in self.lines[i]:
                self.cursor[key] = i
                return i + 1
        self.cursor[key] = self.end  # not found: later items of this key fall back too
        return self.key_line[key] + 1


def _metadata_claims(front: dict[str, Any], lines: list[str], body: int) -> list[Claim]:
    out: list[Claim] = []
    finder = _LineFinder(lines, body)

    def meta(quantity: str, key: str, text: str, needle: str = "", **kw: Any) -> None:
        out.append(
            Claim(
                quantity,
                text,
                finder.find(key, needle or str(kw.get("name") or text)),
                "front matter",
                "metadata",
                **kw,
            )
        )

    for key in ("datasets", "metrics"):
        for item in _as_list(front.get(key)):
            if key == "metrics" and str(item).lower() in _METRIC_IDS:
                continue  # a causal LM's metric, not a dataset (`metrics: [squad_v2]` is one)
            meta("dataset", key, f"{key}: {item}", name=dataset_id(str(item)))
    for tag in _as_list(front.get("tags")):
        meta("tag", "tags", f"tags: {tag}", name=str(tag))
    for model in _as_list(front.get("model-index")):
        if not isinstance(model, dict):
            continue
        for result in _as_list(model.get("results")):
            if not isinstance(result, dict):
                continue
            dataset = result.get("dataset") or {}
            if isinstance(dataset, dict) and dataset.get("type"):
                meta(
                    "dataset",
                    "type",
                    f"model-index dataset: {dataset['type']}",
                    name=dataset_id(str(dataset["type"])),
                )
            for metric in _as_list(result.get("metrics")):
                if not isinstance(metric, dict) or "value" not in metric:
                    continue
                quantity = _METRIC_TYPES.get(str(metric.get("type", "")).lower())
                value = metric["value"]
                if (
                    quantity is None
                    or isinstance(value, bool)
                    or not isinstance(value, int | float)
                ):
                    continue
                raw = repr(value)
                number, decimals = _number(raw)
                meta(
                    quantity,
                    "value",
                    f"model-index {metric.get('type')}: {raw}",
                    needle=raw,
                    value=number,
                    decimals=decimals,
                )
    return out


_METRIC_TYPES = {
    "f1": "f1",
    "exact_match": "exact",
    "exact": "exact",
    "em": "exact",
    "perplexity": "perplexity",
}
_METRIC_IDS = {"perplexity"}  # Hub metric ids that name no dataset


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [v for v in items if v not in (None, "")]


# prose phrasings, matched on a line with emphasis and code marks removed
# A number starts only where a run of digits starts (the look-behind), so a search over a
# long run of digits tries one start instead of one per digit (that was quadratic).
_NUM = r"(?<![\d.,])([+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|[+-]?\d+(?:\.\d+)?)"
# Free text between two phrasings is bounded, so each start scans a bounded stretch.
_TEXT = r".{1,100}?"
_PROSE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"linear layers contains? {_NUM}\s*%", re.I), "linear_density"),
    (
        re.compile(rf"linear (?:layer |weight )?density(?: is|:)? {_NUM}\s*%", re.I),
        "linear_density",
    ),
    (re.compile(rf"contains {_NUM}\s*% of the original weights overall", re.I), "overall_density"),
    (re.compile(rf"overall density(?: is|:)? {_NUM}\s*%", re.I), "overall_density"),
    # prunecard's own cards
    (re.compile(rf"linear layers hold {_NUM}\s*% of their dense weights", re.I), "linear_density"),
    (
        re.compile(rf"Over all parameters, .{{0,100}}?{_NUM}\s*% are non-zero", re.I),
        "overall_density",
    ),
)
_OWN = (
    (
        re.compile(rf"The files store {_NUM} parameters \({_NUM} MB", re.I),
        (("params_stored", ""), ("file_size", "MB")),
    ),
    (
        re.compile(rf"leaves {_NUM}, of which {_NUM} in the linear layers", re.I),
        (("params_packed", ""), ("linear_packed", "")),
    ),
    (re.compile(rf"Weight files: {_NUM} MB as stored", re.I), (("file_size", "MB"),)),
    (re.compile(rf"{_NUM} MB packed", re.I), (("packed_file_size", "MB"),)),
    (re.compile(rf"SQuAD v2 on {_NUM} questions", re.I), (("eval_questions", ""),)),
)
_HEADS = re.compile(
    r"(?<!\d)(\d+) (?:attention )?heads (?:were |are )?removed (?:on a total of|out of|of) (\d+)"
    rf"(?:\s*\({_NUM}\s*%\))?",
    re.I,
)
_HEADS_OWN = re.compile(rf"(?<!\d)(\d+) of (\d+) heads \({_NUM}\s*%\) are removed", re.I)
_UNITS = re.compile(
    rf"(?<![\d,])(\d[\d,]*) (?:of|out of) (\d[\d,]*) FFN units (?:are )?kept(?:\s*\({_NUM}\s*%\))?",
    re.I,
)
_SPEED = re.compile(
    rf"{_NUM}\s*x (?:as fast as|faster than) ({_TEXT})(?: on the evaluation|[.,;]|$)", re.I
)
_SPEED_ALT = re.compile(rf"speedup(?: is|:)? {_NUM}\s*x", re.I)
_SCORE = re.compile(
    rf"\b(F1|EM|exact match) (?:is|of) {_NUM}(?:\s*%)?(?:, compared with {_NUM} for ({_TEXT}), "
    rf"an? (?:F1|EM|exact match) (drop|gain) of {_NUM})?",
    re.I,
)
_FILE_SIZE = re.compile(
    rf"(?:Pytorch )?model file size:? {_NUM}\s*MB(?: \(original ({_TEXT}): {_NUM}\s*MB\))?", re.I
)
_PARAMS = re.compile(rf"print\(\"({_TEXT}) parameters: {_NUM}\s*M\"\)")
_HEADING = re.compile(r"#{1,6}\s")
_DIGIT = re.compile(r"\d")
_TRAINED = re.compile(r"\b(?:fine-tuned|trained|evaluated)\b", re.I)
_ON_SQUAD = re.compile(r"\bon \[?(squad[\s_-]*(?:v\s*)?\d?(?:\.\d)?)", re.I)


def _heading(stripped: str) -> str | None:
    """A Markdown heading's text without its closing #s, or None (string methods, not a
    lazy group before optional runs: that regex was cubic on a heading of spaces)."""
    if not _HEADING.match(stripped):
        return None
    return _plain(stripped.lstrip("#").strip().rstrip("#"))


def _body_claims(lines: list[str], start: int) -> list[Claim]:
    from analyzer.audit import families

    out: list[Claim] = []
    section, fence, block, block_start = "(top)", None, [], 0
    table: list[tuple[int, list[str]]] = []
    for i in range(start, len(lines)):
        raw, number = lines[i], i + 1
        stripped = raw.strip()
        if fence is not None:
            if stripped.startswith(fence):
                out += _code_block(block, block_start, section)
                fence = None
            else:
                block.append(raw)
            continue
        if stripped.startswith("```") or stripped.startswith("~~~"):
            fence, block, block_start = stripped[:3], [], number + 1
            continue
        if stripped.startswith("|"):
            table.append((number, [c.strip() for c in stripped.strip("|").split("|")]))
            continue
        if table:
            out += _table_claims(table, section) + families.table(table, section)
            table = []
        if (title := _heading(stripped)) is not None:
            section = title
            out += _dataset_mentions(section, number, section, "heading")
            continue
        out += _prose_claims(_plain(raw), number, section)
    if table:
        out += _table_claims(table, section) + families.table(table, section)
    if fence is not None:
        out += _code_block(block, block_start, section)
    return out


def _dataset_mentions(text: str, line: int, section: str, source: str) -> list[Claim]:
    return [
        Claim("dataset", text, line, section, source, name=dataset_id(m.group(0)))
        for m in _DATASET_MENTION.finditer(text)
    ]


def _prose_claims(plain: str, line: int, section: str) -> list[Claim]:
    out: list[Claim] = []

    def add(
        quantity: str,
        m: re.Match[str],
        group: int,
        unit: str = "",
        about: str = "",
        negate: bool = False,
    ) -> None:
        value, decimals = _number(m.group(group))
        out.append(
            Claim(
                quantity,
                m.group(0).strip(),
                line,
                section,
                "prose",
                -value if negate else value,
                decimals,
                unit,
                about=about,
            )
        )

    if _DIGIT.search(plain):  # every figure has a digit; most lines of prose have none
        for pattern, quantity in _PROSE:
            for m in pattern.finditer(plain):
                add(quantity, m, 1, "%")
        for m in [*_HEADS.finditer(plain), *_HEADS_OWN.finditer(plain)]:
            add("heads_removed", m, 1)
            add("heads_total", m, 2)
            if m.group(3):
                add("heads_removed_pct", m, 3, "%")
        for m in _UNITS.finditer(plain):
            add("ffn_units_kept", m, 1)
            add("ffn_units_total", m, 2)
            if m.group(3):
                add("ffn_units_kept_pct", m, 3, "%")
        for m in _SPEED.finditer(plain):
            add("speedup", m, 1, "x", about=m.group(2).strip())
        for m in _SPEED_ALT.finditer(plain):
            add("speedup", m, 1, "x")
        for m in _SCORE.finditer(plain):
            metric = "f1" if m.group(1).lower() == "f1" else "exact"
            add(metric, m, 2)
            if m.group(3):
                about = m.group(4).strip()
                add(f"{metric}_reference", m, 3, about=about)
                add(f"{metric}_variation", m, 6, about=about, negate=m.group(5).lower() == "drop")
        for m in _FILE_SIZE.finditer(plain):
            add("file_size", m, 1, "MB")
            if m.group(2):
                add("reference_file_size", m, 3, "MB", about=m.group(2).strip())
        for pattern, groups in _OWN:
            for m in pattern.finditer(plain):
                for index, (quantity, unit) in enumerate(groups, 1):
                    add(quantity, m, index, unit)
                if quantity == "eval_questions":
                    out.extend(_dataset_mentions(m.group(0), line, section, "prose"))
    if trained := _TRAINED.search(plain):
        m = _ON_SQUAD.search(plain, trained.end())
        if m and plain[m.start() - 1 : m.start()] == " ":
            out.append(
                Claim(
                    "dataset",
                    plain[m.start() : m.end()].replace("[", ""),
                    line,
                    section,
                    "prose",
                    name=dataset_id(m.group(1)),
                )
            )
    from analyzer.audit import families

    return out + families.prose(plain, line, section)


def _code_block(block: list[str], first_line: int, section: str) -> list[Claim]:
    """A JSON block of SQuAD metrics, or `print("X parameters: 445.0M")` in example code."""
    from analyzer.audit import families

    out: list[Claim] = families.code_block(block, first_line, section)
    text = "\n".join(block)
    for offset, raw in enumerate(block):
        for m in _PARAMS.finditer(raw):
            value, decimals = _number(m.group(2))
            out.append(
                Claim(
                    "params_dense",
                    _plain(m.group(0)),
                    first_line + offset,
                    section,
                    "example code",
                    value,
                    decimals,
                    "M",
                    about=m.group(1),
                )
            )
    if not text.lstrip().startswith("{"):
        return out
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, too deep, or an integer too long to read
        return out
    if not isinstance(data, dict) or not ({"f1", "exact", "exact_match"} & set(data)):
        return out
    for offset, raw in enumerate(block):
        m = _JSON_LINE.match(raw)
        if not m or m.group(1) not in _JSON_KEYS:
            continue
        value, decimals = _number(m.group(2))
        out.append(
            Claim(
                _JSON_KEYS[m.group(1)],
                raw.strip().rstrip(","),
                first_line + offset,
                section,
                "metrics JSON",
                value,
                decimals,
            )
        )
    return out


_JSON_LINE = re.compile(r'^\s*"(\w+)"\s*:\s*([-+\d.eE]+)\s*(?:,\s*)?$')
_JSON_KEYS = {
    "exact": "exact",
    "exact_match": "exact",
    "f1": "f1",
    "total": "eval_questions",
    **{f"{p}_{k}": f"{p}_{k}" for p in ("HasAns", "NoAns") for k in ("exact", "f1", "total")},
    **{k: k for k in ("best_exact", "best_f1", "best_exact_thresh", "best_f1_thresh")},
}


def _table_claims(rows: list[tuple[int, list[str]]], section: str) -> list[Claim]:
    """Results tables (Metric | Value | Original/Reference | Variation/Difference), dataset
    tables (Dataset | Split | # samples) and prunecard's summary, per-layer and speed tables."""
    header = [_plain(c).lower() for c in rows[0][1]]
    body = [
        (n, [_plain(c) for c in cells])
        for n, cells in rows[1:]
        if not all(set(c) <= set("-: ") for c in cells)
    ]
    col = {
        name: next((i for i, h in enumerate(header) if name in h), None)
        for name in (
            "metric",
            "value",
            "original",
            "reference",
            "variation",
            "difference",
            "dataset",
            "split",
            "samples",
            "figure",
            "layer",
            "batch",
            "speedup",
        )
    }
    if header[:2] == ["figure", "value"]:
        return [c for n, cells in body for c in _summary_row(n, cells, section)]
    if col["layer"] == 0 and "linear density" in header:
        return [c for n, cells in body for c in _layer_row(n, cells, header, section)]
    if header[:2] == ["file", "sha256"]:
        return [c for n, cells in body for c in _provenance_row(n, cells, section)]
    if col["batch"] == 0 and col["speedup"] is not None:
        return [c for n, cells in body for c in _speed_row(n, cells, header, section)]
    if col["metric"] is not None and col["value"] is not None:
        ref = col["original"] if col["original"] is not None else col["reference"]
        var = col["variation"] if col["variation"] is not None else col["difference"]
        return [
            c
            for n, cells in body
            for c in _result_row(n, cells, col["metric"], col["value"], ref, var, section)
        ]
    if col["dataset"] is not None:
        return [c for n, cells in body for c in _dataset_row(n, cells, col, section)]
    return []


def _cells(n: int, cells: list[str], section: str, source: str, about: str = ""):
    """A helper adding claims read from one table row."""
    quote = " | ".join(cells)
    out: list[Claim] = []

    def add(quantity: str, text: str, unit: str = "") -> None:
        value, decimals = _number(text)
        out.append(Claim(quantity, quote, n, section, source, value, decimals, unit, about=about))

    return out, add


_NUMBER = re.compile(_NUM)
_PAIR = re.compile(rf"{_NUM} / {_NUM}")
_PARENS = re.compile(rf"\({_NUM}\)")
_THRESHOLD = re.compile(rf"threshold {_NUM}")
_SCORE_CELL = re.compile(rf"{_NUM}\s*%?")
_SAMPLES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKM]?)")
_SHAPE_LABEL = re.compile(r"batch (\d+) x (\d+)")
_SHAPE_CELL = re.compile(r"^(\d+) x (\d+)")
_QUESTIONS = re.compile(rf"\({_NUM} questions\)")
_LAYER = re.compile(r"\d+")
_PERCENT_CELL = re.compile(rf"{_NUM}%")
_OF_CELL = re.compile(rf"{_NUM} of")
_RATIO_CELL = re.compile(rf"{_NUM}x")


def _result_row(
    n: int,
    cells: list[str],
    metric_col: int,
    value_col: int,
    ref_col: int | None,
    var_col: int | None,
    section: str,
) -> list[Claim]:
    label = cells[metric_col].lower()
    out, add = _cells(n, cells, section, "results table")
    for prefix in ("unanswerable", "answerable"):
        if label.startswith(f"exact match / f1, {prefix}"):
            key = "NoAns" if prefix == "unanswerable" else "HasAns"
            if m := _PAIR.fullmatch(cells[value_col]):
                add(f"{key}_exact", m.group(1))
                add(f"{key}_f1", m.group(2))
            if m := _PARENS.search(label):
                add(f"{key}_total", m.group(1))
            return out
    if label.startswith("best f1"):
        if m := _NUMBER.fullmatch(cells[value_col]):
            add("best_f1", m.group(1))
        if m := _THRESHOLD.search(label):
            add("best_f1_thresh", m.group(1))
        return out
    metric = _METRIC_NAMES.get(label)
    if metric is None:
        return out
    for index, quantity in (
        (value_col, metric),
        (ref_col, f"{metric}_reference"),
        (var_col, f"{metric}_variation"),
    ):
        if index is not None and index < len(cells) and (m := _SCORE_CELL.fullmatch(cells[index])):
            add(quantity, m.group(1))
    return out


def _dataset_row(n: int, cells: list[str], col: dict[str, int | None], section: str):
    out = _dataset_mentions(cells[col["dataset"] or 0], n, section, "dataset table")[:1]
    split_col, samples_col = col["split"], col["samples"]
    if split_col is None or samples_col is None or samples_col >= len(cells):
        return out
    m = _SAMPLES.fullmatch(cells[samples_col])
    split = cells[split_col].lower()
    if m:
        value, decimals = _number(m.group(1))
        quantity = (
            "eval_questions"
            if split in ("eval", "dev", "validation", "test")
            else (f"{split}_samples")
        )
        out.append(
            Claim(
                quantity,
                " | ".join(cells),
                n,
                section,
                "dataset table",
                value,
                decimals,
                m.group(2),
            )
        )
    return out


# a summary value's format: its pattern and the unit of each number it holds
_PCT_OF = (rf"{_NUM}% \({_NUM} of {_NUM}\)", ("%", "", ""))  # "12.96% (1,234 of 5,678)"
_OF_PCT = (rf"{_NUM} of {_NUM} \({_NUM}%\)", ("", "", "%"))  # "12 of 144 (8.3%)"
_MB = (rf"{_NUM} MB", ("MB",))
_BARE = (rf"{_NUM}\b", ("",))
_SUMMARY = (
    (r"^linear layers", _PCT_OF, ("linear_density", "linear_nnz", "linear_dense")),
    (r"^all parameters", _PCT_OF, ("overall_density", "params_nonzero", "params_dense")),
    (r"^attention heads removed", _OF_PCT, ("heads_removed", "heads_total", "heads_removed_pct")),
    (
        r"^query heads dead, kept by packing",
        _OF_PCT,
        ("heads_dead_kept", "heads_total", "heads_dead_kept_pct"),
    ),
    (
        r"^kv groups removed",
        _OF_PCT,
        ("heads_kv_removed", "heads_kv_total", "heads_kv_removed_pct"),
    ),
    (
        r"^(?:ffn units|mlp channels) kept",
        _OF_PCT,
        ("ffn_units_kept", "ffn_units_total", "ffn_units_kept_pct"),
    ),
    (
        r"^parameters: dense / stored / packed",
        (rf"{_NUM} / {_NUM} / {_NUM}", ("", "", "")),
        ("params_dense", "params_stored", "params_packed"),
    ),
    (r"^weight files: as stored", _MB, ("file_size",)),
    (r"^weight files: packed", _MB, ("packed_file_size",)),
    (r"^speedup", (rf"{_NUM}x \(FLOP bound {_NUM}x\)", ("x", "x")), ("speedup", "flop_bound")),
    (r"^perplexity\b", _BARE, ("perplexity",)),
    (r"exact match \(", _BARE, ("exact",)),
    (r"\bf1 \(", _BARE, ("f1",)),
)


_SUMMARY_PATTERNS = tuple(
    (re.compile(label, re.I), re.compile(value), tuple(zip(quantities, units, strict=True)))
    for label, (value, units), quantities in _SUMMARY
)


def _summary_row(n: int, cells: list[str], section: str) -> list[Claim]:
    """prunecard's summary table: `| Figure | Value |`."""
    if len(cells) < 2:
        return []
    label, value = cells[0], cells[1]
    shape = _SHAPE_LABEL.search(label)
    about = f"batch {shape.group(1)} x {shape.group(2)}" if shape else ""
    out, add = _cells(n, cells, section, "summary table", about)
    for label_pattern, value_pattern, quantities in _SUMMARY_PATTERNS:
        if label_pattern.search(label) and (m := value_pattern.match(value)):
            for index, (quantity, unit) in enumerate(quantities, 1):
                add(quantity, m.group(index), unit)
            break
    if m := _QUESTIONS.search(label):
        add("eval_questions", m.group(1))
    return out + _dataset_mentions(label, n, section, "summary table")[:1]


def _layer_row(n: int, cells: list[str], header: list[str], section: str) -> list[Claim]:
    """prunecard's per-layer table: density, heads kept, FFN units kept, packed weights."""
    if not _LAYER.fullmatch(cells[0]):
        return []
    out, add = _cells(n, cells, section, "per-layer table", f"layer {cells[0]}")
    for index, head in enumerate(header[: len(cells)]):
        cell = cells[index]
        if head == "linear density" and (m := _PERCENT_CELL.fullmatch(cell)):
            add("layer_density", m.group(1), "%")
        elif head == "heads kept" and (m := _OF_CELL.match(cell)):
            add("layer_heads_kept", m.group(1))
        elif head == "kv groups kept" and (m := _OF_CELL.match(cell)):
            add("layer_kv_kept", m.group(1))
        elif head in ("ffn units kept", "mlp channels kept") and (m := _OF_CELL.match(cell)):
            add("layer_ffn_units_kept", m.group(1))
        elif head == "packed linear weights" and (m := _NUMBER.fullmatch(cell)):
            add("layer_linear_packed", m.group(1))
    return out


def _speed_row(n: int, cells: list[str], header: list[str], section: str) -> list[Claim]:
    """prunecard's speed table: `| Batch x tokens | ... | Speedup | FLOP bound | ... |`."""
    shape = _SHAPE_CELL.fullmatch(cells[0])
    if not shape:
        return []
    out, add = _cells(
        n, cells, section, "speed table", f"batch {shape.group(1)} x {shape.group(2)}"
    )
    for index, head in enumerate(header[: len(cells)]):
        cell = cells[index]
        if head in ("speedup", "flop bound") and (m := _RATIO_CELL.match(cell)):
            add("speedup" if head == "speedup" else "flop_bound", m.group(1), "x")
        elif head.startswith(("dense (ms)", "packed (ms)")) and (m := _TIME_CELL.match(cell)):
            side = head.split()[0]
            add(f"{side}_ms", m.group(1))
            if m.group(2):
                add(f"{side}_spread_ms", m.group(2))
        elif head == "share of bound" and (m := _PERCENT_CELL.match(cell)):
            add("share_of_bound", m.group(1), "%")
    return out


_TIME_CELL = re.compile(rf"{_NUM}(?: ± {_NUM})?")
_HEX = re.compile(r"^[0-9a-f]{64}$")


def _provenance_row(n: int, cells: list[str], section: str) -> list[Claim]:
    """prunecard's Provenance table: `| File | sha256 |`, one weight or config file a row."""
    if len(cells) < 2 or not _HEX.match(cells[1]):
        return []
    quote = " | ".join(cells)
    return [
        Claim("file_sha256", quote, n, section, "provenance table", name=cells[1], about=cells[0])
    ]


_METRIC_NAMES = {"em": "exact", "exact": "exact", "exact match": "exact", "f1": "f1"}

# The encoded figures are searched for alone; the id around them is then widened over id
# characters (a lazy `[\w.-]*?` prefix retried at every start was quadratic on long words).
_MODEL_ID = re.compile(r"-x(\d+(?:\.\d+)?)-f(\d+(?:\.\d+)?)-d(\d+(?:\.\d+)?)")
_ID_CHARS = re.compile(r"[\w.-]")
_ID_TAIL = re.compile(r"-[\w.-]*")


def _model_id_text(line: str, m: re.Match[str]) -> str:
    """The whole model id around the encoded figures `m` found in `line`."""
    start = m.start()
    while start and _ID_CHARS.match(line, start - 1):
        start -= 1
    tail = _ID_TAIL.match(line, m.end())
    return line[start : tail.end() if tail else m.end()]


def _section_map(lines: list[str], start: int) -> list[str]:
    """The heading each line sits under (code blocks' '#' comments are not headings)."""
    out, section, fence = [], "front matter", False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if i == start:
            section = "(top)"
        if i >= start and stripped.startswith(("```", "~~~")):
            fence = not fence
        elif i >= start and not fence and (title := _heading(stripped)) is not None:
            section = title
        out.append(section)
    return out


def _model_id_claims(lines: list[str], start: int) -> list[Claim]:
    """nn_pruning model ids encode speedup, F1 and linear density: `-x2.63-f82.6-d16-`."""
    for i in range(start, len(lines)):
        m = _MODEL_ID.search(lines[i])
        if not m:
            continue
        out = []
        for group, quantity, unit in (
            (1, "speedup", "x"),
            (2, "f1", ""),
            (3, "linear_density", "%"),
        ):
            value, decimals = _number(m.group(group))
            text = _model_id_text(lines[i], m)
            out.append(Claim(quantity, text, i + 1, "", "model id", value, decimals, unit))
        return out
    return []


def scale(claim: Claim) -> float:
    """Base units per printed unit: 1000 for '11.9k'."""
    return _SCALE.get(claim.unit, 1.0)
