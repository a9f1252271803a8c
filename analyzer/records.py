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
    "BENCHMARKS_SCHEMA",
    "BENCH_SCHEMA",
    "COMPRESSION_SCHEMA",
    "DECODER_HEAD_RULE",
    "EVAL_SCHEMA",
    "HEADLINE_METRICS",
    "HEAD_RULE",
    "PATTERN_KINDS",
    "PERPLEXITY_PROTOCOLS",
    "PERPLEXITY_SCHEMA",
    "PRODUCT_KINDS",
    "RECIPE_SCHEMA",
    "REPORT_SCHEMA",
    "SQUAD_V2_ID",
    "STILL_READ",
    "TIME_KINDS",
    "Analysis",
    "BaseComparison",
    "Bench",
    "BenchShape",
    "Benchmarks",
    "BlockStructure",
    "Compression",
    "ConfidenceInterval",
    "ConfigClaim",
    "DataFile",
    "DecodeRate",
    "Environment",
    "Equivalence",
    "Evaluation",
    "FfnTotals",
    "FileInfo",
    "HeadTotals",
    "HubSource",
    "LayerHeads",
    "LayerStats",
    "LinearTotals",
    "MatrixPattern",
    "MatrixStats",
    "OverallTotals",
    "PatternTotals",
    "Perplexity",
    "Provenance",
    "Publication",
    "QuantGroup",
    "Recipe",
    "RecipeCheck",
    "RecipeMatrix",
    "RecipeModifier",
    "Report",
    "ScoreGroup",
    "ShapeChange",
    "SquadScores",
    "TaskMetric",
    "TaskResult",
    "TimeShare",
    "TokenizerInfo",
    "from_dict",
    "load_record",
    "read_json",
    "to_dict",
    "write_record",
]

ANALYSIS_SCHEMA = "prunecard.analysis/1"
BENCH_SCHEMA = "prunecard.bench/1"
BENCHMARKS_SCHEMA = "prunecard.benchmarks/1"
COMPRESSION_SCHEMA = "prunecard.compression/1"
EVAL_SCHEMA = "prunecard.eval/1"
# 2: the protocol (sliding or papers) and the dataset evaluated (Hub id, config, split)
PERPLEXITY_SCHEMA = "prunecard.perplexity/2"
# the metric a benchmark table shows per task, first found (TaskResult.headline)
HEADLINE_METRICS = ("acc_norm", "acc", "word_perplexity")
REPORT_SCHEMA = "prunecard.report/1"
RECIPE_SCHEMA = "prunecard.recipe/1"

# older schemas a reader still takes: their fields mean what they did, the fields added
# since take their defaults, and the record read carries the current schema
# (a prunecard.perplexity/1 record is a sliding window over a text with no dataset id)
STILL_READ: dict[str, tuple[str, ...]] = {PERPLEXITY_SCHEMA: ("prunecard.perplexity/1",)}

SQUAD_V2_ID = "rajpurkar/squad_v2"  # the Hub id of SQuAD v2
PERPLEXITY_PROTOCOLS = ("sliding", "papers")  # analyzer/perplexity/windows.py plans each
# the linear roles, in plotting order: encoders have q, k, v, o, ffn_in, ffn_out; decoder
# LLMs add ffn_gate (gated MLP: gate_proj, with up_proj as ffn_in and down_proj as ffn_out);
# Phi-3 stores fused qkv and ffn_gate_up matrices instead of the separate ones
LINEAR_ROLES = ("q", "k", "v", "qkv", "o", "ffn_gate", "ffn_in", "ffn_gate_up", "ffn_out")
ROLES = (*LINEAR_ROLES, "embedding", "other")
# the square blocks whose emptiness is measured, largest first (analyzer.weights.sparsity
# reads the smallest per slice and each larger one from it, so each divides the one before)
BLOCK_SIZES = (32, 16)
# what each sparsity pattern is worth at run time (analyzer/weights/patterns.py names them)
PATTERN_KINDS = (
    "dense",  # no zeros
    "layer",  # every weight of the layer is zero: the layer can be dropped
    "heads",  # zeros fill whole attention heads (rows / columns of head_dim)
    "channels",  # zeros fill whole FFN / MLP channels (rows of in, columns of out)
    "rows",
    "cols",
    *(f"{size}x{size}" for size in BLOCK_SIZES),
    "1x4",  # 1x4 blocks along the input dimension (Intel's "1x4 block" sparsity)
    "2:4",  # N:M along the input dimension: at most N non-zeros in every group of M
    "1:4",
    "4:8",
    "unstructured",
)


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
class MatrixPattern:
    """The sparsity pattern (one of PATTERN_KINDS) that explains a matrix's zeros best."""

    kind: str
    explained: float  # zeros the pattern explains / all zeros (1.0: exactly that pattern)
    # "dense" matrices: zeros too few to be pruning's (under patterns.STRAY_SHARE of the
    # matrix, as rounding leaves them); they stay in `MatrixStats.nnz`, only the label is dense
    stray_zeros: int = 0


