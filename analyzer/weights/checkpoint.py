"""Finding a checkpoint's files and reading its tensors lazily, one at a time.

This is the only module that opens weight files, and it opens each one once: `open_checkpoint`
keeps the handles in the `Checkpoint` it returns, and every later read of that checkpoint
(analysis, packing, loading, in one command) goes through them, so a command opens its
checkpoint once and passes the object down (every function that takes a checkpoint path
takes an opened `Checkpoint` too). safetensors files are read through `safe_open` (headers
first, each tensor, or some of its rows, only when asked for); `.bin` files through
`torch.load(weights_only=True, mmap=True)`, so a pickle that would run code is refused and
tensors are paged in from disk only when touched.

What a tensor is follows from the file alone: floating-point tensors are parameters; integer
and boolean ones are buffers (transformers 4 saved `embeddings.position_ids` and
`token_type_ids` in the weights file); a `.bin` name whose tensor shares storage with an
earlier one is a tied alias (an MLM decoder tied to the word embeddings), counted once. A
compressed-tensors checkpoint lists its logical tensors and yields them decompressed
(`analyzer.weights.compressed`); any other quantized checkpoint is refused here, for every
command (`analyzer.weights.quantization`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError
from analyzer.hashing import sha256_file
from analyzer.inputs import CONFIG_LIMIT, check_regular_file, os_problem
from analyzer.records import read_json
from analyzer.weights.compressed import CompressedLayout, iter_decoded, read_layout
from analyzer.weights.quantization import refuse_quantized

__all__ = [
    "TOKENIZER_FILES",
    "Checkpoint",
    "TensorRef",
    "checkpoint_folder",
    "checkpoint_hashes",
    "copy_tokenizer_files",
    "open_checkpoint",
    "shard_names",
    "weights_entry",
]

SAFETENSORS = "model.safetensors"
BIN = "pytorch_model.bin"
INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# what a tokenizer may be saved as, for WordPiece, BPE and SentencePiece models alike, so
# that a folder prunecard writes loads with the tokenizer of the folder it came from
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",  # SentencePiece (Llama 2, Mistral)
    "sentencepiece.bpe.model",
    "spiece.model",
    "chat_template.jinja",  # where transformers 5 saves a chat template
)

_ST_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}
FLOAT_DTYPES = frozenset({"float64", "float32", "float16", "bfloat16"})


@dataclass(frozen=True)
class TensorRef:
    """A tensor's name, shape and dtype as the file declares them, and where it lives."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # torch dtype name without the "torch." prefix
    file: Path
    tied_to: str = ""  # the earlier name whose storage this one shares (.bin ties), else ""

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def is_parameter(self) -> bool:
        """A floating-point tensor that is not an alias of another: what figures count."""
        return self.is_float and not self.tied_to


class _Handles:
    """Each weight file opened once, on first use, and kept for the checkpoint's lifetime: a
    safetensors handle (memory-mapped; safe to read from the reader thread) or a `.bin`
    file's memory-mapped state dict."""

    def __init__(self) -> None:
        self._open: dict[Path, Any] = {}

    def get(self, path: Path) -> Any:
        if path not in self._open:
            self._open[path] = _open_file(path)
        return self._open[path]

    def read(self, ref: TensorRef) -> Any:
        """A stored tensor, whole."""
        handle = self.get(ref.file)
        if isinstance(handle, dict):
            return handle[ref.name]
        return _safely(ref.file, lambda: handle.get_tensor(ref.name))


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder: its config.json, an index of every tensor in its weight files,
    and the files' handles (opened once, by `open_checkpoint`)."""

    root: Path
    config: dict[str, Any]
    weight_files: tuple[Path, ...]
    tensors: dict[str, TensorRef]
    # compressed-tensors: how the logical `tensors` are stored and decoded; None otherwise
    layout: CompressedLayout | None = None
    handles: _Handles = field(default_factory=_Handles, compare=False, repr=False)

    def iter_tensors(self) -> Iterator[tuple[TensorRef, Any]]:
        """Yield (ref, tensor) file by file; each tensor is read (and decompressed) only
        when reached."""
        if self.layout is not None:
            refs = list(self.tensors.values())
            yield from iter_decoded(self.layout, refs, self.weight_files, self.handles.read)
            return
        for path in self.weight_files:
            for ref in self.tensors.values():
                if ref.file == path:
                    yield ref, self.handles.read(ref)

    def load(self, name: str) -> Any:
        """One tensor by name (a torch.Tensor)."""
        ref = self.tensors[name]
        if self.layout is not None:
            for _, tensor in iter_decoded(self.layout, [ref], [ref.file], self.handles.read):
                return tensor
            raise CheckpointError(ref.file, f"tensor {name!r} listed but not readable")
        return self.handles.read(ref)

    def load_rows(self, name: str, rows: Sequence[int]) -> Any:
        """The rows `rows` (in order) of one tensor: a safetensors file reads only those
        rows' bytes, run by run of consecutive rows; anything else is read whole first."""
        import torch

        ref = self.tensors[name]
        handle = None if self.layout is not None else self.handles.get(ref.file)
        if handle is None or isinstance(handle, dict):
            return self.load(name).index_select(0, torch.tensor(list(rows), dtype=torch.long))
        piece = _safely(ref.file, lambda: handle.get_slice(name))
        runs = _runs(rows)
        if len(runs) == 1:
            return _safely(ref.file, lambda: piece[runs[0][0] : runs[0][1]])
        empty = torch.empty((0, *ref.shape[1:]), dtype=getattr(torch, ref.dtype))
        return torch.cat(
            [empty, *(_safely(ref.file, lambda a=a, b=b: piece[a:b]) for a, b in runs)]
        )

    @property
    def buffers(self) -> tuple[str, ...]:
        """Integer and boolean tensors (position_ids, token_type_ids): not parameters."""
        return tuple(name for name, ref in self.tensors.items() if not ref.is_float)

    @property
    def tied(self) -> dict[str, str]:
        """Alias -> the name it shares storage with (the alias is not counted again)."""
        return {name: ref.tied_to for name, ref in self.tensors.items() if ref.tied_to}

    def state_dict(self) -> dict[str, Any]:
        """Every parameter, for building a model (holds them all: use only for loading).

        Buffers and tied aliases are left out: transformers 5 rebuilds its buffers and
        ties its weights itself, and a file may hold neither (safetensors drops aliases)."""
        return {ref.name: tensor for ref, tensor in self.iter_tensors() if ref.is_parameter}


