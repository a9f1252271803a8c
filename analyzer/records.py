"""The records stages pass to each other: frozen dataclasses that round-trip through JSON.

Every stage (analyze, bench, eval, card, site, audit) reads and writes these, so any stage
can run alone and the card is a function of the records only. Records hold no torch
objects. `to_dict` / `from_dict` are generic over the dataclasses below; each top-level
record carries a `schema` string whose number changes when a field changes meaning.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from analyzer.errors import InputError, PrunecardError

__all__ = [
    "ANALYSIS_SCHEMA",
    "BENCH_SCHEMA",
    "EVAL_SCHEMA",
    "HEAD_RULE",
    "PRODUCT_KINDS",
    "REPORT_SCHEMA",
    "SQUAD_V2_ID",
    "TIME_KINDS",
    "Analysis",
    "Bench",
    "BenchShape",
    "BlockStructure",
    "ConfidenceInterval",
    "Environment",
    "Equivalence",
    "Evaluation",
    "FfnTotals",
    "FileInfo",
    "HeadTotals",
    "LayerHeads",
    "LayerStats",
    "LinearTotals",
    "MatrixStats",
    "OverallTotals",
    "Provenance",
    "Publication",
    "Report",
    "ScoreGroup",
    "SquadScores",
    "TimeShare",
    "from_dict",
    "load_record",
    "read_json",
    "to_dict",
    "write_record",
]

ANALYSIS_SCHEMA = "prunecard.analysis/1"
BENCH_SCHEMA = "prunecard.bench/1"
EVAL_SCHEMA = "prunecard.eval/1"
REPORT_SCHEMA = "prunecard.report/1"

SQUAD_V2_ID = "rajpurkar/squad_v2"  # the Hub id of SQuAD v2
ROLES = ("q", "k", "v", "o", "ffn_in", "ffn_out", "embedding", "other")
LINEAR_ROLES = ("q", "k", "v", "o", "ffn_in", "ffn_out")


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class BlockStructure:
    """How a matrix's zeros are laid out, at the granularity that explains them best."""

    kind: str  # "32x32", "16x16", "rows", "cols", "unstructured" or "dense" (no zeros)
    block_rows: int  # block height: 32, 16, 1 for "rows", the matrix height for "cols"
    block_cols: int  # block width: 32, 16, the matrix width for "rows", 1 for "cols"
    empty_fraction: float  # empty blocks / all blocks at that granularity
    zeros_explained: float  # zeros lying in empty blocks / all zeros (1.0 = fully structured)
    grid: tuple[int, ...] = ()  # (block rows, block cols) of the occupancy map, if kept
    occupancy: str = ""  # base64 of the packed row-major bitmap of non-empty blocks


@dataclass(frozen=True)
class MatrixStats:
    """One stored weight tensor (biases and norms are counted in totals, not listed)."""

    name: str
    layer: int | None  # encoder layer index, None outside the encoder layers
    role: str  # one of ROLES
    shape: tuple[int, ...]  # as stored in the file
    dense_shape: tuple[int, ...]  # before any head was physically removed
    nnz: int
    density: float  # nnz / dense size
    dtype: str
    block: BlockStructure | None = None


@dataclass(frozen=True)
class LayerHeads:
    """Heads of one encoder layer; `removed` holds dense head indices."""

    layer: int
    removed: tuple[int, ...]
    kept: int
    removed_in_checkpoint: tuple[int, ...] = ()  # via config `pruned_heads` (smaller matrices)
    removed_as_zeros: tuple[int, ...] = ()  # all-zero value rows or output columns


# what `HeadTotals.removed` counts; written into every analysis and card
HEAD_RULE = (
    "A head counts as removed when config.json's pruned_heads already removed it from the "
    "weights, or when all of its value-projection rows or all of its output-projection "
    "columns are zero. Then the head adds exactly nothing to the layer's output (zero output "
    "columns), or a constant that does not depend on the input (zero value rows leave only "
    "the value bias, which softmax weights sum to; packing folds it into the output bias). "
    "Zero query or key rows alone do not remove a head: attention becomes uniform, not zero."
)


