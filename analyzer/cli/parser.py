"""The `prunecard` command line: every command's arguments, declared apart from what the
commands do (`analyzer.cli.commands`); a command's help and example are its function's
docstring."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from analyzer import __version__
from analyzer.cli import commands, shared
from analyzer.cli.commands import EXIT_BAD_INPUT
from analyzer.errors import printable
from analyzer.runtime.plan import FULL, QUICK_LM_PLAN, QUICK_PLAN

__all__ = ["COMMANDS", "build_parser"]

# name -> (the command's function, its help line, its example)
COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, str]] = {}


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and one line, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"prunecard: error: {printable(message)} (see --help)\n")


def _command(
    sub: argparse._SubParsersAction,
    func: Callable[[argparse.Namespace], int],
    *parents: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """Declare `prunecard NAME` for `commands.cmd_NAME`: its docstring gives the help (first
    paragraph) and the example (after "Example:"), `parents` the shared options."""
    name = func.__name__.removeprefix("cmd_")
    summary, _, example = (func.__doc__ or "").partition("Example:")
    help_text, example = " ".join(summary.split()), " ".join(example.split())
    parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"Example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    parser.set_defaults(func=func)
    COMMANDS[name] = (func, help_text, example)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The `prunecard` parser: every command, in the order --help lists them, each declared
    by a function of its own below."""
    parser = _Parser(
        prog="prunecard",
        description="Measure pruned transformer checkpoints, render model cards, audit claims.",
    )
    parser.add_argument("--version", action="version", version=f"prunecard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _demo(sub)
    _report(sub)
    _analyze(sub)
    _pack(sub)
    _bench(sub)
    _card(sub)
    _site(sub)
    _audit(sub)
    _eval(sub)
    _score(sub)
    _collection(sub)
    return parser


def _demo(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        commands.cmd_demo,
        shared.output("folder for the report and the site", default="./prunecard-demo"),
    )
    p.set_defaults(out=Path("prunecard-demo"))
    shared.limit(p)


def _report(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        commands.cmd_report,
        shared.checkpoint(),
        shared.output("folder to write", default="./<checkpoint>-report"),
        shared.eval_data(),
        shared.text("--text-dataset"),
        shared.device(),
        shared.publication(),
        shared.base_config(),
    )
    p.add_argument(
        "--no-eval", action="store_true", help="skip the evaluation (SQuAD v2 or perplexity)"
    )
    p.add_argument("--no-bench", action="store_true", help="skip the dense vs packed timing")
    p.add_argument("--quick", action="store_true", help="a short timing, as bench --quick")
    shared.accept_unstable(p)
    shared.task_options(p)


def _analyze(sub: argparse._SubParsersAction) -> None:
    _command(
        sub,
        commands.cmd_analyze,
        shared.json_record("analysis"),
        shared.checkpoint(weights_file=True),
        shared.base_config(),
    )


def _pack(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, commands.cmd_pack)
    p.add_argument(
        "path",
        type=Path,
        metavar="PATH_OR_ID",
        help=f"checkpoint folder or weights file, {shared.HUB_ID_HELP}",
    )
    p.add_argument("out", type=Path, help="folder to write (must not exist unless --force)")
    p.add_argument(
        "--align", type=int, default=1, metavar="N", help="pad FFN widths to multiples of N"
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")


def _bench(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        commands.cmd_bench,
        shared.checkpoint(weights_file=True),
        shared.json_record("bench"),
        shared.device(),
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"for trying things: batch 1, seq {QUICK_PLAN.seqs[0]} "
        f"({QUICK_LM_PLAN.seqs[0]} for causal LMs, lm_head timed once), 5 s budget",
    )
    p.add_argument(
        "--batch",
        type=int,
        nargs="+",
        metavar="B",
        help=f"batch sizes (default {' '.join(map(str, FULL.batches))})",
    )
    p.add_argument(
        "--seq",
        type=int,
        nargs="+",
        metavar="S",
        help=f"sequence lengths ({' '.join(map(str, FULL.seqs))})",
    )
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default: torch's)")
    p.add_argument(
        "--decode-batch",
        type=int,
        nargs="+",
        metavar="B",
        help="causal LMs: batch sizes to time greedy decoding at (default "
        f"{' '.join(map(str, FULL.decode_batches))}; "
        f"{' '.join(map(str, QUICK_LM_PLAN.decode_batches))} with --quick)",
    )
    p.add_argument(
        "--prompt-tokens",
        type=int,
        metavar="N",
        help=f"... after N prompt tokens ({FULL.prompt_tokens}; "
        f"{QUICK_LM_PLAN.prompt_tokens} with --quick)",
    )
    p.add_argument(
        "--new-tokens",
        type=int,
        metavar="N",
        help=f"... generating N tokens ({FULL.new_tokens}; "
        f"{QUICK_LM_PLAN.new_tokens} with --quick)",
    )
    p.add_argument(
        "--repeats", type=int, metavar="N", help="timed runs per model and shape, at least (10)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        metavar="F",
        help="time until IQR / median of each side is under F (default 0.05)",
    )
    p.add_argument(
        "--budget", type=float, metavar="S", help="... or S seconds per shape ran out (20)"
    )
    p.add_argument("--no-profile", action="store_true", help="skip the profiled runs")
    shared.accept_unstable(p)
    p.add_argument("--graphs", action="store_true", help="replay CUDA graphs (GPU only)")
    p.add_argument(
        "--fuse",
        nargs="?",
        const="both",
        choices=("both", "packed"),
        help="fused runtime (one QKV product, add+LayerNorm kernel) for both models or the "
        "packed one only",
    )


def _card(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        commands.cmd_card,
        shared.checkpoint(),
        shared.output(
            "folder to write", default="./<checkpoint>-card", replaces="DIR (or its README.md)"
        ),
        shared.publication(),
    )
    p.add_argument("--analysis", type=Path, metavar="F", help="analysis record (default: analyze)")
    p.add_argument("--bench", type=Path, metavar="F", help="bench record (else: not measured)")
    p.add_argument("--eval", type=Path, metavar="F", help="evaluation record (else: not measured)")
    p.add_argument(
        "--perplexity", type=Path, metavar="F", help="a causal LM's perplexity record (eval --json)"
    )
    p.add_argument(
        "--benchmarks", type=Path, metavar="F", help="lm-eval tasks' record (eval --tasks --json)"
    )
    p.add_argument(
        "--report", type=Path, metavar="F", help="earlier report.json to take records from"
    )
    p.add_argument("--template", type=Path, metavar="F", help="your Jinja2 template for the body")
    p.add_argument(
        "--reference-metrics",
        type=Path,
        metavar="F",
        help="the reference model's scores, with the official SQuAD v2 script's keys "
        '({"exact": .., "f1": ..})',
    )


def _site(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        commands.cmd_site,
        shared.output(
            "folder for the mkdocs project; the built site goes to SITE/site", metavar="SITE"
        ),
    )
    p.add_argument(
        "reports",
        nargs="+",
        type=Path,
        metavar="REPORT_DIR",
        help="report folders written by `prunecard card` (README.md, report.json)",
    )
    p.add_argument(
        "--dense-base",
        type=Path,
        metavar="REPORT_DIR",
        help="the dense base's report folder: the table shows each model's change against it "
        "and the plots mark it (default: the one report whose weights measure dense, if any)",
    )


def _audit(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, commands.cmd_audit, shared.json_record("audit"))
    p.add_argument(
        "path",
        type=Path,
        nargs="?",
        metavar="PATH_OR_ID",
        help=f"checkpoint folder, {shared.HUB_ID_HELP} (or the card with --no-weights; optional "
        "with --card)",
    )
    p.add_argument(
        "--card",
        type=Path,
        metavar="FILE",
        help="the card (default: PATH/README.md; for a Hub id, its published README.md)",
    )
    p.add_argument(
        "--eval",
        type=Path,
        metavar="FILE",
        help="an Evaluation, Perplexity or Benchmarks (eval --tasks) record, a report.json or "
        "the official script's eval_metrics.json",
    )
    p.add_argument(
        "--bench",
        type=Path,
        metavar="FILE",
        help="the Bench record (or report.json) the card was rendered from: figures must "
        "equal it as printed",
    )
    p.add_argument(
        "--rebench",
        action="store_true",
        help="time the checkpoint again now (at --bench's shapes): speedups within 10%%",
    )
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report here")
    p.add_argument(
        "--no-weights",
        action="store_true",
        help="do not read weights: check the card's internal consistency only",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 on warnings too (missing or ambiguous metadata), not only on mismatches",
    )


def _eval(sub: argparse._SubParsersAction) -> None:
    p = _command(
        sub,
        commands.cmd_eval,
        shared.checkpoint(),
        shared.output("SQuAD v2: folder to write (required)", required=False),
        shared.eval_data(),
        shared.device(),
        shared.text(),
        shared.json_record("perplexity"),
    )
    p.add_argument("--no-pack", action="store_true", help="SQuAD v2: evaluate the model as stored")
    p.add_argument("--batch-size", type=int, metavar="B", help="SQuAD v2: windows per batch (32)")
    p.add_argument(
        "--no-graphs",
        action="store_true",
        help="SQuAD v2: on a GPU, run eagerly instead of CUDA graphs",
    )
    p.add_argument(
        "--packed",
        action="store_true",
        help="perplexity and --tasks: evaluate the packed model (default: as stored)",
    )
    # lm-evaluation-harness (docs/evaluation.md); --limit, --batch-size, --json apply too
    shared.task_options(p)
    p.add_argument("--backend", choices=("hf", "vllm"), default="hf", help="--tasks: engine")
    p.add_argument("--model-args", metavar="ARGS", help="--tasks: passed to the backend")


def _score(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, commands.cmd_score)
    p.add_argument("data", type=Path, help="SQuAD v2 JSON, official format")
    p.add_argument("predictions", type=Path, help='JSON object: id -> answer text ("" = none)')
    p.add_argument(
        "--na-probs", type=Path, metavar="FILE", help="JSON object: id -> no-answer probability"
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="write the evaluation record here")
    p.add_argument(
        "--squad-version",
        choices=("2.0", "1.1"),
        default="2.0",
        help="score SQuAD v1.1 data (no unanswerable questions) with the same metric; "
        "v1.1 data is refused otherwise (default: 2.0)",
    )


def _collection(sub: argparse._SubParsersAction) -> None:
    p = _command(sub, commands.cmd_collection)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the collection's folder (a rerun resumes it)",
    )
    p.add_argument(
        "list",
        type=Path,
        nargs="?",
        metavar="LIST",
        help="text file: one Hub id or local path a line, # comments (paths from its folder)",
    )
    p.add_argument("--author", metavar="ORG", help="instead of LIST: the Hub author's models")
    p.add_argument("--audit", action="store_true", help="audit each model's own card")
    p.add_argument("--report", action="store_true", help="bench and eval each model too")
    p.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: cores)")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="one Ray task per model on the cluster at ADDRESS (auto: this machine's)",
    )
