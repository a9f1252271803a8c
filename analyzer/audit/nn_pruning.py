"""Claims of nn_pruning's card generator (2021): density and head sentences, F1/EM with
their reference and variation, file sizes, the results and dataset tables, the official
script's JSON block, `print("X parameters: 445.0M")` and the figures a model id encodes
(`...-x2.63-f82.6-d16-...`)."""

from __future__ import annotations

import json
import re

from analyzer.audit.claims import NUM, Claim, dataset_id, dataset_mentions, number, plain
from analyzer.audit.registry import Family, Rows, register

__all__ = ["NnPruning"]

_TEXT = r".{1,100}?"  # free text between two phrasings: bounded, so each start is bounded
_PROSE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"linear layers contains? {NUM}\s*%", re.I), "linear_density"),
    (
        re.compile(rf"linear (?:layer |weight )?density(?: is|:)? {NUM}\s*%", re.I),
        "linear_density",
    ),
    (re.compile(rf"contains {NUM}\s*% of the original weights overall", re.I), "overall_density"),
    (re.compile(rf"overall density(?: is|:)? {NUM}\s*%", re.I), "overall_density"),
)
_HEADS = re.compile(
    r"(?<!\d)(\d+) (?:attention )?heads (?:were |are )?removed (?:on a total of|out of|of) (\d+)"
    rf"(?:\s*\({NUM}\s*%\))?",
    re.I,
)
_UNITS = re.compile(
    rf"(?<![\d,])(\d[\d,]*) (?:of|out of) (\d[\d,]*) FFN units (?:are )?kept(?:\s*\({NUM}\s*%\))?",
    re.I,
)
_SPEED = re.compile(
    rf"{NUM}\s*x (?:as fast as|faster than) ({_TEXT})(?: on the evaluation|[.,;]|$)", re.I
)
_SPEED_ALT = re.compile(rf"speedup(?: is|:)? {NUM}\s*x", re.I)
_SCORE = re.compile(
    rf"\b(F1|EM|exact match) (?:is|of) {NUM}(?:\s*%)?(?:, compared with {NUM} for ({_TEXT}), "
    rf"an? (?:F1|EM|exact match) (drop|gain) of {NUM})?",
    re.I,
)
_FILE_SIZE = re.compile(
    rf"(?:Pytorch )?model file size:? {NUM}\s*MB(?: \(original ({_TEXT}): {NUM}\s*MB\))?", re.I
)
_PARAMS = re.compile(rf"print\(\"({_TEXT}) parameters: {NUM}\s*M\"\)")
_DIGIT = re.compile(r"\d")
_TRAINED = re.compile(r"\b(?:fine-tuned|trained|evaluated)\b", re.I)
_ON_SQUAD = re.compile(r"\bon \[?(squad[\s_-]*(?:v\s*)?\d?(?:\.\d)?)", re.I)
_JSON_LINE = re.compile(r'^\s*"(\w+)"\s*:\s*([-+\d.eE]+)\s*(?:,\s*)?$')
_JSON_KEYS = {
    "exact": "exact",
    "exact_match": "exact",
    "f1": "f1",
    "total": "eval_questions",
    **{f"{p}_{k}": f"{p}_{k}" for p in ("HasAns", "NoAns") for k in ("exact", "f1", "total")},
    **{k: k for k in ("best_exact", "best_f1", "best_exact_thresh", "best_f1_thresh")},
}
_METRIC_NAMES = {"em": "exact", "exact": "exact", "exact match": "exact", "f1": "f1"}
_NUMBER = re.compile(NUM)
_PAIR = re.compile(rf"{NUM} / {NUM}")
_PARENS = re.compile(rf"\({NUM}\)")
_THRESHOLD = re.compile(rf"threshold {NUM}")
_SCORE_CELL = re.compile(rf"{NUM}\s*%?")
_SAMPLES = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKM]?)")
# The encoded figures are searched for alone; the id around them is then widened over id
# characters (a lazy `[\w.-]*?` prefix retried at every start was quadratic on long words).
_MODEL_ID = re.compile(r"-x(\d+(?:\.\d+)?)-f(\d+(?:\.\d+)?)-d(\d+(?:\.\d+)?)")
_ID_CHARS = re.compile(r"[\w.-]")
_ID_TAIL = re.compile(r"-[\w.-]*")


