"""The battery of bad inputs: each gets exit code 2, one line naming the file and the problem,
no traceback, nothing written to the input folder and no partial output."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import PruneSpec, build_minilm
from safetensors.torch import save_file

from analyzer.api import analyze
from analyzer.cli.main import main
from analyzer.errors import CheckpointError

SMALL = PruneSpec(zero_heads={1: (2,)})


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _tiny(folder: Path, tensors: dict[str, torch.Tensor] | None = None, **config) -> Path:
    """A small BERT-shaped checkpoint: 1 layer, hidden 64, 2 heads, FFN 128."""
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "model_type": "bert",
        "hidden_size": 64,
        "num_attention_heads": 2,
        "num_hidden_layers": 1,
        "intermediate_size": 128,
        **config,
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    if tensors is None:
        tensors = _tiny_tensors()
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def _tiny_tensors(**override: torch.Tensor) -> dict[str, torch.Tensor]:
    p = "bert.encoder.layer.0."
    t = {
        p + "attention.self.query.weight": torch.randn(64, 64),
        p + "attention.self.key.weight": torch.randn(64, 64),
        p + "attention.self.value.weight": torch.randn(64, 64),
        p + "attention.output.dense.weight": torch.randn(64, 64),
        p + "intermediate.dense.weight": torch.randn(128, 64),
        p + "output.dense.weight": torch.randn(64, 128),
    }
    t.update(override)
    return t


def _raw_safetensors(folder: Path, header: bytes, data: bytes, length: int | None = None) -> Path:
    _tiny(folder)
    blob = struct.pack("<Q", len(header) if length is None else length) + header + data
    (folder / "model.safetensors").write_bytes(blob)
    return folder


def _header(entries: dict) -> bytes:
    return json.dumps(entries).encode()


W = "bert.encoder.layer.0.attention.self.query.weight"


# Each case builds its input under `tmp` and returns (path to analyze, text the error must name).
CASES: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "missing path": lambda tmp: (tmp / "nope", "nope"),
    "folder without weights": lambda tmp: ((tmp / "empty").mkdir() or tmp / "empty", "empty"),
    "config.json missing": lambda tmp: (_drop(_tiny(tmp / "c"), "config.json"), "config.json"),
    "architectures a string": lambda tmp: (
        _tiny(tmp / "c", architectures="BertModel"),
        "config.json: architectures must be a list",
    ),
    "model_type a number": lambda tmp: (_tiny(tmp / "c", model_type=7), "model_type must be"),
    "config.json not JSON": lambda tmp: (
        _write(_tiny(tmp / "c"), "config.json", "{hidden_size: 64"),
        "config.json",
    ),
    "config.json a list": lambda tmp: (
        _write(_tiny(tmp / "c"), "config.json", "[1, 2]"),
        "config.json",
    ),
    "config hidden size contradicts weights": lambda tmp: (
        _tiny(tmp / "c", hidden_size=128, num_attention_heads=2),
        "config.json",
    ),
    "config head count does not divide hidden size": lambda tmp: (
        _tiny(tmp / "c", num_attention_heads=3),
        "config.json",
    ),
    "config hidden size not a number": lambda tmp: (
        _tiny(tmp / "c", hidden_size="64"),
        "config.json",
    ),
    "config has fewer layers than the weights": lambda tmp: (
        _tiny(
            tmp / "c",
            tensors={
                **_tiny_tensors(),
                **{k.replace("layer.0", "layer.1"): v for k, v in _tiny_tensors().items()},
            },
        ),
        "model.safetensors",
    ),
    "config has more layers than the weights": lambda tmp: (
        _tiny(tmp / "c", num_hidden_layers=2),
        "config.json",
    ),
    "pruned_heads names a missing head": lambda tmp: (
        _tiny(tmp / "c", pruned_heads={"0": [5]}),
        "config.json",
    ),
    "pruned_heads contradicts matrix sizes": lambda tmp: (
        _tiny(tmp / "c", pruned_heads={"0": [1]}),
        "model.safetensors",
    ),
    "0-byte weights file": lambda tmp: (
        _write(_tiny(tmp / "c"), "model.safetensors", ""),
        "model.safetensors",
    ),
    "safetensors truncated": lambda tmp: (
        _truncate(_tiny(tmp / "c"), "model.safetensors", 5000),
        "model.safetensors",
    ),
    "safetensors header length past the end": lambda tmp: (
        _raw_safetensors(tmp / "c", b"{}", b"", length=10**12),
        "model.safetensors",
    ),
    "safetensors header not JSON": lambda tmp: (
        _raw_safetensors(tmp / "c", b"not json at all!", b""),
        "model.safetensors",
    ),
    "safetensors offsets past the end": lambda tmp: (
        _raw_safetensors(
            tmp / "c",
            _header({W: {"dtype": "F32", "shape": [64, 64], "data_offsets": [0, 16384]}}),
            b"\0" * 100,
        ),
        "model.safetensors",
    ),
    "safetensors overlapping tensors": lambda tmp: (
        _raw_safetensors(
            tmp / "c",
            _header(
                {
                    W: {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]},
                    "other.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [32, 96]},
                }
            ),
            b"\0" * 96,
        ),
        "model.safetensors",
    ),
    "index shard missing": lambda tmp: (
        _index(tmp / "c", {W: "model-00001-of-00002.safetensors"}),
        "model.safetensors.index.json",
    ),
    "index shard outside the folder": lambda tmp: (
        _index(tmp / "c", {W: "../../etc/passwd"}),
        "model.safetensors.index.json",
    ),
    "index not JSON": lambda tmp: (
        _write(_tiny(tmp / "c"), "model.safetensors.index.json", "]["),
        "index.json",
    ),
    "index without weight_map": lambda tmp: (
        _write(_tiny(tmp / "c"), "model.safetensors.index.json", "{}"),
        "index.json",
    ),
    "NaN weights": lambda tmp: (
        _tiny(tmp / "c", tensors=_tiny_tensors(**{W: torch.full((64, 64), float("nan"))})),
        "model.safetensors",
    ),
    "infinite weights": lambda tmp: (
        _tiny(
            tmp / "c",
            tensors=_tiny_tensors(
                **{W: torch.randn(64, 64).index_fill(0, torch.tensor([3]), float("inf"))}
            ),
        ),
        "model.safetensors",
    ),
    "integer weights": lambda tmp: (
        _tiny(tmp / "c", tensors=_tiny_tensors(**{W: torch.ones(64, 64, dtype=torch.int8)})),
        "model.safetensors",
    ),
    "quantized (float8) weights": lambda tmp: (
        _tiny(tmp / "c", tensors=_tiny_tensors(**{W: torch.ones(64, 64).to(torch.float8_e4m3fn)})),
        "model.safetensors",
    ),
    "empty weight tensor": lambda tmp: (
        _tiny(tmp / "c", tensors=_tiny_tensors(**{W: torch.ones(0, 64)})),
        "model.safetensors",
    ),
    "no tensors at all": lambda tmp: (_tiny(tmp / "c", tensors={}), "model.safetensors"),
    "pytorch_model.bin that would run code": lambda tmp: (
        _malicious(tmp / "c"),
        "pytorch_model.bin: refused: the pickle would import or run code",
    ),
    "pytorch_model.bin of random bytes": lambda tmp: (
        _bin(tmp / "c", os.urandom(4096)),
        "pytorch_model.bin",
    ),
    "pytorch_model.bin holding a list": lambda tmp: (
        _bin_obj(tmp / "c", [torch.ones(2)]),
        "pytorch_model.bin",
    ),
    "not a weights file": lambda tmp: (
        _write(_tiny(tmp / "c"), "notes.txt", "hello") / "notes.txt",
        "notes.txt",
    ),
}


def _drop(folder: Path, name: str) -> Path:
    (folder / name).unlink()
    return folder


def _write(folder: Path, name: str, text: str) -> Path:
    (folder / name).write_text(text)
    return folder


def _truncate(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    path.write_bytes(path.read_bytes()[:size])
    return folder


def _index(folder: Path, weight_map: dict[str, str]) -> Path:
    _tiny(folder)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder


def _bin(folder: Path, data: bytes) -> Path:
    _tiny(folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(data)
    return folder


def _bin_obj(folder: Path, obj: object) -> Path:
    _tiny(folder)
    (folder / "model.safetensors").unlink()
    torch.save(obj, folder / "pytorch_model.bin")
    return folder


class _Exploit:
    """Unpickling this would create a file: proof that code ran."""

    marker: Path

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious(folder: Path) -> Path:
    exploit = _Exploit()
    exploit.marker = folder.parent / "pwned"
    return _bin_obj(folder, {"weight": exploit})


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gets_one_clean_line(case, tmp_path, capsys):
    path, names = CASES[case](tmp_path)
    watched = path if path.is_dir() else path.parent
    before = _tree_digest(watched) if watched.exists() else {}
    out = tmp_path / "analysis.json"
    code = main(["analyze", str(path), "--json", str(out)])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, f"{case}: exit {code}, stderr {err!r}"
    assert len(err.splitlines()) == 1, err
    assert err.startswith("prunecard: error: ") and names in err, err
    assert "Traceback" not in captured.err + captured.out
    assert not out.exists(), "no output may be written for a bad input"
    if watched.exists():
        assert _tree_digest(watched) == before, "the input folder changed"
    assert not (tmp_path / "pwned").exists(), "code inside a pickle ran"


def test_battery_is_large_enough():
    assert len(CASES) >= 30


def test_unreadable_folder(tmp_path, capsys, monkeypatch):
    """Root reads everything, so the permission error is simulated where the OS raises it."""
    folder = _tiny(tmp_path / "c")
    real_iterdir = Path.iterdir

    def denied(self):
        if self == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", denied)
    assert main(["analyze", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "permission denied" in err and str(folder) in err


def test_disk_full_leaves_no_partial_output(tmp_path, capsys, monkeypatch):
    folder = build_minilm(tmp_path / "c", SMALL, tokenizer=False)
    out = tmp_path / "analysis.json"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    assert main(["analyze", str(folder), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "analysis.json" in err
    assert list(tmp_path.iterdir()) == [folder], "a temporary file was left behind"


def test_interrupted_run_leaves_no_partial_output(tmp_path, capsys, monkeypatch):
    import analyzer.weights.sparsity

    folder = build_minilm(tmp_path / "c", SMALL, tokenizer=False)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(analyzer.weights.sparsity, "_summarize", interrupt)
    out = tmp_path / "analysis.json"
    assert main(["analyze", str(folder), "--json", str(out)]) == 2
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists()


def test_output_path_is_a_folder(tmp_path, capsys):
    folder = build_minilm(tmp_path / "c", SMALL, tokenizer=False)
    (tmp_path / "taken").mkdir()
    assert main(["analyze", str(folder), "--json", str(tmp_path / "taken")]) == 2
    assert "taken" in capsys.readouterr().err


def test_unknown_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", "--no-such-option"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analyzer.cli.main",
            "--debug",
            "analyze",
            str(tmp_path / "missing"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "Traceback" in done.stderr


def test_real_entry_point_reports_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "analyzer.cli.main", "analyze", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"prunecard: error: {tmp_path / 'missing'}: no such file or folder"
    )


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_output_piped_into_a_closed_reader_is_not_an_error(pruned_minilm, unbuffered):
    """`| true` closes the pipe before analysis ends, so the first write hits EPIPE: at the
    print when stdout is unbuffered, at the flush when it is buffered (a user's shell)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    done = subprocess.run(
        f"{sys.executable} -m analyzer.cli.main analyze {pruned_minilm}"
        " | true; echo ${PIPESTATUS[0]}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.stdout.strip() == "0"
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("shape", [(64, 64), (64,)], ids=["matrix", "bias"])
def test_a_non_finite_value_is_refused_in_every_float_dtype(tmp_path, dtype, value, shape):
    name = W if len(shape) == 2 else W.replace(".weight", ".bias")
    tensor = torch.randn(shape).to(dtype)
    tensor.view(-1)[-1] = value  # the last weight: in the last slice of the matrix
    folder = _tiny(tmp_path / "c", tensors=_tiny_tensors(**{name: tensor}))
    with pytest.raises(CheckpointError, match=f"{name} contains NaN or infinite values"):
        analyze(folder)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_the_largest_finite_values_are_weights(tmp_path, dtype):
    """Every weight at the dtype's largest magnitude: finite, though a float32 sum of them
    overflows; and -0.0 is a zero like +0.0."""
    big = torch.full((64, 64), torch.finfo(dtype).max, dtype=dtype)
    big[::2] = -torch.finfo(dtype).max
    big[:, :16] = -0.0
    folder = _tiny(tmp_path / "c", tensors=_tiny_tensors(**{W: big}))
    (query,) = [m for m in analyze(folder).matrices if m.name == W]
    assert query.nnz == 64 * 48
