"""Audit a model card: compare each claim with what prunecard measures, and with the card.

Every claim (see `claims.py`) is checked against the weights (`analyze`), a given
evaluation or bench record, and the card itself (a variation must equal value minus
reference, a percentage count / total, the model id the prose). Each check states its
tolerance rule, so a reader can tell why "16.0%" fails against a measured 12.96%.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from analyzer.audit.claims import CardClaims, Claim, read_card, scale
from analyzer.errors import InputError
from analyzer.records import (
    EVAL_SCHEMA,
    REPORT_SCHEMA,
    Analysis,
    Bench,
    BenchShape,
    Evaluation,
    Report,
    SquadScores,
    from_dict,
    load_record,
    read_json,
)

__all__ = [
    "AUDIT_SCHEMA",
    "AuditFinding",
    "AuditReport",
    "EvalScores",
    "audit",
    "audit_claims",
    "audit_markdown",
    "format_audit",
    "load_bench",
    "load_eval",
]

AUDIT_SCHEMA = "prunecard.audit/1"
OK, MISMATCH, WARNING, UNCHECKED = "ok", "mismatch", "warning", "not checkable"
SPEEDUP_TOLERANCE = 0.10  # relative: timings vary between runs and machines


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
    check: str  # "weights", "evaluation", "bench", "internal" or "format"
    rule: str  # the tolerance rule applied, in words
    verdict: str  # "ok", "mismatch", "warning" (missing or ambiguous) or "not checkable"
    reason: str = ""  # why not checkable, or a hint about a mismatch
    claimed_value: float | None = None
    measured_value: float | None = None


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


@dataclass(frozen=True)
class EvalScores:
    """Scores from an Evaluation record or an official eval_metrics.json, in percent."""

    values: dict[str, float]  # claim quantity -> measured value ("f1", "exact", ...)
    dataset: str  # "squad_v2" (v2 script keys, prunecard eval) or "squad" (v1.1 keys)
    path: str


# --------------------------------------------------------------------------- inputs


def load_eval(path: str | Path) -> EvalScores:
    """An Evaluation record, a report.json with one, or the official script's JSON."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(path, "expected a JSON object of SQuAD scores")
    schema = data.get("schema")
    if schema == REPORT_SCHEMA:
        evaluation = load_record(Report, path).evaluation
        if evaluation is None:
            raise InputError(path, "this report has no evaluation (run `prunecard eval`)")
        return _scores(evaluation.scores, "squad_v2", path)
    if schema is not None:
        return _scores(load_record(Evaluation, path).scores, "squad_v2", path)
    if "exact" in data and "f1" in data:
        try:
            scores = from_dict(SquadScores, data)
        except TypeError as exc:
            raise InputError(path, f"not valid official SQuAD v2 scores: {exc}") from None
        return _scores(scores, "squad_v2", path)
    if "exact_match" in data and "f1" in data:
        values = {k: data[k] for k in ("exact_match", "f1")}
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()):
            raise InputError(path, "exact_match and f1 must be numbers")
        return EvalScores({"exact": values["exact_match"], "f1": values["f1"]}, "squad", str(path))
    raise InputError(
        path,
        f"not a {EVAL_SCHEMA} record or official SQuAD scores (needs 'exact'/'exact_match' and "
        "'f1')",
    )


def _scores(scores: SquadScores, dataset: str, path: Path) -> EvalScores:
    values = {
        key: float(getattr(scores, key))
        for key in SquadScores.__dataclass_fields__
        if getattr(scores, key) is not None
    }
    values["eval_questions"] = values.pop("total")
    return EvalScores(values, dataset, str(path))


def load_bench(path: str | Path) -> Bench:
    """A Bench record, or the bench inside a report.json."""
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA:
        bench = load_record(Report, path).bench
        if bench is None:
            raise InputError(path, "this report has no bench (run `prunecard bench`)")
        return bench
    bench = load_record(Bench, path)
    if not bench.shapes:
        raise InputError(path, "the bench record has no measured shapes")
    return bench


