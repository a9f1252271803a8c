"""Sparsity statements as the Intel, Neural Magic / SparseML, movement-pruning and
block-pruning cards write them, in prose and in tables.

- a sparsity: "90% sparse", "sparsity: 80%", "80% sparsity", "sparsity of 90%",
  "final_sparsity: 0.9" (a SparseML recipe's fraction), "N% of the weights are zero";
- what remains: "10% of the weights remaining", "remaining weights: 10%" (movement pruning);
- a pattern: "2:4" (N:M semi-structured), "1x4 block", "32x32 blocks", "4-block";
- heads: "pruned heads", "12 heads pruned", "pruned 12 attention heads",
  "12 of 144 heads are pruned (8.3%)";
- ratios: "3.5x faster", "4 times smaller", "speedup of 3x" ("as fast as" / "faster than"
  are nn_pruning's, read by `claims.py`).

These methods prune the encoder's linear layers (not the embeddings), so a bare sparsity
is about the linear layers; "of all (the) parameters" makes it overall. Every pattern is a
bounded run of literal words and digits: linear time on any line.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import Claim, masked
from analyzer.audit.claims import number as _number
from analyzer.audit.claims import plain as _plain
from analyzer.audit.registry import Family, register
from analyzer.text import fixed, percent

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = ["PATTERNS", "SparsityPhrases", "internal", "measured", "prose", "table"]

_PCT = r"(\d{1,3}(?:\.\d{1,3})?)\s?%"
_KIND = r"(?:\d{1,2}x\d{1,2} )?(?:unstructured |structured |semi-structured |block |weight )?"
_ALL = r"(of all (?:the )?(?:parameters|weights)|of the parameters|overall)?"
# (pattern, quantity, how to read group 1): "pct", "fraction", "remaining"
PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(rf"\b{_PCT}[ -]{_KIND}sparse\b", re.I), "linear_sparsity", "pct"),
    (re.compile(rf"\b{_PCT} {_KIND}sparsity\b", re.I), "linear_sparsity", "pct"),
    (
        re.compile(rf"\b{_KIND}sparsity(?: level)?(?: of| is|:| =)? {_PCT}", re.I),
        "linear_sparsity",
        "pct",
    ),
    (
        re.compile(r"\bfinal_sparsity\s?[:=]\s?(0?\.\d{1,4}|1\.0{1,4})\b", re.I),
        "linear_sparsity",
        "fraction",
    ),
    (
        re.compile(
            rf"\b{_PCT} {_ALL} ?(?:of (?:the |its |all )?(?:linear |encoder |model )?"
            r"(?:weights|parameters) )?(?:are|is|were|set to) (?:zeros?|pruned|removed)\b",
            re.I,
        ),
        "linear_sparsity",
        "pct",
    ),
    (
        re.compile(
            rf"\b{_PCT} of (?:the |its )?(?:encoder's |linear |encoder )?weights remaining\b",
            re.I,
        ),
        "linear_density",
        "pct",
    ),
    (re.compile(rf"\bremaining weights:? {_PCT}", re.I), "linear_density", "pct"),
    (
        re.compile(rf"\bsparsity over all (?:the )?linear layers is (?:at )?{_PCT}", re.I),
        "linear_sparsity",
        "pct",
    ),
    (re.compile(rf"\bsparsification (?:at|of|to|:) ?{_PCT}", re.I), "linear_sparsity", "pct"),
)
_NM = re.compile(
    r"\b([1-8]):([2-9]|1[0-6])[ -](?:semi-structured |structured |fine-grained )?"
    r"(?:sparsity|sparse|pattern)\b|\bsemi-structured \(?([1-8]):([2-9]|1[0-6])\b"
    r"|\bsparsity(?: pattern| structure| type)?:? ([1-8]):([2-9]|1[0-6])\b",
    re.I,
)
_BLOCK = re.compile(
    r"\b(\d{1,3})\s?[x×]\s?(\d{1,3})[ -]blocks?\b|\bblocks? (?:size |of )?(\d{1,3})\s?[x×]\s?"
    r"(\d{1,3})\b|\b(\d{1,2})-block\b",
    re.I,
)
_HEADS = (
    re.compile(
        r"\b(\d{1,4}) (?:of|out of) (\d{1,4}) (?:attention )?heads (?:are |were )?pruned"
        r"(?: \((\d{1,3}(?:\.\d{1,3})?)\s?%\))?",
        re.I,
    ),
    re.compile(r"\b(\d{1,4}) (?:attention )?heads (?:are |were |have been )?pruned\b", re.I),
    re.compile(r"\bpruned (\d{1,4}) (?:attention )?heads\b", re.I),
)
_PRUNED_HEADS = re.compile(r"\b(?:pruned (?:attention )?heads|head pruning)\b", re.I)
_RATIO = re.compile(
    r"\b(\d{1,4}(?:\.\d{1,2})?)\s?(?:x|×|times) (faster|speed-?up|smaller|compression)\b"
    r"(?! than)|\bspeed-?up of (\d{1,4}(?:\.\d{1,2})?)\s?(?:x|×|times)",
    re.I,
)
_SIZE = {"smaller": "size_ratio", "compression": "size_ratio"}


def _read(plain: str, line: int, section: str, source: str, about: str = "") -> list[Claim]:
    def figure(quantity: str, m: re.Match[str], text: str, unit: str = "") -> Claim:
        value, decimals = _number(text)
        return Claim(
            quantity, m.group(0), line, section, source, value, decimals, unit, about=about
        )

    def layout(m: re.Match[str], name: str) -> Claim:
        return Claim("sparsity_pattern", m.group(0), line, section, source, name=name, about=about)

    out: list[Claim] = []
    for pattern, quantity, reading in PATTERNS:
        for m in pattern.finditer(plain):
            text = m.group(1)
            if reading == "fraction":
                value, decimals = _number(text)
                text = f"{100 * value:.{max(0, decimals - 2)}f}"
            overall = quantity == "linear_sparsity" and (m.lastindex or 0) >= 2 and m.group(2)
            which = "overall_sparsity" if overall else quantity
            out.append(figure(which, m, text, "%"))
    for m in _NM.finditer(plain):
        n, total = next((m.group(i), m.group(i + 1)) for i in (1, 3, 5) if m.group(i))
        out.append(layout(m, f"{n}:{total}"))
    for m in _BLOCK.finditer(plain):
        rows = m.group(1) or m.group(3)
        name = f"{rows}x{m.group(2) or m.group(4)} block" if rows else f"{m.group(5)}-block"
        out.append(layout(m, name))
    heads = sorted(
        (m for pattern in _HEADS for m in pattern.finditer(plain)), key=lambda m: m.start()
    )
    end = -1
    for m in heads:
        if m.start() < end:
            continue  # "12 of 144 heads are pruned" also matches "144 heads are pruned"
        end = m.end()
        out.append(figure("heads_removed", m, m.group(1)))
        if m.re is _HEADS[0]:
            out.append(figure("heads_total", m, m.group(2)))
            if m.group(3):
                out.append(figure("heads_removed_pct", m, m.group(3), "%"))
    if not heads:
        for m in _PRUNED_HEADS.finditer(plain):
            out.append(layout(m, "pruned heads"))
    for m in _RATIO.finditer(plain):
        kind = (m.group(2) or "speedup").lower()
        quantity = _SIZE.get(kind, "speedup")
        out.append(figure(quantity, m, m.group(1) or m.group(3), "x"))
    return out


def prose(plain: str, line: int, section: str) -> list[Claim]:
    """Never a pattern or level out of a URL, a model id or a file name (`masked`)."""
    return _read(masked(plain), line, section, "prose")


_LABEL = re.compile(r"(sparsity|density|remaining weights)(?: \(%\))?", re.I)


def table(rows: list[tuple[int, list[str]]], section: str) -> list[Claim]:
    """Key-value rows (`| Sparsity | 90% |`) are about this model; in a comparison table
    each row is about the model its first cell names (kept in `about`)."""
    header = [_plain(c).lower() for c in rows[0][1]]
    out: list[Claim] = []
    for n, raw in rows[1:]:
        cells = [_plain(c) for c in raw]
        if not cells or all(set(c) <= set("-: ") for c in cells):
            continue
        label = _LABEL.fullmatch(cells[0])
        if label and len(cells) >= 2:
            kind = label.group(1).lower()
            kind = "sparsity" if kind == "sparsity" else "remaining weights"
            out += _read(f"{kind}: {cells[1]}", n, section, "table")
            continue
        about = cells[0]
        for index, cell in enumerate(cells[1:], 1):
            head = header[index] if index < len(header) else ""
            text = f"sparsity: {cell}" if "sparsity" in head and "%" in cell else cell
            out += _read(text, n, section, "table", about)
    return out


def measured(
    claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
) -> findings.AuditFinding | None:
    """A sparsity against the linear layers' (or all parameters') zeros; a pattern against
    the analysis's pattern summary (N:M, blocks) or its removed heads."""
    q = claim.quantity
    if q not in ("linear_sparsity", "overall_sparsity", "sparsity_pattern", "size_ratio"):
        return None
    if claim.about:
        return findings.unchecked(
            claim, f"a row of a comparison table ({claim.about}): not stated to be this model"
        )
    if q == "size_ratio":
        return findings.unchecked(
            claim, "compares with a model prunecard does not read; see the internal check"
        )
    if q == "sparsity_pattern" and claim.name != "pruned heads":
        return _pattern(claim, analysis)
    if analysis is None:
        return findings.unchecked(claim, "no weights read (--no-weights)", "weights")
    if q == "sparsity_pattern":
        removed = analysis.heads.removed
        return findings.judged(
            claim,
            "weights",
            f"{removed} of {analysis.heads.total} heads removed",
            "pruned heads: at least one attention head must be removed",
            bool(removed),
            float(removed),
        )
    part = analysis.linear if q == "linear_sparsity" else analysis.overall
    rule = (
        "sparsity = 100% - density of the "
        + (
            "linear layers (the weights these methods prune)"
            if q == "linear_sparsity"
            else "all parameters"
        )
        + "; the measurement rounded to the printed decimals must equal it"
    )
    return findings.compare(claim, "weights", 100 * (1 - part.density), 3, rule=rule)


