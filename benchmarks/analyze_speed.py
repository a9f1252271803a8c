"""analyze vs a bare non-zero count, on a BERT-large-sized checkpoint (about 1.3 GB fp32).

Both run as fresh processes (imports included) on the same file, alternating, three times
each; the script prints the median wall times, their ratio (target: at most 1.5x) and each
process's peak resident memory next to the largest tensor's size.

    python benchmarks/analyze_speed.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE = """
import sys
from safetensors import safe_open
total = 0
with safe_open(sys.argv[1] + "/model.safetensors", framework="pt") as f:
    for name in f.keys():
        total += int(f.get_tensor(name).count_nonzero())
print(total)
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

ANALYZE = """
import sys
from analyzer import analyze
print(analyze(sys.argv[1]).overall.nnz)
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def build(out: Path) -> None:
    """A bert-large QA checkpoint, half its attention blocks and FFN units zeroed."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    hidden, ffn, layers = 1024, 4096, 24
    state = {
        "bert.embeddings.word_embeddings.weight": torch.randn(30522, hidden),
        "bert.embeddings.position_embeddings.weight": torch.randn(512, hidden),
        "bert.embeddings.token_type_embeddings.weight": torch.randn(2, hidden),
        "bert.embeddings.LayerNorm.weight": torch.ones(hidden),
        "bert.embeddings.LayerNorm.bias": torch.zeros(hidden),
        "qa_outputs.weight": torch.randn(2, hidden),
        "qa_outputs.bias": torch.zeros(2),
    }
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for name in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ):
            w = torch.randn(hidden, hidden)
            mask = torch.rand(hidden // 32, hidden // 32) < 0.5
            state[p + name + ".weight"] = w * mask.repeat_interleave(32, 0).repeat_interleave(32, 1)
            state[p + name + ".bias"] = torch.randn(hidden)
        alive = torch.rand(ffn) < 0.3
        state[p + "intermediate.dense.weight"] = torch.randn(ffn, hidden) * alive[:, None]
        state[p + "intermediate.dense.bias"] = torch.randn(ffn) * alive
        state[p + "output.dense.weight"] = torch.randn(hidden, ffn) * alive[None, :]
        state[p + "output.dense.bias"] = torch.randn(hidden)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[p + ln + ".weight"] = torch.ones(hidden)
            state[p + ln + ".bias"] = torch.zeros(hidden)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"))
    config = {
        "model_type": "bert",
        "architectures": ["BertForQuestionAnswering"],
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 16,
        "intermediate_size": ffn,
        "vocab_size": 30522,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
    }
    (out / "config.json").write_text(json.dumps(config))


def largest_tensor_bytes(file: Path) -> int:
    """From the safetensors header: 8-byte length, then JSON with data_offsets per tensor."""
    with file.open("rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    return max(
        end - start
        for k, v in header.items()
        if k != "__metadata__"
        for start, end in [v["data_offsets"]]
    )


def run(code: str, path: Path) -> tuple[float, float, str]:
    """Wall seconds, the process's own peak RSS in MB, and the non-zero count it printed."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    nnz, peak_kb = done.stdout.split()
    return wall, int(peak_kb) / 1024, nnz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build (or reuse) the checkpoint here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bert-large"
        if not (path / "model.safetensors").exists():
            build(path)
        largest = largest_tensor_bytes(path / "model.safetensors")
        size = (path / "model.safetensors").stat().st_size
        print(f"checkpoint: {size / 1e9:.2f} GB, largest tensor {largest / 1e6:.0f} MB")
        bare, ours, bare_mem, ours_mem = [], [], [], []
        run(BARE, path)  # warm the page cache once so neither side pays the first read
        for _ in range(args.repeats):
            t, m, bare_out = run(BARE, path)
            bare.append(t)
            bare_mem.append(m)
            t, m, ours_out = run(ANALYZE, path)
            ours.append(t)
            ours_mem.append(m)
        assert bare_out == ours_out, f"non-zero counts differ: {bare_out} vs {ours_out}"
        b, o = statistics.median(bare), statistics.median(ours)
        print(f"bare non-zero count : {b:6.2f} s (runs {', '.join(f'{x:.2f}' for x in bare)})")
        print(f"prunecard analyze   : {o:6.2f} s (runs {', '.join(f'{x:.2f}' for x in ours)})")
        print(f"ratio analyze / bare: {o / b:.2f}x (target <= 1.5x)")
        print(f"peak RSS            : bare {max(bare_mem):.0f} MB, analyze {max(ours_mem):.0f} MB")


if __name__ == "__main__":
    main()
