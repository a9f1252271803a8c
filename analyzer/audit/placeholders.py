"""Placeholders of usage blocks (`/path/to/model`, `<your-model>`, `YOUR_TOKEN`): the
reader's own values, recognised as such (never the author's machine, never a mismatch)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import Claim
from analyzer.audit.registry import Family, register

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = ["PLACEHOLDER", "Placeholders"]

PLACEHOLDER = re.compile(
    r"(?:~?/path/to/[\w./-]{0,200}|<(?:your|my|path|model|the)[\w -]{0,40}>"
    r"|\bYOUR_[A-Z_]{1,40}\b|\{(?:your|model)_[\w]{1,40}\})",
    re.I,
)


def _read(text: str, line: int, section: str, source: str) -> list[Claim]:
    return [
        Claim("placeholder", text.strip(), line, section, source, name=m.group(0))
        for m in PLACEHOLDER.finditer(text)
    ]


@register("placeholders")
class Placeholders(Family):
    def prose(self, plain_line: str, line: int, section: str) -> list[Claim]:
        return _read(plain_line, line, section, "prose")

    def code_block(self, block: list[str], first_line: int, section: str) -> list[Claim]:
        return [
            c for i, raw in enumerate(block) for c in _read(raw, first_line + i, section, "code")
        ]

    def measured(
        self, claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
    ) -> findings.AuditFinding | None:
        if claim.quantity == "placeholder":
            return findings.unchecked(claim, "a placeholder for the reader's own value")
        return None