def open_checkpoint(path: str | Path | Checkpoint) -> Checkpoint:
    """Index a checkpoint folder (or one weights file beside its config.json); an opened
    `Checkpoint` is returned as it is (callers pass either down)."""
    if isinstance(path, Checkpoint):
        return path
    path = Path(path)
    try:
        path.stat()
    except FileNotFoundError:
        raise CheckpointError(path, "no such file or folder") from None
    except OSError as exc:  # a name too long, a symlink loop, a file used as a folder
        raise CheckpointError(path, os_problem(exc)) from None
    root = checkpoint_folder(path)
    weight_files = _find_weight_files(path)
    config = _read_config(root)
    handles = _Handles()
    tensors: dict[str, TensorRef] = {}
    for file in weight_files:
        for ref in _list_file(file, handles):
            if ref.name in tensors:
                raise CheckpointError(file, f"tensor {ref.name!r} appears in two weight files")
            tensors[ref.name] = ref
    if not tensors:
        raise CheckpointError(weight_files[0], "holds no tensors")
    compressed = read_layout(config, root / "config.json", tensors, handles.read)
    if compressed is not None:
        layout, logical = compressed
        return Checkpoint(root, config, weight_files, logical, layout, handles)
    refuse_quantized(config, root / "config.json", tensors.values())
    return Checkpoint(root, config, weight_files, tensors, handles=handles)


def checkpoint_folder(path: str | Path | Checkpoint) -> Path:
    """The folder a checkpoint lives in: the path itself, or the folder of a weights file."""
    if isinstance(path, Checkpoint):
        return path.root
    path = Path(path)
    return path if path.is_dir() else path.parent


def checkpoint_hashes(path: str | Path | Checkpoint) -> dict[str, str]:
    """sha256 of every weight file, shard index and config.json, keyed by path in the folder.

    Files are found by name only (no weights are read), so hashing never unpickles a `.bin`.
    """
    if isinstance(path, Checkpoint):
        path = path.root if len(path.weight_files) != 1 else path.weight_files[0]
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "no such file or folder")
    root = checkpoint_folder(path)
    files = [*_find_weight_files(path)]
    files += [root / name for name in ("config.json", *INDEXES) if (root / name).is_file()]
    return {
        str(f.relative_to(root)): sha256_file(f)
        for f in sorted(set(files), key=lambda f: str(f.relative_to(root)))
    }


def copy_tokenizer_files(source: Path, target: Path) -> list[str]:
    """Copy the tokenizer files that `source` holds into `target`; their names."""
    copied = [name for name in TOKENIZER_FILES if (source / name).is_file()]
    for name in copied:
        shutil.copy2(source / name, target / name)
    return copied


# --------------------------------------------------------------------------- finding files


def _find_weight_files(path: Path) -> tuple[Path, ...]:
    if path.is_file():
        if path.name.endswith(".index.json"):
            return _read_index(path)
        if path.suffix in (".safetensors", ".bin", ".pt", ".pth"):
            return (path,)
        raise CheckpointError(path, "not a weights file (.safetensors, .bin or an index)")
    try:
        names = {p.name for p in path.iterdir()}
    except PermissionError:
        raise CheckpointError(path, "folder is not readable (permission denied)") from None
    entry = weights_entry(names)
    if entry is None:
        raise CheckpointError(
            path, f"no weights found (expected {SAFETENSORS}, {BIN} or a sharded index)"
        )
    return _read_index(path / entry) if entry in INDEXES else (path / entry,)


