"""Every phrasing family, imported once in the order the walker asks them (importing a
family module registers its class in `registry.py`):

- `nn_pruning`, `prunecard_card`, `prunecard_details`: nn_pruning's and prunecard's own
  cards (the summary; the detail tables and sentences);
- `trainer_card`: the HF Trainer's auto-generated card and the example scripts' metrics;
- `model_index`: front matter (`datasets`, `metrics` as metric names, `tags`) and every
  task, dataset and metric of `model-index` (and `.eval_results/`);
- `sparsity_phrases`: sparsity, N:M and block patterns, pruned heads, "x times faster";
- `counts`: evaluation counts (questions, examples, tokenized windows) and window settings;
- `stated_sizes`: the stated dtype, parameters against the stated file size, "Nx smaller";
- `benchmarks`: benchmark tables and accuracy sentences of LLM cards, seed tables, EM/F1;
- `architecture`: hidden size, heads, K/V heads, head size, intermediate size, layers,
  vocabulary, context length;
- `model_sizes`: parameter counts (1.3B, 56.6B total / 3B active), sizes in GB/GiB/MB/MiB,
  the weights' dtype, "N% smaller";
- `experts`: mixture-of-experts pruning;
- `placeholders`: `/path/to/...`, `<your-model>`, `YOUR_TOKEN` in usage blocks.

`prose`, `code_block` and `table` ask every family at once (what the walker does).
"""

from __future__ import annotations

from analyzer.audit import (  # noqa: F401  (the order is the walker's)
    architecture,
    benchmarks,
    counts,
    experts,
    model_index,
    model_sizes,
    nn_pruning,
    placeholders,
    prunecard_card,
    prunecard_details,
    sparsity_phrases,
    stated_sizes,
    trainer_card,
)
from analyzer.audit.claims import Claim
from analyzer.audit.registry import Rows, registered

__all__ = ["code_block", "prose", "table"]


def prose(plain: str, line: int, section: str) -> list[Claim]:
    return [c for f in registered() for c in f.prose(plain, line, section)]


def code_block(block: list[str], first_line: int, section: str) -> list[Claim]:
    return [c for f in registered() for c in f.code_block(block, first_line, section)]


def table(rows: Rows, section: str) -> list[Claim]:
    return [c for f in registered() for c in f.table(rows, section)]
