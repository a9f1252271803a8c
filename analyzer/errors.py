"""Errors a user can cause, each with a message that names the file and the problem.

    PrunecardError            anything the CLI reports in one line with exit code 2
    ├── CheckpointError       weights or config.json unreadable, corrupt or inconsistent
    ├── InputError            any other input file (records, data, predictions, cards)
    └── OutputError           an output that exists already or cannot be written

The CLI is the only place that prints them; the library only raises.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["CheckpointError", "InputError", "OutputError", "PrunecardError", "printable"]

# C0 and C1 controls, DEL, line/paragraph separators and bidi overrides: anything that could
# start a new line or reorder text in a terminal, so a file name cannot forge output lines
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with control characters written as escapes (a newline becomes `\\n`)."""
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class PrunecardError(Exception):
    """A problem with the user's input or environment, not a bug in prunecard."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        # names in the message come from files: escaped here, once for every error
        message = f"{self.path}: {problem}" if self.path else problem
        super().__init__(printable(message))


class CheckpointError(PrunecardError):
    """The checkpoint's weights or config cannot be read or contradict each other."""


class InputError(PrunecardError):
    """A non-checkpoint input (record, data set, predictions, card) is unusable."""


class OutputError(PrunecardError):
    """An output path exists already or cannot be written."""