def weights_entry(names: set[str]) -> str | None:
    """Which of a folder's file `names` the weights are read from: a shard index, else the
    single weights file (one rule for reading a folder and for fetching one from the Hub)."""
    for name in (*INDEXES, SAFETENSORS, BIN):
        if name in names:
            return name
    others = sorted(n for n in names if n.endswith(".safetensors"))
    return others[0] if len(others) == 1 else None


def shard_names(index: Path) -> tuple[str, ...]:
    """The shard files a shard index names, each a path inside the checkpoint folder. Checked
    by name, not by where a link leads: a Hub cache's files are links into its blobs."""
    from pathlib import PurePosixPath

    data = read_json(index, CheckpointError, CONFIG_LIMIT)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(index, "index has no 'weight_map' object")
    for shard in dict.fromkeys(weight_map.values()):
        if not isinstance(shard, str) or not shard:
            raise CheckpointError(index, f"weight_map entry {shard!r} is not a file name")
        name = PurePosixPath(shard)
        if name.is_absolute() or ".." in name.parts or "\\" in shard or ":" in name.parts[0]:
            raise CheckpointError(index, f"shard {shard!r} points outside the checkpoint folder")
    return tuple(dict.fromkeys(weight_map.values()))


def _read_index(index: Path) -> tuple[Path, ...]:
    shards: list[Path] = []
    for shard in shard_names(index):
        if not (index.parent / shard).is_file():
            raise CheckpointError(index, f"shard {shard!r} is missing")
        shards.append(index.parent / shard)
    return tuple(shards)


def _read_config(root: Path) -> dict[str, Any]:
    path = root / "config.json"
    if not path.exists():
        raise CheckpointError(
            path, "missing: a checkpoint needs its config.json beside the weights"
        )
    config = read_json(path, CheckpointError, CONFIG_LIMIT)
    if not isinstance(config, dict):
        raise CheckpointError(path, "must hold a JSON object")
    return config


# --------------------------------------------------------------------------- reading files


def _list_file(path: Path, handles: _Handles) -> list[TensorRef]:
    check_regular_file(path, error=CheckpointError)  # never a pipe or a device
    if path.stat().st_size == 0:
        raise CheckpointError(path, "file is empty (0 bytes)")
    if path.suffix == ".safetensors":
        return _list_safetensors(path, handles.get(path))
    first_of: dict[tuple, str] = {}
    refs = []
    for name, t in handles.get(path).items():
        key = _storage_key(t)
        tied_to = first_of.setdefault(key, name) if key is not None else name
        refs.append(
            TensorRef(
                name,
                tuple(t.shape),
                str(t.dtype).removeprefix("torch."),
                path,
                tied_to="" if tied_to == name else tied_to,
            )
        )
    return refs


def _storage_key(tensor: Any) -> tuple | None:
    """Where a tensor's values live: equal keys are one tensor saved under two names."""
    if not tensor.numel():
        return None
    storage = tensor.untyped_storage()
    return (
        storage.data_ptr(),
        tensor.storage_offset(),
        tuple(tensor.shape),
        tuple(tensor.stride()),
        tensor.dtype,
    )


def _list_safetensors(path: Path, handle: Any) -> list[TensorRef]:
    def listing() -> list[TensorRef]:
        refs = []
        for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
            piece = handle.get_slice(name)
            dtype = piece.get_dtype()
            refs.append(
                TensorRef(name, tuple(piece.get_shape()), _ST_DTYPES.get(dtype, dtype), path)
            )
        return refs

    return _safely(path, listing)


def _open_file(path: Path) -> Any:
    """A safetensors handle, or a `.bin` file's state dict."""
    if path.suffix != ".safetensors":
        return _load_pickle(path)
    from safetensors import safe_open

    return _safely(path, lambda: safe_open(str(path), framework="pt"))


def _safely(path: Path, read: Any) -> Any:
    """`read()`, a corrupt or unreadable safetensors file's error made one `CheckpointError`."""
    try:
        return read()
    except CheckpointError:
        raise
    except PermissionError:
        raise CheckpointError(path, "not readable (permission denied)") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(path, f"corrupt safetensors file ({_first_line(exc)})") from None


def _runs(rows: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive rows as [start, stop) runs, in order: [0, 1, 2, 5] -> [(0, 3), (5, 6)]."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row:
            runs[-1] = (runs[-1][0], row + 1)
        else:
            runs.append((row, row + 1))
    return runs


def _load_pickle(path: Path) -> dict[str, Any]:
    """torch.load with weights_only: only tensors and plain containers, never code."""
    import pickle

    import torch

    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            # the pre-2019 (non-zip) format cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                path, "refused: the pickle would import or run code (only plain tensors load)"
            ) from None
        raise CheckpointError(
            path, "not a readable PyTorch weights file (corrupt pickle)"
        ) from None
    except PermissionError:
        raise CheckpointError(path, "not readable (permission denied)") from None
    except Exception as exc:
        raise CheckpointError(
            path, f"cannot be read as a PyTorch file ({_first_line(exc)})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"holds a {type(state).__name__}, not a state dict")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
