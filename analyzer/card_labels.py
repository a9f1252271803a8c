"""The labels of the summary table prunecard's card prints, in one place.

The template (`templates/model_card.md.j2`, through `publish/card.py`'s context) writes
them and the audit's prunecard family (`audit/prunecard_card.py`) reads them, so the reader
can never drift from the writer. It sits in the lowest layer, below publish/ and audit/.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SUMMARY", "SummaryLabels"]


@dataclass(frozen=True)
class SummaryLabels:
    linear: str = "Linear layers: non-zero weights"
    overall: str = "All parameters: non-zero, removed heads counted at their dense size"
    heads: str = "Attention heads removed"
    query_heads: str = "(query heads)"  # after `heads` where K/V heads are counted apart
    dead_kept: str = "Query heads dead, kept by packing (their KV group is live)"
    dead: str = "dead (kept by packing)"  # a per-layer heads cell's dead heads, and prose
    kv_groups: str = "KV groups removed (every query head sharing the group removed)"
    units_decoder: str = "MLP channels"
    units_encoder: str = "FFN units"
    kept: str = "kept"  # after the units' name
    patterns: str = "Sparsity patterns of the linear matrices"
    base: str = "Width and depth against the dense base"
    params: str = "Parameters: dense / stored / packed"
    files: str = "Weight files: as stored / packed"
    speedup: str = "Speedup, packed vs dense"
    decoding: str = "Decoding, batch"  # then "{batch}: tokens/s dense / packed"
    semi_structured: str = "Semi-structured sparse kernels on the 2:4 matrices vs dense"
    perplexity: str = "Perplexity"


SUMMARY = SummaryLabels()
