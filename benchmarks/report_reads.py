"""What one `prunecard report` reads: safetensors opens, tensor bytes and wall time, for this
tree and (with `--before REV`) for an older revision, side by side.

Two checkpoints: `demo`, the embedded demo checkpoint `prunecard report` runs without a
path (a pruned all-MiniLM-L6-v2 with a QA head, `analyzer.runtime.demo.demo_checkpoint`),
and `bert-base`, a BERT-base "seed twin" (benchmarks/analyze_speed.py's builder at
BERT-base geometry: 12 layers, hidden 768, FFN 3072, random values, seed 0, 70% of the FFN
units zeroed) with MiniLM's tokenizer (the same vocabulary). Each report runs in a fresh
process with `--quick` and a few questions (`--limit`); `safetensors.safe_open` is wrapped
there by benchmarks/read_counter.py, which counts the opens per file and the bytes of every
tensor or slice read. The older revision's `analyzer/` (and its templates) is exported
with `git archive` and put first on PYTHONPATH, so both sides run in this venv.

    python benchmarks/report_reads.py [--before REV] [--only demo,bert-base] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[4])
from read_counter import ReadCounter
counter = ReadCounter()
counter.install()
from analyzer.pipeline import ReportOptions, run_report
from analyzer.records import Publication
options = ReportOptions(limit=int(sys.argv[3]), quick=True, accept_unstable=True)
lines = []
began = time.perf_counter()
run_report(sys.argv[1], sys.argv[2], Publication(model_id="m"), options, say=lines.append)
wall = time.perf_counter() - began
steps = [line.split("] ")[1].replace(" done in ", " ") for line in lines if " done in " in line]
print(json.dumps({"wall_s": wall, "opens": dict(counter.opens), "bytes": counter.bytes,
                  "steps": steps}))
"""


def build_twin(out: Path) -> Path:
    """The BERT-base seed twin, with MiniLM's tokenizer files."""
    sys.path.insert(0, str(HERE))
    from analyze_speed import BERT_BASE, build_bert

    from analyzer.runtime.demo import minilm_path
    from analyzer.weights.checkpoint import copy_tokenizer_files

    build_bert(out, BERT_BASE)
    copy_tokenizer_files(minilm_path(), out)
    return out


def export(rev: str, into: Path) -> Path:
    """`rev`'s package (analyzer/ and its templates, as installed) in `into`."""
    into.mkdir(parents=True)
    for part in ("analyzer", "templates"):
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, part], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    shutil.move(str(into / "templates"), str(into / "analyzer" / "templates"))
    return into


def run(tree: Path, checkpoint: Path, out: Path, limit: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-c", CHILD, str(checkpoint), str(out), str(limit), str(HERE)]
    began = time.perf_counter()
    # run outside the worktree: `python -c` puts the working folder first on sys.path
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, check=False, cwd=out.parent
    )
    if done.returncode:
        raise SystemExit(f"report failed under {tree}:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - began
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="a git revision to compare with (e.g. main)")
    parser.add_argument("--only", default="demo,bert-base")
    parser.add_argument("--limit", type=int, default=8, help="questions evaluated")
    args = parser.parse_args()
    from analyzer.runtime.demo import demo_checkpoint

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        trees = {"after": ROOT}
        if args.before:
            trees = {"before": export(args.before, tmp / "before"), **trees}
        builders = {
            "demo": lambda: demo_checkpoint(),
            "bert-base": lambda: build_twin(tmp / "bert"),
        }
        head = f"{'model':10} {'tree':7} {'wall s':>7} {'opens':>6} {'read MB':>9} {'x file':>7}"
        print(f"{head}  steps")
        for name in args.only.split(","):
            checkpoint = builders[name]()
            size = sum(f.stat().st_size for f in checkpoint.glob("*.safetensors"))
            for side, tree in trees.items():
                r = run(tree, checkpoint, tmp / f"{name}-{side}", args.limit)
                opens = sum(r["opens"].values())
                print(
                    f"{name:10} {side:7} {r['wall_s']:7.1f} {opens:6d} {r['bytes'] / 1e6:9.1f} "
                    f"{r['bytes'] / size:7.2f}  {', '.join(r['steps'])}",
                    flush=True,
                )
        print("opens: safe_open calls in the whole report; read MB: tensor bytes read;")
        print("x file: read MB over the checkpoint's weight files (wall s: report only);")
        print("steps: each step's wall time as the report prints it")


if __name__ == "__main__":
    main()
