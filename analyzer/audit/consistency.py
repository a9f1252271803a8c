"""Checks of a card against itself (no measurement needed): ranges, variation = value -
reference, percentage or density = count / total, speed rows, the same figure printed
twice, datasets and the official JSON block's totals."""

from __future__ import annotations

from collections import defaultdict

from analyzer.audit import findings
from analyzer.audit.claims import Claim, scale
from analyzer.text import fixed, signed

__all__ = ["declared_dataset", "internal", "ratio_check"]

_AGREEING = {
    "linear_density",
    "overall_density",
    "heads_removed",
    "heads_total",
    "heads_removed_pct",
    "ffn_units_kept",
    "ffn_units_total",
    "speedup",
    "f1",
    "exact",
    "perplexity",
    "f1_reference",
    "exact_reference",
    "file_size",
    "params_dense",
    "params_packed",
    "params_nonzero",
    "eval_questions",
}


def internal(claims: tuple[Claim, ...], partners: findings.Partners) -> list[findings.AuditFinding]:
    return [
        *_ranges(claims, partners),
        *_variations(claims, partners),
        *_percentages(partners),
        *_speed_rows(claims, partners),
        *_agreement(claims),
        *_datasets(partners),
        *_json_block(claims),
    ]


_PERCENTS = {
    "linear_density",
    "overall_density",
    "layer_density",
    "heads_removed_pct",
    "heads_dead_kept_pct",
    "ffn_units_kept_pct",
}
_SCORES = {
    f"{prefix}{metric}{suffix}"
    for metric in ("exact", "f1")
    for prefix, suffix in (("", ""), ("", "_reference"), ("HasAns_", ""), ("NoAns_", ""))
} | {"best_exact", "best_f1"}
_POSITIVE = {"speedup", "flop_bound"}
_AT_MOST = (("heads_removed", "heads_total"), ("ffn_units_kept", "ffn_units_total"))


def _range_rule(claim: Claim) -> str | None:
    """The range a claim's quantity must lie in, in words; None when it has none."""
    q = claim.quantity
    if q in _PERCENTS:
        return "a percentage of weights, heads or units lies between 0% and 100%"
    if q in _SCORES:
        return "an exact-match or F1 score is a percentage between 0 and 100"
    if q in _POSITIVE:
        return "a speedup or FLOP bound is a ratio above 0"
    if (
        q in findings.COUNTS
        or q.startswith(("params_", "layer_"))
        or q.endswith(("_size", "_samples"))
    ):
        return "a count or size is not negative"
    return None


def _in_range(claim: Claim) -> bool:
    assert claim.value is not None
    if claim.quantity in _PERCENTS or claim.quantity in _SCORES:
        return 0 <= claim.value <= 100
    if claim.quantity in _POSITIVE:
        return claim.value > 0
    return claim.value >= 0


def _ranges(claims: tuple[Claim, ...], partners: findings.Partners) -> list[findings.AuditFinding]:
    """Figures no model can have (no measurement needed): a density over 100%, an F1 of -5,
    999 of 384 heads removed. Only claims out of range get a finding."""
    out = []
    for claim in claims:
        if claim.value is None or (rule := _range_rule(claim)) is None:
            continue
        if not _in_range(claim):
            out.append(findings.finding(claim, "range", "", rule, findings.MISMATCH))
    for part_q, whole_q in _AT_MOST:
        for claim in partners.named(part_q):
            whole = partners.of(claim, whole_q)
            if whole is None or claim.value is None or whole.value is None:
                continue
            if claim.value > whole.value:
                rule = f"{part_q} cannot exceed {whole_q} printed beside it ({whole.printed})"
                out.append(findings.finding(claim, "range", whole.printed, rule, findings.MISMATCH))
    return out


