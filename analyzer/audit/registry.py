"""One registry of claim phrasing families, in the manner of lm-eval's `register_task`.

A family is a class whose methods read one kind of card text (prose lines, tables, code
blocks, front matter), and say how its claims are checked (`measured`, `internal`). It
registers itself with `@register("name")`; `walker.py` hands every piece of a card to each
registered family, in registration order, and `checks.py` asks them for their findings.
Adding a phrasing is one small module with one class (docs/audit.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.audit.claims import Claim
    from analyzer.audit.findings import AuditFinding, Partners
    from analyzer.records import Analysis

__all__ = ["Family", "UnknownFamily", "family", "register", "registered"]

Rows = list[tuple[int, list[str]]]  # a Markdown table: (line, raw cells), the header first


class Family:
    """A phrasing family: every method has a default that reads or checks nothing."""

    name = ""

    def prose(self, plain: str, line: int, section: str) -> list[Claim]:
        """Claims of one prose line, list item or heading (emphasis and code marks removed)."""
        return []

    def table(self, rows: Rows, section: str) -> list[Claim]:
        """Claims of a Markdown table (rows as (line, raw cells), the header first)."""
        return []

    def code_block(self, block: list[str], first_line: int, section: str) -> list[Claim]:
        """Claims of a fenced code block's lines."""
        return []

    def metadata(self, front: dict[str, Any], lines: list[str], body: int) -> list[Claim]:
        """Claims of the YAML front matter (`body`: index of the first body line)."""
        return []

    def body_lines(self, lines: list[str], start: int) -> list[Claim]:
        """Claims read from the card's raw body lines (`start`: the first), links and
        code included: nn_pruning's model ids. The walker fills in their sections."""
        return []

    def measured(
        self, claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
    ) -> AuditFinding | None:
        """The finding for a claim this family owns, or None if it is not its."""
        return None

    def internal(self, partners: Partners) -> list[AuditFinding]:
        """The family's rules between figures of the card itself (no weights needed)."""
        return []


class UnknownFamily(KeyError):
    """A family name nothing registered."""

    def __str__(self) -> str:
        return str(self.args[0])


_FAMILIES: dict[str, Family] = {}
F = TypeVar("F", bound=type[Family])


def register(name: str) -> Callable[[F], F]:
    """Class decorator: register one instance of the family under `name` (once)."""

    def decorate(cls: F) -> F:
        if name in _FAMILIES:
            raise ValueError(f"claim family {name!r} is already registered")
        instance = cls()
        instance.name = name
        _FAMILIES[name] = instance
        return cls

    return decorate


def family(name: str) -> Family:
    """The registered family `name`; an UnknownFamily error names the known ones."""
    try:
        return _FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(_FAMILIES)) or "none"
        raise UnknownFamily(f"unknown claim family {name!r}; registered: {known}") from None


def registered() -> tuple[Family, ...]:
    """Every registered family, in registration order."""
    return tuple(_FAMILIES.values())