@dataclass(frozen=True)
class PatternTotals:
    """One row of the model's pattern summary: what the zeros of that pattern are worth."""

    kind: str  # one of PATTERN_KINDS
    matrices: int  # linear matrices whose best pattern this is
    weights: int  # their dense weights
    zeros: int  # their zeros (for "dense": the stray zeros of its matrices)
    runtime: str  # which runtime turns this pattern into speed, in words


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
    pattern: MatrixPattern | None = None


@dataclass(frozen=True)
class LayerHeads:
    """(Query) heads of one layer; `removed` holds dense head indices."""

    layer: int
    removed: tuple[int, ...]
    kept: int
    removed_in_checkpoint: tuple[int, ...] = ()  # via config `pruned_heads` (smaller matrices)
    removed_as_zeros: tuple[int, ...] = ()  # all-zero value rows or output columns
    kv_removed: tuple[int, ...] = ()  # K/V groups whose every query head is removed
    kv_kept: int = 0  # K/V groups kept (grouped-query attention); 0 for encoders
    # dead query heads inside a live K/V group: they add nothing, yet packing keeps them
    # (grouped-query attention needs equal groups); never in `removed`, counted in `kept`
    dead_kept: tuple[int, ...] = ()


# what `HeadTotals.removed` counts; written into every analysis and card
HEAD_RULE = (
    "A head counts as removed when config.json's pruned_heads already removed it from the "
    "weights, or when all of its value-projection rows or all of its output-projection "
    "columns are zero. Then the head adds exactly nothing to the layer's output (zero output "
    "columns), or a constant that does not depend on the input (zero value rows leave only "
    "the value bias, which softmax weights sum to; packing folds it into the output bias). "
    "Zero query or key rows alone do not remove a head: attention becomes uniform, not zero."
)
# what `HeadTotals.removed`, `dead_kept` and `kv_removed` count for decoder LLMs (grouped-query
# attention)
DECODER_HEAD_RULE = (
    "A query head counts as dead when all value-projection rows of its K/V group are zero "
    "(and so are their value biases: decoders have no output bias to fold a constant into) "
    "or when all of its own output-projection columns are zero; it then adds exactly nothing "
    "to the layer's output. A K/V group is removed, with the query rows and output columns "
    "of all its query heads, only when every query head of the group is dead; those query "
    "heads count as removed. Grouped-query attention needs the same number of query heads in "
    "every group, so a dead head inside a live group stays in the packed model: it counts as "
    "dead (kept by packing), never as removed (with one query head per group, as in "
    "multi-head attention, every dead head is removed). Zero query or key rows alone do not "
    "remove a head: attention becomes uniform, not zero."
)


@dataclass(frozen=True)
class HeadTotals:
    total: int  # query heads
    removed: int
    layers: tuple[LayerHeads, ...]
    rule: str  # the lossless rule used, in words
    kv_total: int = 0  # K/V groups (grouped-query attention); 0 for encoders
    kv_removed: int = 0
    dead_kept: int = 0  # dead query heads packing keeps (in live K/V groups), not `removed`


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
class ShapeChange:
    """One dimension of a width- or depth-pruned model against its dense base."""

    what: str  # "layers", "hidden size", "intermediate size", "query heads", "KV heads", ...
    base: int
    model: int


