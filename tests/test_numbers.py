"""One rounding rule for every figure prunecard prints (`analyzer.text`): checked against an
oracle that rounds the digits of `repr` by integer arithmetic and against hand-worked
cases, then on rendered output: a figure prints the same on the card, the site, the CLI
and the figures, for random records and end to end for a density of exactly 0.8125 and a
speedup of 1.825 (ties that Python's `format` rounds the other way)."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import decoder_reports as spec
from conftest import LINEAR_DENSE, PruneSpec, build_minilm
from hypothesis import given, settings
from hypothesis import strategies as st
from site_reports import bench, evaluation, write_report_dir

from analyzer.cli import tables
from analyzer.cli.main import main
from analyzer.publish import card, figures, site
from analyzer.publish.card import CardOptions, render_card
from analyzer.publish.site import COSTS, ModelPage, build_site, model_markdown
from analyzer.records import Report, load_record
from analyzer.text import count, fixed, megabytes, percent, ratio, signed, signed_difference


def half_up(numeral: str, digits: int) -> str:
    """A decimal numeral as `repr` writes it ('-2.675', '1e-05', '1.5e+16') rounded to
    `digits` decimals, halves away from zero, by integer arithmetic on its digits."""
    sign = "-" if numeral.startswith("-") else ""
    mantissa, _, exponent = numeral.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    n = int(whole + fraction)  # the numeral is n * 10**power
    power = int(exponent or 0) - len(fraction)
    shift = power + digits  # the numeral times 10**digits is n * 10**shift
    if shift >= 0:
        scaled = n * 10**shift
    else:
        scaled, rest = divmod(n, 10**-shift)
        scaled += 2 * rest >= 10**-shift
    text = str(scaled).rjust(digits + 1, "0")
    body = f"{text[:-digits]}.{text[-digits:]}" if digits else text
    return (sign if scaled else "") + body


FRACTIONS = st.one_of(
    st.floats(0, 1),
    st.integers(0, 1024).map(lambda k: k / 1024),  # binary ties: 0.8125 is 13/16
    st.integers(0, 999).map(lambda k: (2 * k + 1) / 2000),  # decimal ties at 1 decimal
)
RATIOS = st.one_of(
    st.floats(0, 100),
    st.integers(0, 9999).map(lambda k: (2 * k + 1) / 200),  # 1.825 is 365 / 200
)


def test_hand_worked_cases():
    # ties Python's format rounds to even on the binary value; the rule rounds the printed
    # value half up, as a reader rounding the repr would
    assert (f"{81.25:.1f}", percent(0.8125)) == ("81.2", "81.3%")
    assert (f"{1.825:.2f}", ratio(1.825)) == ("1.82", "1.83x")
    assert (f"{2.675:.2f}", fixed(2.675, 2)) == ("2.67", "2.68")  # 2.67499999... in binary
    assert percent(0.81249) == "81.2%"
    assert percent(0.169996) == "17.0%"  # rounded, never truncated
    assert percent(0.575, 0) == "57%"  # 100 * 0.575 is 57.49999999999999: no tie
    assert fixed(-2.675, 2) == "-2.68"  # halves away from zero
    assert fixed(-0.001, 2) == "0.00"  # a zero has no sign
    assert fixed(83.125, 2) == "83.13"
    assert (
        count(1234) == "1,234"
        and count(2.5) == "3"
        and count(10**17 + 1) == "100,000,000,000,000,001"
    )
    assert megabytes(1_250_000) == "1.3 MB"
    assert signed_difference(82.566, 85.854) == "-3.28"  # 82.57 - 85.85, as displayed
    assert signed_difference(83.125, 83.12) == "+0.01"  # 83.13 - 83.12
    assert signed_difference(83.125, 83.125) == "0.00"
    assert signed(0.125) == "+0.13" and signed(-0.125) == "-0.13"
    assert signed(-0.001) == "0.00"  # Python's f"{-0.001:+.2f}" is "-0.00"
    assert fixed(Decimal("2.675"), 2) == "2.68"  # a Decimal is taken as it is


def test_the_oracle_on_its_own_hand_cases():
    assert half_up("2.675", 2) == "2.68"
    assert half_up("-0.0049", 2) == "0.00"
    assert half_up("1e-05", 4) == "0.0000" and half_up("5e-05", 4) == "0.0001"
    assert half_up("1.5e+16", 0) == "15000000000000000"
    assert half_up("9.995", 2) == "10.00"


@given(st.floats(-1e15, 1e15), st.integers(0, 6))
def test_fixed_rounds_the_repr_half_up(value, digits):
    assert fixed(value, digits) == half_up(repr(value), digits)


@given(FRACTIONS, st.integers(0, 2))
def test_percent_rounds_the_repr_of_the_percentage(fraction, digits):
    assert percent(fraction, digits) == half_up(repr(100 * fraction), digits) + "%"


@given(FRACTIONS, RATIOS)
def test_every_formatter_prints_the_same_string(fraction, speedup):
    """The card's filters, the site's cells and axes, the CLI's tables and the figures'
    captions and tooltips: one string per figure."""
    pct, x = half_up(repr(100 * fraction), 1) + "%", half_up(repr(speedup), 2) + "x"
    speed_axis, density_axis = COSTS[0][0], COSTS[1][0]
    assert {
        card.FILTERS["pct"](fraction),
        site.percent(fraction),
        tables.percent(fraction),
        figures.percent(fraction),
        density_axis.shown(COSTS[1][1](_row(density=fraction))),
    } == {pct}
    assert {
        card.FILTERS["ratio"](speedup),
        site.ratio(speedup),
        tables.ratio(speedup),
        speed_axis.shown(COSTS[0][1](_row(speedup=speedup))),
    } == {x}


def _row(**values) -> SimpleNamespace:
    """The fields a COSTS accessor reads from a site row."""
    return SimpleNamespace(**({"speedup": None, "density": None, "packed": None} | values))


def _with(report: Report, density: float, speedup: float) -> Report:
    """The decoder report with its linear density and its 4 x 512 speedup replaced."""
    a = report.analysis
    shapes = list(report.bench.shapes)
    shapes[1] = dataclasses.replace(shapes[1], speedup=speedup)
    return dataclasses.replace(
        report,
        analysis=dataclasses.replace(a, linear=dataclasses.replace(a.linear, density=density)),
        bench=dataclasses.replace(report.bench, shapes=tuple(shapes)),
    )


@settings(max_examples=25, deadline=None)
@given(FRACTIONS, RATIOS)
def test_card_site_and_cli_print_a_figure_alike(fraction, speedup):
    report = _with(spec.report(), fraction, speedup)
    pct, x = half_up(repr(100 * fraction), 1) + "%", half_up(repr(speedup), 2) + "x"
    text = render_card(report, CardOptions())
    page = model_markdown(ModelPage(Path("r"), "r", "r", report, ""), Path("no-assets"))
    cli = tables.format_analysis(report.analysis) + "\n" + tables.format_bench(report.bench)
    assert f"| **{pct}** (" in text
    assert f"| Linear density | {pct} (" in page
    assert f"linear density  {pct}  (" in cli
    assert f"**{x}**" in _line(text, "| 4 x 512 |")
    assert f"| {x} |" in _line(page, "| 4 x 512 |")
    assert x in _line(cli, "4  512 ").split()


def _line(text: str, start: str) -> str:
    (line,) = [line for line in text.splitlines() if line.lstrip().startswith(start)]
    return line


# 432 of the 1,536 FFN units zeroed in every layer: 18.75% of the linear weights exactly
TIE_SPEC = PruneSpec(zero_units={layer: tuple(range(432)) for layer in range(6)})


def test_a_tie_prints_the_same_on_the_card_the_site_and_the_cli(tmp_path, capsys):
    assert 1 - TIE_SPEC.linear_zeros / LINEAR_DENSE == 0.8125 == 13 / 16
    assert 7.3 / 4.0 == 1.825  # dense 7.3 ms, packed 4.0 ms
    checkpoint = build_minilm(tmp_path / "ckpt", TIE_SPEC)
    assert main(["analyze", str(checkpoint)]) == 0
    cli = capsys.readouterr().out
    folder = write_report_dir(
        tmp_path / "tie",
        checkpoint,
        "MiniLM tie",
        bench_record=bench(7.3, 4.0),
        evaluation_record=evaluation(61.25, 64.5, 200),
    )
    report = load_record(Report, folder / "report.json")
    assert report.analysis.linear.density == 0.8125
    assert report.bench.shapes[1].speedup == 1.825
    cli += tables.format_bench(report.bench)  # what `prunecard bench` prints
    readme = (folder / "README.md").read_text()
    out = build_site([folder], tmp_path / "out").parent  # the built site
    home = (out / "index.html").read_text()
    (model,) = (out / "models").glob("*/index.html")
    page = model.read_text()
    compare = (out / "compare.html").read_text()

    assert "linear density  81.3%  (" in cli
    assert "| **81.3%** (" in readme
    assert "<td>Linear density</td>\n<td>81.3% (" in page
    assert re.search(r'<td data-sort="0\.8125"[^>]*>81\.3%</td>', home)
    assert "linear density 81.3%" in page  # the density figure's title, inlined as SVG text
    assert "1.83x" in _line(cli, "8  128 ").split()
    assert "**1.83x**" in _line(readme, "| 8 x 128 |")
    assert "<td>1.83x</td>" in page
    assert re.search(r'<td data-sort="1\.825"[^>]*>1\.83x</td>', home)
    assert "Speedup, packed vs dense 1.83x" in compare  # the plot's tooltip
    for text in (cli, readme, home, page, compare):
        assert "81.2%" not in text and "1.82x" not in text
