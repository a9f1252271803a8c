"""The project's own documentation site: `make docs` (or `python scripts/build_docs.py [ROOT]`).

Regenerates docs/cli.md from the CLI's parser and docs/example/ from the embedded default
checkpoint's card, writes the shared script and stylesheet, then builds ROOT/mkdocs.yml
(strict) into ROOT/site. It lives outside the package: the product never imports its CLI.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
from pathlib import Path

from analyzer.cli.main import build_parser
from analyzer.errors import PrunecardError
from analyzer.pipeline import card_from_files
from analyzer.publish.site import mkdocs_build, read_report_dir, write_model_page, write_static
from analyzer.runtime.demo import demo_checkpoint


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """docs/cli.md: every subcommand's help, usage, options and example, from argparse."""
    lines = [
        "# CLI reference",
        "",
        "Generated from `prunecard --help` by `make docs`; do not edit by hand.",
        "",
        "Exit codes: 0 success, 1 an audit found a mismatch or a timing is implausible,"
        " 2 bad input.",
        "",
    ]
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        # a fixed width, so the page does not depend on the terminal it was generated in
        sub.formatter_class = functools.partial(argparse.RawDescriptionHelpFormatter, width=92)
        help_text = sub.format_help()
        lines += [f"## `prunecard {name}`", "", sub.description or "", "", "```text"]
        lines += [help_text.rstrip(), "```", ""]
    return "\n".join(lines)


def write_example_report(docs: Path, work: Path) -> Path:
    """docs/example/: the card of the embedded default checkpoint, rendered as a site page."""
    report_dir = card_from_files(
        demo_checkpoint(),
        out=work / "example-report",
        publication={"model_id": "prunecard-demo-minilm", "license": "apache-2.0"},
        force=True,
    )
    target = docs / "example"
    if target.exists():
        shutil.rmtree(target)
    return write_model_page(read_report_dir(report_dir, "example"), target)


def build_docs(root: str | Path) -> Path:
    """Regenerate the generated pages under root/docs, then build root/mkdocs.yml."""
    root = Path(root)
    docs = root / "docs"
    (docs / "cli.md").write_text(cli_reference(build_parser()), encoding="utf-8")
    write_static(docs)
    with tempfile.TemporaryDirectory() as work:
        write_example_report(docs, Path(work))
    mkdocs_build(root / "mkdocs.yml")
    return root / "site" / "index.html"


if __name__ == "__main__":
    try:
        print(build_docs(sys.argv[1] if len(sys.argv) > 1 else "."))
    except PrunecardError as exc:
        print(f"prunecard: error: {exc}", file=sys.stderr)
        sys.exit(2)