@dataclass(frozen=True)
class BaseComparison:
    """The checkpoint against the dense model it was pruned from (`--base-config`)."""

    source: str  # the config.json or folder given
    changes: tuple[ShapeChange, ...]  # every dimension compared, changed or not
    base_parameters: int = 0  # the base's parameter count, computed from its config


@dataclass(frozen=True)
class QuantGroup:
    """One quantization config group of a compressed-tensors checkpoint, as config.json
    states it (the scheme every matrix it targets is stored in)."""

    name: str  # the group's key ("group_0")
    format: str  # how it is stored: "pack-quantized", "float-quantized", "int-quantized", ...
    num_bits: int  # weight bits
    type: str  # "int" or "float"
    strategy: str  # "tensor", "channel", "group", "block", ...
    group_size: int  # weights per scale with the "group" strategy; 0 otherwise
    symmetric: bool  # False: a zero point per scale
    activations: str  # "" when activations stay unquantized, else e.g. "fp8 dynamic per token"
    targets: tuple[str, ...]  # module names, `re:` expressions or classes ("Linear")
    matrices: int  # matrices stored quantized under this group


@dataclass(frozen=True)
class ConfigClaim:
    """What config.json states about the compression, against what the weights show."""

    field: str  # "global_sparsity", "sparsity_structure", "sparsity targets", ...
    stated: str  # config.json's value, in words
    measured: str  # what the weights show
    verdict: str  # "matches" or "does not match"
    rule: str  # how the two were compared

    @property
    def holds(self) -> bool:
        return self.verdict == "matches"


@dataclass(frozen=True)
class Compression:
    """How a compressed-tensors checkpoint stores its weights (analysis measures them
    decompressed), what that saves, and config.json's claims checked."""

    method: str  # "compressed-tensors"
    config_field: str  # "quantization_config" or the older "compression_config"
    version: str  # the compressed-tensors version config.json names ("" when absent)
    sparsity_format: str  # "dense", "sparse-bitmask", "sparse-24-bitmask"; "" without one
    sparsity_structure: str  # as stated ("2:4", "unstructured"); "" when absent
    quantization_format: str  # the checkpoint-wide format; "" without quantization
    groups: tuple[QuantGroup, ...]
    ignore: tuple[str, ...]  # modules the quantization leaves in floating point
    sparse_matrices: int  # matrices stored as bitmask values
    quantized_matrices: int
    stored_bytes: int  # every tensor as stored (values, bitmasks, scales, zero points, ...)
    decompressed_bytes: int  # the same model in the dtypes it decompresses to
    claims: tuple[ConfigClaim, ...] = ()
    schema: str = COMPRESSION_SCHEMA

    @property
    def saved_bytes(self) -> int:
        return self.decompressed_bytes - self.stored_bytes


@dataclass(frozen=True)
class RecipeModifier:
    """One modifier of an llm-compressor recipe.yaml, as the file states it (a claim)."""

    type: str  # "SparseGPTModifier", "WandaPruningModifier", "QuantizationModifier", ...
    stage: str = "default"  # the recipe stage it runs in
    sparsity: float | None = None  # stated share of zeros per targeted matrix (magnitude: final)
    mask_structure: str = ""  # "2:4", "unstructured" ("0:0" in the file), "" if not stated
    targets: tuple[str, ...] = ()  # as written: module names, "re:" patterns, class names
    ignore: tuple[str, ...] = ()
    scheme: str = ""  # quantization: the preset ("FP8_DYNAMIC", "W4A16") or config_groups' names
    note: str = ""  # what the file states that prunecard does not check, in words


@dataclass(frozen=True)
class RecipeMatrix:
    """A matrix that contradicts a recipe claim, with what was measured."""

    name: str  # the module, e.g. "model.layers.1.mlp.down_proj"
    pattern: str  # its measured pattern (PATTERN_KINDS), "" where none is measured
    density: float


