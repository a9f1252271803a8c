"""`prunecard eval --tasks` against the plain lm-eval run it wraps, and the packed model
against the stored one, on a tiny pruned Llama and the bundled tasks.

One process, the same checkpoint and task folder for every side:

- `prunecard`: `prunecard eval CKPT --tasks ... --include-path DIR --json F` (in process:
  load, lm-eval, the record, its sha256 of the weights);
- `lm_eval`: `lm_eval.simple_evaluate(model="hf", model_args="pretrained=CKPT")`, what
  `lm_eval --model hf --model_args pretrained=CKPT --tasks ... --include_path DIR` runs;
- `prunecard --packed`: the same as the first on the packed model.

Each side runs once to warm up (imports, the datasets cache), then `--repeats` times in
turn; the script prints the median wall times and the ratio lm_eval / prunecard (target:
at least 1.0, no overhead) and packed / stored. The checkpoint: Llama geometry (hidden
256, 4 layers, 8 heads, 4 K/V heads, intermediate 1024, the bundled Llama 3 style
tokenizer), half of each layer's MLP channels zero, fp32 on the CPU.

    python benchmarks/lm_eval_overhead.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
TASK_DATA = TESTS / "data" / "lm_eval"
TOKENIZER = TESTS / "data" / "tokenizers" / "llama3"
TASKS = ("tiny_choice", "tiny_pick", "tiny_rolling")


def build(folder: Path) -> Path:
    """The tiny pruned Llama (tests/decoders.py's builder), with the bundled Llama 3 style
    tokenizer."""
    from decoders import build_decoder, layer_weight

    def prune(state) -> None:
        for layer in range(4):
            for module in ("mlp.gate_proj", "mlp.up_proj"):
                layer_weight(state, layer, module)[::2] = 0
            layer_weight(state, layer, "mlp.down_proj")[:, ::2] = 0

    return build_decoder(
        folder, tokenizer=TOKENIZER, prune=prune, layers=4, hidden=256, heads=8, kv_heads=4,
        intermediate=1024, positions=512,
    )  # fmt: skip


def task_folder(folder: Path) -> Path:
    """The bundled task YAML, each naming its JSONL by absolute path."""
    folder.mkdir()
    for name in TASKS:
        text = (TASK_DATA / f"{name}.yaml").read_text(encoding="utf-8")
        data = TASK_DATA / f"{name}.jsonl"
        (folder / f"{name}.yaml").write_text(text.replace(f"test: {data.name}", f"test: {data}"))
    return folder


def timed(run) -> float:
    began = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    from analyzer.cli.main import main as prunecard

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        checkpoint = build(root / "tiny-llama")
        include = task_folder(root / "tasks")
        cli = ["eval", str(checkpoint), "--tasks", ",".join(TASKS)]
        cli += ["--include-path", str(include), "--json", str(root / "b.json")]

        def plain() -> None:
            lm_eval.simple_evaluate(
                model="hf",
                model_args=f"pretrained={checkpoint}",
                tasks=list(TASKS),
                task_manager=TaskManager(include_path=str(include)),
                device="cpu",
                batch_size=1,
            )

        sides = {
            "prunecard": lambda: prunecard(cli),
            "lm_eval": plain,
            "prunecard --packed": lambda: prunecard([*cli, "--packed"]),
        }
        for run in sides.values():  # warm-up
            timed(run)
        times: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeats):
            for name, run in sides.items():
                times[name].append(timed(run))
    median = {name: statistics.median(t) for name, t in times.items()}
    threads = torch.get_num_threads()
    print(
        f"lm-eval {lm_eval.__version__}, torch {torch.__version__}, {threads} threads, tasks "
        f"{', '.join(TASKS)}, {args.repeats} runs each (median, min-max)"
    )
    for name, t in times.items():
        print(f"  {name:<20} {median[name]:6.2f} s  ({min(t):.2f}-{max(t):.2f})")
    ratio = median["lm_eval"] / median["prunecard"]
    print(f"lm_eval / prunecard: {ratio:.2f} (target >= 1.0: no overhead)")
    print(f"packed / stored: {median['prunecard --packed'] / median['prunecard']:.2f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
