"""Issue 11's GPU benchmarks, in one process: dense vs packed on the reference structure.

Builds the BERT-large reference-structured QA checkpoint (benchmarks/pack_speed.py), loads
the dense model once and the packed one at each alignment, then times every setting with
`analyzer.bench.measure` and writes one bench record per setting plus a summary:

    align 1,  graphs off   batches 1, 32, 128, 256 (seq 384)
    align 64, graphs off   the same
    align 64, graphs on    batches 1, 8, 32
    align 1,  graphs on    batch 1

Run through benchmarks/gpu.sh. `--dry-run` runs every step on the CPU with a 2-layer model,
small shapes and no graphs, to check the script before GPU time is spent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = (  # (name, align, graphs, batches)
    ("align1", 1, False, (1, 32, 128, 256)),
    ("align64", 64, False, (1, 32, 128, 256)),
    ("align64-graphs", 64, True, (1, 8, 32)),
    ("align1-graphs", 1, True, (1,)),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON records")
    parser.add_argument("--dry-run", action="store_true", help="CPU, 2 layers, tiny shapes")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seq", type=int, default=384)
    parser.add_argument("--skip", nargs="*", default=(), help="setting names to leave out")
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pack_speed import build_reference

    from analyzer.bench import measure
    from analyzer.packing import load
    from analyzer.records import to_dict, write_record
    from analyzer.text import format_bench

    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    dtype, torch_dtype = ("fp32", torch.float32) if dry else ("fp16", torch.float16)
    seq = 32 if dry else args.seq
    repeats = 2 if dry else args.repeats
    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    with tempfile.TemporaryDirectory(prefix="gpu_bench.") as tmp:
        t0 = time.perf_counter()
        source = build_reference(Path(tmp) / "reference", layers=2 if dry else 24)
        dense = load(source, dtype=torch_dtype, device=device, layout="dense")
        packed = {
            a: load(source, dtype=torch_dtype, device=device, layout="packed", align=a)
            for a in sorted({s[1] for s in SETTINGS})
        }
        print(f"built and loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        for name, align, graphs, batches in SETTINGS:
            if name in args.skip:
                continue
            if dry:
                graphs, batches = False, batches[:2]
                batches = tuple(min(b, 2) for b in batches)
            t1 = time.perf_counter()
            record = measure(
                dense,
                packed[align],
                path=source,
                dtype=dtype,
                align=align,
                shapes=[(b, seq) for b in batches],
                repeats=repeats,
                warmup=1 if dry else 3,
                graphs=graphs,
                progress=False,
            )
            write_record(record, args.out / f"bench-{name}.json")
            print(f"\n== {name} ({time.perf_counter() - t1:.0f} s)\n{format_bench(record)}")
            summary += [
                {"setting": name, **{k: v for k, v in to_dict(s).items()}} for s in record.shapes
            ]
            if device == "cuda":
                torch.cuda.empty_cache()
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nrecords written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
