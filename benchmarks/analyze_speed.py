"""analyze vs a bare non-zero count, on a BERT-large twin and on Llama-3.2-1B / 3.1-8B
geometries.

Three checkpoints are written to a temporary folder from random tensors:

- `bert-large`: a BERT-large QA checkpoint (fp32, 1.34 GB), half its attention blocks and
  70% of its FFN units zeroed;
- `llama-1b`: Llama-3.2-1B's geometry (hidden 2048, 16 layers, 32 heads, 8 K/V heads,
  head_dim 64, intermediate 8192, vocab 128256, tied embeddings: no `lm_head` key), bf16,
  every decoder linear weight 2:4, embeddings and norms dense (2.47 GB);
- `llama-8b` (only with `--llama8b`: it writes 16 GB, deleted afterwards): Llama-3.1-8B's
  geometry (hidden 4096, 32 layers, 32 heads, 8 K/V heads, intermediate 14336, vocab
  128256, untied `lm_head`), bf16, 2:4 decoder linear weights, in 4 shards with an index as
  published.

The Llama files are written tensor by tensor with a streaming safetensors writer, so
building holds one tensor in memory. Both sides run as fresh processes (imports included):
the bare pass opens every weight file with safetensors and counts each tensor's non-zeros;
`analyze` is prunecard's. They alternate on the same files (one warm-up read first, so
both find the page cache in the same state), `--repeats` times each; the script prints
median wall times, their ratio (target: at most 1.2x), the load average around the runs,
and each process's peak anonymous memory: RssAnon from /proc/self/status, sampled every
5 ms by a thread in the process. RssAnon, not VmHWM: safetensors maps the files, so
resident file pages (up to the whole checkpoint, and reclaimable) count in VmRSS and its
peak VmHWM, while the memory the process allocates itself is anonymous. Target for 8B:
peak RssAnon under 2 GB.

    python benchmarks/analyze_speed.py [--repeats 5] [--only bert-large,llama-1b]
        [--llama8b] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# both sides start this sampler first: the highest RssAnon seen, read every 5 ms
SAMPLER = """
import threading, time
peak = [0]
def sample():
    with open('/proc/self/status') as status:
        kb = next(int(l.split()[1]) for l in status if l.startswith('RssAnon:'))
    peak[0] = max(peak[0], kb)
def sampler():
    while True:
        sample()
        time.sleep(0.005)
threading.Thread(target=sampler, daemon=True).start()
"""

BARE = (
    SAMPLER
    + """
import json, sys
from pathlib import Path
from safetensors import safe_open
root = Path(sys.argv[1])
index = root / "model.safetensors.index.json"
files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() \\
    else ["model.safetensors"]
total = 0
for file in files:
    with safe_open(str(root / file), framework="pt") as f:
        for name in f.keys():
            total += int(f.get_tensor(name).count_nonzero())
sample()
print(total, peak[0])
"""
)

ANALYZE = (
    SAMPLER
    + """
import sys
from analyzer import analyze
nnz = analyze(sys.argv[1]).overall.nnz
sample()
print(nnz, peak[0])
"""
)


BERT_LARGE = {"hidden": 1024, "ffn": 4096, "layers": 24, "heads": 16}
BERT_BASE = {"hidden": 768, "ffn": 3072, "layers": 12, "heads": 12}


def build_bert(out: Path, geometry: dict[str, int] = BERT_LARGE) -> None:
    """A BERT QA checkpoint (default: bert-large's geometry), half its attention blocks
    zeroed and 70% of its FFN units."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    hidden, ffn, layers = geometry["hidden"], geometry["ffn"], geometry["layers"]
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
        "num_attention_heads": geometry["heads"],
        "intermediate_size": ffn,
        "vocab_size": 30522,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
    }
    (out / "config.json").write_text(json.dumps(config))


LLAMA_1B = {
    "hidden_size": 2048,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "intermediate_size": 8192,
    "vocab_size": 128256,
    "tie_word_embeddings": True,
    "rope_theta": 500000.0,
    "max_position_embeddings": 131072,
}
LLAMA_8B = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 14336,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
    "rope_theta": 500000.0,
    "max_position_embeddings": 131072,
}

