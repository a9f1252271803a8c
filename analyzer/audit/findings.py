"""The audit's records (a finding per check, the report) and the rules every check shares:
how a printed figure is compared with a measured one, and how claims printed together are
paired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from analyzer.audit.claims import Claim, scale
from analyzer.text import fixed

__all__ = [
    "AUDIT_SCHEMA",
    "COUNTS",
    "MISMATCH",
    "OK",
    "UNCHECKED",
    "WARNING",
    "AuditFinding",
    "AuditReport",
    "Partners",
    "compare",
    "finding",
    "format_finding",
    "half",
    "judged",
    "rounding_rule",
    "unchecked",
    "with_reason",
    "within_slack",
]

AUDIT_SCHEMA = "prunecard.audit/1"
OK, MISMATCH, WARNING, UNCHECKED = "ok", "mismatch", "warning", "not checkable"


@dataclass(frozen=True)
class AuditFinding:
    """One check of one claim."""

    quantity: str  # what the claim is about ("linear_density", "f1_variation", ...)
    text: str  # the card's words
    line: int  # 1-based line in the card
    section: str  # heading above the claim
    source: str  # where in the card: "prose", "results table", "metadata", ...
    claimed: str  # as printed, with its unit
    measured: str  # what it was compared with ("" when nothing was)
    check: str  # "weights", "evaluation", "bench", "re-timed", "internal", "range" or "format"
    rule: str  # the tolerance rule applied, in words
    verdict: str  # "ok", "mismatch", "warning" (missing or ambiguous) or "not checkable"
    reason: str = ""  # why not checkable, or a hint about a mismatch
    claimed_value: float | None = None
    measured_value: float | None = None
    file: str = ""  # the file the claim was read from when not the card


@dataclass(frozen=True)
class AuditReport:
    card: str
    checkpoint: str  # "" when audited without weights
    evaluation: str  # the --eval file, "" if none
    bench: str  # the --bench file, "" if none
    claims: int  # claims found in the card
    findings: tuple[AuditFinding, ...]
    schema: str = AUDIT_SCHEMA

    def count(self, verdict: str) -> int:
        return sum(1 for f in self.findings if f.verdict == verdict)

    @property
    def passed(self) -> bool:
        """Every checkable claim holds."""
        return self.count(MISMATCH) == 0

    def failed(self, strict: bool = False) -> bool:
        """A mismatch fails the audit; with `strict`, a warning too."""
        return not self.passed or (strict and self.count(WARNING) > 0)


COUNTS = {
    "heads_removed",
    "heads_dead_kept",
    "heads_total",
    "ffn_units_kept",
    "ffn_units_total",
    "linear_nnz",
    "linear_dense",
    "linear_packed",
    "layer_heads_kept",
    "layer_ffn_units_kept",
    "layer_linear_packed",
    "eval_questions",
    "HasAns_total",
    "NoAns_total",
}


def finding(
    claim: Claim,
    check: str,
    measured: str,
    rule: str,
    verdict: str,
    reason: str = "",
    measured_value: float | None = None,
) -> AuditFinding:
    return AuditFinding(
        quantity=claim.quantity,
        text=claim.text,
        line=claim.line,
        section=claim.section,
        source=claim.source,
        claimed=claim.printed,
        measured=measured,
        check=check,
        rule=rule,
        verdict=verdict,
        reason=reason,
        claimed_value=claim.value,
        measured_value=measured_value,
        file=claim.file,
    )


def unchecked(claim: Claim, reason: str, check: str = "") -> AuditFinding:
    """A claim nothing was compared with, and why (`check`: what would have been)."""
    return finding(claim, check, "", "", UNCHECKED, reason)


def format_finding(line: int, text: str, problem: str, verdict: str = MISMATCH) -> AuditFinding:
    return AuditFinding(
        quantity="card format",
        text=text,
        line=line,
        section="front matter",
        source="metadata",
        claimed="valid front matter",
        measured=problem,
        check="format",
        rule="YAML front matter from line 1, parsed by PyYAML as the Hub does (a card "
        "without any is accepted by the Hub: a warning)",
        verdict=verdict,
    )


def judged(
    claim: Claim,
    check: str,
    measured: str,
    rule: str,
    ok: bool,
    measured_value: float | None = None,
    reason: str = "",
) -> AuditFinding:
    """The finding of a rule that holds or not: ok, else a mismatch."""
    return finding(claim, check, measured, rule, OK if ok else MISMATCH, reason, measured_value)


def half(claim: Claim) -> float:
    """Half a unit in the last printed place, in base units (the rounding slack)."""
    return 0.5 * 10.0**-claim.decimals * scale(claim)


def _fmt(value: float, decimals: int, unit: str = "") -> str:
    return f"{fixed(value, decimals)}{unit}"


def rounding_rule(claim: Claim, unit: str = "") -> str:
    d = claim.decimals
    places = f"{d} decimal{'s' if d != 1 else ''}"
    if claim.quantity in COUNTS and not claim.unit:
        return "a count: must equal the measured count exactly"
    return (
        f"printed with {places}: the measurement rounded half up to {places} must equal it exactly"
    )


def compare(
    claim: Claim,
    check: str,
    measured: float,
    shown_decimals: int,
    unit: str = "",
    rule: str = "",
    measured_text: str = "",
) -> AuditFinding:
    """Rounding rule: the measurement rounded as prunecard prints it (`text.fixed`, half up)
    to the claim's decimals must equal the claim; no tolerance beyond that rounding."""
    assert claim.value is not None
    ok = fixed(measured / scale(claim), claim.decimals) == fixed(claim.value, claim.decimals)
    reason = ""
    if not ok:
        factor = 10.0**claim.decimals
        truncated = math.trunc(measured / scale(claim) * factor) / factor
        if truncated == claim.value:
            reason = "the measurement truncated (not rounded) gives the claimed figure"
    text = measured_text or _fmt(
        measured / scale(claim), max(shown_decimals, claim.decimals), unit or claim.unit
    )
    return judged(claim, check, text, rule or rounding_rule(claim, unit), ok, measured, reason)


