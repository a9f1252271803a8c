"""Does the timing protocol notice when other processes take the CPU?

Builds a small model with the reference structure (BERT-large widths, a few layers, heads
and FFN units removed as in `pack_speed.py`), then times dense against packed with
`prunecard bench`'s protocol several times on the machine as it is ("quiet"), then again
while busy-loop processes (one per core, or `--load N`) compete for the CPU ("loaded").
The busy loops are always killed at the end.

Property checked (issue 20): no loaded run whose speedup differs from the quiet runs'
median by more than 10% is called `stable`.

    PYTHONPATH=. python benchmarks/timing_under_load.py [--runs 3] [--load 3] [--layers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOLERANCE = 0.10  # a stable loaded speedup must lie within 10% of the quiet one
BUSY_LOOP = "while True: pass"


def start_load(n: int) -> list[subprocess.Popen]:
    """`n` busy-loop processes (a `stress --cpu n` without the package)."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="benches per condition (3)")
    parser.add_argument("--load", type=int, default=3, help="busy-loop processes (3)")
    parser.add_argument("--layers", type=int, default=2, help="encoder layers (2)")
    parser.add_argument("--seq", type=int, default=256, help="sequence length (256)")
    parser.add_argument("--json", type=Path, help="write every bench record here")
    args = parser.parse_args()
    # a `timeout` or Ctrl-C must still reach the `finally` that kills the busy loops
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pack_speed import build_reference

    from analyzer.records import to_dict
    from analyzer.runtime.bench import measure
    from analyzer.runtime.packing import load
    from analyzer.runtime.timing import DEFAULT

    work = Path(tempfile.mkdtemp(prefix="timing_under_load."))
    procs: list[subprocess.Popen] = []
    records: dict[str, list] = {"quiet": [], "loaded": []}
    try:
        source = build_reference(work / "reference", dtype="float32", layers=args.layers)
        dense = load(source, layout="dense")
        packed = load(source, layout="packed")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()} at start")
        print(f"model: reference structure, {args.layers} layers; shape (1, {args.seq}), fp32")
        for condition in ("quiet", "loaded"):
            if condition == "loaded":
                procs = start_load(args.load)
                time.sleep(2)
            for i in range(args.runs):
                t0 = time.perf_counter()
                record = measure(
                    dense,
                    packed,
                    path=source,
                    dtype="fp32",
                    align=1,
                    shapes=[(1, args.seq)],
                    protocol=DEFAULT,
                    profile_runs=0,
                    progress=False,
                )
                records[condition].append(record)
                s = record.shapes[0]
                print(
                    f"  {condition} {i + 1}: {s.speedup:.2f}x in {time.perf_counter() - t0:.0f} s, "
                    f"{s.repeats} runs, {s.verdict}",
                    flush=True,
                )
            stop_load(procs)
            procs = []
    finally:
        stop_load(procs)
        shutil.rmtree(work, ignore_errors=True)

    quiet = [r.shapes[0] for r in records["quiet"]]
    loaded = [r.shapes[0] for r in records["loaded"]]
    reference = statistics.median(s.speedup for s in quiet)
    print(f"\nquiet median speedup {reference:.2f}x; FLOP bound {quiet[0].flop_bound:.2f}x")
    print(f"{'run':>3}  {'quiet':>7}  {'verdict':<9}  {'loaded':>7}  {'verdict':<9}  differs")
    failures = 0
    for i, (q, ld) in enumerate(zip(quiet, loaded, strict=True), 1):
        differs = ld.speedup / reference - 1
        bad = ld.verdict == "stable" and abs(differs) > TOLERANCE
        failures += bad
        print(
            f"{i:>3}  {q.speedup:>6.2f}x  {q.verdict.split(' (')[0]:<9}  {ld.speedup:>6.2f}x  "
            f"{ld.verdict.split(' (')[0]:<9}  {100 * differs:+.1f}%"
            + ("  STABLE BUT WRONG" if bad else "")
        )
    print(
        f"\nproperty (no stable loaded run off by more than {100 * TOLERANCE:.0f}%): "
        f"{'held' if not failures else f'FAILED {failures} time(s)'}"
    )
    if args.json:
        data = {k: [to_dict(r) for r in v] for k, v in records.items()}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
