"""Writing outputs so that a failure never leaves a half-written file or folder behind, and
no output ever replaces, or lands inside, something the user gave as input.

The rules, checked by `check_output` for every command before any work starts:

- an output may not be an input, contain one or lie inside one (symlinks resolved first);
- an output folder that exists is replaced only with `--force`, and only when prunecard
  wrote it (it holds the `MARKER` file): never a folder of the user's (an empty folder
  holds nothing to lose and is always filled);
- an output file (`--json`, `score --out`) replaces an existing regular file, which the user
  named on purpose, but never an input, a folder or anything that is not a regular file.

Temporary names are short (`.pc-XXXXXXXX`), so any legal output name stays legal.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from analyzer.errors import OutputError

__all__ = [
    "MARKER",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_apart",
    "check_file",
    "check_output",
    "staged_dir",
]

MARKER = ".prunecard-output"  # written into every output folder; --force needs it to replace
_TMP = ".pc-"  # prefix of temporary files and folders beside an output


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _resolve(path: Path, error_path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before 3.13)
        raise OutputError(error_path, _why(exc, "symlink loop")) from None


def _why(exc: BaseException, default: str) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else default).lower()


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise OutputError(path, "a parent of this path is a file, not a folder") from None
        raise OutputError(path, f"cannot be written ({_why(exc, 'unusable path')})") from None


def check_output(
    out: str | Path,
    inputs: Iterable[str | Path | None] = (),
    *,
    force: bool = False,
    folder: bool = True,
) -> Path:
    """Refuse an output that would overwrite or nest with an input, or replace what prunecard
    did not write (see the module docstring). `folder`: OUT is a folder, else a file."""
    out = Path(out)
    info = _lstat(out)
    check_apart(out, inputs)
    if info is None:
        return out
    if not folder:
        if not out.is_file():  # a folder, a device, a dangling link
            raise OutputError(out, "exists and is not a regular file; choose another output")
        return out
    if not out.is_dir():
        raise OutputError(out, "exists and is not a folder; choose another output")
    try:
        empty = not any(out.iterdir())
    except OSError as exc:
        raise OutputError(out, f"cannot be read ({_why(exc, 'unreadable')})") from None
    if empty:
        return out  # an empty folder holds nothing to lose
    if not force:
        raise OutputError(out, "already exists (pass --force to replace it)")
    if not (out / MARKER).is_file():
        raise OutputError(
            out,
            f"was not written by prunecard (no {MARKER} inside); --force only replaces "
            "prunecard's own output folders: remove it yourself or choose another output",
        )
    return out


def check_file(out: str | Path | None, inputs: Iterable[str | Path | None] = ()) -> None:
    """A single-file output (--json, --markdown, score --out), when one is given: never an
    input, never a folder (`check_output`)."""
    if out is not None:
        check_output(out, inputs, folder=False)


def check_apart(out: str | Path, inputs: Iterable[str | Path | None]) -> None:
    """Refuse an output that is, contains or lies inside one of `inputs`."""
    out = Path(out)
    target = _resolve(out, out)
    for given in inputs:
        if given is None:
            continue
        source = _resolve(Path(given), Path(given))
        if target == source or _same_file(out, Path(given)):
            raise OutputError(out, f"is the input {given}; choose another output")
        if source in target.parents:
            raise OutputError(out, f"lies inside the input {given}; choose another output")
        if target in source.parents:
            raise OutputError(out, f"contains the input {given}; choose another output")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write to a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, "is a folder; name a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP, dir=path.parent)
    except OSError as exc:
        raise OutputError(path, f"cannot write here ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs are ordinary files
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(path, f"write failed ({exc.strerror or exc})") from None
    except BaseException:  # an interrupt or a signal: no temporary file stays behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def staged_dir(out: Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes `out` only if the block finishes.

    `out` is checked by `check_output` first. With `force` an old `out` is replaced only
    after the new content is complete, so an interrupted run leaves the old folder intact.
    """
    out = check_output(out, force=force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_TMP, dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700; outputs are ordinary folders
    except OSError as exc:
        raise OutputError(out, f"cannot write here ({exc.strerror or exc})") from None
    old: Path | None = None
    moved = False
    try:
        yield tmp
        (tmp / MARKER).write_text("written by prunecard; `--force` may replace this folder\n")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=_TMP, dir=out.parent))
            os.replace(out, old / "old")
            moved = True
        os.replace(tmp, out)
    except BaseException as exc:
        if moved and old is not None and not out.exists():  # put the old output back
            with contextlib.suppress(OSError):
                os.replace(old / "old", out)
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(out, f"write failed ({exc.strerror or exc})") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
