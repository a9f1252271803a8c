"""Reading ahead (analyzer.weights.reading) and the slice-by-slice reduction it feeds: order,
bounded memory, errors and early stops, and results equal to the serial, whole-matrix path."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path

import pytest
import torch
from conftest import build_minilm
from decoders import build_decoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analyzer.weights.sparsity as sparsity
from analyzer import analyze, to_dict
from analyzer.cli.main import main
from analyzer.errors import CheckpointError
from analyzer.weights.checkpoint import TensorRef
from analyzer.weights.reading import read_ahead, touch_pages

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "prunecard-read-ahead"]


def _no_reader_left() -> bool:
    deadline = time.monotonic() + 5
    while _readers() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _readers()


def test_order_is_kept():
    assert list(read_ahead(range(1000))) == list(range(1000))
    assert list(read_ahead(iter([]))) == []


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_at_most_depth_plus_two_tensors_are_alive(depth):
    """Counted by the tensors themselves: each one made is tracked until it is freed."""
    alive = [0]

    def tensors():
        for i in range(40):
            t = torch.full((256,), float(i))
            alive[0] += 1
            weakref.finalize(t, lambda: alive.__setitem__(0, alive[0] - 1))
            yield t

    seen, most = [], 0
    for t in read_ahead(tensors(), depth=depth):
        time.sleep(0.005)  # a slow consumer: the reader fills the queue
        most = max(most, alive[0])
        seen.append(int(t[0]))
    assert seen == list(range(40))
    # depth waiting, one being read, one held here; and the reader did read ahead
    assert 2 <= most <= depth + 2


def test_a_reading_error_is_raised_in_the_consumer_as_is():
    problem = CheckpointError(Path("model.safetensors"), "corrupt safetensors file (x)")

    def tensors():
        yield from range(3)
        raise problem

    got = []
    with pytest.raises(CheckpointError) as raised:
        for item in read_ahead(tensors()):
            got.append(item)
    assert raised.value is problem and got == [0, 1, 2]
    assert _no_reader_left()


def test_a_consumer_that_stops_stops_the_reader():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()  # the source's own cleanup (closing its file) ran

    items = read_ahead(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    time.sleep(0.05)  # the reader is now blocked on a full queue
    items.close()
    assert closed.wait(5) and _no_reader_left()


def test_a_consumer_error_stops_the_reader(tmp_path, monkeypatch):
    folder = build_minilm(tmp_path / "c", tokenizer=False)
    calls = []

    def refuse(tensor, ref, **kwargs):
        calls.append(ref.name)
        raise CheckpointError(ref.file, f"{ref.name} refused")

    monkeypatch.setattr(sparsity, "_summarize", refuse)
    threads = torch.get_num_threads()
    with pytest.raises(CheckpointError, match="refused"):
        analyze(folder)
    assert len(calls) == 1 and _no_reader_left()
    assert torch.get_num_threads() == threads  # analyze's one torch thread is given back


def test_a_file_that_fails_while_read_is_the_one_line_error(tmp_path, monkeypatch, capsys):
    """An error of the reader thread reaches the CLI as the one-line CheckpointError."""
    import analyzer.weights.checkpoint as checkpoint

    folder = build_minilm(tmp_path / "c", tokenizer=False)
    real, reads = checkpoint._Handles.read, []

    def failing(self, ref):
        reads.append(ref.name)
        if len(reads) == 3:  # the third tensor read
            raise CheckpointError(ref.file, "corrupt safetensors file (truncated)")
        return real(self, ref)

    monkeypatch.setattr(checkpoint._Handles, "read", failing)
    assert main(["analyze", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [
        f"prunecard: error: {folder / 'model.safetensors'}: corrupt safetensors file (truncated)"
    ]
    assert _no_reader_left()


CTRL_C = """
import signal, sys, threading, time
from analyzer.weights.reading import read_ahead
# a background job of a shell inherits SIGINT ignored; Ctrl-C at a terminal raises
signal.signal(signal.SIGINT, signal.default_int_handler)
def endless():
    i = 0
    while True:
        yield i
        i += 1
try:
    for item in read_ahead(endless(), depth=2):
        print(item, flush=True)
        time.sleep(0.2)  # the reader waits on a full queue meanwhile
except KeyboardInterrupt:
    time.sleep(0.2)
    left = [t for t in threading.enumerate() if t.name == "prunecard-read-ahead"]
    print("interrupted", len(left), flush=True)
    sys.exit(130)
"""


def test_ctrl_c_stops_promptly_with_the_queue_full():
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CTRL_C)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "0"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    start = time.monotonic()
    out, _ = process.communicate(timeout=10)
    assert time.monotonic() - start < 3
    assert process.returncode == 130
    assert out.strip().splitlines()[-1] == "interrupted 0"


FREEZE = """
import gc, sys
import torch
from analyzer import analyze
before = gc.get_freeze_count()
analyze(sys.argv[1])
frozen = gc.get_freeze_count()
analyze(sys.argv[1])
import weakref
class Node:
    pass