# --------------------------------------------------------------------------- audit


def audit(
    card: str | Path,
    checkpoint: str | Path | None = None,
    *,
    eval_path: str | Path | None = None,
    bench_path: str | Path | None = None,
) -> AuditReport:
    """Read the card and the records, measure the weights, check every claim."""
    from analyzer.audit.model_index import with_eval_results
    from analyzer.audit.paths import card_paths
    from analyzer.weights.sparsity import analyze

    claims = with_eval_results(read_card(card), Path(card).parent)
    evaluation = load_eval(eval_path) if eval_path is not None else None
    bench = load_bench(bench_path) if bench_path is not None else None
    analysis = analyze(checkpoint) if checkpoint is not None else None
    report = audit_claims(claims, analysis, evaluation, bench)
    return AuditReport(
        card=report.card,
        checkpoint=str(checkpoint or ""),
        evaluation=str(eval_path or ""),
        bench=str(bench_path or ""),
        claims=report.claims,
        findings=(*report.findings, *card_paths(card)),
    )


def audit_claims(
    card: CardClaims,
    analysis: Analysis | None = None,
    evaluation: EvalScores | None = None,
    bench: Bench | None = None,
) -> AuditReport:
    """The checks themselves, on records already read (pure)."""
    findings = [_format_finding(p.line, p.text, p.problem, p.verdict) for p in card.problems]
    for claim in card.claims:
        findings.append(_measured(claim, card.claims, analysis, evaluation, bench))
    findings += _internal(card.claims)
    findings.sort(key=lambda f: (f.line, _CHECK_ORDER.get(f.check, 9)))
    return AuditReport(
        card=card.path,
        checkpoint=analysis.checkpoint if analysis else "",
        evaluation=evaluation.path if evaluation else "",
        bench="",
        claims=len(card.claims),
        findings=tuple(findings),
    )


_CHECK_ORDER = {"format": 0, "weights": 1, "evaluation": 1, "bench": 1, "": 1, "internal": 2}


def _finding(
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
    )


def _format_finding(line: int, text: str, problem: str, verdict: str = MISMATCH) -> AuditFinding:
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


def _half(claim: Claim) -> float:
    """Half a unit in the last printed place, in base units (the rounding slack)."""
    return 0.5 * 10.0**-claim.decimals * scale(claim)


def _fmt(value: float, decimals: int, unit: str = "") -> str:
    return f"{value:.{decimals}f}{unit}"


def _rounding_rule(claim: Claim, unit: str = "") -> str:
    d = claim.decimals
    places = f"{d} decimal{'s' if d != 1 else ''}"
    if claim.quantity in _COUNTS and not claim.unit:
        return "a count: must equal the measured count exactly"
    return (
        f"printed with {places}: the measurement rounded to {places} must equal it "
        f"(|difference| <= {_half(claim) / scale(claim):g}{unit or claim.unit})"
    )


def _compare(
    claim: Claim,
    check: str,
    measured: float,
    shown_decimals: int,
    unit: str = "",
    rule: str = "",
    measured_text: str = "",
) -> AuditFinding:
    """Rounding rule: |claimed - measured| <= half a unit in the claim's last place."""
    assert claim.value is not None
    base = claim.value * scale(claim)
    ok = abs(base - measured) <= _half(claim) + 1e-9 * max(1.0, abs(measured))
    reason = ""
    if not ok:
        factor = 10.0**claim.decimals
        truncated = math.trunc(measured / scale(claim) * factor) / factor
        if truncated == claim.value:
            reason = "the measurement truncated (not rounded) gives the claimed figure"
    text = measured_text or _fmt(
        measured / scale(claim), max(shown_decimals, claim.decimals), unit or claim.unit
    )
    return _finding(
        claim,
        check,
        text,
        rule or _rounding_rule(claim, unit),
        OK if ok else MISMATCH,
        reason,
        measured,
    )


