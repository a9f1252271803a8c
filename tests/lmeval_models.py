"""A pruned tiny Llama and its dense base on the bundled lm-eval tasks, for the tests that
run them end to end (`eval`, `card`, `report`, `site`, `audit`): the models, lm-eval's own
results dict (straight from `lm_eval.simple_evaluate`, never from prunecard's record), and
the card's figures computed from that dict alone. The session fixtures are in conftest.py.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from decoders import build_decoder, layer_weight

LLAMA3 = Path(__file__).parent / "data" / "tokenizers" / "llama3"
DATA = Path(__file__).parent / "data" / "lm_eval"
TASKS = ("tiny_choice", "tiny_pick", "tiny_rolling")
ACCURACIES = ("acc_norm", "acc")  # shown in percent; the first the task reports is the headline


def _prune(state) -> None:
    """Half of every layer's MLP channels dead (gate and up rows, down columns zero)."""
    for layer in range(2):
        for module in ("mlp.gate_proj", "mlp.up_proj"):
            layer_weight(state, layer, module)[::2] = 0
        layer_weight(state, layer, "mlp.down_proj")[:, ::2] = 0


def build_family(root: Path) -> tuple[Path, Path]:
    """(dense, pruned): another initialisation for the pruned one, as a random tiny model's
    scores barely move when pruned."""
    dense = build_decoder(root / "tiny-llama-dense", tokenizer=LLAMA3)
    pruned = build_decoder(root / "tiny-llama-pruned", tokenizer=LLAMA3, prune=_prune, seed=1)
    return dense, pruned


def lm_eval_results(folder: Path, include: Path) -> dict:
    """lm-eval's results dict, straight from the harness (HFLM over the model as stored)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    lm = HFLM(pretrained=model, tokenizer=AutoTokenizer.from_pretrained(folder), batch_size=1)
    manager = TaskManager(include_path=str(include))
    return lm_eval.simple_evaluate(model=lm, tasks=list(TASKS), task_manager=manager)


def half_up(value: float | Decimal, digits: int) -> Decimal:
    return Decimal(repr(value) if isinstance(value, float) else value).quantize(
        Decimal(1).scaleb(-digits), ROUND_HALF_UP
    )


def headline(results: dict, task: str) -> tuple[str, Decimal]:
    """(metric, figure as printed): acc_norm, else acc (percent), else word_perplexity."""
    entry = results["results"][task]
    for name in (*ACCURACIES, "word_perplexity"):
        if f"{name},none" in entry:
            value = entry[f"{name},none"]
            return name, half_up(100 * value if name in ACCURACIES else value, 2)
    raise AssertionError(f"{task}: no headline metric in {sorted(entry)}")


def recovery(pruned: Decimal, dense: Decimal) -> str:
    return f"{half_up(100 * pruned / dense, 1)}%" if dense else "n/a (dense is 0)"


def expected_rows(raw_dense: dict, raw_pruned: dict) -> list[str]:
    """The card's table rows, from lm-eval's output alone."""
    rows, lower, shown = [], [], []
    for task in sorted(TASKS):
        metric, pruned = headline(raw_pruned, task)
        _, dense = headline(raw_dense, task)
        shots = raw_pruned["n-shot"][task]
        if metric == "word_perplexity":  # lower is better: listed after the Average
            lower.append(
                f"| {task} ({shots}-shot) | {metric} (lower is better) | {dense} | {pruned} | - |"
            )
            continue
        shown.append((pruned, dense))
        rows.append(
            f"| {task} ({shots}-shot) | {metric} | {dense} | {pruned} | {recovery(pruned, dense)} |"
        )
    mean_p = half_up(sum(p for p, _ in shown) / len(shown), 2)
    mean_d = half_up(sum(d for _, d in shown) / len(shown), 2)
    average = f"| Average | mean of the {len(shown)} rows above | {mean_d} | {mean_p} | "
    return [*rows, average + f"{recovery(mean_p, mean_d)} |", *lower]


def results_file(path: Path, results: dict, model: str, **changes) -> Path:
    """lm-eval's output as `lm_eval --output_path` writes it for `model`."""
    data = json.loads(json.dumps(results, default=str))
    data["config"]["model_args"] = f"pretrained={model}"
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