# pattern names ("2:4", "1x4 block"), bounded like every pattern here: linear on any text
_NM_NAME = re.compile(r"^(\d{1,2}):(\d{1,2})$")
_BLOCK_NAME = re.compile(r"^(\d{1,3})x(\d{1,3})(?: block)?$")
PATTERN_RULE = (
    "the linear matrices whose measured pattern satisfies the claimed one must hold at least "
    "half of the linear layers' zeros (N':M' satisfies N:M when every group of M can hold at "
    "most N non-zeros under it: 1:4 is also 2:4 and 1:2, 2:4 also 4:8; a block pattern is "
    "satisfied by blocks that tile it, "
    "whole rows by 1xK blocks, whole columns by Kx1 blocks; an all-zero layer satisfies any)"
)


def satisfies(kind: str, claimed: str) -> bool:
    """Whether zeros of the measured pattern `kind` (one of PATTERN_KINDS) are also zeros of
    the claimed pattern ("2:4", "1x4 block", "32x32 block")."""
    if kind == "layer":
        return True
    nm, want_nm = _NM_NAME.fullmatch(kind), _NM_NAME.fullmatch(claimed)
    if want_nm:
        if not nm:
            return False
        n, m, want_n, want_m = (int(x) for x in (*nm.groups(), *want_nm.groups()))
        if want_m % m == 0:  # a claimed group holds want_m / m measured groups
            return min(want_m // m * n, want_m) <= want_n
        if m % want_m == 0:  # a claimed group lies inside one measured group
            return min(n, want_m) <= want_n
        return False  # groups that do not nest: no bound holds for every mask
    want = _BLOCK_NAME.fullmatch(claimed)
    if not want:
        return False
    rows, cols = int(want.group(1)), int(want.group(2))
    if kind == "rows":
        return rows == 1
    if kind == "cols":
        return cols == 1
    block = _BLOCK_NAME.fullmatch(kind)
    return block is not None and int(block.group(1)) % rows == 0 and int(block.group(2)) % cols == 0


def _pattern(claim: Claim, analysis: Analysis | None) -> findings.AuditFinding:
    """An N:M or block pattern against the pattern summary of the linear matrices."""
    if not (_NM_NAME.fullmatch(claim.name) or _BLOCK_NAME.fullmatch(claim.name)):
        return findings.unchecked(claim, f"prunecard does not measure {claim.name} patterns")
    if analysis is None:
        return findings.unchecked(claim, "no weights read (--no-weights)", "weights")
    if not analysis.patterns:
        return findings.unchecked(
            claim, "the analysis has no pattern summary (made before patterns were measured)"
        )
    zeros = sum(p.zeros for p in analysis.patterns)
    held = sum(p.zeros for p in analysis.patterns if satisfies(p.kind, claim.name))
    share = held / zeros if zeros else 0.0
    rows = ", ".join(f"{p.kind} {p.matrices}" for p in analysis.patterns if p.matrices)
    shown = (
        f"{claim.name} holds {held:,} of {zeros:,} linear zeros ({percent(share)}); "
        f"matrices by pattern: {rows}"
    )
    return findings.judged(
        claim, "weights", shown, PATTERN_RULE, bool(zeros) and share >= 0.5, 100 * share
    )


def internal(partners: findings.Partners) -> list[findings.AuditFinding]:
    """A sparsity and a density of the same weights add up to 100%."""
    out = []
    for sparsity_q, density_q in (
        ("linear_sparsity", "linear_density"),
        ("overall_sparsity", "overall_density"),
    ):
        density = next(
            (c for c in partners.named(density_q) if c.value is not None and not c.about), None
        )
        if density is None or density.value is None:
            continue
        for claim in partners.named(sparsity_q):
            if claim.value is None or claim.about:
                continue
            expected = 100 - density.value
            rule = (
                f"sparsity = 100% - density {density.printed} (line {density.line}), within "
                "the rounding slack of both printed figures"
            )
            slack, shown = (
                findings.half(claim) + findings.half(density),
                f"{fixed(expected, claim.decimals)}%",
            )
            out.append(findings.within_slack(claim, "internal", expected, slack, rule, shown))
    return out


@register("sparsity")
class SparsityPhrases(Family):
    prose = staticmethod(prose)
    table = staticmethod(table)
    measured = staticmethod(measured)
    internal = staticmethod(internal)
