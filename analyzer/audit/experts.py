"""Mixture-of-experts pruning: "16 of 64 experts removed (25%)", "25% of experts pruned",
"25% expert-pruned" (a share of experts, not of weights), "48 experts per layer",
"from 64 to 48 experts", "8 active experts". Checks: the share is the count over the
total, and the experts kept per layer are the total less those removed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import Claim, masked, number
from analyzer.audit.registry import Family, register
from analyzer.text import fixed

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = ["Experts"]

_PCT = r"(\d{1,3}(?:\.\d{1,3})?)\s?%"
_REMOVED = re.compile(
    rf"\b(\d{{1,4}}) (?:of|out of) (\d{{1,4}}) (?:routed )?experts (?:are |were |have been )?"
    rf"(?:removed|pruned|dropped)(?: \({_PCT}\))?",
    re.I,
)
_SHARE = re.compile(
    rf"\b{_PCT} of (?:the |its )?(?:routed )?experts (?:are |were |have been )?"
    r"(?:removed|pruned|dropped)"
    rf"|\b{_PCT} expert[- ]prun(?:ed|ing)\b",
    re.I,
)
_PER_LAYER = re.compile(r"\b(\d{1,4}) (?:routed )?experts per (?:layer|MoE layer)\b", re.I)
_FROM_TO = re.compile(
    r"\bfrom (\d{1,4}) to (\d{1,4}) (?:routed )?experts\b|\b(\d{1,4}) -> (\d{1,4}) experts\b", re.I
)
_ACTIVE = re.compile(
    r"\b(\d{1,3}) (?:active experts|experts active)\b|\btop-(\d{1,2}) routing\b", re.I
)


@register("experts")
class Experts(Family):
    def prose(self, plain_line: str, line: int, section: str) -> list[Claim]:
        text = masked(plain_line)
        out: list[Claim] = []

        def add(
            quantity: str, m: re.Match[str], printed: str, unit: str = "", about: str = ""
        ) -> None:
            value, decimals = number(printed)
            out.append(Claim(quantity, m.group(0), line, section, "prose", value, decimals,
                             unit, about=about))  # fmt: skip

        for m in _REMOVED.finditer(text):
            add("experts_removed", m, m.group(1))
            add("experts_total", m, m.group(2))
            if m.group(3):
                add("experts_removed_pct", m, m.group(3), "%")
        for m in _SHARE.finditer(text):
            add("experts_removed_pct", m, m.group(1) or m.group(2), "%")
        for m in _PER_LAYER.finditer(text):
            add("experts_per_layer", m, m.group(1))
        for m in _FROM_TO.finditer(text):
            add("experts_total", m, m.group(1) or m.group(3))
            add("experts_per_layer", m, m.group(2) or m.group(4))
        for m in _ACTIVE.finditer(text):
            add("experts_active", m, m.group(1) or m.group(2))
        return out

    def measured(
        self, claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
    ) -> findings.AuditFinding | None:
        if claim.quantity.startswith("experts_"):
            return findings.unchecked(
                claim, "the analysis record holds no expert counts; see the internal check"
            )
        return None

    def internal(self, partners: findings.Partners) -> list[findings.AuditFinding]:
        out = []
        for pct in partners.named("experts_removed_pct"):
            removed = partners.of(pct, "experts_removed") or partners.first("experts_removed")
            total = partners.of(pct, "experts_total") or partners.first("experts_total")
            if removed is None or total is None or not total.value:
                continue
            assert removed.value is not None
            rule = (
                f"share = {removed.printed} / {total.printed} experts; "
                + findings.rounding_rule(pct)
            )
            out.append(
                findings.compare(pct, "internal", 100 * removed.value / total.value, 3, rule=rule)
            )
        total, removed = partners.first("experts_total"), partners.first("experts_removed")
        for kept in partners.named("experts_per_layer"):
            if total is None or removed is None or kept.value is None:
                continue
            assert total.value is not None and removed.value is not None
            expected = total.value - removed.value
            rule = (
                f"experts per layer = {total.printed} (line {total.line}) - {removed.printed} "
                f"removed (line {removed.line})"
            )
            out.append(findings.judged(kept, "internal", fixed(expected, 0), rule,
                                       kept.value == expected, expected))  # fmt: skip
        return out