def _weights(analysis: Analysis) -> dict[str, tuple[float, int]]:
    """Measured value (in the unit cards print) and decimals to show, per quantity."""
    out: dict[str, tuple[float, int]] = {
        "linear_density": (100 * analysis.linear.density, 3),
        "overall_density": (100 * analysis.overall.density, 3),
        "params_dense": (analysis.overall.dense, 0),
        "params_packed": (analysis.overall.packed, 0),
        "params_nonzero": (analysis.overall.nnz, 0),
        "params_stored": (analysis.overall.stored, 0),
        "linear_nnz": (analysis.linear.nnz, 0),
        "linear_dense": (analysis.linear.dense, 0),
        "linear_packed": (analysis.linear.packed, 0),
    }
    kept = {h.layer: h.kept for h in analysis.heads.layers}
    for layer in analysis.layers:
        about = f"layer {layer.layer}"
        out[f"layer_density/{about}"] = (100 * layer.density, 3)
        out[f"layer_ffn_units_kept/{about}"] = (layer.ffn_units_kept, 0)
        out[f"layer_linear_packed/{about}"] = (layer.linear_packed, 0)
        if layer.layer in kept:
            out[f"layer_heads_kept/{about}"] = (kept[layer.layer], 0)
    if analysis.heads.total:
        out["heads_removed"] = (analysis.heads.removed, 0)
        out["heads_total"] = (analysis.heads.total, 0)
        out["heads_removed_pct"] = (100 * analysis.heads.removed / analysis.heads.total, 3)
    if analysis.ffn.units_total:
        out["ffn_units_kept"] = (analysis.ffn.units_kept, 0)
        out["ffn_units_total"] = (analysis.ffn.units_total, 0)
        out["ffn_units_kept_pct"] = (100 * analysis.ffn.units_kept / analysis.ffn.units_total, 3)
    return out


