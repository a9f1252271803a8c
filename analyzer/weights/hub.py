"""Checkpoints named by Hub id (`org/name` or `org/name@revision`), fetched with
huggingface_hub's `snapshot_download` into the user's cache, only the files a command reads.

The rules, one place for every command (`analyze`, `pack`, `bench`, `eval`, `report`, `card`,
`audit`, and `load()`):

- an existing local path always wins: a folder named `org/name` is read as a folder;
- an id is `owner/name` as huggingface_hub validates it (letters, digits, `-_.`, no `--` or
  `..`, at most 96 characters) with exactly one `/`: a bare `name` is a local path;
- `@revision` is a branch, a tag or a commit (40 lowercase hex digits; a shorter hex is read
  as a branch or tag name); no revision means `main`;
- the files fetched are config.json, the weights the reader will open (a shard index and
  the shards it names, else the single file: safetensors first, `.bin` only when there is
  no safetensors), recipe.yaml, and where the command needs them the tokenizer files and
  generation_config.json (pack, bench, eval, report) or README.md (audit);
- offline (`HF_HUB_OFFLINE=1`), or when the Hub cannot be reached, the cached snapshot is
  used (`local_files_only=True`); when neither works the error is one line naming the id
  (so is a needed file the cache never fetched, where it keeps the commit's tree listing);
- the repository's cache folder is an input: no output may lie inside it;
- records name the id and the resolved commit (`org/name@<commit>`), never the cache path,
  which names the user's home folder.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from analyzer.errors import CheckpointError, InputError
from analyzer.records import HubSource
from analyzer.weights.checkpoint import INDEXES, TOKENIZER_FILES, shard_names, weights_entry

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Fetched",
    "HubRef",
    "fetch",
    "named",
    "needed_files",
    "parse_source",
]

CARD_FILE = "README.md"
CONFIG = "config.json"
RECIPE = "recipe.yaml"  # llm-compressor's, beside the weights
GENERATION = "generation_config.json"
COMMIT = re.compile(r"[0-9a-f]{40}")
# a branch or tag name: git's ref rules, simplified (no "..", "//", "@{", no leading "-")
REVISION = re.compile(r"(?!.*\.\.)(?!.*//)(?!.*@\{)[\w+=][\w.+=/-]*(?<![/.])", re.ASCII)

R = TypeVar("R", bound="DataclassInstance")  # a record with a `checkpoint` field


@dataclass(frozen=True)
class HubRef:
    """A checkpoint named by Hub id, before anything is fetched."""

    repo_id: str
    revision: str | None = None  # None: the default branch

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")

    @property
    def cache_folder(self) -> Path:
        """The repository's folder in the user's cache (`models--org--name`): an input, so no
        output may lie inside it."""
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name

        folder = repo_folder_name(repo_id=self.repo_id, repo_type="model")
        return Path(constants.HF_HUB_CACHE) / folder


@dataclass(frozen=True)
class Fetched:
    """A checkpoint to read: a local path, and where it came from when it came from the Hub."""

    path: Path
    hub: HubSource | None = None

    @property
    def name(self) -> str:
        """How records name it: `org/name@<commit>`, or the path as given."""
        return self.hub.label if self.hub else str(self.path)


def parse_source(given: str | Path) -> Path | HubRef:
    """A local path (anything that exists, or does not look like an id) or a Hub id."""
    text = str(given)
    if os.path.lexists(text) or not _looks_like_id(text):
        return Path(given)
    repo_id, at, revision = text.partition("@")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise InputError(
            text,
            "no such file or folder, and not a Hub id (owner/name: letters, digits, '-', '_', "
            "'.'; no '--' or '..'; at most 96 characters)",
        ) from None
    if at and not (COMMIT.fullmatch(revision) or REVISION.fullmatch(revision)):
        raise InputError(
            text,
            "no such file or folder, and not a Hub revision after '@' (a branch or tag name: "
            "letters, digits, '._-+=/', no '..'; or a 40-hex commit)",
        )
    return HubRef(repo_id, revision or None)


def _looks_like_id(text: str) -> bool:
    """`owner/name[@...]`: one `/` before any `@`, not a path from `/`, `.` or `~`."""
    head = text.partition("@")[0]
    return head.count("/") == 1 and not text.startswith(("/", ".", "~")) and "\\" not in head


def named(record: R, hub: HubSource | None) -> R:
    """`record` with its `checkpoint` naming the Hub id and commit instead of a cache path."""
    if hub is None:
        return record
    return dataclasses.replace(record, checkpoint=hub.label)


def needed_files(
    names: Collection[str],
    shards: Callable[[str], Collection[str]],
    *,
    weights: bool = True,
    tokenizer: bool = False,
    card: bool = False,
) -> list[str]:
    """The files of a repository holding `names` (paths in the repository) that a command
    reads; `shards(index)` names the shards an index lists. The weights are chosen by the
    reader's own rule (`weights_entry`), so exactly the files it will open are fetched."""
    wanted: list[str] = []
    if weights:
        entry = weights_entry({n for n in names if "/" not in n})
        if entry is None:
            return []  # no weights: the caller says so
        wanted += [CONFIG, entry, RECIPE]
        if entry in INDEXES:
            wanted += sorted(shards(entry))
    if tokenizer:
        wanted += [*TOKENIZER_FILES, GENERATION]
    if card:
        wanted.append(CARD_FILE)
    present = set(names)
    return [n for n in dict.fromkeys(wanted) if n in present]