@dataclass(frozen=True)
class RecipeCheck:
    """One claim of one modifier against the weights."""

    modifier: str  # the modifier's type
    claim: str  # "pattern": targeted matrices are N:M; "density": at 1 - sparsity;
    # "ignored": the ignored matrices the targets would take are left as they were
    expected: str  # the pattern ("2:4") for "pattern"; "" otherwise
    expected_density: float | None  # 1 - sparsity for "density"; the floor for "ignored"
    verdict: str  # "match", "mismatch" or "unchecked"
    matrices: int = 0  # matrices the claim covers
    failures: tuple[RecipeMatrix, ...] = ()  # those that contradict it
    reason: str = ""  # why unchecked, or which matrices were left out of the check
    density_range: tuple[float, ...] = ()  # (lowest, highest) density of the matrices checked


@dataclass(frozen=True)
class Recipe:
    """The recipe.yaml found beside the weights: what it says and how the weights agree."""

    source: str  # the file read, relative to the checkpoint folder
    modifiers: tuple[RecipeModifier, ...]
    checks: tuple[RecipeCheck, ...] = ()
    schema: str = RECIPE_SCHEMA


@dataclass(frozen=True)
class Analysis:
    """What `analyze` measures from a checkpoint's weights."""

    model_type: str
    family: str  # "bert", "roberta", "distilbert", a decoder family ("llama", ...) or "generic"
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
    kind: str = "encoder"  # "encoder", "decoder" (a causal LM) or "generic"
    num_kv_heads: int = 0  # K/V heads per layer (grouped-query attention); 0 for encoders
    head_dim: int = 0  # 0: hidden_size / num_heads
    patterns: tuple[PatternTotals, ...] = ()  # the model's pattern summary
    base: BaseComparison | None = None  # with `--base-config`
    compression: Compression | None = None  # compressed-tensors checkpoints
    recipe: Recipe | None = None  # llm-compressor's recipe.yaml beside the weights, checked
    schema: str = ANALYSIS_SCHEMA

    @property
    def file_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def causal_lm(self) -> bool:
        """A causal (text-generation) LM: a decoder family, or a *ForCausalLM architecture."""
        return self.kind == "decoder" or any(a.endswith("ForCausalLM") for a in self.architectures)


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class TokenizerInfo:
    """The tokenizer a measurement tokenized real text with, and what padded its batches
    (analyzer/runtime/tokenizer.py): Llama and Mistral tokenizers have no pad token."""

    name: str  # its transformers class: LlamaTokenizer, Qwen2Tokenizer, TokenizersBackend, ...
    vocab_size: int  # tokens, added ones included (len(tokenizer))
    pad: str = "none"  # "own" (its pad token), "eos" (its EOS, masked) or "none" (no padding)
    pad_token: str = ""  # the token that padded; "" when pad is "none"
    bos_token: str = ""  # "" when it has none (Qwen2)
    eos_token: str = ""
    chat_template: bool = False  # it ships one; never applied to the text measured


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
    # `Bench.last_logits`: one run of the lm_head over all batch x seq positions (the same
    # matrix in the dense and the packed model), timed once; None when not timed apart
    lm_head_ms: float | None = None


@dataclass(frozen=True)
class DecodeRate:
    """Greedy decoding of a causal LM at one batch size, dense vs packed."""

    batch: int
    prompt: int  # prompt tokens per sequence
    new_tokens: int  # tokens generated per sequence (the KV cache grows from the prompt)
    dense_tokens_per_s: float  # batch * new_tokens / median seconds
    packed_tokens_per_s: float
    speedup: float  # packed / dense tokens per second
    repeats: int
    verdict: str = ""  # the timing protocol's, as in BenchShape


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
    # causal LMs: `shapes` are prefill (batch x seq tokens); decoding speed per batch size;
    # on a GPU, the 2:4 matrices as semi-structured sparse tensors vs dense (the "packed"
    # side of each shape is the sparse model)
    decode: tuple[DecodeRate, ...] = ()
    semi_structured: tuple[BenchShape, ...] = ()
    tokenizer: TokenizerInfo | None = None  # the equivalence check's; None: random ids
    # quick causal LM benches: the timed prefill forwards compute the last position's
    # logits only (logits_to_keep=1); each shape's lm_head was timed once (`lm_head_ms`)
    last_logits: bool = False
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
    tokenizer: TokenizerInfo | None = None  # the one `eval` ran; None for `score`
    schema: str = EVAL_SCHEMA