def _variations(
    claims: tuple[Claim, ...], partners: findings.Partners
) -> list[findings.AuditFinding]:
    """A variation must equal value minus reference, as printed beside it."""
    out = []
    for claim in claims:
        if not claim.quantity.endswith("_variation") or claim.value is None:
            continue
        metric = claim.quantity.removesuffix("_variation")
        value = partners.of(claim, metric)
        reference = partners.of(claim, f"{metric}_reference")
        if value is None or reference is None:
            continue
        assert value.value is not None and reference.value is not None
        expected = value.value - reference.value
        slack = findings.half(claim) + findings.half(value) + findings.half(reference)
        rule = (
            f"variation = value - reference = {value.printed} - {reference.printed}, within "
            "the rounding slack of the three printed figures"
        )
        shown = signed(expected, claim.decimals)
        out.append(findings.within_slack(claim, "internal", expected, slack, rule, shown))
    return out


def _percentages(partners: findings.Partners) -> list[findings.AuditFinding]:
    """A percentage printed beside its count and total must be count / total: heads and
    units, and a density beside its non-zero and total counts ("97.0% (N of M)")."""
    out = []
    for pct_q, count_q, total_q in (
        ("heads_removed_pct", "heads_removed", "heads_total"),
        ("heads_dead_kept_pct", "heads_dead_kept", "heads_total"),
        ("ffn_units_kept_pct", "ffn_units_kept", "ffn_units_total"),
        ("overall_density", "params_nonzero", "params_dense"),
        ("linear_density", "linear_nnz", "linear_dense"),
    ):
        for claim in partners.named(pct_q):
            count, total = partners.of(claim, count_q), partners.of(claim, total_q)
            if count is None or total is None or not total.value:
                continue
            assert count.value is not None
            expected = 100 * count.value / total.value
            rule = f"percentage = {count.printed} / {total.printed}; " + findings.rounding_rule(
                claim
            )
            found = findings.compare(claim, "internal", expected, 3, rule=rule)
            out.append(found)
    return out


def _bounds(claim: Claim) -> tuple[float, float]:
    """The values a printed figure can stand for: within half a unit of its last place."""
    assert claim.value is not None
    return claim.value - findings.half(claim), claim.value + findings.half(claim)


def ratio_check(
    claim: Claim, top: Claim, bottom: Claim, factor: float, rule: str
) -> findings.AuditFinding | None:
    """`claim` = factor * top / bottom, to the printed precision of all three: some values
    the two printed operands can stand for give a ratio that rounds to the claim."""
    (t_lo, t_hi), (b_lo, b_hi), (c_lo, c_hi) = _bounds(top), _bounds(bottom), _bounds(claim)
    assert top.value is not None and bottom.value is not None
    if b_lo <= 0:
        return None
    lo, hi = factor * t_lo / b_hi, factor * t_hi / b_lo
    ok = lo <= c_hi + 1e-9 and hi >= c_lo - 1e-9
    expected = factor * top.value / bottom.value
    shown = f"{fixed(expected, claim.decimals + 1)}{claim.unit} ({lo:.4g} to {hi:.4g})"
    return findings.judged(claim, "internal", shown, rule, ok, expected)


def _speed_rows(
    claims: tuple[Claim, ...], partners: findings.Partners
) -> list[findings.AuditFinding]:
    """Within each row of the speed table: speedup = dense / packed time, share of bound =
    speedup / FLOP bound, each to the precision the row prints."""
    out = []
    for claim in claims:
        if claim.source != "speed table" or claim.value is None:
            continue
        if claim.quantity == "speedup":
            dense, packed = partners.of(claim, "dense_ms"), partners.of(claim, "packed_ms")
            if dense is not None and packed is not None:
                rule = (
                    f"speedup = dense / packed = {dense.printed} / {packed.printed} ms, "
                    "to the precision printed"
                )
                out.append(ratio_check(claim, dense, packed, 1.0, rule))
        elif claim.quantity == "share_of_bound":
            speedup, bound = partners.of(claim, "speedup"), partners.of(claim, "flop_bound")
            if speedup is not None and bound is not None:
                rule = (
                    f"share of bound = speedup / FLOP bound = {speedup.printed} / "
                    f"{bound.printed}, to the precision printed"
                )
                out.append(ratio_check(claim, speedup, bound, 100.0, rule))
    return [f for f in out if f is not None]


