"""Plain-text figures and tables, shared by the CLI, the site and the audit."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["percent", "table"]


def percent(fraction: float, digits: int = 1) -> str:
    """A fraction as a rounded (never truncated) percentage: 0.169996 -> '17.0%'."""
    return f"{100 * fraction:.{digits}f}%"


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
