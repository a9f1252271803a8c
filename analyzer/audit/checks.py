"""Audit a model card: compare each claim with what prunecard measures, and with the card.

Every claim (see `claims.py`) is checked against the weights (`against_weights.py`: the
caller's Analysis and file hashes), the records the card was rendered from or a fresh
re-measurement (`against_records.py`), and the card itself (`consistency.py`). Each check
states its rule (`findings.py`), so a reader can tell why "16.0%" fails against a measured
12.96%. This module dispatches each claim to its check; `render.py` shows the report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from analyzer.audit import against_records, against_weights, consistency
from analyzer.audit.against_records import EvalScores, load_bench, load_eval
from analyzer.audit.claims import CardClaims, Claim
from analyzer.audit.findings import (
    MISMATCH,
    OK,
    AuditFinding,
    AuditReport,
    Partners,
    compare,
    finding,
    format_finding,
    unchecked,
)
from analyzer.audit.model_index import with_eval_results
from analyzer.audit.paths import card_paths
from analyzer.audit.recipe import recipe_findings
from analyzer.audit.registry import registered
from analyzer.audit.render import audit_markdown, format_audit
from analyzer.audit.walker import read_card
from analyzer.records import Analysis, Bench

__all__ = [
    "EvalScores",
    "audit",
    "audit_claims",
    "audit_markdown",
    "format_audit",
    "load_bench",
    "load_eval",
]


def audit(
    card: str | Path,
    analysis: Analysis | None = None,
    *,
    file_hashes: dict[str, str] | None = None,
    eval_path: str | Path | None = None,
    bench_path: str | Path | None = None,
    fresh_bench: Bench | None = None,
) -> AuditReport:
    """Read the card and the records, check every claim. Auditing opens no weights: the
    caller measures them (`analyzer.pipeline.audit_checkpoint`) and passes the Analysis
    and the files' sha256. `bench_path` is the record the card was rendered from (figures
    must equal it as printed); `fresh_bench` a re-measurement made now (speedups within
    10%). The `.eval_results/` score files beside the card are read with it."""
    claims = with_eval_results(read_card(card), Path(card).parent)
    evaluation = load_eval(eval_path) if eval_path is not None else None
    bench = load_bench(bench_path) if bench_path is not None else None
    report = audit_claims(
        claims, analysis, evaluation, bench, fresh_bench=fresh_bench, file_hashes=file_hashes
    )
    return replace(
        report,
        evaluation=str(eval_path or ""),
        bench=str(bench_path or ""),
        findings=(*report.findings, *card_paths(card)),
    )


def audit_claims(
    card: CardClaims,
    analysis: Analysis | None = None,
    evaluation: EvalScores | None = None,
    bench: Bench | None = None,
    *,
    fresh_bench: Bench | None = None,
    file_hashes: dict[str, str] | None = None,
) -> AuditReport:
    """The checks themselves, on records already read (pure). `bench` is the record the
    card was rendered from, `fresh_bench` a re-measurement, `file_hashes` the sha256 of
    the checkpoint's files (`weights.checkpoint.checkpoint_hashes`)."""
    findings = [format_finding(p.line, p.text, p.problem, p.verdict) for p in card.problems]
    partners = Partners(card.claims)
    for claim in card.claims:
        if claim.quantity == "file_sha256":
            findings.append(against_weights.sha256(claim, file_hashes))
            continue
        findings.append(_measured(claim, partners, analysis, evaluation, bench))
        if fresh_bench is not None and claim.quantity == "speedup":
            findings.append(against_records.retimed(claim, fresh_bench))
    findings += against_weights.config_claims(analysis)  # a compressed config.json's own
    findings += [f for family in registered() for f in family.internal(partners)]
    findings += consistency.internal(card.claims, partners)
    findings += recipe_findings(analysis)  # llm-compressor's recipe.yaml, checked by analyze
    findings.sort(key=lambda f: (f.line, _CHECK_ORDER.get(f.check, 9)))
    return AuditReport(
        card=card.path,
        checkpoint=analysis.checkpoint if analysis else "",
        evaluation=evaluation.path if evaluation else "",
        bench="",
        claims=len(card.claims),
        findings=tuple(findings),
    )


_CHECK_ORDER = {
    "format": 0,
    "range": 0,
    "weights": 1,
    "evaluation": 1,
    "bench": 1,
    "": 1,
    "re-timed": 2,
    "internal": 2,
}


_FROM_EVAL = {"f1", "exact", "eval_questions"}
_NOT_THIS_MODEL = {"f1_reference", "exact_reference", "reference_file_size"}


def _measured(
    claim: Claim,
    partners: Partners,
    analysis: Analysis | None,
    evaluation: EvalScores | None,
    bench: Bench | None,
) -> AuditFinding:
    """The claim against a measurement, or why there is none."""
    q = claim.quantity
    if q in _NOT_THIS_MODEL:
        about = claim.about or "the original model"
        return unchecked(
            claim, f"describes another model ({about}); only this checkpoint is measured"
        )
    if q == "train_samples" or q.endswith("_samples"):
        return unchecked(claim, "the training data is not given")
    if q in against_weights.WEIGHT_FIGURES or q.startswith(
        ("heads_", "ffn_units_", "params_", "layer_")
    ):
        return against_weights.from_weights(claim, analysis)
    if q == "packed_file_size":
        return against_records.packed_size(claim, bench)
    if q == "flop_bound":
        return against_records.flop_bound(claim, bench)
    if q == "file_size":
        return against_weights.file_size(claim, analysis)
    if q == "tag":
        return against_weights.tag(claim, analysis)
    if q == "speedup":
        return against_records.speedup(claim, bench)
    if q in against_records.SHAPE_FIGURES:
        return against_records.from_bench(claim, bench)
    if q == "dataset":
        if evaluation is None:
            return unchecked(
                claim, "no evaluation given (--eval); see the internal check", "evaluation"
            )
        if not evaluation.dataset:
            return unchecked(
                claim, "the record names no dataset (a local text file or lm-eval tasks)"
            )
        verdict = OK if claim.name == evaluation.dataset else MISMATCH
        return finding(
            claim,
            "evaluation",
            evaluation.dataset,
            "dataset names compared as Hub ids (SQuAD 2.0 = squad_v2)",
            verdict,
        )
    if q == "perplexity":
        if evaluation is None or q not in evaluation.values:
            return unchecked(
                claim,
                "no perplexity record given (--eval); the internal check compares the card's "
                "copies",
                "evaluation",
            )
        return compare(claim, "evaluation", evaluation.values[q], 2)
    if q.endswith("_variation"):
        return against_records.variation_vs_eval(claim, partners, evaluation)
    if q in _FROM_EVAL or q.startswith(("HasAns_", "NoAns_", "best_")):
        if evaluation is None:
            return unchecked(claim, "no evaluation given (--eval)", "evaluation")
        if q not in evaluation.values:
            return unchecked(claim, f"the evaluation has no {q} figure", "evaluation")
        return compare(claim, "evaluation", evaluation.values[q], 2)
    for family in registered():
        found = family.measured(claim, analysis, evaluation)
        if found is not None:
            return found
    return unchecked(claim, "prunecard measures nothing for this claim")
