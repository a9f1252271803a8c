"""Zeros that rounding explains: a matrix whose zeros are under patterns.STRAY_SHARE of its
weights is "dense", its zeros kept as stray_zeros; at any real pruning level it never is.
Expected counts are taken here from the tensors the test saved."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import torch
from conftest import save_checkpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from analyzer import analyze
from analyzer.cli.main import main
from analyzer.records import LINEAR_ROLES, MatrixStats
from analyzer.runtime.demo import minilm_path, qa_state
from analyzer.weights.patterns import STRAY_SHARE

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNSTRUCTURED_NOTE = "sparse CPU runtimes"


def matrix_of(w: torch.Tensor) -> MatrixStats:
    """`analyze`'s record of one matrix of a generic model (a dense companion in the same
    layer, so the layer is not all zero)."""
    with tempfile.TemporaryDirectory() as tmp:
        state = {"net.layers.0.w.weight": w, "net.layers.0.dense.weight": torch.ones(4, 4)}
        save_file(state, str(Path(tmp) / "model.safetensors"))
        (Path(tmp) / "config.json").write_text(json.dumps({"model_type": "custom-net"}))
        (m,) = [m for m in analyze(tmp).matrices if m.name == "net.layers.0.w.weight"]
    return m


def nonzero_values(rows: int, cols: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(rows, cols, generator=g) + 0.5


@st.composite
def scattered_zeros(draw):
    """A matrix with fewer zeros than STRAY_SHARE of its weights, at most one per row (a
    zero row, a group of four or an N:M layout would be a pattern, which names the matrix
    instead: see test_a_zero_row_under_the_share_is_still_rows)."""
    rows, cols = draw(st.integers(128, 512)), draw(st.integers(96, 512))
    k = draw(st.integers(1, math.ceil(STRAY_SHARE * rows * cols) - 1))  # k < share * n
    where = draw(st.lists(st.integers(0, rows - 1), min_size=k, max_size=k, unique=True))
    cols_of = [draw(st.integers(0, cols - 1)) for _ in where]
    return rows, cols, list(zip(where, cols_of, strict=True))


@given(scattered_zeros(), st.integers(0, 2**16))
@SETTINGS
def test_zeros_below_the_share_leave_a_matrix_dense(case, seed):
    rows, cols, where = case
    w = nonzero_values(rows, cols, seed)
    for r, c in where:
        w[r, c] = 0
    zeros = len(where)
    assert zeros < STRAY_SHARE * rows * cols  # the case is below the share, counted here
    m = matrix_of(w)
    assert (m.pattern.kind, m.pattern.stray_zeros) == ("dense", zeros)
    assert m.nnz == rows * cols - zeros  # the density stays an exact count


@given(
    st.integers(8, 96),
    st.integers(8, 96),
    st.floats(0.01, 0.95),
    st.integers(0, 2**16),
)
@SETTINGS
def test_a_pruning_level_share_of_random_zeros_is_never_dense(rows, cols, share, seed):
    """1% of the weights, or more, zeroed at random positions: pruning, not rounding."""
    g = torch.Generator().manual_seed(seed)
    k = math.ceil(share * rows * cols)  # at least the share
    flat = nonzero_values(rows, cols, seed).flatten()
    flat[torch.randperm(rows * cols, generator=g)[:k]] = 0
    m = matrix_of(flat.reshape(rows, cols))
    assert k >= 0.01 * rows * cols and m.pattern.kind != "dense"
    assert m.pattern.stray_zeros == 0 and m.nnz == rows * cols - k


def test_a_zero_row_under_the_share_is_still_rows():
    """One zero row of a tall matrix is under 0.01% of it, yet a pattern fits it (as one
    dead channel of a wide MLP does): structure is never taken for rounding."""
    w = nonzero_values(16384, 8, 0)
    w[7] = 0
    assert STRAY_SHARE * w.numel() > 8
    m = matrix_of(w)
    assert (m.pattern.kind, m.pattern.stray_zeros) == ("rows", 0)


def test_minilm_in_bf16_with_a_handful_of_zeros_is_dense_everywhere(tmp_path, capsys):
    """The packaged MiniLM stored in bf16 (a dense half-precision model) with five exact
    zeros set: every linear matrix is dense, the zeros are kept as stray zeros, and the CLI
    table, the card and the site never call the model unstructured."""
    state, config = qa_state(minilm_path())
    state["bert.encoder.layer.0.attention.self.query.weight"][[3, 70, 200], [5, 9, 11]] = 0
    state["bert.encoder.layer.4.output.dense.weight"][[1, 300], [17, 1000]] = 0
    path = save_checkpoint(tmp_path / "minilm-bf16", state, config, dtype=torch.bfloat16)
    saved = load_file(path / "model.safetensors")
    linear = [n for n, t in saved.items() if ".encoder.layer." in n and t.ndim == 2]
    zeros = {n: int((saved[n] == 0).sum()) for n in linear}
    assert len(linear) == 36 and sum(zeros.values()) >= 5

    a = analyze(path)
    matrices = {m.name: m for m in a.matrices if m.role in LINEAR_ROLES}
    assert {n: m.pattern.kind for n, m in matrices.items()} == dict.fromkeys(linear, "dense")
    assert {n: m.pattern.stray_zeros for n, m in matrices.items()} == zeros
    assert {n: m.nnz for n, m in matrices.items()} == {
        n: saved[n].numel() - zeros[n] for n in linear
    }
    (row,) = a.patterns
    assert (row.kind, row.matrices, row.zeros) == ("dense", 36, sum(zeros.values()))
    assert UNSTRUCTURED_NOTE not in row.runtime and f"{row.zeros:,} stray zeros" in row.runtime

    assert main(["analyze", str(path)]) == 0
    table = capsys.readouterr().out
    assert "unstructured" not in table and UNSTRUCTURED_NOTE not in table
    dense_row = next(line for line in table.splitlines() if line.startswith("dense "))
    assert dense_row.split()[:4] == ["dense", "36", f"{row.weights:,}", f"{row.zeros:,}"]

    assert main(["card", str(path), "--out", str(tmp_path / "card")]) == 0
    card = (tmp_path / "card" / "README.md").read_text()
    assert "| Sparsity patterns of the linear matrices | dense (36 of 36) |" in card
    assert "| unstructured |" not in card and UNSTRUCTURED_NOTE not in card
    assert main(["site", str(tmp_path / "card"), "--out", str(tmp_path / "site")]) == 0
    pages = "".join(p.read_text() for p in (tmp_path / "site").rglob("*.html"))
    assert "dense" in pages and "unstructured" not in pages and UNSTRUCTURED_NOTE not in pages
