"""The models of a collection: a LIST file (one Hub id or local path a line, `#` comments)
or a Hub author's models.

A LIST is bounded (1 MB, 10,000 models, 1,000 characters a line) and read in one linear
pass; a line that is neither a usable path nor a Hub id, or a model listed twice, is an
error naming the file and the line. A relative path is read from the LIST's folder. A path
that does not exist is not an error here: that model fails alone when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import InputError, PrunecardError, printable
from analyzer.inputs import read_input

__all__ = ["MAX_LINE", "MAX_LIST_BYTES", "MAX_MODELS", "Entry", "author_models", "read_list"]

MAX_LIST_BYTES = 1 << 20
MAX_MODELS = 10_000
MAX_LINE = 1_000


@dataclass(frozen=True)
class Entry:
    """One model: as listed (records and folders are named from it) and where it is read."""

    listed: str  # the line's text, or the Hub id an author listing gave
    source: str  # a local path (relative ones joined to the LIST's folder) or the Hub id
    line: int = 0  # 1-based line in the LIST; 0 for an author listing
    hub: bool = False  # a Hub id (fetched into the Hub cache), not a local path


def read_list(path: Path) -> tuple[Entry, ...]:
    """The entries of a LIST file, in its order."""
    data = read_input(path, MAX_LIST_BYTES, InputError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {exc.start})") from None
    entries: list[Entry] = []
    first: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        if len(line) > MAX_LINE:
            raise InputError(where, f"a line of over {MAX_LINE} characters")
        if not line.isprintable():
            raise InputError(where, f"holds a control character: {printable(line)[:80]}")
        entry = _entry(line, Path(path).parent, number, where)
        if entry.source in first:
            raise InputError(where, f"{line} is listed twice (first on line {first[entry.source]})")
        first[entry.source] = number
        entries.append(entry)
        if len(entries) > MAX_MODELS:
            raise InputError(path, f"lists over {MAX_MODELS} models; split it")
    if not entries:
        raise InputError(path, "lists no model (one Hub id or local path a line)")
    return tuple(entries)


def _entry(line: str, folder: Path, number: int, where: str) -> Entry:
    from analyzer.weights.hub import HubRef, parse_source

    beside = folder / line
    if not Path(line).is_absolute() and beside.exists():
        return Entry(line, str(beside.resolve()), number)
    try:
        source = parse_source(line)
    except PrunecardError as exc:
        raise InputError(where, exc.problem) from None
    if isinstance(source, HubRef):
        return Entry(line, str(source), number, hub=True)
    return Entry(line, str(beside if not source.is_absolute() else source), number)


def author_models(org: str) -> tuple[Entry, ...]:
    """The models a Hub user or organisation published (needs the network), by id."""
    from huggingface_hub import HfApi, constants

    flag = f"--author {org}"
    if constants.HF_HUB_OFFLINE:
        raise InputError(flag, "the Hub cannot be reached (HF_HUB_OFFLINE=1); give a LIST file")
    try:
        found = HfApi().list_models(author=org, limit=MAX_MODELS + 1)
        ids = [m.id for m in found]
    except Exception as exc:  # any Hub or network failure: one line, not a traceback
        problem = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(flag, f"the Hub did not list its models ({problem})") from None
    if not ids:
        raise InputError(flag, "the Hub lists no model by this author")
    if len(ids) > MAX_MODELS:
        raise InputError(flag, f"lists over {MAX_MODELS} models; give a LIST file instead")
    return tuple(Entry(i, i, hub=True) for i in sorted(ids))
