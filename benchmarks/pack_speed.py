"""Dense vs packed speed on a BERT-large-sized QA checkpoint with the reference structure.

The checkpoint (random values, fixed seed) has the structure style of the nn_pruning
fixtures at BERT-large size: 24 layers of 16 heads of 64, hidden 1024, FFN 4096; 190 of
the 384 heads removed physically (legacy `pruned_heads`, smaller Q/K/V/O), 32x32 blocks
zeroed inside the kept heads, and per-layer FFN widths drawn between 44 and 748 units (the
rest zero rows and columns). It is packed with `prunecard pack`, then `bench` times dense
against packed in one process. Target (issue 3): speedup at (1, 384) reaches 90% of the
FLOP bound on the CPU.

    PYTHONPATH=. python benchmarks/pack_speed.py [--threads N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

LAYERS, HEADS, HEAD_DIM, HIDDEN, FFN = 24, 16, 64, 1024, 4096
HEADS_REMOVED, FFN_MIN, FFN_MAX = 190, 44, 748
CONFIG = {
    "architectures": ["BertForQuestionAnswering"],
    "model_type": "bert",
    "hidden_size": HIDDEN,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "intermediate_size": FFN,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "vocab_size": 30522,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}


def build_reference(
    out: Path, *, seed: int = 0, dtype: str = "float16", layers: int = LAYERS
) -> Path:
    """Write the reference-structured BERT-large QA checkpoint (with MiniLM's tokenizer,
    which has BERT's vocabulary) to `out`; fewer `layers` (heads removed in proportion)
    make a small variant for dry runs."""
    import torch
    from safetensors.torch import save_file

    from analyzer.runtime.demo import minilm_path
    from analyzer.weights.checkpoint import copy_tokenizer_files

    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.02

    removed = round(HEADS_REMOVED * layers / LAYERS)
    order = torch.randperm(layers * HEADS, generator=g)[:removed].tolist()
    pruned = {i: sorted(h % HEADS for h in order if h // HEADS == i) for i in range(layers)}
    widths = torch.randint(FFN_MIN, FFN_MAX + 1, (layers,), generator=g).tolist()
    widths[0], widths[1] = FFN_MIN, FFN_MAX  # both ends of the range appear
    state = {
        "bert.embeddings.word_embeddings.weight": randn(CONFIG["vocab_size"], HIDDEN),
        "bert.embeddings.position_embeddings.weight": randn(512, HIDDEN),
        "bert.embeddings.token_type_embeddings.weight": randn(2, HIDDEN),
        "bert.embeddings.LayerNorm.weight": torch.ones(HIDDEN),
        "bert.embeddings.LayerNorm.bias": torch.zeros(HIDDEN),
        "qa_outputs.weight": randn(2, HIDDEN),
        "qa_outputs.bias": torch.zeros(2),
    }
    for layer in range(layers):
        p = f"bert.encoder.layer.{layer}."
        rows = (HEADS - len(pruned[layer])) * HEAD_DIM
        for name in ("query", "key", "value"):
            state[f"{p}attention.self.{name}.weight"] = _blocks(randn(rows, HIDDEN), g)
            state[f"{p}attention.self.{name}.bias"] = randn(rows)
        state[f"{p}attention.output.dense.weight"] = _blocks(randn(HIDDEN, rows), g)
        state[f"{p}attention.output.dense.bias"] = randn(HIDDEN)
        alive = torch.zeros(FFN, dtype=torch.bool)
        alive[torch.randperm(FFN, generator=g)[: widths[layer]]] = True
        state[f"{p}intermediate.dense.weight"] = randn(FFN, HIDDEN) * alive[:, None]
        state[f"{p}intermediate.dense.bias"] = randn(FFN) * alive
        state[f"{p}output.dense.weight"] = randn(HIDDEN, FFN) * alive[None, :]
        state[f"{p}output.dense.bias"] = randn(HIDDEN)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[f"{p}{ln}.weight"] = torch.ones(HIDDEN)
            state[f"{p}{ln}.bias"] = torch.zeros(HIDDEN)
    torch_dtype = getattr(torch, dtype)
    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.to(torch_dtype).contiguous() for k, v in state.items()},
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config = dict(
        CONFIG, num_hidden_layers=layers, pruned_heads={str(k): v for k, v in pruned.items() if v}
    )
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    # a GPU machine without the MiniLM package names a copy of its tokenizer files instead
    tokenizer = Path(os.environ.get("PRUNECARD_TOKENIZER_DIR") or minilm_path())
    copy_tokenizer_files(tokenizer, out)
    return out


def _blocks(matrix, g, fraction: float = 0.25):
    """Zero a random `fraction` of the 32x32 blocks (block-pruning leaves these)."""
    import torch

    rows, cols = matrix.shape
    keep = torch.rand(rows // 32, cols // 32, generator=g) >= fraction
    return matrix * keep.repeat_interleave(32, 0).repeat_interleave(32, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the checkpoints here and keep them")
    parser.add_argument("--json", type=Path, help="write the bench record here")
    args = parser.parse_args()

    from analyzer.cli.tables import format_bench, format_pack
    from analyzer.records import write_record
    from analyzer.runtime.bench import bench
    from analyzer.runtime.packing import pack
    from analyzer.runtime.timing import Protocol

    work = args.keep or Path(tempfile.mkdtemp(prefix="pack_speed."))
    try:
        t0 = time.perf_counter()
        source = build_reference(work / "reference")
        t1 = time.perf_counter()
        result = pack(source, work / "packed", force=True)
        t2 = time.perf_counter()
        print(f"built in {t1 - t0:.0f} s, packed in {t2 - t1:.0f} s\n")
        print(format_pack(result), "\n")
        record = bench(
            source,
            device="cpu",
            dtype="fp32",
            align=1,
            shapes=((1, 384), (1, 128), (4, 384)),
            threads=args.threads,
            protocol=Protocol(warmup=1, min_repeats=args.repeats),
            progress=sys.stderr.isatty(),
        )
        print(format_bench(record))
        if args.json:
            write_record(record, args.json)
        first = record.shapes[0]
        verdict = "met" if first.fraction_of_bound >= 0.9 else "MISSED"
        print(
            f"\ntarget (1, 384): {first.speedup:.2f}x of a {first.flop_bound:.2f}x bound = "
            f"{100 * first.fraction_of_bound:.0f}% (>= 90%: {verdict})"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