@dataclass(frozen=True)
class HeadTotals:
    total: int
    removed: int
    layers: tuple[LayerHeads, ...]
    rule: str  # the lossless rule used, in words


@dataclass(frozen=True)
class LayerStats:
    """Per-layer figures for tables and plots."""

    layer: int
    linear_nnz: int
    linear_dense: int
    linear_packed: int
    ffn_units_total: int
    ffn_units_kept: int

    @property
    def density(self) -> float:
        return self.linear_nnz / self.linear_dense if self.linear_dense else 0.0


@dataclass(frozen=True)
class LinearTotals:
    """Encoder linear layers (Q, K, V, O, FFN in/out), weights only."""

    nnz: int
    dense: int
    packed: int  # weights left after physically removing heads and FFN units
    stored: int  # weights present in the file
    density: float  # nnz / dense


@dataclass(frozen=True)
class OverallTotals:
    """Every floating-point tensor of the checkpoint, biases and embeddings included."""

    nnz: int
    dense: int  # the dense model's parameter count (removed heads at their dense size)
    stored: int
    packed: int
    density: float  # nnz / dense


@dataclass(frozen=True)
class FfnTotals:
    units_total: int
    units_kept: int


@dataclass(frozen=True)
class FileInfo:
    path: str  # relative to the checkpoint folder
    bytes: int


@dataclass(frozen=True)
class Analysis:
    """What `analyze` measures from a checkpoint's weights."""

    model_type: str
    family: str  # "bert", "roberta", "distilbert" or "generic"
    checkpoint: str
    dtype: str
    num_layers: int
    num_heads: int
    hidden_size: int
    intermediate_size: int
    heads: HeadTotals
    linear: LinearTotals
    overall: OverallTotals
    ffn: FfnTotals
    layers: tuple[LayerStats, ...]
    files: tuple[FileInfo, ...]
    matrices: tuple[MatrixStats, ...]
    architectures: tuple[str, ...] = ()
    buffers: tuple[str, ...] = ()  # integer and boolean tensors found, left out of every count
    tied: dict[str, str] = dataclasses.field(default_factory=dict)  # alias -> name counted
    notes: tuple[str, ...] = ()  # what a reader should know, e.g. config.json's dtype disagrees
    schema: str = ANALYSIS_SCHEMA

    @property
    def file_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


# --------------------------------------------------------------------------- bench


@dataclass(frozen=True)
class Environment:
    """The machine and software a measurement ran on, detected at run time."""

    python: str
    platform: str
    cpu: str
    cores: int
    torch: str
    transformers: str
    device: str  # "cpu" or the GPU's name
    gpu_driver: str = ""
    gpu_clocks: str = ""


TIME_KINDS = ("linear layers", "attention", "softmax", "LayerNorm", "other")
PRODUCT_KINDS = ("linear layers", "attention")  # the work the FLOP model counts


@dataclass(frozen=True)
class TimeShare:
    """Milliseconds per forward pass spent on one kind of work (torch.profiler self time)."""

    kind: str  # "linear layers", "attention", "softmax", "LayerNorm" or "other"
    ms: float


@dataclass(frozen=True)
class BenchShape:
    batch: int
    seq: int
    dense_ms: float  # median
    packed_ms: float  # median
    dense_spread_ms: float  # interquartile range
    packed_spread_ms: float
    speedup: float  # dense_ms / packed_ms
    flop_bound: float  # dense FLOPs / packed FLOPs (unpadded)
    fraction_of_bound: float  # speedup / flop_bound
    repeats: int
    dense_gflop: float = 0.0
    packed_gflop: float = 0.0
    # the timing protocol (analyzer/runtime/timing.py); empty in records written before it
    speedup_spread: float = 0.0  # interquartile range of the per-round dense / packed ratios
    dense_samples_ms: tuple[float, ...] = ()  # every timed run, in order
    packed_samples_ms: tuple[float, ...] = ()
    cpu_share: float | None = None  # timing thread's CPU time / wall time; CPU only
    verdict: str = ""  # "stable" or "unstable (why)"; "" when not judged
    # where each model's forward time went (torch.profiler, after timing); () if not profiled
    dense_profile: tuple[TimeShare, ...] = ()
    packed_profile: tuple[TimeShare, ...] = ()
    memory_bound: float | None = None  # the FLOP bound with unpruned memory traffic added


