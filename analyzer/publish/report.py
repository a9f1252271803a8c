"""report.json: the analysis, bench and evaluation (or perplexity) records plus where they
came from.

`report.json` is what the card, the site and the audit read, so it carries enough
provenance (tool version, command line, file hashes, time, machine) for a reader to tell
which weights a figure describes. Any of the three measurement records may be missing;
readers then say "not measured" instead of inventing a figure. Building a report (hashing
the weights, detecting the machine) is the pipeline's job (`analyzer.pipeline.build_report`).
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path, PurePath

from analyzer.records import Report, load_record, write_record

__all__ = ["REPORT_FILE", "portable", "read_report", "write_report"]

REPORT_FILE = "report.json"


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
    identified by name and sha256, the model by its id (a Hub checkpoint's `org/name@commit`
    is kept as it is).
    """
    p, a, e, ppl = report.provenance, report.analysis, report.evaluation, report.perplexity
    hub = p.hub.label if p.hub else None

    def model(path: str) -> str:
        return path if path == hub else _name(path)

    provenance = dataclasses.replace(
        p, checkpoint=model(p.checkpoint), command=_portable_command(p.command)
    )
    return dataclasses.replace(
        report,
        provenance=provenance,
        analysis=a
        and dataclasses.replace(
            a,
            checkpoint=model(a.checkpoint),
            base=a.base and dataclasses.replace(a.base, source=_base_name(a.base.source)),
        ),
        evaluation=e
        and dataclasses.replace(
            e, data=_name(e.data), checkpoint=model(e.checkpoint), predictions=_name(e.predictions)
        ),
        perplexity=ppl
        and dataclasses.replace(
            ppl,
            text=ppl.text if ppl.dataset else _name(ppl.text),  # a dataset's name is no path
            checkpoint=model(ppl.checkpoint),
        ),
        benchmarks=report.benchmarks
        and dataclasses.replace(
            report.benchmarks,
            checkpoint=model(report.benchmarks.checkpoint),
            base=report.benchmarks.base
            and dataclasses.replace(
                report.benchmarks.base, checkpoint=_local_name(report.benchmarks.base.checkpoint)
            ),
        ),
    )


def _local_name(model: str) -> str:
    """A model named by a local path is reduced to its folder's name; a Hub id is kept."""
    return _name(model) if model.startswith(("/", "~", ".")) or "\\" in model else model


def _name(path: str) -> str:
    return PurePath(path).name if path else path


def _base_name(path: str) -> str:
    """A base's config.json keeps its folder's name, which names the base model
    ("Llama-2-7b-hf/config.json"); any other path is reduced to its name."""
    p = PurePath(path)
    return f"{p.parent.name}/{p.name}" if p.name == "config.json" and p.parent.name else _name(path)


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
