"""Other people's cards cannot hang prunecard: every pattern applied to a card's text runs
in linear time on worst-case input, the audit's work grows linearly with the card, and the
front matter is read with bounded YAML (aliases, depth, integers and size refused)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analyzer.audit
import analyzer.front_matter
import analyzer.publish.site
from analyzer.audit.checks import audit_claims
from analyzer.audit.claims import CardClaims
from analyzer.audit.walker import extract_claims
from analyzer.errors import InputError
from analyzer.front_matter import MAX_BYTES, load_front_matter, split_front_matter

# Modules whose patterns see file text: every module of the audit (new ones included) and
# the front-matter reader, which also keep every pattern at module level (checked below),
# so collecting them finds them all.
AUDIT = [
    importlib.import_module(f"analyzer.audit.{m.name}")
    for m in pkgutil.iter_modules(analyzer.audit.__path__)
]
STRICT = (*AUDIT, analyzer.front_matter)
MODULES = (*STRICT, analyzer.publish.site)
BOUND_S = 0.5  # per pattern and input: linear matching of 200 kB takes milliseconds


def _collect(value: object, seen: set[int]) -> Iterator[re.Pattern[str]]:
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, re.Pattern):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _collect(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _collect(item, seen)


def _patterns() -> list[re.Pattern[str]]:
    from huggingface_hub.repocard import REGEX_YAML_BLOCK  # what front_matter splits with

    seen: set[int] = set()
    found = [p for m in MODULES for value in vars(m).values() for p in _collect(value, seen)]
    return [*dict.fromkeys([*found, REGEX_YAML_BLOCK])]


PATTERNS = _patterns()


class TooSlow(Exception):
    pass


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail after `seconds` of this process's CPU time instead of hanging (the regex engine
    checks signals). CPU time, not wall time: a busy machine slows the wall clock of a
    linear scan many times over, never its CPU time."""

    def stop(*_: object) -> None:
        raise TooSlow(f"took over {seconds} s of CPU time")

    old = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def _run_all(pattern: re.Pattern[str], text: str) -> None:
    with within(BOUND_S):
        for _ in pattern.finditer(text):
            pass
        pattern.match(text)
        pattern.fullmatch(text)


# runs that made the old patterns quadratic or worse, and phrasings the patterns start with
UNITS = [" ", "a", "1", ".", ",", "-", "#", "|", "\n", "\t", "%", "x", ":", "*", '"', "(", "1,"]
UNITS += ["1.", "1 ", "a ", "a-", "-x1", "# ", "| 1 ", '"f1": 1', "1x as fast as a "]
UNITS += ["F1 is 1, compared with 1 for a ", "Over all parameters, ", "trained ", " on "]
UNITS += ["model file size: 1 MB (original a ", 'print("a parameters: ', "---\n", "\r\n---"]


def test_the_registry_finds_the_patterns():
    assert len(AUDIT) >= 7 and len(PATTERNS) >= 40
    names = {name for m in STRICT for name, v in vars(m).items() if isinstance(v, re.Pattern)}
    assert {"_HEADING", "_MODEL_ID", "_SPEED", "_SCORE", "_JSON_LINE"} <= names


