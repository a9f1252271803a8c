"""Plain-text figures and tables, shared by the card, the site, the figures, the CLI and
the audit: the one place a number becomes text, so a figure shown in two places prints
identically.

The rounding rule: a float is rounded from its shortest decimal representation (`repr`),
halves away from zero ("half up"). 2.675 is stored as 2.67499999... in binary, but it
prints as 2.675 and a reader rounding that gets 2.68, so `fixed(2.675, 2)` is "2.68"
(Python's `f"{2.675:.2f}"` gives "2.67"); 0.8125 is "81.3%" (`:.1f` rounds the tie to
even, "81.2%"). A percentage is that rule applied to the float `100 * fraction`, the
value a percent axis plots. Never truncated: 0.169996 is "17.0%". A displayed figure is
never printed with Python's own format (round half to even on the binary value).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

__all__ = [
    "count",
    "fixed",
    "megabytes",
    "percent",
    "ratio",
    "rounded",
    "signed",
    "signed_difference",
    "table",
]


def rounded(value: float | Decimal, digits: int) -> Decimal:
    """`value` to `digits` decimals by the rule above; an int or a Decimal is taken exactly,
    and a zero has no sign ("0.00", never "-0.00"); a non-finite value stays as it is."""
    exact = Decimal(value) if isinstance(value, int | Decimal) else Decimal(repr(float(value)))
    if not exact.is_finite():
        return exact
    result = exact.quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)
    return result if result else result.copy_abs()


def fixed(value: float | Decimal, digits: int = 2) -> str:
    """`value` with exactly `digits` decimals: fixed(83.125, 2) -> '83.13'."""
    return f"{rounded(value, digits):f}"


def percent(fraction: float, digits: int = 1) -> str:
    """A fraction as a percentage: 0.8125 -> '81.3%', 0.169996 -> '17.0%'."""
    return f"{fixed(100 * fraction, digits)}%"


def ratio(value: float, digits: int = 2) -> str:
    """A speedup or a bound: 1.825 -> '1.83x'."""
    return f"{fixed(value, digits)}x"


def count(n: float) -> str:
    """A whole number with thousands separated: 1234 -> '1,234' (a float is rounded)."""
    return f"{rounded(n, 0):,f}"


def megabytes(n_bytes: int) -> str:
    """A size in MB (10^6 bytes) with 1 decimal: 1_250_000 -> '1.3 MB'."""
    return f"{fixed(n_bytes / 1e6, 1)} MB"


def signed(value: float | Decimal, digits: int = 2) -> str:
    """A change with its sign: '+0.25', '-3.28'; no change is '0.00'."""
    shown = rounded(value, digits)
    return f"{shown:+f}" if shown else f"{shown:f}"


def signed_difference(value: float, reference: float, digits: int = 2) -> str:
    """`value - reference` from the two numbers as displayed (rounded first), with a sign,
    so "82.57 vs 85.85, -3.28" adds up; no difference is '0.00'."""
    return signed(rounded(value, digits) - rounded(reference, digits), digits)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("%", "").replace("-", "").isdigit()
