"""The card families beyond nn_pruning's and prunecard's own, registered in one place.

`claims.py` walks a card once (front matter, prose lines, code blocks, tables) and hands
each piece to the functions here as well; each family module reads its own phrasings:

- `trainer_card`: the HF Trainer's auto-generated card and the example scripts' metrics;
- `model_index`: every task, dataset and metric of `model-index` (and `.eval_results/`);
- `sparsity_phrases`: sparsity, N:M and block patterns, pruned heads, "x times faster";
- `counts`: evaluation counts (questions, examples, tokenized windows) and window settings;
- `stated_sizes`: the stated dtype, parameters against the stated file size, "Nx smaller".

`checks.py` asks `measured` for the claims these families add and `internal` for their
rules (the rules of every card, family or not, are `consistency.py`'s).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from analyzer.audit import counts, model_index, sparsity_phrases, stated_sizes, trainer_card

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.audit.claims import Claim
    from analyzer.audit.findings import AuditFinding, Partners
    from analyzer.records import Analysis

__all__ = ["code_block", "internal", "measured", "metadata", "prose", "table"]


def prose(plain: str, line: int, section: str) -> list[Claim]:
    """Claims of one prose line (Markdown emphasis and code marks removed)."""
    return [
        *trainer_card.prose(plain, line, section),
        *sparsity_phrases.prose(plain, line, section),
        *counts.prose(plain, line, section),
        *stated_sizes.prose(plain, line, section),
    ]


def code_block(block: list[str], first_line: int, section: str) -> list[Claim]:
    """Claims of a fenced code block's lines (metrics printouts, script arguments)."""
    return [
        *trainer_card.code_block(block, first_line, section),
        *counts.code_block(block, first_line, section),
    ]


def table(rows: list[tuple[int, list[str]]], section: str) -> list[Claim]:
    """Claims of a Markdown table (rows as (line, raw cells), the header first)."""
    return [
        *trainer_card.table(rows, section),
        *sparsity_phrases.table(rows, section),
    ]


def metadata(front: dict[str, Any], lines: list[str], body: int) -> list[Claim]:
    """Claims of the YAML front matter."""
    return model_index.metadata(front, lines, body)


def measured(
    claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
) -> AuditFinding | None:
    """The finding for a claim one of these families added, or None if it is not theirs."""
    for family in (sparsity_phrases, counts, trainer_card, model_index, stated_sizes):
        found = family.measured(claim, analysis, evaluation)
        if found is not None:
            return found
    return None


def internal(partners: Partners) -> list[AuditFinding]:
    """The families' internal-consistency rules (no weights needed; a density beside its
    counts is `consistency.py`'s percentage rule), on the card's claim index."""
    return [
        *counts.internal(partners),
        *sparsity_phrases.internal(partners),
        *stated_sizes.internal(partners),
    ]