@pytest.mark.parametrize("module", STRICT, ids=lambda m: m.__name__)
def test_no_pattern_is_written_inline(module):
    """An inline `re.search(r"...")` would escape the registry and so this file's checks."""
    calls = [
        node
        for node in ast.walk(ast.parse(inspect.getsource(module)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "re"
        and node.func.attr in {"search", "match", "fullmatch", "finditer", "findall", "sub"}
    ]
    assert [ast.unparse(c)[:60] for c in calls] == []


@pytest.mark.parametrize("unit", UNITS, ids=repr)
def test_every_pattern_is_linear_on_long_runs(unit):
    text = unit * (150_000 // len(unit))
    for pattern in PATTERNS:
        _run_all(pattern, text)
        _run_all(pattern, "x" + text + "!")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(UNITS), min_size=1, max_size=4),
    st.integers(100_000, 200_000),
    st.sampled_from(PATTERNS),
)
def test_mixed_runs(units, size, pattern):
    text = "".join(units)
    _run_all(pattern, (text * (size // len(text) + 1))[:size])


@pytest.mark.parametrize(
    "line",
    [
        "# a" + " " * 5_000 + "### x",  # a heading of spaces
        "a" * 150_000,  # a line of letters
        "1" * 40_000,  # a run of digits
        "| F1 | " + "1" * 40_000 + " |",
        "Over all parameters, " * 7_000,
        '```\n{\n"f1": 1' + " " * 50_000 + ', "exact": 2\n}\n```',  # a JSON metrics block
        "bert-" * 30_000 + "-x1",
        "```\n" + '{"f1": ' * 100_000 + "```",  # JSON nested 100k deep
        '```\n{"f1": ' + "9" * 5_000 + "}\n```",  # an integer Python refuses to read
    ],
    ids=["heading", "letters", "digits", "cell", "phrase", "json", "model id", "deep", "int"],
)
def test_hostile_cards_are_read_quickly(line):
    """Each of these took from seconds to minutes before the patterns were made linear, or
    (the last two) raised a traceback from the JSON block reader."""
    with within(2.0):  # the whole extraction, not one pattern
        extract_claims(f"---\nlicense: mit\n---\n{line}\n")


class CountingClaims(tuple):
    """A card's claims that count how many of them the audit visits."""

    visits = 0

    def __iter__(self):
        for claim in super().__iter__():
            CountingClaims.visits += 1
            yield claim


def _results_card(rows: int) -> str:
    header = "| Metric | Value | Original | Variation |\n| --- | --- | --- | --- |\n"
    row = "| F1 | 88.11 | 88.50 | -0.39 |\n| EM | 80.94 | 80.80 | +0.14 |\n"
    return "---\nlicense: mit\n---\n" + header + row * rows


def test_partners_are_found_through_an_index_not_a_scan():
    """Each variation is paired with its value and reference: with a scan per claim the
    visits grow with the square of the card, with an index linearly."""
    visits = []
    for rows in (200, 800):
        card = extract_claims(_results_card(rows))
        CountingClaims.visits = 0
        report = audit_claims(CardClaims(card.path, CountingClaims(card.claims), (), {}))
        assert report.passed and len(card.claims) == 6 * rows
        visits.append(CountingClaims.visits / len(card.claims))
    assert visits[1] <= visits[0] * 1.1 and visits[1] < 20  # visits per claim stay flat


# --------------------------------------------------------------------------- front matter


def _laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (_laughs(), "line 2 uses a YAML alias"),
        ("a: " + "[" * 100 + "1" + "]" * 100, "nests deeper than 64 levels"),
        ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), "nests deeper than 64"),
        ("a: " + "9" * 5_000, "holds an integer over 1000 digits"),
        ("a: '" + "x" * MAX_BYTES + "'", "is over 1,048,576 bytes"),
    ],
    ids=["billion laughs", "deep flow", "deep block", "huge integer", "size"],
)
def test_front_matter_bounds_are_one_line_errors(source, problem):
    with within(2.0), pytest.raises(InputError) as caught:
        load_front_matter(source, "README.md")
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("README.md: front matter")


def test_front_matter_reads_what_the_hub_reads():
    from huggingface_hub import ModelCard

    text = "---\nlicense: mit\ntags:\n- a\n- 'b'\nx: 12\n---\n\n# Title\nbody\n"
    split = split_front_matter(text)
    card = ModelCard(text, ignore_metadata_errors=True)
    assert load_front_matter(split.source) == card.data.to_dict()
    assert split.body == card.text and text.splitlines()[split.body_line] == ""
    assert split_front_matter("# no front matter\n").source is None
    big_string = "a: '" + "9" * 5_000 + "'"  # quoted: a string, not an integer
    assert load_front_matter(big_string) == {"a": "9" * 5_000}
    anchor_only = "a: &x 1\nb: 2"  # an anchor without an alias expands nothing
    assert load_front_matter(anchor_only) == {"a": 1, "b": 2}


def test_audit_cli_refuses_a_billion_laughs_card(tmp_path, capsys):
    from analyzer.cli.main import main

    card = tmp_path / "README.md"
    card.write_text("---\n" + _laughs() + "---\n# Model\n")
    with within(5.0):
        assert main(["audit", str(card), "--no-weights"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"prunecard: error: {card}: front matter line 2 uses a YAML alias (*name); "
                   "aliases are refused"]  # fmt: skip


def test_a_site_title_from_a_heading_of_spaces(tmp_path):
    """The site's title pattern took minutes on this heading; its closing #s are dropped."""
    from analyzer.publish.site import _TITLE

    card = "# a" + " " * 5_000 + "### x\n# " + " " * 5_000 + "\n"
    with within(BOUND_S):
        assert _TITLE.search(card).group(1).strip() == "a" + " " * 5_000 + "### x"
    assert _TITLE.search("# Title ##\n").group(1).strip().rstrip("#").strip() == "Title"
