"""report.json: the analysis, bench and evaluation records plus where they came from.

`report.json` is what the card, the site and the audit read, so it carries enough
provenance (tool version, command line, file hashes, time, machine) for a reader to tell
which weights a figure describes. Any of the three measurement records may be missing;
readers then say "not measured" instead of inventing a figure. Building a report (hashing
the weights, detecting the machine) is the pipeline's job (`analyzer.pipeline.build_report`).
"""

from __future__ import annotations

from pathlib import Path

from analyzer.records import Report, load_record, write_record

__all__ = ["REPORT_FILE", "read_report", "write_report"]

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
