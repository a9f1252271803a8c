"""Every figure prunecard prints on its own cards is read by the audit as a claim at its
line (issue 28): the golden cards and the decoder card's variants.

The figures are found here independently of the claim readers: every number token of
the card's text lines (a simple regex), the N:M and block pattern words, the pattern
names of the summary's pattern row, the head word of its heads row and the dtype words
of the prose. What is not a claim is listed by hand in NON_CLAIMS, each with why. A
figure is covered by a claim on its line whose value is that number, or whose key holds
it (the batch shape of a speed row, the layer of a per-layer row: `about`), or, for a
pattern row's "7 of 14", whose total is it (`base`); each claim covers one occurrence.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

import decoder_reports as spec
import pytest

from analyzer.audit.checks import audit
from analyzer.audit.claims import Claim
from analyzer.audit.walker import extract_claims
from analyzer.publish.card import render_card, write_card
from analyzer.records import PatternTotals

GOLDEN = Path(__file__).parent / "golden"
FIGURES = ("density", "heads", "blocks")

# (pattern, why it is not a claim): spans blanked before the figures are searched
NON_CLAIMS = (
    (r"https?://\S+|\]\([^)]*\)", "a URL or a link target: a name, never a figure"),
    (r"`[^`]*`", "inline code: a file name, a command, a dataset id or a hash prefix"),
    (
        r"\b(?:prunecard|torch|transformers|Python|driver) \d[\w.+]*",
        "a software version: the environment's name, not a measurement",
    ),
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "the date of the measurement"),
    (
        r"^Densities and percentages have .*",
        "the rounding sentence: the template's fixed precision, the same on every card "
        "(each figure's decimals are read from the figure itself)",
    ),
    (
        r"square blocks of 32 or 16 weights a side|drawn in squares of 16",
        "the block maps' legend: how the figure is drawn, the same on every card",
    ),
)
_BLANK = [re.compile(p) for p, _ in NON_CLAIMS]
_FENCE = "```"  # code-block lines are usage snippets: a model id and a prompt, no figure
_SPLIT = re.compile(r"[\s|()\[\];]+")
_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[+-]\d+)?$")
_UNIT = re.compile(r"(?:%|x|ms)$")
_PATTERN_WORD = re.compile(r"^\d+:\d+$|^\d+x\d+$")
_DTYPE = re.compile(r"\b(?:b?float(?:16|32|64)|fp8|fp16|int8|int4)\b")
_PATTERN_ROW = re.compile(r"^\| Sparsity patterns of the linear matrices \| (.*) \|$")
_HEADS_ROW = re.compile(r"^\| Attention heads removed(?: \((\w+ heads)\))? \|")


def _figures(text: str) -> list[tuple[int, str, str]]:
    """(line, kind, token) for every figure of the card: numbers, pattern, head and dtype
    words. The front matter's figures are its `value:` lines (names such as the
    model-index dataset's are one name claim each, tested with the model-index)."""
    out: list[tuple[int, str, str]] = []
    lines = text.splitlines()
    end = lines.index("---", 1)
    fence = False
    for n, line in enumerate(lines, 1):
        if line.startswith(_FENCE):
            fence = not fence
            continue
        if fence or n == 1 or (n <= end + 1 and not line.strip().startswith("value:")):
            continue
        for blank in _BLANK:
            line = blank.sub(" ", line)
        for token in _SPLIT.split(line.replace("**", "")):
            token = token.rstrip(",.:")
            if _PATTERN_WORD.match(token):
                out.append((n, "pattern", token))
            elif _NUMBER.match(token := _UNIT.sub("", token)):
                out.append((n, "number", token))
        out += [(n, "dtype", m.group(0)) for m in _DTYPE.finditer(line)]
        if m := _PATTERN_ROW.match(line):
            out += [(n, "pattern", item.split(" (")[0]) for item in m.group(1).split(", ")]
        if m := _HEADS_ROW.match(line):
            out.append((n, "heads", m.group(1) or "heads"))
    return out