def _agreement(claims: tuple[Claim, ...]) -> list[findings.AuditFinding]:
    """The same figure stated twice (prose, table, JSON, model id) must agree."""
    groups: dict[str, list[Claim]] = defaultdict(list)
    for claim in claims:
        if claim.quantity in _AGREEING and claim.value is not None:
            # figures of one bench shape or one layer are compared only with each other
            about = claim.about if claim.about.startswith(("batch ", "layer ")) else ""
            groups[f"{claim.quantity}/{about}"].append(claim)
    out = []
    for group in groups.values():
        # the card's own most precise figure; a score file beside the card is never the anchor
        anchor = min(
            group, key=lambda c: (bool(c.file), findings.half(c), c.source == "model id", c.line)
        )
        for claim in group:
            if claim is anchor:
                continue
            assert claim.value is not None and anchor.value is not None
            a, b = claim.value * scale(claim), anchor.value * scale(anchor)
            slack = findings.half(claim) + findings.half(anchor)
            ok = abs(a - b) <= slack + 1e-9 * max(1.0, abs(b))
            rule = (
                "the same figure printed twice: the ranges their roundings allow must "
                f"overlap (|difference| <= {slack:g})"
            )
            shown = f"{anchor.printed} (line {anchor.line}, {anchor.source})"
            if claim.file:
                rule = f"{claim.file} must state the card's figure; " + rule
            out.append(findings.judged(claim, "internal", shown, rule, ok, anchor.value))
    return out


def declared_dataset(partners: findings.Partners) -> Claim | None:
    """The card's dataset: its metadata `datasets`, else the first one it names."""
    return _anchor(partners.named("dataset"))


def _anchor(named: list[Claim]) -> Claim | None:
    declared = (c for c in named if c.source == "metadata" and c.text.startswith("datasets"))
    return next(declared, named[0] if named else None)


def _datasets(partners: findings.Partners) -> list[findings.AuditFinding]:
    """Every dataset named in headings, prose and tables must be the metadata's. A
    model-index of several benchmarks (lm-eval tasks) names one dataset per result: those
    are each their own."""
    index = [c for c in partners.named("dataset") if c.text.startswith("model-index dataset:")]
    several = len({c.name for c in index}) > 1
    named = [c for c in partners.named("dataset") if not (several and c in index)]
    anchor = _anchor(named)
    if anchor is None:
        return []
    rule = "dataset names compared as Hub ids (SQuAD 2.0 = SQuAD v2 = squad_v2)"
    return [
        findings.judged(
            c,
            "internal",
            f"{anchor.name} ({anchor.text}, line {anchor.line})",
            rule,
            c.name == anchor.name,
        )
        for c in named
        if c is not anchor
    ]


def _json_block(claims: tuple[Claim, ...]) -> list[findings.AuditFinding]:
    """The official script's totals: total = HasAns + NoAns, overall = weighted mean."""
    js = {c.quantity: c for c in claims if c.source == "metrics JSON" and c.value is not None}
    has, no = js.get("HasAns_total"), js.get("NoAns_total")
    if has is None or no is None or has.value is None or no.value is None:
        return []
    out = []
    total = has.value + no.value
    if (claim := js.get("eval_questions")) is not None:
        out.append(
            findings.compare(
                claim, "internal", total, 0, rule="total = HasAns_total + NoAns_total, exactly"
            )
        )
    for metric in ("exact", "f1"):
        claim, h, n = js.get(metric), js.get(f"HasAns_{metric}"), js.get(f"NoAns_{metric}")
        if claim is None or h is None or n is None or not total:
            continue
        assert h.value is not None and n.value is not None
        mean = (h.value * has.value + n.value * no.value) / total
        rule = (
            f"{metric} = (HasAns_{metric} x HasAns_total + NoAns_{metric} x NoAns_total) / "
            "total, to 1e-6"
        )
        ok = claim.value is not None and abs(claim.value - mean) <= 1e-6
        out.append(findings.judged(claim, "internal", fixed(mean, 6), rule, ok, mean))
    return out