@dataclass(frozen=True)
class Equivalence:
    max_abs_diff: float  # packed vs unpacked logits on the same inputs
    tolerance: float
    inputs: str  # what the inputs were


@dataclass(frozen=True)
class Bench:
    threads: int
    device: str
    dtype: str
    shapes: tuple[BenchShape, ...]
    equivalence: Equivalence
    environment: Environment
    align: int = 1
    graphs: bool = False
    packed_bytes: int = 0  # parameter bytes as benchmarked; `report` puts file sizes here
    original_bytes: int = 0
    packed_parameters: int = 0  # parameters of the models as benchmarked (padding included)
    dense_parameters: int = 0
    dense_fused: bool = False  # ran through analyzer.runtime.fusion (one QKV GEMM, add+LayerNorm)
    packed_fused: bool = False
    load_before: tuple[float, ...] = ()  # os.getloadavg() (1, 5, 15 min) before timing
    load_after: tuple[float, ...] = ()
    threshold: float = 0.0  # relative spread (IQR / median) the protocol aimed for
    budget_s: float = 0.0  # timing budget per shape
    quick: bool = False  # `--quick`: for trying things, not for publishing
    schema: str = BENCH_SCHEMA


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class SquadScores:
    """The official SQuAD v2 script's output, key for key (HasAns/NoAns absent when empty)."""

    exact: float
    f1: float
    total: int
    HasAns_exact: float | None = None
    HasAns_f1: float | None = None
    HasAns_total: int | None = None
    NoAns_exact: float | None = None
    NoAns_f1: float | None = None
    NoAns_total: int | None = None
    best_exact: float | None = None
    best_exact_thresh: float | None = None
    best_f1: float | None = None
    best_f1_thresh: float | None = None


@dataclass(frozen=True)
class ConfidenceInterval:
    """Percentile bootstrap over questions."""

    exact_low: float
    exact_high: float
    f1_low: float
    f1_high: float
    level: float  # 0.95
    resamples: int
    seed: int


@dataclass(frozen=True)
class ScoreGroup:
    """EM and F1 over one group of questions (a question type or an answer-length bucket)."""

    kind: str  # "question_type" (first word: what, who, ...) or "answer_length"
    label: str  # "what", ..., "other"; or "no answer", "1", "2", "3-5", "6+" (gold tokens)
    n: int  # questions in the group
    exact: float  # percent
    f1: float  # percent


@dataclass(frozen=True)
class Evaluation:
    """SQuAD v2 figures of one prediction set, written by `eval` and by `score`."""

    scores: SquadScores
    ci: ConfidenceInterval
    n: int  # questions scored (the sample size)
    data: str  # data file path
    data_sha256: str
    packed: bool  # whether the packed model was evaluated (False for `score`)
    limit: int | None = None
    seed: int | None = None
    questions_per_second: float = 0.0
    device: str = "cpu"
    dtype: str = ""  # the model's weights and activations during `eval` ("" for `score`)
    missing_predictions: int = 0  # data ids without a prediction, counted as wrong
    extra_predictions: int = 0  # prediction ids not in the data, ignored
    checkpoint: str = ""  # the model `eval` ran; "" for `score`
    predictions: str = ""  # the predictions file `score` read; "" for `eval`
    groups: tuple[ScoreGroup, ...] = ()  # per question type and answer-length bucket
    schema: str = EVAL_SCHEMA


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Provenance:
    tool_version: str
    command: str
    checkpoint: str
    file_sha256: dict[str, str]
    created: str  # when the measurements were taken, ISO 8601 UTC (never a render's time)
    environment: Environment | None = None