def within_slack(
    claim: Claim, check: str, expected: float, slack: float, rule: str, shown: str
) -> AuditFinding:
    """`claim` against a figure computed from other printed figures: equal within `slack`,
    what the roundings of the printed figures allow; `rule` says how it was computed."""
    assert claim.value is not None
    ok = abs(claim.value - expected) <= slack + 1e-9
    rule = f"{rule} (|difference| <= {slack:g})"
    return judged(claim, check, shown, rule, ok, expected)


class Partners:
    """Claims printed together (same line and source), indexed by what pairs them, and the
    claims of each quantity, so that pairing every claim costs one dict lookup instead of
    a scan of the card's claims."""

    def __init__(self, claims: tuple[Claim, ...]) -> None:
        self._by: dict[tuple[int, str, str], Claim] = {}
        self._named: dict[str, list[Claim]] = {}
        for c in claims:
            self._named.setdefault(c.quantity, []).append(c)
            if c.value is not None:
                self._by.setdefault((c.line, c.source, c.quantity), c)

    def of(self, claim: Claim, quantity: str) -> Claim | None:
        """The claim of `quantity` printed in the same sentence or table row as `claim`."""
        return self._by.get((claim.line, claim.source, quantity))

    def named(self, quantity: str) -> list[Claim]:
        """Every claim of `quantity`, in the card's order."""
        return self._named.get(quantity, [])

    def first(self, quantity: str) -> Claim | None:
        """The card's first claim of `quantity` with a figure."""
        return next((c for c in self.named(quantity) if c.value is not None), None)


def with_reason(found: AuditFinding, reason: str) -> AuditFinding:
    """`found` with `reason` added to its note."""
    return replace(found, reason="; ".join(r for r in (found.reason, reason) if r))
