"""`prunecard collection` over forty checkpoints: serial vs a pool of `--jobs` workers vs
Ray tasks on a local instance, side by side in one run.

Forty Llama-geometry decoders (hidden 384, 4 layers, intermediate 1024, vocab 8192,
about 40 MB each in fp32; random weights with half of every MLP's channels zeroed, so
analyze has units to find) are written to a temporary folder, then the same LIST runs
three times into fresh folders: `prunecard collection LIST --audit --jobs 1` and `--jobs N`
as a user runs them (fresh processes, so each pays its own imports: the serial run in its
first model, the pool in its forkserver), and Ray tasks on a local instance started with N
CPUs in this process (started before its run and not timed; its workers' imports are timed,
as each run's are). Each run is timed two ways: the models' phase (collection.json's
`seconds.models`: every model fetched, analyzed and its records written) and the whole run
(the site over the forty included, built serially in every case). The records of the three
runs are compared byte for byte. The script prints the load average before and after:
the machine may be shared.

    python benchmarks/collection_speed.py [--models 40] [--jobs 2] [--hidden 384]
        [--intermediate 1024] [--keep DIR]

Target: the pool's models phase at least 1.8x faster than serial on two cores.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def build(root: Path, count: int, hidden: int, intermediate: int) -> Path:
    import torch
    from decoders import build_decoder

    def half_the_channels(state: dict[str, torch.Tensor]) -> None:
        for name, tensor in state.items():
            if name.endswith("mlp.down_proj.weight"):
                tensor[:, ::2] = 0

    names = []
    for i in range(count):
        name = f"decoder-{i:02d}"
        build_decoder(
            root / name,
            seed=i,
            hidden=hidden,
            heads=hidden // 64,
            kv_heads=2,
            layers=4,
            intermediate=intermediate,
            vocab=8192,
            prune=half_the_channels,
        )
        names.append(name)
    listing = root / "models.txt"
    listing.write_text("\n".join(names) + "\n", encoding="utf-8")
    return listing


def run(listing: Path, out: Path, flags: list[str]) -> tuple[float, float]:
    """`prunecard collection LIST --audit FLAGS` in a process of its own: the models phase
    and the whole run, in seconds."""
    shutil.rmtree(out, ignore_errors=True)  # a kept folder (--keep) would resume, not run
    command = [sys.executable, "-m", "analyzer.cli.main", "collection", str(listing)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--out", str(out), "--audit", *flags], capture_output=True, text=True
    )
    total = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    return _summary(out).seconds["models"], total


def run_here(listing: Path, out: Path, executor: Any, name: str) -> tuple[float, float]:
    """The same run in this process, through `executor` (Ray: this process is its driver)."""
    from analyzer.collection.listing import read_list
    from analyzer.collection.records import CollectionOptions
    from analyzer.collection.run import run_collection

    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    run_collection(
        read_list(listing),
        out,
        CollectionOptions(audit=True),
        executor,
        list_name=str(listing),
        executor_name=name,
        command=shlex.join(["prunecard", "collection", str(listing), "--audit"]),
    )
    total = time.perf_counter() - start
    return _summary(out).seconds["models"], total


def _summary(out: Path) -> Any:
    from analyzer.collection.records import Collection
    from analyzer.records import load_record

    summary = load_record(Collection, out / "collection.json")
    failed = [m.listed for m in summary.models if m.status != "done"]
    assert not failed, failed
    return summary


def records(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted((out / "models").rglob("*"))
        if p.is_file()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=384, help="decoder width (default 384)")
    parser.add_argument("--intermediate", type=int, default=1024, help="MLP width (1024)")
    parser.add_argument("--keep", type=Path, help="build the checkpoints here and keep them")
    args = parser.parse_args()
    os.environ.setdefault("SOURCE_DATE_EPOCH", "1700000000")  # records compare equal
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from analyzer.collection import executors

    root = args.keep or Path(tempfile.mkdtemp(prefix="collection-speed-"))
    try:
        t = time.perf_counter()
        listing = build(root / "models", args.models, args.hidden, args.intermediate)
        size = sum(f.stat().st_size for f in (root / "models").rglob("*.safetensors"))
        print(
            f"{args.models} checkpoints, {size / 1e6:.0f} MB of weights, "
            f"built in {time.perf_counter() - t:.0f} s; {executors.cores()} cores"
        )
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        results = {}
        results["serial"] = run(listing, root / "serial", ["--jobs", "1"])
        results[f"pool of {args.jobs}"] = run(listing, root / "pool", ["--jobs", str(args.jobs)])
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=args.jobs, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t
        on_ray = lambda tasks, runner: executors.ray_tasks(tasks, runner, "auto")  # noqa: E731
        try:
            results[f"ray, {args.jobs} CPUs"] = run_here(listing, root / "ray", on_ray, "ray")
        finally:
            ray.shutdown()
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        same = records(root / "serial") == records(root / "pool") == records(root / "ray")
        serial_models, serial_total = results["serial"]
        print(f"\n{'executor':<16}{'models s':>10}{'speedup':>9}{'total s':>10}{'speedup':>9}")
        for name, (models, total) in results.items():
            print(
                f"{name:<16}{models:>10.1f}{serial_models / models:>8.2f}x"
                f"{total:>10.1f}{serial_total / total:>8.2f}x"
            )
        per_model = serial_models / args.models
        print(f"\nserial: {per_model:.2f} s per model ({size / args.models / 1e6:.0f} MB read)")
        print(f"ray instance start (not in the table): {ray_start:.1f} s")
        print(f"records identical in the three runs: {same}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