@dataclass(frozen=True)
class Publication:
    """How the model is published: what no measurement can tell, stated once by the author
    (`report`) and carried in report.json to every later stage (`card`, `site`)."""

    model_id: str  # title and model-index name; a Hub id ("owner/name") also gives URLs
    license: str = "unknown"  # a Hub license id; "unknown" unless the author says
    base_model: str | None = None  # Hub id of the model this one was pruned from
    datasets: tuple[str, ...] = ()  # training data's Hub ids (the card's `datasets:`)
    eval_dataset: str = SQUAD_V2_ID  # Hub id of the evaluation data
    language: str = "en"  # SQuAD v2, the task's data, is English
    tags: tuple[str, ...] = ()  # added to prunecard's own tags


@dataclass(frozen=True)
class Report:
    provenance: Provenance
    analysis: Analysis | None = None
    bench: Bench | None = None
    evaluation: Evaluation | None = None
    publication: Publication | None = None  # None in reports written before it existed
    schema: str = REPORT_SCHEMA


# --------------------------------------------------------------------------- (de)serialisation

R = TypeVar("R")


def to_dict(record: Any) -> Any:
    """A JSON-ready copy of a record (tuples become lists, nested records dicts)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_dict(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, tuple | list):
        return [to_dict(v) for v in record]
    if isinstance(record, dict):
        return {str(k): to_dict(v) for k, v in record.items()}
    return record


def from_dict(cls: type[R], data: Any) -> R:
    """Rebuild a record of type `cls` from `to_dict` output; unknown keys are ignored."""
    return _convert(cls, data, cls.__name__)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        inner = [t for t in options if t is not type(None)]
        return _convert(inner[0], value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object, got {type(value).__name__}")
        hints = get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _convert(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise TypeError(f"{where}: missing field {f.name!r}")
        return tp(**kwargs)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = get_args(tp)[:1]
        return tuple(_convert(item, v, f"{where}[]") for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object, got {type(value).__name__}")
        _, val_t = get_args(tp)
        return {str(k): _convert(val_t, v, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool or tp is str:
        if not isinstance(value, tp):
            raise TypeError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    return value


def write_record(record: Any, path: str | Path) -> Path:
    """Write a record as indented JSON, atomically (no half-written file on failure)."""
    from analyzer.outputs import atomic_write_text

    return atomic_write_text(Path(path), json.dumps(to_dict(record), indent=2) + "\n")


def read_json(
    path: str | Path, error: type[PrunecardError] = InputError, limit: int | None = None
) -> Any:
    """Any JSON input file (a regular file of at most `limit` bytes, by default the data
    limit); a missing, oversized, malformed or pathological one raises `error` naming it."""
    from analyzer.inputs import DATA_LIMIT, read_input

    data = read_input(path, DATA_LIMIT if limit is None else limit, error)
    try:
        return json.loads(data.decode("utf-8"))
    except RecursionError:
        raise error(path, "not a usable JSON file (nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        problem = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if "integer string conversion" in problem:  # Python refuses ints of over 4300 digits
            problem = "holds an integer of thousands of digits"
        raise error(path, f"not a readable JSON file ({problem})") from None


def load_record(cls: type[R], path: str | Path) -> R:
    """Read a record written by `write_record`; a wrong or foreign file is an InputError."""
    path = Path(path)
    data = read_json(path)
    expected = getattr(cls, "__dataclass_fields__", {}).get("schema")
    if expected is not None and isinstance(data, dict):
        schema = data.get("schema")
        want = expected.default
        if schema != want:
            raise InputError(path, f"expected a {want} record, found schema {schema!r}")
    try:
        return from_dict(cls, data)
    except TypeError as exc:
        raise InputError(path, f"not a valid {cls.__name__} record: {exc}") from None