node = Node()
node.itself = node  # a cycle: only the cyclic collector frees it
alive = weakref.ref(node)
del node
gc.collect()
print(before, frozen, gc.get_freeze_count(), int(alive() is not None))
"""


def test_the_imports_are_frozen_once_and_later_garbage_is_still_collected(tmp_path):
    """torch's objects leave the cyclic collector's sight when weights are first read (so
    analysis never pays a full collection over them); a cycle made afterwards is freed."""
    folder = build_minilm(tmp_path / "c", tokenizer=False)
    done = subprocess.run(
        [sys.executable, "-c", FREEZE, str(folder)], capture_output=True, text=True, timeout=120
    )
    before, frozen, after, uncollected = map(int, done.stdout.split())
    assert before == 0 and frozen > 100_000  # torch's import alone leaves more
    assert after == frozen  # the second analysis froze nothing more
    assert uncollected == 0


def test_touching_pages_reads_a_tensor_as_it_is():
    t = torch.arange(10_000, dtype=torch.float32)
    touch_pages(t)
    touch_pages(t[::2])  # not contiguous: left alone
    touch_pages(torch.empty(0))
    assert torch.equal(t, torch.arange(10_000, dtype=torch.float32))


# --------------------------------------------------------------------------- same results


def _serial(monkeypatch):
    """analyze without the reader thread and with every matrix reduced in one slice."""
    monkeypatch.setattr(sparsity, "read_ahead", lambda items, **kwargs: iter(items))
    monkeypatch.setattr(sparsity, "_SLICE_WEIGHTS", 1 << 40)


def test_the_same_analysis_as_the_serial_path(tmp_path, monkeypatch):
    def two_of_four(state):
        g = torch.Generator().manual_seed(1)
        for name, t in state.items():
            if t.ndim == 2 and ".layers." in name:
                keep = torch.rand(t.shape[0], t.shape[1] // 4, 4, generator=g).argsort(-1) < 2
                t.mul_(keep.reshape(t.shape))

    folders = [
        build_minilm(tmp_path / "minilm", tokenizer=False),
        build_decoder(tmp_path / "llama", prune=two_of_four, dtype=torch.bfloat16),
    ]
    monkeypatch.setattr(sparsity, "_SLICE_WEIGHTS", 4096)  # many slices per matrix
    ahead = [to_dict(analyze(f)) for f in folders]
    _serial(monkeypatch)
    assert ahead == [to_dict(analyze(f)) for f in folders]


@st.composite
def matrices(draw):
    rows, cols = draw(st.integers(1, 80)), draw(st.sampled_from([1, 3, 4, 8, 12, 20, 36, 64]))
    dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    values = torch.randn(rows, cols, generator=g).to(dtype)
    kind = draw(st.sampled_from(["dense", "random", "2:4", "rows", "runs", "-0"]))
    if kind == "random":
        values *= torch.rand(rows, cols, generator=g) < draw(st.floats(0.05, 0.95))
    elif kind == "2:4" and cols % 4 == 0:
        keep = torch.rand(rows, cols // 4, 4, generator=g).argsort(-1) < draw(st.integers(1, 3))
        values *= keep.reshape(rows, cols)
    elif kind == "rows":
        values *= (torch.rand(rows, 1, generator=g) < 0.5).to(dtype)
    elif kind == "runs" and cols % 4 == 0:
        empty = torch.rand(rows, cols // 4, 1, generator=g) < draw(st.floats(0.1, 0.9))
        values = values.masked_fill(empty.expand(rows, cols // 4, 4).reshape(rows, cols), 0)
    elif kind == "-0":
        values = values.masked_fill(torch.rand(rows, cols, generator=g) < 0.5, -0.0)
    return values


@given(matrices(), st.sampled_from([32, 64, 500]))
@SETTINGS
def test_slices_add_up_to_the_whole_matrix(matrix, slice_weights):
    """Every statistic of a matrix reduced in slices of 32 rows or more equals the one of
    the matrix in one slice; the non-zeros and line masks are also counted directly."""
    ref = TensorRef("m", tuple(matrix.shape), str(matrix.dtype), Path("f"))
    whole = sparsity._summarize(matrix, ref, lines=True, patterns=True)
    previous = sparsity._SLICE_WEIGHTS
    sparsity._SLICE_WEIGHTS = slice_weights
    try:
        sliced = sparsity._summarize(matrix, ref, lines=True, patterns=True)
    finally:
        sparsity._SLICE_WEIGHTS = previous
    nonzero = matrix.float() != 0
    assert whole.nnz == sliced.nnz == int(nonzero.sum())
    assert torch.equal(sliced.row_any, nonzero.any(dim=1))
    assert torch.equal(sliced.col_any, nonzero.any(dim=0))
    assert whole.block == sliced.block
    assert whole.patterns.zeros == sliced.patterns.zeros == matrix.numel() - whole.nnz
    assert whole.patterns.explained == sliced.patterns.explained
