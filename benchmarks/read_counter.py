"""Counting what a process reads of safetensors files: `safetensors.safe_open` wrapped so
that each open is counted per file and every tensor (or slice of one) it hands out adds
its bytes. Used by benchmarks/report_reads.py, in a process running either this tree's
prunecard or an older one, and by tests/test_read_once.py.

Only the bytes prunecard asks for are counted: safetensors maps the file, so a tensor's
bytes are paged in when read, and a page cache makes /proc/self/io's read_bytes zero
after the first run.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


class ReadCounter:
    """Install with `install()` (or a pytest monkeypatch's `setattr`); `opens`: safe_open
    calls per resolved path; `bytes`: bytes of the tensors read; `by_name`: those bytes per
    tensor name (a tensor read once, whole or by rows, adds at most its size)."""

    def __init__(self) -> None:
        self.opens: Counter[str] = Counter()
        self.bytes = 0
        self.by_name: Counter[str] = Counter()
        import safetensors

        self.real = safetensors.safe_open

    def safe_open(self, path: Any, *args: Any, **kwargs: Any) -> _Handle:
        self.opens[str(Path(path).resolve())] += 1
        return _Handle(self.real(path, *args, **kwargs), self)

    def install(self) -> None:
        import safetensors

        safetensors.safe_open = self.safe_open

    def count(self, name: str, tensor: Any) -> Any:
        size = tensor.numel() * tensor.element_size()
        self.bytes += size
        self.by_name[name] += size
        return tensor


class _Handle:
    def __init__(self, handle: Any, counter: ReadCounter) -> None:
        self.handle, self.counter = handle, counter

    def __enter__(self) -> _Handle:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def keys(self) -> Any:
        return self.handle.keys()

    def metadata(self) -> Any:
        return self.handle.metadata()

    def get_tensor(self, name: str) -> Any:
        return self.counter.count(name, self.handle.get_tensor(name))

    def get_slice(self, name: str) -> _Slice:
        return _Slice(self.handle.get_slice(name), self.counter, name)


class _Slice:
    def __init__(self, piece: Any, counter: ReadCounter, name: str) -> None:
        self.piece, self.counter, self.name = piece, counter, name

    def get_dtype(self) -> str:
        return self.piece.get_dtype()

    def get_shape(self) -> list[int]:
        return self.piece.get_shape()

    def __getitem__(self, index: Any) -> Any:
        return self.counter.count(self.name, self.piece[index])