@dataclass(frozen=True)
class Perplexity:
    """A causal LM's perplexity over a text, by one of two protocols: "sliding" (strided
    windows, every token scored once with up to `window - stride` tokens of context) or
    "papers" (SparseGPT's and Wanda's: non-overlapping windows of `window` tokens, every
    token of a window after its first scored, the trailing partial window dropped)."""

    perplexity: float  # exp(mean negative log-likelihood per scored token)
    ci_low: float  # percentile bootstrap over windows
    ci_high: float
    level: float  # 0.95
    resamples: int
    seed: int
    tokens: int  # the text's tokens, or its first `limit_tokens`
    scored: int  # tokens predicted
    windows: int
    window: int  # tokens per window at most ("papers": exactly, the --seqlen)
    stride: int  # tokens between window starts ("papers": the window)
    text: str  # the text file's path, or the name of the bundled text or the dataset
    text_sha256: str  # of the file's bytes; a dataset's: of the text tokenized
    packed: bool  # whether the packed model was evaluated
    checkpoint: str = ""
    device: str = "cpu"
    dtype: str = ""
    tokens_per_second: float = 0.0  # text tokens in windows per second of model time
    limit_tokens: int | None = None  # `--limit-tokens`: the text was cut to its first N
    tokenizer: TokenizerInfo | None = None  # None in records written before it was kept
    protocol: str = "sliding"  # one of PERPLEXITY_PROTOCOLS
    # the Hub dataset the text is ("wikitext", "wikitext-2-raw-v1", "test"); "" for a
    # local text file (and in records written before it was kept)
    dataset: str = ""
    dataset_config: str = ""
    dataset_split: str = ""
    schema: str = PERPLEXITY_SCHEMA

    @property
    def has_interval(self) -> bool:
        """One window gives no interval: resampling it returns the estimate itself."""
        return self.windows > 1

    @property
    def dropped(self) -> int:
        """Trailing tokens no window holds ("papers" drops a partial last window)."""
        return self.tokens - self.windows * self.window if self.protocol == "papers" else 0


@dataclass(frozen=True)
class TaskMetric:
    """One metric lm-evaluation-harness returned for a task, key for key (`acc,none`)."""

    name: str  # "acc", "acc_norm", "word_perplexity", ...
    filter: str  # lm-eval's filter name after the comma ("none" for most tasks)
    value: float
    stderr: float | None  # None where lm-eval gives "N/A" (perplexities)
    higher_is_better: bool | None = None


@dataclass(frozen=True)
class DataFile:
    """A local file a task read (lm-eval's `dataset_kwargs.data_files`): it has no Hub id."""

    name: str  # the file name as the task config gave it, without its folder
    sha256: str  # "" where the file could not be read (results imported from elsewhere)


@dataclass(frozen=True)
class TaskResult:
    """One lm-eval task: what was run and every metric it gave."""

    task: str
    version: str  # the task's `metadata.version`, as lm-eval reports it
    num_fewshot: int
    metrics: tuple[TaskMetric, ...]
    documents: int  # documents scored (lm-eval's n-samples "effective")
    documents_total: int  # documents in the split ("original"); more than `documents`: a subset
    output_type: str = ""  # "multiple_choice", "loglikelihood_rolling", ...
    dataset_path: str = ""  # lm-eval's dataset_path (a Hub id, or a loader such as "json")
    dataset_name: str | None = None  # the dataset config
    split: str = ""
    data_files: tuple[DataFile, ...] = ()  # a local-file task's (dataset_path json, csv, ...)

    @property
    def headline(self) -> TaskMetric:
        """The metric a card table shows: acc_norm where the task reports it (the length-
        normalised accuracy papers and leaderboards quote for multiple choice), else acc,
        else word_perplexity (a rolling task's, as wikitext is quoted), else the task's first
        metric in lm-eval's metric_list order; the unfiltered ("none") one first."""
        for name in HEADLINE_METRICS:
            named = [m for m in self.metrics if m.name == name]
            if named:
                return next((m for m in named if m.filter == "none"), named[0])
        return self.metrics[0]

    @property
    def subset(self) -> bool:
        return self.documents < self.documents_total


