"""Claims against the weights: the caller's Analysis record and the sha256 of the files
(the audit opens no weights itself)."""

from __future__ import annotations

from dataclasses import replace

from analyzer.audit.claims import Claim
from analyzer.audit.findings import (
    MISMATCH,
    OK,
    AuditFinding,
    compare,
    finding,
    rounding_rule,
    unchecked,
    with_reason,
)
from analyzer.records import Analysis
from analyzer.text import fixed, megabytes

__all__ = [
    "WEIGHT_FIGURES",
    "causal_lm",
    "config_claims",
    "file_size",
    "from_weights",
    "question_answering",
    "sha256",
    "tag",
]


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
    heads = {h.layer: h for h in analysis.heads.layers}
    for layer in analysis.layers:
        about = f"layer {layer.layer}"
        out[f"layer_density/{about}"] = (100 * layer.density, 3)
        out[f"layer_ffn_units_kept/{about}"] = (layer.ffn_units_kept, 0)
        out[f"layer_linear_packed/{about}"] = (layer.linear_packed, 0)
        if layer.ffn_units_total:
            out[f"layer_ffn_units_total/{about}"] = (layer.ffn_units_total, 0)
            share = 100 * layer.ffn_units_kept / layer.ffn_units_total
            out[f"layer_ffn_units_kept_pct/{about}"] = (share, 3)
        if h := heads.get(layer.layer):
            out[f"layer_heads_kept/{about}"] = (h.kept, 0)
            out[f"layer_heads_total/{about}"] = (h.kept + len(h.removed), 0)
    if analysis.heads.total:
        out["heads_removed"] = (analysis.heads.removed, 0)
        out["heads_total"] = (analysis.heads.total, 0)
        out["heads_removed_pct"] = (100 * analysis.heads.removed / analysis.heads.total, 3)
        out["heads_dead_kept"] = (analysis.heads.dead_kept, 0)
        out["heads_dead_kept_pct"] = (100 * analysis.heads.dead_kept / analysis.heads.total, 3)
    if analysis.heads.kv_total:  # grouped-query attention: K/V groups beside query heads
        kv = analysis.heads
        out["heads_kv_removed"] = (kv.kv_removed, 0)
        out["heads_kv_total"] = (kv.kv_total, 0)
        out["heads_kv_removed_pct"] = (100 * kv.kv_removed / kv.kv_total, 3)
        for h in kv.layers:
            out[f"layer_kv_kept/layer {h.layer}"] = (h.kv_kept, 0)
            out[f"layer_kv_total/layer {h.layer}"] = (h.kv_kept + len(h.kv_removed), 0)
        if analysis.num_kv_heads:
            out["heads_per_kv_group"] = (analysis.num_heads / analysis.num_kv_heads, 0)
    if analysis.ffn.units_total:
        out["ffn_units_kept"] = (analysis.ffn.units_kept, 0)
        out["ffn_units_total"] = (analysis.ffn.units_total, 0)
        out["ffn_units_kept_pct"] = (100 * analysis.ffn.units_kept / analysis.ffn.units_total, 3)
    return out


WEIGHT_FIGURES = {
    "linear_density",
    "overall_density",
    "linear_nnz",
    "linear_dense",
    "linear_packed",
}


def from_weights(claim: Claim, analysis: Analysis | None) -> AuditFinding:
    if analysis is None:
        return unchecked(claim, "no weights read (--no-weights)", "weights")
    key = (
        f"{claim.quantity}/{claim.about}"
        if claim.quantity.startswith("layer_")
        else (claim.quantity)
    )
    measured = _weights(analysis).get(key)
    if measured is None:
        return unchecked(
            claim, f"{analysis.family} checkpoints have no attention-head/FFN geometry", "weights"
        )
    value, shown = measured
    found = compare(claim, "weights", value, shown)
    if claim.quantity.startswith("heads_removed") and found.verdict == MISMATCH:
        return with_reason(found, "prunecard's rule: " + analysis.heads.rule.split(". ")[0])
    return found