def fetch(
    source: Path | HubRef, *, weights: bool = True, tokenizer: bool = False, card: bool = False
) -> Fetched:
    """A local path as it is; a Hub id's needed files from the Hub, or from the cache when
    offline or when the Hub cannot be reached."""
    if isinstance(source, Path):
        return Fetched(source)
    from huggingface_hub import constants

    needs = {"weights": weights, "tokenizer": tokenizer, "card": card}
    if constants.HF_HUB_OFFLINE:
        return _from_cache(source, needs, _OFFLINE)
    try:
        return _from_hub(source, needs)
    except _Unreachable as why:
        return _from_cache(source, needs, why.args[0])


_OFFLINE = "the Hub cannot be reached (HF_HUB_OFFLINE=1); download it once with network"


class _Unreachable(Exception):
    """The Hub gave no listing; the message says why, for the error if the cache fails too."""


def _from_hub(ref: HubRef, needs: dict[str, bool]) -> Fetched:
    from huggingface_hub import HfApi, hf_hub_download

    try:
        info = HfApi().model_info(ref.repo_id, revision=ref.revision)
    except Exception as exc:  # httpx, offline mode, or an HTTP answer: the cache may have it
        raise _Unreachable(_hub_problem(ref, exc)) from None
    names = [s.rfilename for s in info.siblings or ()]
    commit = str(info.sha)

    def shards(index: str) -> Collection[str]:
        return shard_names(Path(hf_hub_download(ref.repo_id, index, revision=commit)))

    try:
        wanted = _wanted(ref, commit, names, shards, needs, cached=False)
        folder = _snapshot(ref, commit, wanted, local_files_only=False)
    except CheckpointError:
        raise
    except Exception as exc:  # a download cut off half-way, a full disk
        raise CheckpointError(str(ref), f"download failed ({_first_line(exc)})") from None
    return Fetched(folder, HubSource(ref.repo_id, ref.revision or "main", commit))


def _from_cache(ref: HubRef, needs: dict[str, bool], why: str) -> Fetched:
    from huggingface_hub.errors import LocalEntryNotFoundError

    def missing(problem: str) -> CheckpointError:
        return CheckpointError(str(ref), f"{problem} and {why} or pass a local folder")

    try:  # the snapshot folder the revision names (refs/<branch or tag>, or the commit)
        folder = _snapshot(ref, ref.revision or "main", [], local_files_only=True)
    except LocalEntryNotFoundError:
        raise missing("not in the Hugging Face cache") from None
    commit = folder.name
    names = _cached_listing(ref, commit, folder)

    def shards(index: str) -> Collection[str]:  # an index never fetched: found missing below
        return shard_names(folder / index) if (folder / index).is_file() else ()

    wanted = _wanted(ref, commit, names, shards, needs, cached=True)
    try:  # the files wanted: the cache's tree listing, where kept, says whether all are there
        _snapshot(ref, commit, wanted, local_files_only=True)
    except LocalEntryNotFoundError:
        raise missing(f"the cached snapshot {commit} is incomplete") from None
    return Fetched(folder, HubSource(ref.repo_id, ref.revision or "main", commit))


def _cached_listing(ref: HubRef, commit: str, folder: Path) -> list[str]:
    """The repository's files at `commit`: the tree listing `snapshot_download` keeps in the
    cache (every file of the commit, fetched or not, so a needed file never fetched is found
    missing), else the snapshot folder's files (`hf_hub_download` and `from_pretrained`
    keep no listing)."""
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    try:
        from huggingface_hub import get_cached_repo_tree
        from huggingface_hub.errors import CachedRepoTreeNotFoundError
    except ImportError:  # a huggingface_hub from before tree listings
        return files
    try:
        return [f.path for f in get_cached_repo_tree(ref.repo_id, revision=commit)]
    except CachedRepoTreeNotFoundError:
        return files


def _wanted(
    ref: HubRef,
    commit: str,
    names: Collection[str],
    shards: Callable[[str], Collection[str]],
    needs: dict[str, bool],
    *,
    cached: bool,
) -> list[str]:
    """The files to fetch, or a one-line error when the repository lacks what is needed."""
    where = f"{ref.repo_id}@{commit}"
    wanted = needed_files(names, shards, **needs)
    if needs["weights"] and CONFIG not in wanted:
        problem = "holds no config.json or no weights (model.safetensors, pytorch_model.bin or "
        problem += "a sharded index) at the top of the repository"
        raise CheckpointError(where, problem + ("; download it once with network" * cached))
    if needs["card"] and CARD_FILE not in wanted:
        raise CheckpointError(where, "has no README.md (no card to audit); pass --card FILE")
    return wanted


def _snapshot(ref: HubRef, revision: str, files: list[str], *, local_files_only: bool) -> Path:
    """`snapshot_download` of exactly `files` (names escaped, so none is read as a pattern)."""
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(
            ref.repo_id,
            revision=revision,
            allow_patterns=[glob.escape(f) for f in files],
            local_files_only=local_files_only,
        )
    )


def _hub_problem(ref: HubRef, exc: Exception) -> str:
    """Why the Hub gave no listing, and what to do, for the one-line error."""
    from huggingface_hub.errors import (
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, OfflineModeIsEnabled):
        return _OFFLINE
    if isinstance(exc, RevisionNotFoundError):
        return f"the Hub has no revision {ref.revision!r}; name a branch, tag or 40-hex commit"
    if isinstance(exc, RepositoryNotFoundError):
        return "the Hub has no such model; check the id (private or gated: `hf auth login`)"
    reason = f"{type(exc).__name__}: {_first_line(exc)}"
    return f"the Hub cannot be reached ({reason}); download it once with network"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:160]