@dataclass(frozen=True)
class Benchmarks:
    """lm-evaluation-harness tasks on one model (run by `prunecard eval --tasks` or imported
    from lm_eval's results JSON), and the same tasks on its dense base when given."""

    tasks: tuple[TaskResult, ...]
    lm_eval_version: str
    checkpoint: str  # the model evaluated, as records name it (path or repo@commit)
    file_sha256: dict[str, str]  # of the checkpoint's files: binds the figures to the weights
    packed: bool = False
    limit: int | None = None  # `--limit`: documents per task at most
    backend: str = "hf"  # lm-eval's model type: "hf" or "vllm"
    model_args: str = ""  # passed through to the backend
    source: str = "prunecard eval"  # or the name of the imported results file
    base: Benchmarks | None = None  # the dense base on the same tasks and shots
    schema: str = BENCHMARKS_SCHEMA

    def same_run(self, other: Benchmarks) -> str | None:
        """How `other` (a dense base) differs from this run's tasks, shots, documents and
        limit, in words; None when it ran the same."""
        mine = {t.task: t for t in self.tasks}
        theirs = {t.task: t for t in other.tasks}
        if set(mine) != set(theirs):
            return f"tasks {', '.join(sorted(theirs))} instead of {', '.join(sorted(mine))}"
        for name, t in sorted(mine.items()):
            o = theirs[name]
            if (o.num_fewshot, o.documents) != (t.num_fewshot, t.documents):
                return (
                    f"{name} at {o.num_fewshot}-shot on {o.documents} documents instead of "
                    f"{t.num_fewshot}-shot on {t.documents}"
                )
        if other.limit != self.limit:
            return f"--limit {other.limit} instead of {self.limit}"
        return None


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class HubSource:
    """A checkpoint named by Hub id: records name it `repo_id@commit`, never by the cache
    path it was read from (which names the user's home folder)."""

    repo_id: str  # "org/name"
    revision: str  # as asked after "@" ("main" when none was)
    commit: str  # the 40-hex commit the revision resolved to

    @property
    def label(self) -> str:
        return f"{self.repo_id}@{self.commit}"


@dataclass(frozen=True)
class Provenance:
    tool_version: str
    command: str
    checkpoint: str  # a path, or for a Hub checkpoint `hub.label`
    file_sha256: dict[str, str]
    created: str  # when the measurements were taken, ISO 8601 UTC (never a render's time)
    environment: Environment | None = None
    hub: HubSource | None = None  # the Hub id and commit the checkpoint was fetched as


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
    perplexity: Perplexity | None = None  # causal LMs
    benchmarks: Benchmarks | None = None  # lm-eval tasks (causal LMs)
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
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a class, not an instance
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object, got {type(value).__name__}")
        hints = get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _convert(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise TypeError(f"{where}: missing field {f.name!r}")
        current = getattr(tp.__dataclass_fields__.get("schema"), "default", None)
        if isinstance(current, str) and kwargs.get("schema") in STILL_READ.get(current, ()):
            kwargs["schema"] = current
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
        if schema != want and schema not in STILL_READ.get(want, ()):
            raise InputError(path, f"expected a {want} record, found schema {schema!r}")
    try:
        return from_dict(cls, data)
    except TypeError as exc:
        raise InputError(path, f"not a valid {cls.__name__} record: {exc}") from None
