"""What a family of models trades: the Pareto frontier of a score against a cost, and the
scores a family can be compared by.

A model is on the frontier when no other model is at least as good on both axes and
better on one; the frontier, ordered along the x axis, is what a reader chooses from.
Each axis says which way is better (speedup up, density and parameters down; F1 up,
perplexity down), so the same rule serves every plot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from analyzer.records import Report
from analyzer.text import fixed

__all__ = ["Axis", "Point", "dominates", "frontier", "neighbours", "score_axes"]


@dataclass(frozen=True)
class Axis:
    """One axis of a comparison plot."""

    stem: str  # the file name's part: "speedup", "f1", ...
    label: str  # the axis label
    short: str  # the word in headings and tooltips
    higher_is_better: bool
    reference: float | None = None  # the dense model's value by definition, kept in view
    digits: int = 2  # decimals of a value in tooltips and links, as the tables print it
    unit: str = ""  # printed after a value: "x", "%", " M"

    def shown(self, value: float) -> str:
        """A value on this axis as the site's tables and the card print it."""
        return f"{fixed(value, self.digits)}{self.unit}"


@dataclass(frozen=True)
class Point:
    """One model on one plot."""

    name: str  # the model page's title
    slug: str  # its page folder under models/
    x: float
    y: float
    base: bool = False  # the dense base the others are compared with


def _better_or_equal(a: float, b: float, higher: bool) -> bool:
    return a >= b if higher else a <= b


def dominates(p: Point, q: Point, x: Axis, y: Axis) -> bool:
    """Whether `p` is at least as good as `q` on both axes and better on one."""
    at_least = _better_or_equal(p.x, q.x, x.higher_is_better) and _better_or_equal(
        p.y, q.y, y.higher_is_better
    )
    return at_least and (p.x != q.x or p.y != q.y)


def frontier(points: Sequence[Point], x: Axis, y: Axis) -> tuple[Point, ...]:
    """The points no other point dominates, in increasing x (ties by name)."""
    kept = [p for p in points if not any(dominates(q, p, x, y) for q in points)]
    return tuple(sorted(kept, key=lambda p: (p.x, p.y, p.name)))


def neighbours(point: Point, line: Sequence[Point]) -> tuple[Point | None, Point | None]:
    """The frontier points beside `point` along x: for a point on the frontier the ones
    before and after it; for one off it, the closest at or below its x and above it."""
    if point in line:
        i = line.index(point)
        return (line[i - 1] if i else None, line[i + 1] if i + 1 < len(line) else None)
    below = [p for p in line if p.x <= point.x]
    above = [p for p in line if p.x > point.x]
    return (below[-1] if below else None, above[0] if above else None)


ScoreOf = Callable[[Report], float | None]


def score_axes(reports: Sequence[Report]) -> list[tuple[Axis, ScoreOf]]:
    """The scores to plot, keyed on what the records hold: SQuAD v2 F1 and EM where any
    model was evaluated on it, perplexity (lower is better) where any causal LM was.
    A new score (an lm-eval average) is one more entry here."""
    axes: list[tuple[Axis, ScoreOf]] = []
    if any(r.evaluation is not None for r in reports):
        axes.append(
            (
                Axis("f1", "SQuAD v2 F1", "F1", True),
                lambda r: r.evaluation.scores.f1 if r.evaluation else None,
            )
        )
    if any(r.perplexity is not None for r in reports):
        axes.append(
            (
                Axis("perplexity", "Perplexity", "perplexity", False),
                lambda r: r.perplexity.perplexity if r.perplexity else None,
            )
        )
    if not axes:  # nothing evaluated: the page says F1 was not measured
        axes.append((Axis("f1", "SQuAD v2 F1", "F1", True), lambda r: None))
    return axes
