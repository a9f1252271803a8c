"""Issue 22's GPU benchmark: 2:4 sparse vs dense linear layers at Llama-7B shapes, fp16.

Two decoder layers' linear weights (hidden 4096, intermediate 11008: Q, K, V, O 4096 x 4096;
gate and up 11008 x 4096; down 4096 x 11008) are drawn at random in fp16 and pruned to 2:4
by magnitude (the 2 largest of every 4 along the input dimension), as SparseGPT, Wanda
and NVIDIA ASP leave them. `analyzer.runtime.semi_structured` (the code `prunecard bench`
uses) turns them into semi-structured sparse tensors; then, on 4,096 tokens (batch x seq),
the dense and the sparse products are timed interleaved with CUDA events: every matrix on
its own, and all 14 products of the two layers in a row (the headline ratio; the issue's
target is at least 1.3x). Each sparse product is checked against the dense one first.

Reference figure: cuSPARSELt's own speedup for these GEMM shapes (fp16, M = 4096 tokens)
is published by NVIDIA (cuSPARSELt documentation and the "Exploiting NVIDIA Ampere
Structured Sparsity with cuSPARSELt" post) and in PyTorch's semi-structured sparsity
tutorial; look it up for the GPU at hand and put it beside the ratios printed here. It is
not typed in: every figure this script prints is measured.

Without a CUDA device the script says so and exits 0; `--cpu-dry-run` (or `--dry-run`, as
benchmarks/gpu.sh passes it) runs every step on the CPU at a tiny shape with the dense
2:4 weights on both sides, to check the script before GPU time is spent.

    python3 benchmarks/llm_2of4.py [--out DIR] [--tokens 4096] [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def shapes(hidden: int, intermediate: int) -> dict[str, tuple[int, int]]:
    """(out, in) of each linear weight of a Llama-7B-style decoder layer."""
    square = (hidden, hidden)
    return {
        "q": square,
        "k": square,
        "v": square,
        "o": square,
        "gate": (intermediate, hidden),
        "up": (intermediate, hidden),
        "down": (hidden, intermediate),
    }


def two_of_four(weight):
    """`weight` with the 2 smallest magnitudes of every 4 along the input dimension zeroed."""
    rows, cols = weight.shape
    groups = weight.reshape(rows, cols // 4, 4)
    keep = groups.abs().argsort(dim=2, descending=True).argsort(dim=2) < 2
    return (groups * keep).reshape(rows, cols)


def build(layers: int, hidden: int, intermediate: int, dtype, device):
    """A module holding `layers` x 7 bias-free Linear layers named layers.N.<matrix>, with
    random 2:4 weights (fixed seed)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Module()
    model.layers = torch.nn.ModuleList()
    for _ in range(layers):
        block = torch.nn.ModuleDict()
        for name, (rows, cols) in shapes(hidden, intermediate).items():
            linear = torch.nn.Linear(cols, rows, bias=False, device=device, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(two_of_four(torch.randn(rows, cols, device=device) / cols**0.5))
            block[name] = linear.requires_grad_(False)
        model.layers.append(block)
    return model


def timer(device: str):
    """time(fn, inner) -> milliseconds per call: CUDA events on a GPU, perf_counter on a CPU."""
    import torch

    def cuda(fn, inner: int) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / inner

    def cpu(fn, inner: int) -> float:
        began = time.perf_counter()
        for _ in range(inner):
            fn()
        return 1000 * (time.perf_counter() - began) / inner

    return cuda if device == "cuda" else cpu


def interleaved(time_one, dense, sparse, repeats: int, inner: int) -> dict[str, float]:
    """Medians and interquartile ranges of both sides, timed in alternating order."""
    from analyzer.runtime.timing import iqr

    for fn in (dense, sparse, dense, sparse):  # warm-up: kernel choice, allocator
        time_one(fn, inner)
    samples: tuple[list[float], list[float]] = ([], [])
    for r in range(repeats):
        for i in (0, 1) if r % 2 == 0 else (1, 0):
            samples[i].append(time_one((dense, sparse)[i], inner))
    dense_ms, sparse_ms = (statistics.median(s) for s in samples)
    return {
        "dense_ms": dense_ms,
        "sparse_ms": sparse_ms,
        "dense_iqr_ms": iqr(samples[0]),
        "sparse_iqr_ms": iqr(samples[1]),
        "speedup": dense_ms / sparse_ms,
        "repeats": repeats,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for llm_2of4.json")
    parser.add_argument("--tokens", type=int, default=4096, help="batch x seq (4096)")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30, help="timed rounds per side (30)")
    parser.add_argument("--inner", type=int, default=5, help="products per timed run (5)")
    parser.add_argument(
        "--cpu-dry-run",
        "--dry-run",
        action="store_true",
        help="no GPU: every step on the CPU at a tiny shape, dense on both sides",
    )
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from analyzer.runtime.semi_structured import is_2of4, semi_structured_copy

    dry = args.cpu_dry_run
    if not dry and not torch.cuda.is_available():
        print("llm_2of4: needs a CUDA GPU (Ampere or later) for 2:4 sparse tensor cores; none")
        print("here. Run with --cpu-dry-run to check the script on the CPU.")
        return 0
    device, dtype = ("cpu", torch.float32) if dry else ("cuda", torch.float16)
    hidden, intermediate, tokens = (64, 176, 64) if dry else (4096, 11008, args.tokens)
    repeats, inner = (3, 1) if dry else (args.repeats, args.inner)

    dense = build(args.layers, hidden, intermediate, dtype, device)
    assert all(is_2of4(p) for p in dense.parameters())
    if dry:  # no sparse kernels on a CPU: the dense 2:4 weights stand in for the sparse side
        sparse, converted = dense, {}
    else:
        sparse, converted = semi_structured_copy(dense)
        missing = sum(1 for _ in dense.parameters()) - len(converted)
        if missing:
            print(f"llm_2of4: {missing} matrices were refused by to_sparse_semi_structured")
            return 1
    time_one = timer(device)
    inputs = {
        d: torch.randn(tokens, d, device=device, dtype=dtype) / 4 for d in (hidden, intermediate)
    }

    rows = {}
    with torch.inference_mode():
        for name, (out_f, in_f) in shapes(hidden, intermediate).items():
            x = inputs[in_f]
            d_mod, s_mod = dense.layers[0][name], sparse.layers[0][name]
            want, got = d_mod(x).float(), s_mod(x).float()
            error = float((want - got).abs().max() / want.abs().max())
            result = interleaved(time_one, lambda m=d_mod, x=x: m(x), lambda m=s_mod, x=x: m(x),
                                 repeats, inner)  # fmt: skip
            rows[name] = {"shape": [out_f, in_f], "max_rel_error": error, **result}

        def chain(model):
            def run():
                for block in model.layers:
                    for name, (_, in_f) in shapes(hidden, intermediate).items():
                        block[name](inputs[in_f])

            return run

        total = interleaved(time_one, chain(dense), chain(sparse), repeats, inner)

    backend = {
        "cusparselt": bool(torch.backends.cusparselt.is_available()),
        "cusparselt_version": torch.backends.cusparselt.version()
        if torch.backends.cusparselt.is_available()
        else None,
        "force_cutlass": bool(torch.sparse.SparseSemiStructuredTensor._FORCE_CUTLASS),
    }
    device_name = torch.cuda.get_device_name() if device == "cuda" else "CPU (dry run)"
    print(f"device {device_name}; torch {torch.__version__}; {dtype}; {tokens} tokens")
    print(f"sparse backend: {backend}; matrices converted: {len(converted)}")
    print(f"{'matrix':6} {'shape':>12} {'dense ms':>10} {'2:4 ms':>10} {'ratio':>7} {'rel err':>9}")
    for name, r in rows.items():
        shape = "x".join(map(str, r["shape"]))
        print(
            f"{name:6} {shape:>12} {r['dense_ms']:10.4f} {r['sparse_ms']:10.4f} "
            f"{r['speedup']:6.2f}x {r['max_rel_error']:9.1e}"
        )
    print(
        f"{args.layers} layers, all {7 * args.layers} linear products in a row: dense "
        f"{total['dense_ms']:.3f} ms, 2:4 {total['sparse_ms']:.3f} ms, {total['speedup']:.2f}x "
        f"({repeats} interleaved rounds, medians)"
    )
    print(
        "reference: cuSPARSELt's published speedup for these fp16 GEMM shapes (NVIDIA's "
        "cuSPARSELt docs; PyTorch's semi-structured sparsity tutorial), to be looked up for "
        "this GPU"
    )
    if dry:
        print("dry run: both sides dense on the CPU; the ratios say nothing about 2:4 kernels")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        record = {
            "device": device_name,
            "torch": torch.__version__,
            "dtype": str(dtype).removeprefix("torch."),
            "tokens": tokens,
            "layers": args.layers,
            "hidden": hidden,
            "intermediate": intermediate,
            "dry_run": dry,
            "backend": backend,
            "matrices": rows,
            "all_linear": total,
        }
        (args.out / "llm_2of4.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
