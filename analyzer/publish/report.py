"""The report: the analysis, bench and evaluation records plus where they came from.

`report.json` is what the card, the site and the audit read, so it carries enough
provenance (tool version, command line, file hashes, time, machine) for a reader to tell
which weights a figure describes. Any of the three measurement records may be missing;
readers then say "not measured" instead of inventing a figure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path, PurePath

from analyzer.records import (
    Analysis,
    Bench,
    Environment,
    Evaluation,
    Provenance,
    Report,
    load_record,
    write_record,
)
from analyzer.weights.checkpoint import INDEXES, open_checkpoint

__all__ = [
    "REPORT_FILE",
    "build_report",
    "checkpoint_hashes",
    "portable",
    "read_report",
    "sha256_file",
    "utc_now",
    "write_report",
]

REPORT_FILE = "report.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so multi-GB weights never sit in memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_hashes(path: str | Path) -> dict[str, str]:
    """sha256 of every weight file, shard index and config.json, keyed by path in the folder."""
    checkpoint = open_checkpoint(path)
    root = checkpoint.root
    files = list(checkpoint.weight_files)
    files += [root / name for name in ("config.json", *INDEXES) if (root / name).is_file()]
    return {
        str(f.relative_to(root)): sha256_file(f)
        for f in sorted(set(files), key=lambda f: str(f.relative_to(root)))
    }


def utc_now() -> str:
    """The current time as ISO 8601 UTC to the second ("2025-01-31T12:00:00Z"), or
    `SOURCE_DATE_EPOCH` when set (reproducible builds' convention for a fixed time)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    now = (
        datetime.fromtimestamp(int(epoch), timezone.utc)
        if epoch.isdigit()
        else datetime.now(timezone.utc)
    )
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_report(
    checkpoint: str | Path,
    *,
    analysis: Analysis | None = None,
    bench: Bench | None = None,
    evaluation: Evaluation | None = None,
    command: str | None = None,
    created: str | None = None,
    environment: Environment | None = None,
    tool_version: str | None = None,
) -> Report:
    """Gather the records with provenance; unset provenance fields are detected now.

    Tests pass `created`, `command`, `environment` and `tool_version` so their output is
    stable; the CLI leaves them to detection.
    """
    from analyzer import __version__
    from analyzer.runtime.environment import detect_environment

    root = open_checkpoint(checkpoint).root
    provenance = Provenance(
        tool_version=tool_version or __version__,
        command=command if command is not None else shlex.join(["prunecard", *sys.argv[1:]]),
        checkpoint=str(root),
        file_sha256=checkpoint_hashes(root),
        created=created or utc_now(),
        environment=environment or detect_environment(),
    )
    return Report(provenance=provenance, analysis=analysis, bench=bench, evaluation=evaluation)


def write_report(directory: str | Path, report: Report) -> Path:
    """Write DIR/report.json atomically and return its path."""
    return write_record(report, Path(directory) / REPORT_FILE)


def read_report(path: str | Path) -> Report:
    """Read a report from its file or from the folder that holds report.json."""
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_FILE
    return load_record(Report, path)


def portable(report: Report) -> Report:
    """The report as published: every path reduced to its file or folder name.

    An absolute path names the author's machine (home folder, checkout, temporary folder),
    means nothing on the Hub and changes from one machine to the next; files are
    identified by name and sha256, the model by its id.
    """
    p, a, e = report.provenance, report.analysis, report.evaluation
    provenance = dataclasses.replace(
        p, checkpoint=_name(p.checkpoint), command=_portable_command(p.command)
    )
    return dataclasses.replace(
        report,
        provenance=provenance,
        analysis=a and dataclasses.replace(a, checkpoint=_name(a.checkpoint)),
        evaluation=e
        and dataclasses.replace(
            e, data=_name(e.data), checkpoint=_name(e.checkpoint), predictions=_name(e.predictions)
        ),
    )


def _name(path: str) -> str:
    return PurePath(path).name if path else path


def _portable_command(command: str) -> str:
    """The command line with each absolute path (or one under ~, or after `--option=`)
    reduced to its name."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command

    def word(w: str) -> str:
        option, eq, value = w.partition("=") if w.startswith("--") else ("", "", w)
        return option + eq + (_name(value) if value.startswith(("/", "~")) else value)

    return shlex.join(word(w) for w in words)
