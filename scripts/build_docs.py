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

HUB_IDS = """## Checkpoints by Hub id

Every command that reads a checkpoint (`analyze`, `pack`, `bench`, `eval`, `report`, `card`,
`audit`; and `load()` in Python) takes a local path or a Hub id, `org/name` or
`org/name@revision`:

- **A local path always wins.** A folder `./org/name` is read as a folder, never fetched.
- **What an id is**: `owner/name` as huggingface_hub validates it (letters, digits, `-`,
  `_`, `.`; no `--` or `..`; at most 96 characters), with exactly one `/`. A bare name
  (`gpt2`) is a local path: write Hub ids with their owner (`openai-community/gpt2`). Anything
  shaped like an id that fails these rules is refused in one line.
- **Revisions**: after `@`, a branch, a tag (`refs/pr/1` too) or a commit (40 lowercase hex
  digits; a shorter hex is read as a branch or tag name). None: `main`.
- **Only the files the command reads** are fetched with huggingface_hub's
  `snapshot_download`, into the user's cache (`HF_HUB_CACHE`): config.json, the weights
  the reader opens (a shard index and the shards it names, else `model.safetensors`;
  `pytorch_model.bin` only when there is no safetensors; nothing in sub-folders such as
  `onnx/`), `recipe.yaml`; the tokenizer files and generation_config.json for `pack`,
  `bench`, `eval` and `report`; README.md for `audit` (the published card, unless `--card`
  is given; `audit org/name --no-weights` fetches the card alone).
- **Offline** (`HF_HUB_OFFLINE=1`), or when the Hub cannot be reached, the cached snapshot
  is used (`local_files_only=True`). When neither works the error is one line, e.g.
  `prunecard: error: org/name: not in the Hugging Face cache and the Hub cannot be reached
  (HF_HUB_OFFLINE=1); download it once with network or pass a local folder` (exit 2).
- **Records name the id and the commit**: `analysis.json`, `report.json` and the card say
  `org/name@<commit>` (and report.json's `provenance.hub` the revision asked for), never
  the cache path, which names your home folder. A card's default `--name` is the id, so
  its usage code loads the model by id; `--base` keeps its meaning (the model this one was
  pruned from) and is never set from the id.
- **The cache is an input**: no output may lie inside the repository's cache folder
  (`models--org--name`), so `card org/name --out <snapshot>` is refused.

""".splitlines()


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
        *HUB_IDS,
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