def _carried(claim: Claim) -> list[float]:
    """The numbers a claim reads: its value, the numbers of its key, a pattern's total."""
    out = [claim.value] if claim.value is not None else []
    out += [float(x) for x in re.findall(r"\d+", claim.about)]
    if claim.quantity == "pattern_matrices":
        out.append(float(claim.base))
    return out


def unread(text: str) -> list[tuple[int, str, str]]:
    """The card's figures no claim at their line reads."""
    by_line: dict[int, list[Claim]] = {}
    for claim in extract_claims(text).claims:
        by_line.setdefault(claim.line, []).append(claim)
    left: dict[int, Counter[float]] = {
        n: Counter(round(v, 9) for c in claims for v in _carried(c))
        for n, claims in by_line.items()
    }
    missing = []
    for n, kind, token in _figures(text):
        claims = by_line.get(n, [])
        if kind == "number":
            value = round(float(token.replace(",", "")), 9)
            if left.get(n, Counter())[value] > 0:
                left[n][value] -= 1
                continue
        elif any(_names(kind, token, c) for c in claims):
            continue
        missing.append((n, kind, token))
    return missing


def _names(kind: str, word: str, claim: Claim) -> bool:
    """A pattern word is a claim's name or key; the head word a head_kind's name; a dtype
    word any dtype claim of its line."""
    if kind == "pattern":
        return word in (claim.name, claim.about)
    if kind == "heads":
        return claim.quantity == "head_kind" and claim.name == word
    return kind == "dtype" and "dtype" in claim.quantity


def _all_two_four() -> spec.Analysis:
    """Every linear matrix 2:4: the summary row reads "2:4 (14 of 14)"."""
    a = spec.analysis()
    dense = sum(p.weights for p in a.patterns)
    zeros = sum(p.zeros for p in a.patterns)
    matrices = sum(p.matrices for p in a.patterns)
    return dataclasses.replace(
        a, patterns=(PatternTotals("2:4", matrices, dense, zeros, spec.RUNTIMES["2:4"]),)
    )


def _unstructured() -> spec.Analysis:
    a = _all_two_four()
    (row,) = a.patterns
    return dataclasses.replace(a, patterns=(dataclasses.replace(row, kind="unstructured"),))


def _dead_head_kept() -> spec.Analysis:
    """Query head 1 of layer 0 dead in a live KV group: packing keeps it."""
    a = spec.analysis()
    first, *rest = a.heads.layers
    layers = (dataclasses.replace(first, dead_kept=(1,)), *rest)
    return dataclasses.replace(a, heads=dataclasses.replace(a.heads, layers=layers, dead_kept=1))


VARIANTS = {
    "default": {},
    "local text file": {"perplexity": spec.LOCAL_PERPLEXITY},
    "no bench, no perplexity": {"bench": None, "perplexity": None},
    "no base": {"analysis": spec.analysis(base=False)},
    "all 2:4": {"analysis": _all_two_four()},
    "a dead head kept": {"analysis": _dead_head_kept()},
    "unstructured": {  # no 2:4 matrix: no semi-structured kernels timed
        "analysis": _unstructured(),
        "bench": dataclasses.replace(spec.bench(), semi_structured=()),
    },
}


@pytest.mark.parametrize("name", ["minilm", "nn_pruning", "decoder"])
def test_every_figure_of_a_golden_card_is_read(name):
    text = (GOLDEN / f"{name}_card.md").read_text(encoding="utf-8")
    assert len(_figures(text)) > 100  # the finder finds the card's figures
    assert unread(text) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_figure_of_a_decoder_card_variant_is_read(variant):
    text = render_card(spec.report(**VARIANTS[variant]), figures=FIGURES)
    assert unread(text) == []


def test_the_finder_sees_what_the_readers_miss():
    """A figure no reader knows is reported at its line: the test can fail."""
    text = (GOLDEN / "decoder_card.md").read_text(encoding="utf-8")
    extra = text.replace("## Sparsity\n", "## Sparsity\n\nIt took 37 minutes.\n")
    line = extra.splitlines().index("It took 37 minutes.") + 1
    assert unread(extra) == [(line, "number", "37")]


