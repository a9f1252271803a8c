"""The transformers-4 layout at BERT-large size: do integer buffers change any figure?

Builds the reference-structured BERT-large QA checkpoint of `pack_speed.py` (24 layers,
hidden 1024, 16 heads, FFN 4096; 190 heads removed physically via `pruned_heads`; fp32,
random values) and writes its weights twice as `pytorch_model.bin`: once as transformers 4
(< 4.31) saved them, with the integer buffers `bert.embeddings.position_ids` and
`token_type_ids`, once without. `prunecard analyze --json` runs on both as fresh
processes; the script prints every figure that differs (it expects none but the buffers
listed and the file sizes) and exits 1 if any does. About 2.3 GB of temporary files,
deleted at the end; peak resident memory about 1.7 GB.

    python benchmarks/legacy_layout.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPECTED_TO_DIFFER = ("buffers", "checkpoint", "files")


def build(work: Path) -> tuple[Path, Path]:
    """The legacy folder (buffers in the .bin) and the bare one (same weights, none)."""
    import torch
    from safetensors.torch import load_file

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pack_speed import build_reference

    source = build_reference(work / "source", dtype="float32")
    weights = load_file(str(source / "model.safetensors"))
    (source / "model.safetensors").unlink()
    positions = json.loads((source / "config.json").read_text())["max_position_embeddings"]
    buffers = {  # as transformers 4 registered them: expanded views of one row
        "bert.embeddings.position_ids": torch.arange(positions).expand((1, -1)),
        "bert.embeddings.token_type_ids": torch.zeros(positions, dtype=torch.long).expand((1, -1)),
    }
    legacy, bare = work / "legacy", work / "bare"
    for folder, state in ((legacy, {**buffers, **weights}), (bare, weights)):
        shutil.copytree(source, folder)
        torch.save(state, folder / "pytorch_model.bin")
    shutil.rmtree(source)
    return legacy, bare


def analyze(path: Path, out: Path) -> tuple[dict, float]:
    """`prunecard analyze --json` in a fresh process: the record and the wall seconds."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "analyzer.cli.main", "analyze", str(path), "--json", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return json.loads(out.read_text()), time.perf_counter() - start


def differences(a: object, b: object, where: str = "") -> list[str]:
    """Every path at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d
            for key in sorted(set(a) | set(b))
            for d in differences(a.get(key), b.get(key), f"{where}.{key}" if where else key)
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [where]


def count_figures(value: object) -> int:
    """Numbers, strings and booleans in a JSON value: the figures compared."""
    if isinstance(value, dict):
        return sum(count_figures(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_figures(v) for v in value)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="build the checkpoints here and keep them")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="legacy_layout."))
    try:
        t0 = time.perf_counter()
        legacy, bare = build(work)
        size = {p: (p / "pytorch_model.bin").stat().st_size for p in (legacy, bare)}
        print(
            f"built in {time.perf_counter() - t0:.0f} s: legacy {size[legacy]:,} bytes, "
            f"bare {size[bare]:,} bytes"
        )
        with_buffers, t_legacy = analyze(legacy, work / "legacy.json")
        without, t_bare = analyze(bare, work / "bare.json")
        print(f"analyze: legacy {t_legacy:.1f} s, bare {t_bare:.1f} s")
        print(f"buffers listed: legacy {with_buffers['buffers']}, bare {without['buffers']}")
        a, h = with_buffers, with_buffers["heads"]
        print(
            f"figures (legacy): linear density {a['linear']['density']:.6f}, overall density "
            f"{a['overall']['density']:.6f}, heads removed {h['removed']} of {h['total']}, "
            f"parameters {a['overall']['stored']:,} stored / {a['overall']['dense']:,} dense"
        )
        compared = {k: v for k, v in with_buffers.items() if k not in EXPECTED_TO_DIFFER}
        other = {k: v for k, v in without.items() if k not in EXPECTED_TO_DIFFER}
        diff = differences(compared, other)
        left_out = ", ".join(EXPECTED_TO_DIFFER)
        print(f"compared {count_figures(compared):,} figures (all but {left_out}): ", end="")
        print(f"{len(diff)} differ")
        for path in diff[:20]:
            print(f"  differs: {path}")
        same = not diff and with_buffers["buffers"] and not without["buffers"]
        print("every figure matches" if same else "MISMATCH")
        return 0 if same else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
