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
256, 4 layers, 8 heads, 4 K/V heads, intermediate 1024, MiniLM's vocabulary), half of
each layer's MLP channels zero, fp32 on the CPU.

    python benchmarks/lm_eval_overhead.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

TASK_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "lm_eval"
TASKS = ("tiny_choice", "tiny_pick", "tiny_rolling")


def build(folder: Path) -> Path:
    """The tiny pruned Llama, saved with MiniLM's tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from analyzer.runtime.demo import minilm_path
    from analyzer.weights.checkpoint import copy_tokenizer_files

    config = LlamaConfig(
        vocab_size=30522,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        intermediate_size=1024,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.gate_proj.weight[::2] = 0
            layer.mlp.up_proj.weight[::2] = 0
            layer.mlp.down_proj.weight[:, ::2] = 0
    model.save_pretrained(folder)
    copy_tokenizer_files(minilm_path(), folder)
    return folder


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
    parser.add_argument("--repeats", type=int, default=3)
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