def _audited(tmp_path: Path, variant: str, edit: tuple[str, str] = ("", ""), weights: bool = True):
    """The decoder card of a variant, one edit applied, audited (without weights: only the
    card's own rules); returns the edited line and the mismatches as (line, quantity)."""
    changes = VARIANTS[variant]
    analysis = changes.get("analysis", spec.analysis())
    out = tmp_path / ("edited" if edit[0] else "as written")
    folder = write_card(out, spec.report(**changes), checkpoint=tmp_path / "no-such-checkpoint")
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert edit[0] in text
    readme.write_text(text.replace(*edit), encoding="utf-8")
    line = next(n for n, s in enumerate(text.splitlines(), 1) if edit[0] in s) if edit[0] else 0
    found = audit(readme, analysis if weights else None).findings
    return line, {(f.line, f.quantity) for f in found if f.verdict == "mismatch"}


ROW = "| Sparsity patterns of the linear matrices | "


@pytest.mark.parametrize("weights", [True, False], ids=["weights", "no weights"])
@pytest.mark.parametrize(
    ("variant", "edit"),
    [
        ("all 2:4", (ROW + "2:4 (14 of 14)", ROW + "unstructured (14 of 14)")),
        ("all 2:4", (ROW + "2:4 (14 of 14)", ROW + "4:8 (14 of 14)")),
        ("unstructured", (ROW + "unstructured (14 of 14)", ROW + "2:4 (14 of 14)")),
        ("default", (ROW + "2:4 (7 of 14), heads", ROW + "1:4 (7 of 14), heads")),
    ],
)
def test_an_edited_pattern_row_is_a_mismatch_on_its_line(tmp_path, variant, edit, weights):
    assert _audited(tmp_path, variant, weights=weights)[1] == set()  # clean as written
    line, mismatches = _audited(tmp_path, variant, edit, weights=weights)
    assert (line, "pattern_matrices") in mismatches


@pytest.mark.parametrize(
    ("old", "new", "quantity"),
    [
        ("removed (query heads) |", "removed |", "head_kind"),
        ("0.4 MB, float16)", "0.4 MB, bfloat16)", "weights_dtype"),
        ("| 1 of 2 | 4, 5, 6, 7 |", "| 1 of 2 | 3, 5, 6, 7 |", "removed_head"),
        (
            "| 1 of 2 | 4, 5, 6, 7 |",
            "| 1 of 2 | 4, 5, 6, 7; dead (kept by packing): 2 |",
            "dead_head",
        ),
        ("| heads | 1 | 5.9% |", "| heads | 2 | 5.9% |", "pattern_table_matrices"),
        ("| 240.0 | **1.14x** | 10 |", "| 240.0 | **1.41x** | 10 |", "decode_speedup"),
        ("2.10 ms dense, 1.50 ms sparse", "2.10 ms dense, 1.05 ms sparse", "sparse_kernel_speedup"),
        ("(95% CI 21.00 to 26.50)", "(95% CI 24.00 to 26.50)", "perplexity"),
        ("at most 3.10e-05 (", "at most 3.10e-03 (", "equivalence_max_diff"),
        ("every 4 query heads share", "every 2 query heads share", "heads_per_kv_group"),
        ("269,760 parameters", "296,760 parameters", "base_params"),
    ],
)
def test_an_edited_figure_of_the_decoder_card_is_a_mismatch_on_its_line(
    tmp_path, old, new, quantity
):
    line, mismatches = _audited(tmp_path, "default", (old, new))
    assert (line, quantity) in mismatches


def test_the_model_index_dataset_name_is_located_at_its_line():
    """A long dataset name YAML folds over lines (the decoder card's perplexity text) is
    found at its `name:` key's line, after `dataset:`, not at the model's `- name:` line."""
    text = (GOLDEN / "decoder_card.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    expected = next(n for n, line in enumerate(lines, 1) if line.strip() == "dataset:") + 1
    assert lines[expected - 1].strip().startswith("name: ")
    (claim,) = [c for c in extract_claims(text).claims if c.quantity == "dataset_name"]
    assert claim.line == expected
