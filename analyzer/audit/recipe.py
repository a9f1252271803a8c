"""The recipe.yaml beside the weights as claims: llm-compressor states how the model was
pruned, and the Analysis has checked each statement against the measured patterns
(`analyzer.weights.recipe`). The audit reads those verdicts from the record, never the
weights: a statement the weights contradict is a mismatch, like a wrong figure on the card.
"""

from __future__ import annotations

from analyzer.audit.findings import MISMATCH, OK, UNCHECKED, AuditFinding
from analyzer.publish.card import recipe_claims
from analyzer.records import Analysis

__all__ = ["recipe_findings"]

_VERDICTS = {"match": OK, "mismatch": MISMATCH, "unchecked": UNCHECKED}
_RULE = (
    "N:M: every targeted matrix follows it; unstructured: density 1 - sparsity within 1 point; "
    "ignored matrices keep more than 1 - sparsity / 2 (docs/analysis.md, recipe.yaml)"
)


def recipe_findings(analysis: Analysis | None) -> list[AuditFinding]:
    """One finding per recipe check of `analysis` (none without a recipe)."""
    if analysis is None or analysis.recipe is None:
        return []
    source = analysis.recipe.source
    return [
        AuditFinding(
            quantity="recipe",
            text=claim,
            line=0,
            section=source,
            source="recipe",
            claimed=claim.split(": ", 1)[-1],
            measured=measured,
            check="weights",
            rule=_RULE,
            verdict=_VERDICTS[verdict],
            file=source,
        )
        for claim, verdict, measured in recipe_claims(analysis.recipe)
    ]