def file_size(claim: Claim, analysis: Analysis | None) -> AuditFinding:
    if analysis is None:
        return unchecked(claim, "no weights read (--no-weights)", "weights")
    size = analysis.file_bytes
    rule = (
        rounding_rule(claim) + "; MB read as 10^6 or 2^20 bytes (nn_pruning prints MiB "
        "as MB), either may match; weight files only"
    )
    decimal, binary = (
        compare(claim, "weights", size / 1e6, 1),
        compare(claim, "weights", size / 2**20, 1),
    )
    best = decimal if decimal.verdict == OK or binary.verdict != OK else binary
    shown = f"{megabytes(size)} = {fixed(size / 2**20, 1)} MiB ({size:,} bytes)"

    return replace(best, measured=shown, rule=rule, measured_value=float(size))


def question_answering(claim: Claim, analysis: Analysis | None) -> AuditFinding:
    """A question-answering tag or task: the model must have a QA head."""
    if analysis is None:
        return unchecked(claim, "no weights read (--no-weights)", "weights")
    heads = [a for a in analysis.architectures if a.endswith("ForQuestionAnswering")]
    shown = ", ".join(analysis.architectures)
    if not analysis.architectures:  # older configs lack it: the weights show the head
        heads = [m.name for m in analysis.matrices if m.name.endswith("qa_outputs.weight")]
        shown = "no architectures in config.json; weights " + (
            f"hold {heads[0]}" if heads else "hold no qa_outputs head"
        )
    return finding(
        claim,
        "weights",
        shown,
        "the config's architectures must include a *ForQuestionAnswering model (without "
        "architectures: the weights must hold a qa_outputs head)",
        OK if heads else MISMATCH,
    )


def causal_lm(claim: Claim, analysis: Analysis | None) -> AuditFinding:
    """A text-generation tag or task: the model must be a causal language model."""
    if analysis is None:
        return unchecked(claim, "no weights read (--no-weights)", "weights")
    shown = f"{analysis.kind} ({', '.join(analysis.architectures) or 'no architectures'})"
    return finding(
        claim,
        "weights",
        shown,
        "a text-generation model must be a decoder (causal LM) or have a *ForCausalLM "
        "architecture in config.json",
        OK if analysis.causal_lm else MISMATCH,
    )


def tag(claim: Claim, analysis: Analysis | None) -> AuditFinding:
    tag = claim.name.lower()
    if tag == "question-answering":
        return question_answering(claim, analysis)
    if tag == "text-generation":
        return causal_lm(claim, analysis)
    if analysis is not None and tag in {analysis.model_type.lower(), analysis.family}:
        return finding(
            claim,
            "weights",
            analysis.model_type,
            "a model-type tag must name the config's model_type",
            OK,
        )
    return unchecked(claim, "a label, not a measurable figure")


def sha256(claim: Claim, hashes: dict[str, str] | None) -> AuditFinding:
    """A Provenance digest against the file it names: another digest means the card's
    figures were measured on other weights, however alike their zeros look."""
    if hashes is None:
        return unchecked(claim, "no weights read (--no-weights)", "weights")
    rule = "the Provenance sha256 must equal the sha256 of the checkpoint's file"
    actual = hashes.get(claim.about)
    if actual is None:
        reason = f"the checkpoint has no file {claim.about}: the card describes other weights"
        return finding(claim, "weights", "(no such file)", rule, MISMATCH, reason)
    if actual != claim.name:
        reason = "the card describes other weights (the file's sha256 differs)"
        return finding(claim, "weights", actual, rule, MISMATCH, reason)
    return finding(claim, "weights", actual, rule, OK)


def config_claims(analysis: Analysis | None) -> list[AuditFinding]:
    """What a compressed-tensors config.json states (global_sparsity, sparsity_structure,
    targets, ignore), as the analysis checked it against the weights: a claim of the
    checkpoint itself, audited beside the card's."""
    if analysis is None or analysis.compression is None:
        return []
    return [
        AuditFinding(
            quantity=f"config {claim.field}",
            text=f"{analysis.compression.config_field}: {claim.field} {claim.stated}",
            line=0,
            section="config.json",
            source="config.json",
            claimed=claim.stated,
            measured=claim.measured,
            check="weights",
            rule=claim.rule,
            verdict=OK if claim.holds else MISMATCH,
            file="config.json",
        )
        for claim in analysis.compression.claims
    ]
