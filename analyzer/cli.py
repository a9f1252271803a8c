"""The `prunecard` command: parses arguments, calls the library, prints, sets the exit code.

Exit codes: 0 success, 1 an audit found a mismatch, 2 bad input (one line on stderr,
no traceback unless --debug).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .errors import PrunecardError

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and one line, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"prunecard: error: {message} (see --help)\n")


def _default_checkpoint(path: Path | None) -> Path:
    if path is not None:
        return path
    from .demo import demo_checkpoint

    return demo_checkpoint()


# --------------------------------------------------------------------------- commands


def cmd_analyze(args: argparse.Namespace) -> int:
    from .records import write_record
    from .sparsity import analyze
    from .text import format_analysis

    analysis = analyze(_default_checkpoint(args.path))
    if args.json:
        write_record(analysis, args.json)
    print(format_analysis(analysis))
    if args.json:
        print(f"\nanalysis written to {args.json}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, str]] = {}


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
        "analyze",
        cmd_analyze,
        "Measure a checkpoint: densities, removed heads, FFN units, block structure, sizes.",
        "prunecard analyze ./my-pruned-bert --json analysis.json",
    )
    p.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="checkpoint folder or weights file (default: the embedded demo checkpoint)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the analysis record here")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.func(args)
    except PrunecardError as exc:
        if args.debug:
            raise
        print(f"prunecard: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("prunecard: interrupted; no partial output was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