# a tensor to write: name, shape, whether its rows are 2:4 (decoder linear weights)
_Spec = tuple[str, tuple[int, ...], bool]


def llama_tensors(geometry: dict) -> list[_Spec]:
    """Every tensor of a Llama checkpoint of this geometry, in the published order."""
    h, inter = geometry["hidden_size"], geometry["intermediate_size"]
    q = geometry["num_attention_heads"] * geometry["head_dim"]
    kv = geometry["num_key_value_heads"] * geometry["head_dim"]
    specs: list[_Spec] = [("model.embed_tokens.weight", (geometry["vocab_size"], h), False)]
    for i in range(geometry["num_hidden_layers"]):
        p = f"model.layers.{i}."
        specs += [
            (p + "input_layernorm.weight", (h,), False),
            (p + "self_attn.q_proj.weight", (q, h), True),
            (p + "self_attn.k_proj.weight", (kv, h), True),
            (p + "self_attn.v_proj.weight", (kv, h), True),
            (p + "self_attn.o_proj.weight", (h, q), True),
            (p + "post_attention_layernorm.weight", (h,), False),
            (p + "mlp.gate_proj.weight", (inter, h), True),
            (p + "mlp.up_proj.weight", (inter, h), True),
            (p + "mlp.down_proj.weight", (h, inter), True),
        ]
    specs.append(("model.norm.weight", (h,), False))
    if not geometry["tie_word_embeddings"]:
        specs.append(("lm_head.weight", (geometry["vocab_size"], h), False))
    return specs