_FROM_EVAL = {"f1", "exact", "eval_questions"}
_WEIGHT_FIGURES = {
    "linear_density",
    "overall_density",
    "linear_nnz",
    "linear_dense",
    "linear_packed",
}
_COUNTS = {
    "heads_removed",
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
_NOT_THIS_MODEL = {"f1_reference", "exact_reference", "reference_file_size"}


def _measured(
    claim: Claim,
    claims: tuple[Claim, ...],
    analysis: Analysis | None,
    evaluation: EvalScores | None,
    bench: Bench | None,
) -> AuditFinding:
    """The claim against a measurement, or why there is none."""
    q = claim.quantity
    if q in _NOT_THIS_MODEL:
        about = claim.about or "the original model"
        return _finding(
            claim,
            "",
            "",
            "",
            UNCHECKED,
            f"describes another model ({about}); only this checkpoint is measured",
        )
    if q == "train_samples" or q.endswith("_samples"):
        return _finding(claim, "", "", "", UNCHECKED, "the training data is not given")
    if q in _WEIGHT_FIGURES or q.startswith(("heads_", "ffn_units_", "params_", "layer_")):
        return _from_weights(claim, analysis)
    if q == "packed_file_size":
        return _packed_size(claim, bench)
    if q == "flop_bound":
        return _flop_bound(claim, bench)
    if q == "file_size":
        return _file_size(claim, analysis)
    if q == "tag":
        return _tag(claim, analysis)
    if q == "speedup":
        return _speedup(claim, bench)
    if q == "dataset":
        if evaluation is None:
            return _finding(
                claim,
                "evaluation",
                "",
                "",
                UNCHECKED,
                "no evaluation given (--eval); see the internal check",
            )
        verdict = OK if claim.name == evaluation.dataset else MISMATCH
        return _finding(
            claim,
            "evaluation",
            evaluation.dataset,
            "dataset names compared as Hub ids (SQuAD 2.0 = squad_v2)",
            verdict,
        )
    if q.endswith("_variation"):
        return _variation_vs_eval(claim, claims, evaluation)
    if q in _FROM_EVAL or q.startswith(("HasAns_", "NoAns_", "best_")):
        if evaluation is None:
            return _finding(claim, "evaluation", "", "", UNCHECKED, "no evaluation given (--eval)")
        if q not in evaluation.values:
            return _finding(
                claim, "evaluation", "", "", UNCHECKED, f"the evaluation has no {q} figure"
            )
        return _compare(claim, "evaluation", evaluation.values[q], 2)
    from analyzer.audit.families import measured

    found = measured(claim, analysis, evaluation)
    if found is not None:
        return found
    return _finding(claim, "", "", "", UNCHECKED, "prunecard measures nothing for this claim")


def _from_weights(claim: Claim, analysis: Analysis | None) -> AuditFinding:
    if analysis is None:
        return _finding(claim, "weights", "", "", UNCHECKED, "no weights read (--no-weights)")
    key = (
        f"{claim.quantity}/{claim.about}"
        if claim.quantity.startswith("layer_")
        else (claim.quantity)
    )
    measured = _weights(analysis).get(key)
    if measured is None:
        return _finding(
            claim,
            "weights",
            "",
            "",
            UNCHECKED,
            f"{analysis.family} checkpoints have no attention-head/FFN geometry",
        )
    value, shown = measured
    finding = _compare(claim, "weights", value, shown)
    if claim.quantity.startswith("heads_removed") and finding.verdict == MISMATCH:
        return _with_reason(finding, "prunecard's rule: " + analysis.heads.rule.split(". ")[0])
    return finding


def _with_reason(finding: AuditFinding, reason: str) -> AuditFinding:
    return replace(finding, reason="; ".join(r for r in (finding.reason, reason) if r))


def _file_size(claim: Claim, analysis: Analysis | None) -> AuditFinding:
    if analysis is None:
        return _finding(claim, "weights", "", "", UNCHECKED, "no weights read (--no-weights)")
    size = analysis.file_bytes
    rule = (
        _rounding_rule(claim) + "; MB read as 10^6 or 2^20 bytes (nn_pruning prints MiB "
        "as MB), either may match; weight files only"
    )
    decimal, binary = (
        _compare(claim, "weights", size / 1e6, 1),
        _compare(claim, "weights", size / 2**20, 1),
    )
    best = decimal if decimal.verdict == OK or binary.verdict != OK else binary
    shown = f"{size / 1e6:.1f} MB = {size / 2**20:.1f} MiB ({size:,} bytes)"

    return replace(best, measured=shown, rule=rule, measured_value=float(size))


def _tag(claim: Claim, analysis: Analysis | None) -> AuditFinding:
    tag = claim.name.lower()
    if tag == "question-answering":
        if analysis is None:
            return _finding(claim, "weights", "", "", UNCHECKED, "no weights read (--no-weights)")
        heads = [a for a in analysis.architectures if a.endswith("ForQuestionAnswering")]
        shown = ", ".join(analysis.architectures)
        if not analysis.architectures:  # older configs lack it: the weights show the head
            heads = [m.name for m in analysis.matrices if m.name.endswith("qa_outputs.weight")]
            shown = "no architectures in config.json; weights " + (
                f"hold {heads[0]}" if heads else "hold no qa_outputs head"
            )
        return _finding(
            claim,
            "weights",
            shown,
            "the config's architectures must include a *ForQuestionAnswering model (without "
            "architectures: the weights must hold a qa_outputs head)",
            OK if heads else MISMATCH,
        )
    if analysis is not None and tag in {analysis.model_type.lower(), analysis.family}:
        return _finding(
            claim,
            "weights",
            analysis.model_type,
            "a model-type tag must name the config's model_type",
            OK,
        )
    return _finding(claim, "", "", "", UNCHECKED, "a label, not a measurable figure")


def _shape(claim: Claim, bench: Bench) -> BenchShape | None:
    """The bench shape a claim names ("batch 8 x 384"), if it names one and it was run."""
    m = re.fullmatch(r"batch (\d+) x (\d+)", claim.about)
    if m is None:
        return None
    return next(
        (s for s in bench.shapes if (s.batch, s.seq) == (int(m.group(1)), int(m.group(2)))), None
    )


def _packed_size(claim: Claim, bench: Bench | None) -> AuditFinding:
    if bench is None or not bench.packed_bytes:
        return _finding(
            claim, "bench", "", "", UNCHECKED, "no bench record with a packed size given (--bench)"
        )
    size = bench.packed_bytes
    found = _compare(claim, "bench", size / 1e6, 1)
    return replace(
        found,
        measured=f"{size / 1e6:.1f} MB ({size:,} bytes)",
        rule=_rounding_rule(claim) + "; MB = 10^6 bytes",
        measured_value=float(size),
    )


def _flop_bound(claim: Claim, bench: Bench | None) -> AuditFinding:
    shape = _shape(claim, bench) if bench is not None else None
    if shape is None:
        return _finding(
            claim,
            "bench",
            "",
            "",
            UNCHECKED,
            f"no bench record with {claim.about or 'this shape'} given (--bench)",
        )
    return _compare(claim, "bench", shape.flop_bound, 3)


def _speedup(claim: Claim, bench: Bench | None) -> AuditFinding:
    if bench is None:
        return _finding(claim, "bench", "", "", UNCHECKED, "no bench record given (--bench)")
    assert claim.value is not None
    named = _shape(claim, bench)
    if claim.about.startswith("batch ") and named is None:
        return _finding(
            claim, "bench", "", "", UNCHECKED, f"the bench record has no {claim.about} shape"
        )
    best = named or min(bench.shapes, key=lambda s: abs(s.speedup - claim.value))
    ok = abs(best.speedup - claim.value) <= SPEEDUP_TOLERANCE * best.speedup
    rule = (
        f"timings vary between runs and machines: within {SPEEDUP_TOLERANCE:.0%} of a "
        f"measured speedup (closest of {len(bench.shapes)} shape(s), {bench.device})"
    )
    shown = f"{best.speedup:.2f}x (batch {best.batch}, seq {best.seq})"
    return _finding(
        claim, "bench", shown, rule, OK if ok else MISMATCH, measured_value=best.speedup
    )


def _partner(claim: Claim, claims: tuple[Claim, ...], quantity: str) -> Claim | None:
    """The claim of `quantity` printed in the same sentence or table row."""
    return next(
        (
            c
            for c in claims
            if c.line == claim.line
            and c.source == claim.source
            and c.quantity == quantity
            and c.value is not None
        ),
        None,
    )


def _variation_vs_eval(
    claim: Claim, claims: tuple[Claim, ...], evaluation: EvalScores | None
) -> AuditFinding:
    metric = claim.quantity.removesuffix("_variation")
    reference = _partner(claim, claims, f"{metric}_reference")
    if evaluation is None or metric not in evaluation.values:
        return _finding(
            claim,
            "evaluation",
            "",
            "",
            UNCHECKED,
            f"no evaluation {metric} given (--eval); see the internal check",
        )
    if reference is None or reference.value is None:
        return _finding(claim, "evaluation", "", "", UNCHECKED, "no reference figure beside it")
    measured = evaluation.values[metric] - reference.value
    assert claim.value is not None
    slack = _half(claim) + _half(reference)
    ok = abs(claim.value - measured) <= slack + 1e-9
    rule = (
        f"measured {metric} minus the printed reference {reference.printed}, "
        f"within the rounding slack of both printed figures (|difference| <= {slack:g})"
    )
    return _finding(
        claim,
        "evaluation",
        f"{measured:+.{max(2, claim.decimals)}f}",
        rule,
        OK if ok else MISMATCH,
        measured_value=measured,
    )


# --------------------------------------------------------------------------- internal checks


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
    "f1_reference",
    "exact_reference",
    "file_size",
    "params_dense",
    "params_packed",
    "params_nonzero",
    "eval_questions",
}


