"""The `prunecard` command: parses arguments, calls the library, prints, sets the exit code.

Exit codes: 0 success, 1 an audit found a mismatch or a timing is implausible (one line
on stderr), 2 bad input (one line on stderr, no traceback unless --debug).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from analyzer import __version__
from analyzer.errors import InputError, PrunecardError

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and one line, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"prunecard: error: {message} (see --help)\n")


def _default_checkpoint(path: Path | None) -> Path:
    if path is not None:
        return path
    from analyzer.runtime.demo import demo_checkpoint

    return demo_checkpoint()


# --------------------------------------------------------------------------- commands


def _show(record: object, text: str, json_path: Path | None, what: str) -> int:
    """Write the record first (a failed write prints nothing), then its table."""
    from analyzer.records import write_record

    if json_path:
        write_record(record, json_path)
    print(text)
    if json_path:
        print(f"\n{what} written to {json_path}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from analyzer.pipeline import ReportOptions, run_report
    from analyzer.publish.card import CardOptions

    path = _default_checkpoint(args.path)
    out = args.out or Path(f"{path.resolve().name}-report")
    options = ReportOptions(
        data=args.data,
        limit=args.limit,
        seed=args.seed,
        evaluate=not args.no_eval,
        benchmark=not args.no_bench,
        quick=args.quick,
        device=args.device,
        accept_unstable=args.accept_unstable,
    )
    card = CardOptions(
        model_name=args.name or path.resolve().name, base_model=args.base, license=args.license
    )
    run_report(path, out, card, options, force=args.force)
    print(out / "README.md")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from analyzer.pipeline import run_demo

    index = run_demo(args.out, limit=args.limit, force=args.force)
    print(f"site built: {index}")
    return EXIT_OK


def cmd_analyze(args: argparse.Namespace) -> int:
    from analyzer.cli.tables import format_analysis
    from analyzer.weights.sparsity import analyze

    analysis = analyze(_default_checkpoint(args.path))
    return _show(analysis, format_analysis(analysis), args.json, "analysis")


def cmd_pack(args: argparse.Namespace) -> int:
    from analyzer.cli.tables import format_pack
    from analyzer.runtime.packing import pack

    if args.align < 1:
        raise InputError(None, f"--align must be a positive integer, got {args.align}")
    result = pack(_default_checkpoint(args.path), args.out, align=args.align, force=args.force)
    print(format_pack(result))
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from analyzer.cli.tables import format_bench
    from analyzer.runtime.bench import bench
    from analyzer.runtime.timing import DEFAULT, QUICK, require_plausible

    quick = args.quick
    protocol = replace(
        QUICK if quick else DEFAULT,
        **{k: v for k, v in _protocol_options(args).items() if v is not None},
    )
    result = bench(
        _default_checkpoint(args.path),
        device=args.device,
        dtype=args.dtype,
        align=args.align,
        shapes=[
            (b, s)
            for s in args.seq or ((128,) if quick else (384,))
            for b in args.batch or ((1,) if quick else (1, 8))
        ],
        threads=args.threads,
        protocol=protocol,
        graphs=args.graphs,
        fuse=args.fuse,
        profile_runs=0 if args.no_profile else (1 if quick else 3),
        quick=quick,
        progress=sys.stderr.isatty(),
    )
    code = _show(result, format_bench(result), args.json, "bench")
    if not args.accept_unstable:
        require_plausible(result)
    return code


def _protocol_options(args: argparse.Namespace) -> dict[str, float | int | None]:
    return {"min_repeats": args.repeats, "threshold": args.threshold, "budget_s": args.budget}


def cmd_card(args: argparse.Namespace) -> int:
    from analyzer.publish.card import card_from_files

    out = card_from_files(
        _default_checkpoint(args.path),
        out=args.out,
        analysis=args.analysis,
        bench=args.bench,
        evaluation=args.eval,
        report=args.report,
        base_model=args.base,
        model_name=args.name,
        license=args.license,
        reference=args.reference_metrics,
        template=args.template,
        force=args.force,
    )
    print(f"card written to {out / 'README.md'} (figures in {out / 'assets'})")
    return EXIT_OK


def cmd_site(args: argparse.Namespace) -> int:
    from analyzer.publish.site import build_site

    print(build_site(args.reports, args.out, force=args.force))
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from analyzer.audit.checks import audit, audit_markdown, format_audit
    from analyzer.errors import InputError
    from analyzer.outputs import atomic_write_text
    from analyzer.records import write_record

    card = args.card
    if card is None:
        card = args.path if args.no_weights and args.path.is_file() else args.path / "README.md"
    if not args.no_weights and not args.path.exists():
        raise InputError(args.path, "no such checkpoint (pass --no-weights to audit a card alone)")
    report = audit(
        card,
        None if args.no_weights else args.path,
        eval_path=args.eval,
        bench_path=args.bench,
    )
    if args.json:
        write_record(report, args.json)
    if args.markdown:
        atomic_write_text(args.markdown, audit_markdown(report))
    print(format_audit(report))
    return EXIT_OK if report.passed else EXIT_MISMATCH


def cmd_eval(args: argparse.Namespace) -> int:
    from analyzer.cli.tables import format_evaluation
    from analyzer.runtime.bench import resolve_options, torch_dtype
    from analyzer.runtime.qa import load_qa_model
    from analyzer.squad.data import bundled_sample_path
    from analyzer.squad.evaluate import run_eval

    if args.batch_size < 1:
        raise InputError(None, f"--batch-size must be a positive integer, got {args.batch_size}")
    path = _default_checkpoint(args.path)
    device, dtype, align = resolve_options(args.device, args.dtype, args.align)
    model, tokenizer = load_qa_model(
        path, packed=not args.no_pack, dtype=torch_dtype(dtype), device=device, align=align
    )
    ev = run_eval(
        model,
        tokenizer,
        args.data or bundled_sample_path(),
        args.out,
        packed=not args.no_pack,
        checkpoint=str(path),
        limit=args.limit,
        seed=args.seed,
        batch_size=args.batch_size,
        device=device,
        graphs=False if args.no_graphs else None,
        force=args.force,
        progress=sys.stderr.isatty(),
    )
    print(format_evaluation(ev))
    print(f"\nresults written to {args.out}")
    return EXIT_OK


def cmd_score(args: argparse.Namespace) -> int:
    from analyzer.cli.tables import format_evaluation
    from analyzer.records import write_record
    from analyzer.squad.evaluate import score_files

    ev = score_files(args.data, args.predictions, args.na_probs)
    if args.out:
        write_record(ev, args.out)
    print(format_evaluation(ev))
    if args.out:
        print(f"\nevaluation written to {args.out}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, str]] = {}


def _demo_path_argument(p: argparse.ArgumentParser, *, weights_file: bool = False) -> None:
    """The optional checkpoint argument; without it, commands run the embedded demo."""
    what = "checkpoint folder or weights file" if weights_file else "checkpoint folder"
    p.add_argument(
        "path", nargs="?", type=Path, help=f"{what} (default: the embedded demo checkpoint)"
    )


def _device_options(p: argparse.ArgumentParser) -> None:
    """Where and how the models run: the same options and defaults for bench and eval."""
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    p.add_argument(
        "--dtype", choices=("fp32", "fp16", "bf16"), help="default: fp16 on GPU, fp32 on CPU"
    )
    p.add_argument(
        "--align", type=int, metavar="N", help="FFN width alignment (default: 64 GPU, 1 CPU)"
    )


def _accept_unstable_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--accept-unstable",
        action="store_true",
        help="keep an implausible timing (exit 0); the card marks it unstable",
    )


def _command(
    sub: argparse._SubParsersAction,
    name: str,
    func: Callable[[argparse.Namespace], int],
    help_text: str,
    example: str,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"Example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func)
    COMMANDS[name] = (func, help_text, example)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="prunecard",
        description="Measure pruned transformer checkpoints, render model cards, audit claims.",
    )
    parser.add_argument("--version", action="version", version=f"prunecard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = _command(
        sub,
        "demo",
        cmd_demo,
        "Prune the embedded MiniLM, run `report` on it and build the site (the main job).",
        "prunecard demo --out ./prunecard-demo",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("prunecard-demo"),
        metavar="DIR",
        help="folder for the report and the site (default: ./prunecard-demo)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="evaluate N questions of the sample")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists")

    p = _command(
        sub,
        "report",
        cmd_report,
        "analyze, pack, bench, eval and card in one go; every record is kept in DIR.",
        "prunecard report ./my-pruned-bert --data dev-v2.0.json --limit 1000 --out ./report",
    )
    _demo_path_argument(p)
    p.add_argument(
        "--out", type=Path, metavar="DIR", help="folder to write (default: ./<checkpoint>-report)"
    )
    p.add_argument(
        "--data",
        type=Path,
        metavar="FILE",
        help="SQuAD v2 JSON (default: the bundled 300-question sample)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="evaluate a random subset of N questions")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset (default 0)")
    p.add_argument("--no-eval", action="store_true", help="skip the SQuAD v2 evaluation")
    p.add_argument("--no-bench", action="store_true", help="skip the dense vs packed timing")
    p.add_argument("--quick", action="store_true", help="a short timing: batch 1, sequence 128")
    _accept_unstable_option(p)
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    p.add_argument("--base", metavar="NAME", help="Hub id of the model this one was pruned from")
    p.add_argument("--name", metavar="ID", help="model name or Hub id (default: folder name)")
    p.add_argument("--license", default="unknown", help="Hub license id (default: unknown)")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists")

    p = _command(
        sub,
        "analyze",
        cmd_analyze,
        "Measure a checkpoint: densities, removed heads, FFN units, block structure, sizes.",
        "prunecard analyze ./my-pruned-bert --json analysis.json",
    )
    _demo_path_argument(p, weights_file=True)
    p.add_argument("--json", type=Path, metavar="FILE", help="write the analysis record here")

    p = _command(
        sub,
        "pack",
        cmd_pack,
        "Write a packed checkpoint: removed heads and dead FFN units physically gone, "
        "outputs unchanged.",
        "prunecard pack ./my-pruned-bert ./my-pruned-bert-packed --align 64",
    )
    p.add_argument("path", type=Path, help="checkpoint folder or weights file")
    p.add_argument("out", type=Path, help="folder to write (must not exist unless --force)")
    p.add_argument(
        "--align", type=int, default=1, metavar="N", help="pad FFN widths to multiples of N"
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")

    p = _command(
        sub,
        "bench",
        cmd_bench,
        "Time the dense model against the packed one on this machine, per (batch, seq).",
        "prunecard bench ./my-pruned-bert --json bench.json --batch 1 8 --seq 384",
    )
    _demo_path_argument(p, weights_file=True)
    p.add_argument("--json", type=Path, metavar="FILE", help="write the bench record here")
    p.add_argument(
        "--quick", action="store_true", help="for trying things: batch 1, seq 128, 5 s budget"
    )
    _device_options(p)
    p.add_argument("--batch", type=int, nargs="+", metavar="B", help="batch sizes (default 1 8)")
    p.add_argument("--seq", type=int, nargs="+", metavar="S", help="sequence lengths (384)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default: torch's)")
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
    _accept_unstable_option(p)
    p.add_argument("--graphs", action="store_true", help="replay CUDA graphs (GPU only)")
    p.add_argument(
        "--fuse",
        nargs="?",
        const="both",
        choices=("both", "packed"),
        help="fused runtime (one QKV product, add+LayerNorm kernel) for both models or the "
        "packed one only",
    )

    p = _command(
        sub,
        "card",
        cmd_card,
        "Render the Hugging Face model card and its figures from the records "
        "(never re-runs eval or bench).",
        "prunecard card ./my-pruned-bert --bench bench.json --eval eval.json "
        "--base bert-base-uncased --out ./my-pruned-bert-card",
    )
    _demo_path_argument(p)
    p.add_argument("--analysis", type=Path, metavar="F", help="analysis record (default: analyze)")
    p.add_argument("--bench", type=Path, metavar="F", help="bench record (else: not measured)")
    p.add_argument("--eval", type=Path, metavar="F", help="evaluation record (else: not measured)")
    p.add_argument(
        "--report", type=Path, metavar="F", help="earlier report.json to take records from"
    )
    p.add_argument("--base", metavar="NAME", help="Hub id of the model this one was pruned from")
    p.add_argument("--name", metavar="ID", help="model name or Hub id (default: folder name)")
    p.add_argument("--license", default="unknown", help="Hub license id (default: unknown)")
    p.add_argument(
        "--reference-metrics",
        type=Path,
        metavar="F",
        help='reference scores, official SQuAD keys: {"exact": .., "f1": ..}',
    )
    p.add_argument("--template", type=Path, metavar="F", help="your Jinja2 template for the body")
    p.add_argument(
        "--out", type=Path, metavar="DIR", help="folder to write (default: ./<checkpoint>-card)"
    )
    p.add_argument(
        "--force", action="store_true", help="replace DIR (or its README.md) if it exists"
    )

    p = _command(
        sub,
        "site",
        cmd_site,
        "Build a static documentation site (mkdocs-material) comparing report folders.",
        "prunecard site reports/model-a reports/model-b --out site-out",
    )
    p.add_argument(
        "reports",
        nargs="+",
        type=Path,
        metavar="REPORT_DIR",
        help="report folders written by `prunecard card` (README.md, report.json)",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="SITE",
        help="folder for the mkdocs project; the built site goes to SITE/site",
    )
    p.add_argument("--force", action="store_true", help="replace SITE if it exists")

    p = _command(
        sub,
        "audit",
        cmd_audit,
        "Check a model card's claims against the weights, an evaluation and a bench record "
        "(exit 1 on any mismatch).",
        "prunecard audit ./my-pruned-bert --eval eval.json --bench bench.json --json audit.json",
    )
    p.add_argument("path", type=Path, help="checkpoint folder (or the card with --no-weights)")
    p.add_argument("--card", type=Path, metavar="FILE", help="the card (default: PATH/README.md)")
    p.add_argument(
        "--eval",
        type=Path,
        metavar="FILE",
        help="an Evaluation record, a report.json or the official script's eval_metrics.json",
    )
    p.add_argument("--bench", type=Path, metavar="FILE", help="a Bench record or a report.json")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the audit record here")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report here")
    p.add_argument(
        "--no-weights",
        action="store_true",
        help="do not read weights: check the card's internal consistency only",
    )

    p = _command(
        sub,
        "eval",
        cmd_eval,
        "Answer SQuAD v2 questions with the (packed) model and score them with the official "
        "metric, bootstrap CIs and the sample size.",
        "prunecard eval ./my-pruned-bert --data dev-v2.0.json --limit 500 --seed 0 --out ./eval",
    )
    _demo_path_argument(p)
    p.add_argument(
        "--data",
        type=Path,
        metavar="FILE",
        help="SQuAD v2 JSON, official format (default: the bundled 306-question sample)",
    )
    p.add_argument("--limit", type=int, metavar="N", help="evaluate N questions drawn at random")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for --limit (0)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write")
    p.add_argument("--no-pack", action="store_true", help="evaluate the checkpoint as stored")
    p.add_argument("--batch-size", type=int, default=32, metavar="B", help="windows per batch")
    _device_options(p)
    p.add_argument(
        "--no-graphs", action="store_true", help="on a GPU, run eagerly instead of CUDA graphs"
    )
    p.add_argument("--force", action="store_true", help="replace DIR if it exists")

    p = _command(
        sub,
        "score",
        cmd_score,
        "Score SQuAD v2 predictions made anywhere with prunecard's metric (official keys, "
        "CIs, per question type).",
        "prunecard score dev-v2.0.json predictions.json --na-probs na_probs.json "
        "--out evaluation.json",
    )
    p.add_argument("data", type=Path, help="SQuAD v2 JSON, official format")
    p.add_argument("predictions", type=Path, help='JSON object: id -> answer text ("" = none)')
    p.add_argument(
        "--na-probs", type=Path, metavar="FILE", help="JSON object: id -> no-answer probability"
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="write the evaluation record here")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    from analyzer.runtime.timing import ImplausibleTiming

    try:
        return args.func(args)
    except ImplausibleTiming as exc:
        print(f"prunecard: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    except PrunecardError as exc:
        if args.debug:
            raise
        print(f"prunecard: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `prunecard analyze | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("prunecard: interrupted; no partial output was kept", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