def random_tensor(shape: tuple[int, ...], two_of_four: bool, generator: Any) -> Any:
    """Random bf16 values (never zero); with `two_of_four`, 2 of every 4 consecutive
    weights of a row zeroed, which 2 drawn per group among the 6 choices."""
    import itertools

    import torch

    values = torch.empty(shape, dtype=torch.bfloat16).uniform_(0.5, 1.5, generator=generator)
    if not two_of_four:
        return values
    choices = torch.tensor(
        [[k in pair for k in range(4)] for pair in itertools.combinations(range(4), 2)],
        dtype=torch.bfloat16,
    )
    picks = torch.randint(0, len(choices), (values.numel() // 4,), generator=generator)
    return values.mul_(choices[picks].reshape(shape))


def write_safetensors(path: Path, specs: list[_Spec], make: Callable[[_Spec], Any]) -> None:
    """A safetensors file written one tensor at a time: the header (8-byte length, JSON with
    each tensor's dtype, shape and byte range), then each tensor's bytes as `make` builds
    it (bf16)."""
    import torch

    header, offset = {}, 0
    for name, shape, _ in specs:
        size = 2 * _numel(shape)
        header[name] = {
            "dtype": "BF16",
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with path.open("wb") as handle:
        handle.write(len(text).to_bytes(8, "little") + text)
        for spec in specs:
            make(spec).reshape(-1).view(torch.uint8).numpy().tofile(handle)


def build_llama(out: Path, geometry: dict, shards: int = 1) -> None:
    """A Llama checkpoint of `geometry` in `shards` files (an index when more than one),
    split in tensor order at about equal sizes, as published checkpoints are."""
    import torch

    generator = torch.Generator().manual_seed(0)
    specs = llama_tensors(geometry)
    out.mkdir(parents=True, exist_ok=True)
    total = sum(2 * _numel(shape) for _, shape, _ in specs)
    groups: list[list[_Spec]] = [[] for _ in range(shards)]
    done = 0
    for spec in specs:
        groups[min(shards - 1, done * shards // total)].append(spec)
        done += 2 * _numel(spec[1])
    names = (
        ["model.safetensors"]
        if shards == 1
        else [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    )
    for name, group in zip(names, groups, strict=True):
        write_safetensors(out / name, group, lambda s: random_tensor(s[1], s[2], generator))
    if shards > 1:
        index = {
            "metadata": {"total_size": total},
            "weight_map": {s[0]: n for n, g in zip(names, groups, strict=True) for s in g},
        }
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        **geometry,
        "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
        "torch_dtype": "bfloat16",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))


CHECKPOINTS: dict[str, Callable[[Path], None]] = {
    "bert-large": build_bert,
    "llama-1b": lambda out: build_llama(out, LLAMA_1B),
    "llama-8b": lambda out: build_llama(out, LLAMA_8B, shards=4),
}


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def weight_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.safetensors"))


def largest_tensor_bytes(files: list[Path]) -> int:
    """From the safetensors headers: 8-byte length, then JSON with data_offsets per tensor."""
    largest = 0
    for file in files:
        with file.open("rb") as handle:
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
        largest = max(
            largest,
            *(
                end - start
                for k, v in header.items()
                if k != "__metadata__"
                for start, end in [v["data_offsets"]]
            ),
        )
    return largest


def run(code: str, path: Path, threads: int | None = None) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system), the process's peak RssAnon in MB, and the
    non-zero count it printed. `threads` caps torch's intra-op threads (OMP_NUM_THREADS)."""
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, env=env
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    nnz, peak_kb = done.stdout.split()
    return wall, cpu, int(peak_kb) / 1024, nnz


def compare(name: str, path: Path, repeats: int, threads: int | None) -> Iterator[str]:
    """Bare pass and analyze in alternation (which goes first alternates too), medians of
    wall and of CPU time: on a shared machine a busy core stalls torch's threads at each
    parallel region, which moves wall time far more than the work done."""
    files = weight_files(path)
    size = sum(f.stat().st_size for f in files)
    yield (
        f"{name}: {size / 1e9:.2f} GB in {len(files)} file(s), largest tensor "
        f"{largest_tensor_bytes(files) / 1e6:.0f} MB"
    )
    run(BARE, path)  # warm the page cache once so neither side pays the first read
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {"bare": [], "analyze": []}
    cpu: dict[str, list[float]] = {"bare": [], "analyze": []}
    memory: dict[str, list[float]] = {"bare": [], "analyze": []}
    counts: dict[str, str] = {}
    for i in range(repeats):
        sides = [("bare", BARE), ("analyze", ANALYZE)]
        for side, code in sides if i % 2 == 0 else sides[::-1]:
            wall, seconds, peak, counts[side] = run(code, path, threads)
            times[side].append(wall)
            cpu[side].append(seconds)
            memory[side].append(peak)
    load_after = os.getloadavg()
    assert counts["bare"] == counts["analyze"], f"non-zero counts differ: {counts}"
    b, o = statistics.median(times["bare"]), statistics.median(times["analyze"])
    for side, label in (("bare", "bare non-zero count"), ("analyze", "prunecard analyze")):
        runs = ", ".join(f"{x:.2f}" for x in times[side])
        yield (
            f"  {label:20}: {statistics.median(times[side]):6.2f} s (runs {runs}), "
            f"CPU {statistics.median(cpu[side]):.2f} s"
        )
    cpu_ratio = statistics.median(cpu["analyze"]) / statistics.median(cpu["bare"])
    yield f"  ratio analyze / bare: {o / b:.2f}x wall, {cpu_ratio:.2f}x CPU (target <= 1.2x)"
    yield (
        f"  peak RssAnon        : bare {max(memory['bare']):.0f} MB, analyze "
        f"{max(memory['analyze']):.0f} MB"
    )
    yield (
        f"  load average        : {' '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' '.join(f'{x:.2f}' for x in load_after)} after, on {os.cpu_count()} CPUs, "
        f"torch threads {threads or 'default'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build (or reuse) the checkpoints here")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, help="torch threads in both processes (OMP_NUM_THREADS)"
    )
    parser.add_argument(
        "--only",
        default="bert-large,llama-1b",
        help="comma-separated checkpoints (bert-large, llama-1b)",
    )
    parser.add_argument(
        "--llama8b",
        action="store_true",
        help="add the Llama-3.1-8B geometry (writes 16 GB, deleted after)",
    )
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    if args.llama8b:
        names.append("llama-8b")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = (args.keep or Path(tmp)) / name
            if not path.exists():
                CHECKPOINTS[name](path)
            for line in compare(
                name, path, 1 if name == "llama-8b" else args.repeats, args.threads
            ):
                print(line, flush=True)
            if name == "llama-8b":
                shutil.rmtree(path)


if __name__ == "__main__":
    main()