def _internal(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    from analyzer.audit.families import internal

    return [
        *internal(claims),
        *_variations(claims),
        *_percentages(claims),
        *_agreement(claims),
        *_datasets(claims),
        *_json_block(claims),
    ]


def _variations(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    """A variation must equal value minus reference, as printed beside it."""
    out = []
    for claim in claims:
        if not claim.quantity.endswith("_variation") or claim.value is None:
            continue
        metric = claim.quantity.removesuffix("_variation")
        value = _partner(claim, claims, metric)
        reference = _partner(claim, claims, f"{metric}_reference")
        if value is None or reference is None:
            continue
        assert value.value is not None and reference.value is not None
        expected = value.value - reference.value
        slack = _half(claim) + _half(value) + _half(reference)
        ok = abs(claim.value - expected) <= slack + 1e-9
        rule = (
            f"variation = value - reference = {value.printed} - {reference.printed}, within "
            f"the rounding slack of the three printed figures (|difference| <= {slack:g})"
        )
        out.append(
            _finding(
                claim,
                "internal",
                f"{expected:+.{claim.decimals}f}",
                rule,
                OK if ok else MISMATCH,
                measured_value=expected,
            )
        )
    return out


def _percentages(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    """A percentage printed beside its count and total must be count / total."""
    out = []
    for pct_q, count_q, total_q in (
        ("heads_removed_pct", "heads_removed", "heads_total"),
        ("ffn_units_kept_pct", "ffn_units_kept", "ffn_units_total"),
    ):
        for claim in claims:
            if claim.quantity != pct_q:
                continue
            count, total = _partner(claim, claims, count_q), _partner(claim, claims, total_q)
            if count is None or total is None or not total.value:
                continue
            assert count.value is not None
            expected = 100 * count.value / total.value
            rule = f"percentage = {count.printed} / {total.printed}; " + _rounding_rule(claim)
            found = _compare(claim, "internal", expected, 3, rule=rule)
            out.append(found)
    return out


def _agreement(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    """The same figure stated twice (prose, table, JSON, model id) must agree."""
    groups: dict[str, list[Claim]] = defaultdict(list)
    for claim in claims:
        if claim.quantity in _AGREEING and claim.value is not None:
            # figures of one bench shape or one layer are compared only with each other
            about = claim.about if claim.about.startswith(("batch ", "layer ")) else ""
            groups[f"{claim.quantity}/{about}"].append(claim)
    out = []
    for group in groups.values():
        anchor = min(group, key=lambda c: (_half(c), c.source == "model id", c.line))
        for claim in group:
            if claim is anchor:
                continue
            assert claim.value is not None and anchor.value is not None
            a, b = claim.value * scale(claim), anchor.value * scale(anchor)
            slack = _half(claim) + _half(anchor)
            ok = abs(a - b) <= slack + 1e-9 * max(1.0, abs(b))
            rule = (
                "the same figure printed twice: the ranges their roundings allow must "
                f"overlap (|difference| <= {slack:g})"
            )
            shown = f"{anchor.printed} (line {anchor.line}, {anchor.source})"
            out.append(
                _finding(
                    claim,
                    "internal",
                    shown,
                    rule,
                    OK if ok else MISMATCH,
                    measured_value=anchor.value,
                )
            )
    return out


def _datasets(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    """Every dataset named in headings, prose and tables must be the metadata's."""
    named = [c for c in claims if c.quantity == "dataset"]
    declared = [c for c in named if c.source == "metadata" and c.text.startswith("datasets")]
    anchor = (declared or named or [None])[0]
    if anchor is None:
        return []
    rule = "dataset names compared as Hub ids (SQuAD 2.0 = SQuAD v2 = squad_v2)"
    return [
        _finding(
            c,
            "internal",
            f"{anchor.name} ({anchor.text}, line {anchor.line})",
            rule,
            OK if c.name == anchor.name else MISMATCH,
        )
        for c in named
        if c is not anchor
    ]


def _json_block(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    """The official script's totals: total = HasAns + NoAns, overall = weighted mean."""
    js = {c.quantity: c for c in claims if c.source == "metrics JSON" and c.value is not None}
    has, no = js.get("HasAns_total"), js.get("NoAns_total")
    if has is None or no is None or has.value is None or no.value is None:
        return []
    out = []
    total = has.value + no.value
    if (claim := js.get("eval_questions")) is not None:
        out.append(
            _compare(
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
        out.append(
            _finding(
                claim, "internal", f"{mean:.6f}", rule, OK if ok else MISMATCH, measured_value=mean
            )
        )
    return out


# --------------------------------------------------------------------------- output


def _summary(report: AuditReport) -> str:
    return (
        f"{report.claims} claims, {len(report.findings)} checks: {report.count(OK)} ok, "
        f"{report.count(MISMATCH)} mismatch, {report.count(WARNING)} warning, "
        f"{report.count(UNCHECKED)} not checkable"
    )


def _inputs(report: AuditReport) -> list[tuple[str, str]]:
    return [
        ("card", report.card),
        ("weights", report.checkpoint or "not read (--no-weights)"),
        ("evaluation", report.evaluation or "not given"),
        ("bench", report.bench or "not given"),
    ]


def format_audit(report: AuditReport, strict: bool = False) -> str:
    """The terminal view: one row per check, then each mismatch and warning with its rule."""
    from analyzer.cli.tables import table

    def cut(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 3] + "..."

    lines = [f"{name:<11}{value}" for name, value in _inputs(report)]
    rows = [
        (
            f.line,
            f.quantity,
            cut(f.claimed, 14),
            cut(f.measured, 30) or "-",
            f.check or "-",
            f.verdict,
        )
        for f in report.findings
    ]
    lines += ["", table(("line", "claim", "claimed", "measured", "check", "verdict"), rows)]
    for verdict, title in ((MISMATCH, "Mismatches:"), (WARNING, "Warnings:")):
        bad = [f for f in report.findings if f.verdict == verdict]
        if bad:
            lines += ["", title]
        for f in bad:
            lines.append(f'  line {f.line} ({f.section}): "{cut(f.text, 90)}"')
            lines.append(f"    claimed {f.claimed}, found {f.measured or '-'}; rule: {f.rule}")
            if f.reason:
                lines.append(f"    note: {f.reason}")
    lines += ["", _summary(report) + (" -> FAIL" if report.failed(strict) else " -> PASS")]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return (text or "-").replace("|", "\\|").replace("\n", " ")


def audit_markdown(report: AuditReport) -> str:
    """A Markdown report: inputs, summary, every check with its quote and rule."""
    lines = ["# Model card audit", ""]
    lines += [f"- **{name}**: `{value}`" for name, value in _inputs(report)]
    verdict = "passed" if report.passed else "failed"
    lines += ["", f"**Result: {verdict}** ({_summary(report)}).", ""]
    lines += [
        "| Line | Section | Quote | Claim | Claimed | Measured | Check | Rule | Verdict |",
        "| ---: | --- | --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for f in report.findings:
        verdict_cell = f"**{f.verdict}**" if f.verdict in (MISMATCH, WARNING) else f.verdict
        if f.reason:
            verdict_cell += f" ({f.reason})"
        lines.append(
            f"| {f.line} | {_cell(f.section)} | {_cell(f.text)} | {f.quantity} | "
            f"{_cell(f.claimed)} | {_cell(f.measured)} | {_cell(f.check)} | {_cell(f.rule)} | "
            f"{_cell(verdict_cell)} |"
        )
    return "\n".join(lines) + "\n"