class Adder:
    """Claims of one line or row, each quoting it (`add` reads the printed number)."""

    def __init__(self, text: str, line: int, section: str, source: str, about: str = "") -> None:
        self.text, self.line, self.section, self.source, self.about = (
            text,
            line,
            section,
            source,
            about,
        )
        self.out: list[Claim] = []

    def add(self, quantity: str, printed: str, unit: str = "", **kw: object) -> None:
        value, decimals = number(printed)
        about = str(kw.pop("about", self.about))
        negate = bool(kw.pop("negate", False))
        self.out.append(
            Claim(
                quantity,
                self.text,
                self.line,
                self.section,
                self.source,
                -value if negate else value,
                decimals,
                unit,
                about=about,
            )
        )


def prose_figures(
    plain_line: str, line: int, section: str, patterns: tuple[tuple[re.Pattern[str], str], ...]
) -> list[Claim]:
    """Percentages read by (pattern, quantity) pairs, each quoting its match."""
    out = []
    for pattern, quantity in patterns:
        for m in pattern.finditer(plain_line):
            value, decimals = number(m.group(1))
            out.append(
                Claim(quantity, m.group(0).strip(), line, section, "prose", value, decimals, "%")
            )
    return out


def _match_adder(m: re.Match[str], line: int, section: str) -> Adder:
    return Adder(m.group(0).strip(), line, section, "prose")


