"""Options several commands share, declared once and given to each command through
argparse's `parents=` (or called on its parser), so a shared option reads the same in
every command's --help."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

BUNDLED_SAMPLE = "the bundled SQuAD v2 sample"
BUNDLED_TEXT = "the bundled SQuAD v2 sample's Wikipedia paragraphs"


def option_group(*options: Callable[[argparse.ArgumentParser], object]) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    for option in options:
        option(parent)
    return parent


HUB_ID_HELP = "or a Hub id org/name[@revision], fetched into the Hugging Face cache"


def checkpoint(*, weights_file: bool = False) -> argparse.ArgumentParser:
    """The optional checkpoint argument; without it, commands run the embedded demo."""
    what = "checkpoint folder or weights file" if weights_file else "checkpoint folder"
    return option_group(
        lambda p: p.add_argument(
            "path",
            nargs="?",
            type=Path,
            metavar="PATH_OR_ID",
            help=f"{what}, {HUB_ID_HELP} (default: the embedded demo checkpoint)",
        )
    )


def device() -> argparse.ArgumentParser:
    """Where and how the models run: the same options and defaults for report, bench, eval."""
    return option_group(
        lambda p: p.add_argument(
            "--device", choices=("cpu", "cuda"), help="default: cuda if available"
        ),
        lambda p: p.add_argument(
            "--dtype", choices=("fp32", "fp16", "bf16"), help="default: fp16 on GPU, fp32 on CPU"
        ),
        lambda p: p.add_argument(
            "--align", type=int, metavar="N", help="FFN width alignment (default: 64 GPU, 1 CPU)"
        ),
    )


def eval_data() -> argparse.ArgumentParser:
    """Which questions an evaluation answers."""
    return option_group(
        lambda p: p.add_argument(
            "--data",
            type=Path,
            metavar="FILE",
            help=f"SQuAD v2 JSON, official format (default: {BUNDLED_SAMPLE})",
        ),
        limit,
        lambda p: p.add_argument(
            "--seed", type=int, metavar="S", help="seed of the --limit subset (default 0)"
        ),
    )


def text(dataset: str = "--dataset") -> argparse.ArgumentParser:
    """What a causal LM's perplexity is measured on, and how the text is cut into windows;
    `dataset` spells the dataset option (`report` has a --dataset of its own: training data)."""
    from analyzer.perplexity.corpora import CORPORA
    from analyzer.records import PERPLEXITY_PROTOCOLS

    return option_group(
        lambda p: p.add_argument(
            "--text",
            type=Path,
            metavar="FILE",
            help=f"perplexity: a UTF-8 text file (default: {BUNDLED_TEXT})",
        ),
        lambda p: p.add_argument(
            dataset,
            choices=sorted(CORPORA),
            help="perplexity: a Hub dataset instead of a text file, read through datasets "
            "from its cache or the Hub (wikitext2: wikitext, wikitext-2-raw-v1, test split)",
        ),
        lambda p: p.add_argument(
            "--protocol",
            choices=PERPLEXITY_PROTOCOLS,
            help="perplexity: sliding (strided windows; the default) or papers (the text's "
            'documents joined with "\\n\\n", non-overlapping --seqlen windows, as SparseGPT '
            "and Wanda)",
        ),
        lambda p: p.add_argument(
            "--window",
            type=int,
            metavar="N",
            help="perplexity: tokens per window (default: the model's positions, at most 1024)",
        ),
        lambda p: p.add_argument(
            "--stride",
            type=int,
            metavar="N",
            help="perplexity: tokens between window starts (default: half the window)",
        ),
        lambda p: p.add_argument(
            "--seqlen",
            type=int,
            metavar="N",
            help="perplexity, --protocol papers: tokens per window (default: the model's "
            "positions, at most 2048)",
        ),
        lambda p: p.add_argument(
            "--limit-tokens",
            type=int,
            metavar="N",
            help="perplexity: evaluate the text's first N tokens only",
        ),
    )


def limit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, metavar="N", help="evaluate N questions drawn at random")


def json_record(what: str) -> argparse.ArgumentParser:
    return option_group(
        lambda p: p.add_argument(
            "--json", type=Path, metavar="FILE", help=f"write the {what} record here (JSON)"
        )
    )


def output(
    what: str,
    *,
    default: str | None = None,
    metavar: str = "DIR",
    replaces: str = "",
    required: bool | None = None,
) -> argparse.ArgumentParser:
    """--out and --force: where a command writes, all or nothing. `default` says in the help
    what an unset --out means; without it --out is required, unless `required` is False
    (the command checks it when it needs it)."""
    return option_group(
        lambda p: p.add_argument(
            "--out",
            type=Path,
            required=default is None if required is None else required,
            metavar=metavar,
            help=what + (f" (default: {default})" if default else ""),
        ),
        lambda p: p.add_argument(
            "--force", action="store_true", help=f"replace {replaces or metavar} if it exists"
        ),
    )


def publication() -> argparse.ArgumentParser:
    """How the model is published; `report` keeps them in report.json, `card --report`
    reuses them, and an option given to `card` wins over report.json's."""
    kept = "default: report.json's with card --report, else"
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--name", metavar="ID", help=f"Hub id or model name ({kept} the folder name)")
    p.add_argument("--license", help=f"Hub license id ({kept} unknown)")
    p.add_argument("--base", metavar="ID", help="Hub id of the model this one was pruned from")
    p.add_argument(
        "--dataset",
        action="append",
        metavar="ID",
        help="Hub id of a training dataset (repeatable; the card's `datasets:`)",
    )
    p.add_argument(
        "--eval-dataset",
        metavar="ID",
        help=f"Hub id of the SQuAD v2 data ({kept} rajpurkar/squad_v2)",
    )
    p.add_argument("--language", metavar="CODE", help=f"language code ({kept} en)")
    p.add_argument("--tag", action="append", metavar="TAG", help="an extra Hub tag (repeatable)")
    return p


def base_config() -> argparse.ArgumentParser:
    """The dense model a width- or depth-pruned decoder came from, read from its config.json
    (not --base: that is the Hub id the card names)."""
    return option_group(
        lambda p: p.add_argument(
            "--base-config",
            type=Path,
            metavar="CONFIG_OR_DIR",
            help="the dense base model's config.json (or its folder): a decoder's layers, "
            "widths and heads are compared with it",
        )
    )


def task_options(p: argparse.ArgumentParser) -> None:
    """lm-eval's tasks (run or imported) and the dense base's, for `eval` and `report`
    (`--dense-base`: `--base` is the Hub id a card names as its base_model)."""
    p.add_argument("--tasks", metavar="T1,T2", help="causal LMs: lm-eval tasks to run")
    p.add_argument("--num-fewshot", type=int, metavar="N", help="--tasks: shots (lm-eval's)")
    p.add_argument("--include-path", type=Path, metavar="DIR", help="--tasks: your task YAML")
    p.add_argument("--results", type=Path, metavar="F", help="import lm_eval's results JSON")
    p.add_argument(
        "--dense-base",
        type=Path,
        metavar="DIR_OR_ID",
        help="the dense base: the same tasks and shots run on it (or see --base-results)",
    )
    p.add_argument(
        "--base-results",
        type=Path,
        metavar="F",
        help="the dense base's lm_eval results JSON (same tasks, shots and documents)",
    )


def accept_unstable(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--accept-unstable",
        action="store_true",
        help="keep an implausible timing (exit 0); the card marks it unstable",
    )
