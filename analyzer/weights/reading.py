"""Reading ahead: a thread walks a checkpoint's tensors while the caller reduces the one it
holds, so reading (page faults, disk reads, decompression) overlaps the counting.

The thread keeps at most `depth` items waiting in a bounded queue: with the one it is
reading and the one the caller holds, `depth + 2` items are alive at once, whatever the
model's size. An error raised while reading (a corrupt file's `CheckpointError`) reaches
the caller as the same exception, raised in the caller's thread at the item where it
happened. When the caller stops early (an error of its own, Ctrl-C, a `break`), the thread
is told to stop, the queue is drained so it never blocks on a full one, and it ends after
the item it is reading; the caller waits for that at most `JOIN_SECONDS`.
"""

from __future__ import annotations

import functools
import gc
import queue
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Any, TypeVar

__all__ = ["DEPTH", "JOIN_SECONDS", "freeze_imports", "read_ahead", "touch_pages"]

T = TypeVar("T")

DEPTH = 2  # items waiting: enough to hide one slow read, few enough to bound memory
JOIN_SECONDS = 5.0  # how long a caller that stops early waits for the reader to end
_PUT_SECONDS = 0.05  # how often a reader blocked on a full queue looks for a stop
_END, _ITEM, _ERROR = range(3)


def read_ahead(
    items: Iterable[T], *, depth: int = DEPTH, prepare: Callable[[T], Any] | None = None
) -> Generator[T, None, None]:
    """Yield `items` in order, iterated (and each passed to `prepare`) on a reader thread
    at most `depth` items ahead of the caller."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    waiting: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: int, value: Any) -> bool:
        while not stop.is_set():
            try:
                waiting.put((kind, value), timeout=_PUT_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if prepare is not None:
                    prepare(item)
                if not put(_ITEM, item):
                    return
            put(_END, None)
        except BaseException as exc:  # handed to the caller, raised there
            put(_ERROR, exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's own cleanup (closing its file) runs here

    reader = threading.Thread(target=read, name="prunecard-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = waiting.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value
            del value  # the caller's reference is the only one left
    finally:
        stop.set()
        _drain(waiting)
        reader.join(JOIN_SECONDS)


def _drain(waiting: queue.Queue) -> None:
    while True:
        try:
            waiting.get_nowait()
        except queue.Empty:
            return


def touch_pages(tensor: Any) -> None:
    """Read one byte of every 4 KiB page of a tensor's storage, so a memory-mapped tensor
    is paged in (from the page cache or the disk) by the thread that calls this, not by
    the first reduction; torch releases the GIL while it reads."""
    import torch

    if tensor.numel() and tensor.is_contiguous():
        tensor.reshape(-1).view(torch.uint8)[::4096].amax()


@functools.cache
def freeze_imports() -> None:
    """Move every object alive now out of the cyclic collector's sight, once per process
    (`gc.freeze`). Called when the weights are first read, torch is imported by then: its
    import leaves some 170,000 objects, none of them ever garbage, that every full
    collection would traverse; analysis allocates enough to trigger one (70 ms on
    BERT-large, a sixth of its analysis), and the interpreter runs another at exit.
    Objects created later are collected as usual."""
    gc.freeze()
