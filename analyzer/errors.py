"""Errors a user can cause, each with a message that names the file and the problem.

    PrunecardError            anything the CLI reports in one line with exit code 2
    ├── CheckpointError       weights or config.json unreadable, corrupt or inconsistent
    ├── InputError            any other input file (records, data, predictions, cards)
    └── OutputError           an output that exists already or cannot be written

The CLI is the only place that prints them; the library only raises.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CheckpointError", "InputError", "OutputError", "PrunecardError"]


class PrunecardError(Exception):
    """A problem with the user's input or environment, not a bug in prunecard."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class CheckpointError(PrunecardError):
    """The checkpoint's weights or config cannot be read or contradict each other."""


class InputError(PrunecardError):
    """A non-checkpoint input (record, data set, predictions, card) is unusable."""


class OutputError(PrunecardError):
    """An output path exists already or cannot be written."""
