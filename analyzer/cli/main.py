"""The `prunecard` command: parses arguments (`analyzer.cli.parser`), runs the command
(`analyzer.cli.commands`), turns errors into one line and sets the exit code.

Exit codes: 0 success, 1 an audit found a mismatch or a timing is implausible (one line
on stderr), 2 bad input (one line on stderr, no traceback unless --debug).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from analyzer.cli.commands import EXIT_BAD_INPUT, EXIT_MISMATCH, EXIT_OK
from analyzer.cli.parser import COMMANDS, build_parser
from analyzer.errors import PrunecardError, printable

__all__ = ["COMMANDS", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    from analyzer.runtime.timing import ImplausibleTiming

    try:
        with _signals_interrupt():
            code = args.func(args)
            # a buffered stdout meets a closed pipe here, not at exit (exit 120 there)
            sys.stdout.flush()
            return code
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
    except OSError as exc:  # a path the system refuses (too long, a symlink loop, ...)
        if args.debug or exc.filename is None:
            raise
        from analyzer.inputs import os_problem

        line = printable(f"{exc.filename}: {os_problem(exc)}")
        print(f"prunecard: error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _Signalled as exc:
        print(f"prunecard: error: stopped by {exc}; no partial output was kept", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("prunecard: interrupted; no partial output was kept", file=sys.stderr)
        return EXIT_BAD_INPUT


class _Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP (timeout, CI cancellation, docker stop, a closed terminal): unwinds
    like Ctrl-C, so staged outputs are removed and old outputs stay as they were."""


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise _Signalled(signal.Signals(signum).name)

    caught = (signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, stop) for s in caught}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