@register("nn_pruning")
class NnPruning(Family):
    def prose(self, plain_line: str, line: int, section: str) -> list[Claim]:
        out: list[Claim] = []
        if _DIGIT.search(plain_line):  # every figure has a digit; most prose lines have none
            out += prose_figures(plain_line, line, section, _PROSE)
            for m in _HEADS.finditer(plain_line):
                a = _match_adder(m, line, section)
                a.add("heads_removed", m.group(1))
                a.add("heads_total", m.group(2))
                if m.group(3):
                    a.add("heads_removed_pct", m.group(3), "%")
                out += a.out
            for m in _UNITS.finditer(plain_line):
                a = _match_adder(m, line, section)
                a.add("ffn_units_kept", m.group(1))
                a.add("ffn_units_total", m.group(2))
                if m.group(3):
                    a.add("ffn_units_kept_pct", m.group(3), "%")
                out += a.out
            for m in _SPEED.finditer(plain_line):
                a = _match_adder(m, line, section)
                a.add("speedup", m.group(1), "x", about=m.group(2).strip())
                out += a.out
            for m in _SPEED_ALT.finditer(plain_line):
                a = _match_adder(m, line, section)
                a.add("speedup", m.group(1), "x")
                out += a.out
            for m in _SCORE.finditer(plain_line):
                a = _match_adder(m, line, section)
                metric = "f1" if m.group(1).lower() == "f1" else "exact"
                a.add(metric, m.group(2))
                if m.group(3):
                    about = m.group(4).strip()
                    a.add(f"{metric}_reference", m.group(3), about=about)
                    drop = m.group(5).lower() == "drop"
                    a.add(f"{metric}_variation", m.group(6), about=about, negate=drop)
                out += a.out
            for m in _FILE_SIZE.finditer(plain_line):
                a = _match_adder(m, line, section)
                a.add("file_size", m.group(1), "MB")
                if m.group(2):
                    a.add("reference_file_size", m.group(3), "MB", about=m.group(2).strip())
                out += a.out
        if trained := _TRAINED.search(plain_line):
            on = _ON_SQUAD.search(plain_line, trained.end())
            if on and plain_line[on.start() - 1 : on.start()] == " ":
                text = plain_line[on.start() : on.end()].replace("[", "")
                out.append(
                    Claim("dataset", text, line, section, "prose", name=dataset_id(on.group(1)))
                )
        return out

    def code_block(self, block: list[str], first_line: int, section: str) -> list[Claim]:
        """A JSON block of SQuAD metrics, or `print("X parameters: 445.0M")` in example code."""
        out: list[Claim] = []
        for offset, raw in enumerate(block):
            for m in _PARAMS.finditer(raw):
                a = Adder(plain(m.group(0)), first_line + offset, section, "example code")
                a.add("params_dense", m.group(2), "M", about=m.group(1))
                out += a.out
        text = "\n".join(block)
        if not text.lstrip().startswith("{"):
            return out
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, too deep, or an integer too long
            return out
        if not isinstance(data, dict) or not ({"f1", "exact", "exact_match"} & set(data)):
            return out
        for offset, raw in enumerate(block):
            entry = _JSON_LINE.match(raw)
            if entry and entry.group(1) in _JSON_KEYS:
                a = Adder(raw.strip().rstrip(","), first_line + offset, section, "metrics JSON")
                a.add(_JSON_KEYS[entry.group(1)], entry.group(2))
                out += a.out
        return out

    def table(self, rows: Rows, section: str) -> list[Claim]:
        """Results tables (Metric | Value | Original/Reference | Variation/Difference) and
        dataset tables (Dataset | Split | # samples)."""
        header = [plain(c).lower() for c in rows[0][1]]
        body = [
            (n, [plain(c) for c in cells])
            for n, cells in rows[1:]
            if not all(set(c) <= set("-: ") for c in cells)
        ]
        col = {
            name: next((i for i, h in enumerate(header) if name in h), None)
            for name in ("metric", "value", "original", "reference", "variation", "difference",
                         "dataset", "split", "samples")
        }  # fmt: skip
        if header[:2] == ["figure", "value"]:
            return []  # prunecard's summary table
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

    def body_lines(self, lines: list[str], start: int) -> list[Claim]:
        """nn_pruning model ids encode speedup, F1 and linear density: `-x2.63-f82.6-d16-`."""
        for i in range(start, len(lines)):
            m = _MODEL_ID.search(lines[i])
            if not m:
                continue
            a = Adder(_model_id_text(lines[i], m), i + 1, "", "model id")
            a.add("speedup", m.group(1), "x")
            a.add("f1", m.group(2))
            a.add("linear_density", m.group(3), "%")
            return a.out
        return []


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
    a = Adder(" | ".join(cells), n, section, "results table")
    for prefix in ("unanswerable", "answerable"):
        if label.startswith(f"exact match / f1, {prefix}"):
            key = "NoAns" if prefix == "unanswerable" else "HasAns"
            if m := _PAIR.fullmatch(cells[value_col]):
                a.add(f"{key}_exact", m.group(1))
                a.add(f"{key}_f1", m.group(2))
            if m := _PARENS.search(label):
                a.add(f"{key}_total", m.group(1))
            return a.out
    if label.startswith("best f1"):
        if m := _NUMBER.fullmatch(cells[value_col]):
            a.add("best_f1", m.group(1))
        if m := _THRESHOLD.search(label):
            a.add("best_f1_thresh", m.group(1))
        return a.out
    metric = _METRIC_NAMES.get(label)
    if metric is None:
        return a.out
    for index, quantity in (
        (value_col, metric),
        (ref_col, f"{metric}_reference"),
        (var_col, f"{metric}_variation"),
    ):
        if index is not None and index < len(cells) and (m := _SCORE_CELL.fullmatch(cells[index])):
            a.add(quantity, m.group(1))
    return a.out


def _dataset_row(n: int, cells: list[str], col: dict[str, int | None], section: str) -> list[Claim]:
    out = dataset_mentions(cells[col["dataset"] or 0], n, section, "dataset table")[:1]
    split_col, samples_col = col["split"], col["samples"]
    if split_col is None or samples_col is None or samples_col >= len(cells):
        return out
    m = _SAMPLES.fullmatch(cells[samples_col])
    split = cells[split_col].lower()
    if m:
        quantity = (
            "eval_questions"
            if split in ("eval", "dev", "validation", "test")
            else f"{split}_samples"
        )
        a = Adder(" | ".join(cells), n, section, "dataset table")
        a.add(quantity, m.group(1), m.group(2))
        out += a.out
    return out


def _model_id_text(line: str, m: re.Match[str]) -> str:
    """The whole model id around the encoded figures `m` found in `line`."""
    start = m.start()
    while start and _ID_CHARS.match(line, start - 1):
        start -= 1
    tail = _ID_TAIL.match(line, m.end())
    return line[start : tail.end() if tail else m.end()]
