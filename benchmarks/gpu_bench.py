"""Issue 11's GPU benchmarks, in one process: dense vs packed on the reference structure.

Builds the BERT-large reference-structured QA checkpoint (benchmarks/pack_speed.py) and
times, with `analyzer.runtime.bench.measure`, one pair of models per setting (fp16, seq 384):

    setting               dense    packed                  graphs  batches
    stock                 stock    align 64                off     1, 32, 128, 256
    align1 / align128     stock    align 1 / 128           off     128
    fused                 stock    align 64, fused         off     1, 32, 128, 256
    fused-both            fused    align 64, fused         off     128
    graphs                stock    align 64                on      1, 8
    fused-graphs          stock    align 64, fused         on      1, 8
    fused-both-graphs     fused    align 64, fused         on      1

"stock" is the model as transformers 5 runs it; "fused" went through `analyzer.runtime.fusion`
(one QKV GEMM, add + LayerNorm in one kernel). The bench records say which side ran fused.
A kernel-time profile of one packed forward pass at batch 128 is written too.
Each record goes to OUT/bench-<setting>.json, the rows to OUT/summary.json.

`--dry-run` runs every step on the CPU with a 2-layer model, tiny shapes and no graphs,
to check the script before GPU time is spent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

SETTINGS = (  # (name, dense fused, packed align, packed fused, graphs, batches)
    ("stock", False, 64, False, False, (1, 32, 128, 256)),
    ("align1", False, 1, False, False, (128,)),
    ("align128", False, 128, False, False, (128,)),
    ("fused", False, 64, True, False, (1, 32, 128, 256)),
    ("fused-both", True, 64, True, False, (128,)),
    ("graphs", False, 64, False, True, (1, 8)),
    ("fused-graphs", False, 64, True, True, (1, 8)),
    ("fused-both-graphs", True, 64, True, True, (1,)),
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

    from analyzer.cli.tables import format_bench
    from analyzer.records import to_dict, write_record
    from analyzer.runtime.bench import measure
    from analyzer.runtime.fusion import fuse
    from analyzer.runtime.packing import load
    from analyzer.runtime.timing import Protocol

    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    dtype, torch_dtype = ("fp32", torch.float32) if dry else ("fp16", torch.float16)
    seq = 32 if dry else args.seq
    repeats = 2 if dry else args.repeats
    args.out.mkdir(parents=True, exist_ok=True)
    summary = []
    models: dict[tuple, object] = {}
    with tempfile.TemporaryDirectory(prefix="gpu_bench.") as tmp:
        t0 = time.perf_counter()
        source = build_reference(Path(tmp) / "reference", layers=2 if dry else 24)
        print(f"built in {time.perf_counter() - t0:.0f} s", flush=True)

        def model(layout: str, align: int, fused: bool):
            key = (layout, align, fused)
            if key not in models:
                built = load(source, dtype=torch_dtype, device=device, layout=layout, align=align)
                if fused:
                    fuse(built)
                models[key] = built
            return models[key]

        for name, dense_fused, align, packed_fused, graphs, batches in SETTINGS:
            if name in args.skip:
                continue
            if dry:
                graphs, batches = False, tuple(sorted({min(b, 2) for b in batches}))
            t1 = time.perf_counter()
            try:
                record = measure(
                    model("dense", 1, dense_fused),
                    model("packed", align, packed_fused),
                    path=source,
                    dtype=dtype,
                    align=align,
                    shapes=[(b, seq) for b in batches],
                    protocol=Protocol(warmup=1 if dry else 3, min_repeats=repeats),
                    graphs=graphs,
                    progress=False,
                )
            except Exception:  # one failed setting must not cost the others' GPU time
                print(f"\n== {name} FAILED\n{traceback.format_exc()}", flush=True)
                continue
            write_record(record, args.out / f"bench-{name}.json")
            print(f"\n== {name} ({time.perf_counter() - t1:.0f} s)\n{format_bench(record)}")
            summary += [{"setting": name, **to_dict(s)} for s in record.shapes]
            (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        try:
            profile(model("packed", 64, True), 2 if dry else 128, seq, device, args.out)
        except Exception:
            print(f"\n== profile FAILED\n{traceback.format_exc()}", flush=True)
    print(f"\nrecords written to {args.out}")
    return 0


def profile(model, batch: int, seq: int, device: str, out: Path) -> None:
    """Kernel times of one forward pass, largest first (where the packed time goes)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    ids = torch.randint(1000, model.config.vocab_size, (batch, seq), device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch.inference_mode():
        for _ in range(3):
            model(input_ids=ids)
        with profile(activities=activities) as prof:
            model(input_ids=ids)
            if device == "cuda":
                torch.cuda.synchronize()
    key = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=30)
    (out / "profile-packed-fused.txt").write_text(table + "\n")
    print(f"\n== profile, packed fused, batch {batch} x {seq}\n{table}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
