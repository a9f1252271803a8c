"""Opening the user's files: only regular files, and only up to a stated size.

A FIFO named config.json would block forever and a link to /dev/zero would read without
end; both are refused before a byte is read. Files are opened non-blocking, then checked
on the open descriptor, so a file swapped after the check is still the one checked.

Limits per kind (stated in README.md, "Safety"; a test keeps both in step):

    config.json, index, tokenizer_config,  16 MB
    recipe.yaml
    tokenizer.json, vocab files            64 MB
    SQuAD data, predictions, records,     256 MB
    perplexity texts
    weights                                no limit (read lazily), regular files only
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from analyzer.errors import InputError, PrunecardError

__all__ = [
    "CONFIG_LIMIT",
    "DATA_LIMIT",
    "TOKENIZER_LIMIT",
    "check_regular_file",
    "os_problem",
    "read_input",
]

MB = 1 << 20
CONFIG_LIMIT = 16 * MB  # config.json, index files, tokenizer_config.json
TOKENIZER_LIMIT = 64 * MB  # tokenizer.json, vocab.txt (large multilingual vocabularies)
DATA_LIMIT = 256 * MB  # SQuAD data, predictions, records, texts (SQuAD v2 train: 40 MB)


_PROBLEMS = {
    errno.ENOENT: "no such file",
    errno.EACCES: "not readable (permission denied)",
    errno.ENAMETOOLONG: "path or file name too long",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "a parent of this path is a file, not a folder",
}


def os_problem(exc: OSError) -> str:
    """What an OSError means for a path the user gave, in a few plain words."""
    return _PROBLEMS.get(exc.errno or 0) or f"cannot be read ({exc.strerror or exc})".lower()


def _open(path: Path, limit: int | None, error: type[PrunecardError]) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(path, os_problem(exc)) from None
    info = os.fstat(fd)
    problem = None
    if stat.S_ISDIR(info.st_mode):
        problem = "is a folder, not a file"
    elif not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file (a pipe, device or socket is refused)"
    elif limit is not None and info.st_size > limit:
        problem = f"is {info.st_size / MB:.1f} MB, over the {limit // MB} MB limit for this input"
    if problem:
        os.close(fd)
        raise error(path, problem)
    return fd


def check_regular_file(
    path: str | Path, limit: int | None = None, error: type[PrunecardError] = InputError
) -> Path:
    """Refuse anything but a regular file of at most `limit` bytes, without reading it."""
    os.close(_open(Path(path), limit, error))
    return Path(path)


def read_input(path: str | Path, limit: int, error: type[PrunecardError] = InputError) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (a file still growing is cut
    off at the limit and refused)."""
    path = Path(path)
    fd = _open(path, limit, error)
    try:
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(path, os_problem(exc)) from None
    if len(data) > limit:
        raise error(path, f"grew past the {limit // MB} MB limit for this input while read")
    return data
