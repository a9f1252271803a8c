"""A decoder LLM's report built from records alone, every figure computed here from a small
spec by arithmetic: a tiny Llama (GQA, 8 query heads in 2 KV groups) with 2:4 sparsity in
every linear matrix of layer 0, and in layer 1 query heads 4-7 zeroed in the output
projection (so KV group 1 goes too) and MLP channels 96-127 dead.

The card, figures, site and audit for decoders are tested on it while the decoder analysis
(issue 22, parts A-D) is built elsewhere: the records are the interface between them.
"""

from __future__ import annotations

import base64
from dataclasses import replace

import numpy as np

from analyzer.records import (
    HEAD_RULE,
    Analysis,
    BaseComparison,
    Bench,
    BenchShape,
    BlockStructure,
    DecodeRate,
    Environment,
    Equivalence,
    FfnTotals,
    FileInfo,
    HeadTotals,
    LayerHeads,
    LayerStats,
    LinearTotals,
    MatrixPattern,
    MatrixStats,
    OverallTotals,
    PatternTotals,
    Perplexity,
    Provenance,
    Publication,
    Report,
    ShapeChange,
)

LAYERS, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, INTER, VOCAB = 2, 64, 8, 2, 8, 128, 1000
BASE_LAYERS, BASE_INTER = 3, 192  # the dense model it was pruned from (depth and width)
GROUP = HEADS // KV_HEADS
DEAD_HEADS = (4, 5, 6, 7)  # layer 1: zero output-projection columns; all of KV group 1
DEAD_CHANNELS = range(96, 128)  # layer 1: gate and up rows, down columns
MODULES = {  # role: (module, (rows, cols))
    "q": ("self_attn.q_proj", (HEADS * HEAD_DIM, HIDDEN)),
    "k": ("self_attn.k_proj", (KV_HEADS * HEAD_DIM, HIDDEN)),
    "v": ("self_attn.v_proj", (KV_HEADS * HEAD_DIM, HIDDEN)),
    "o": ("self_attn.o_proj", (HIDDEN, HEADS * HEAD_DIM)),
    "ffn_gate": ("mlp.gate_proj", (INTER, HIDDEN)),
    "ffn_in": ("mlp.up_proj", (INTER, HIDDEN)),
    "ffn_out": ("mlp.down_proj", (HIDDEN, INTER)),
}
RUNTIMES = {
    "2:4": "2:4 sparse tensor cores (Ampere and later), torch.sparse.to_sparse_semi_structured",
    "heads": "packing (prunecard pack removes the heads)",
    "channels": "packing (prunecard pack removes the channels)",
    "dense": "none needed",
}
ENV = Environment(
    python="3.11.7",
    platform="Linux-x86_64",
    cpu="Example CPU",
    cores=16,
    torch="2.13.0",
    transformers="5.24.0",
    device="NVIDIA H100 80GB HBM3",
    gpu_driver="570.86",
)


def file_bytes(parameters: int) -> int:
    """A float16 safetensors file's size: 2 bytes a parameter and its header."""
    return 2 * parameters + 1_234


def masks() -> dict[tuple[int, str], np.ndarray]:
    """The non-zero mask of every linear matrix, by (layer, role)."""
    out = {}
    for role, (_, shape) in MODULES.items():
        two_of_four = np.tile([True, False, True, False], shape[0] * shape[1] // 4)
        out[0, role] = two_of_four.reshape(shape)
        mask = np.ones(shape, dtype=bool)
        if role == "o":
            for h in DEAD_HEADS:
                mask[:, h * HEAD_DIM : (h + 1) * HEAD_DIM] = False
        elif role in ("ffn_gate", "ffn_in"):
            mask[list(DEAD_CHANNELS), :] = False
        elif role == "ffn_out":
            mask[:, list(DEAD_CHANNELS)] = False
        out[1, role] = mask
    return out


def packed_shape(layer: int, role: str) -> tuple[int, int]:
    """The matrix after packing: dead query heads, KV groups and channels removed."""
    rows, cols = MODULES[role][1]
    if layer == 0:
        return rows, cols
    heads = HEADS - len(DEAD_HEADS)
    channels = INTER - len(DEAD_CHANNELS)
    return {
        "q": (heads * HEAD_DIM, cols),
        "k": ((KV_HEADS - 1) * HEAD_DIM, cols),
        "v": ((KV_HEADS - 1) * HEAD_DIM, cols),
        "o": (rows, heads * HEAD_DIM),
        "ffn_gate": (channels, cols),
        "ffn_in": (channels, cols),
        "ffn_out": (rows, channels),
    }[role]


def pattern_of(layer: int, role: str) -> str:
    if layer == 0:
        return "2:4"
    return {"o": "heads", "ffn_gate": "channels", "ffn_in": "channels", "ffn_out": "channels"}.get(
        role, "dense"
    )


def _rows_map(mask: np.ndarray, kind: str) -> BlockStructure:
    """A rows / cols occupancy map (the granularity of heads and channels)."""
    occupied = mask.any(axis=1) if kind == "rows" else mask.any(axis=0)
    grid = (len(occupied), 1) if kind == "rows" else (1, len(occupied))
    rows, cols = mask.shape
    return BlockStructure(
        kind=kind,
        block_rows=1 if kind == "rows" else rows,
        block_cols=cols if kind == "rows" else 1,
        empty_fraction=float(1 - occupied.mean()),
        zeros_explained=1.0 if not mask.all() else 0.0,
        grid=grid,
        occupancy=base64.b64encode(np.packbits(occupied).tobytes()).decode(),
    )


def matrices() -> tuple[MatrixStats, ...]:
    out = []
    for (layer, role), mask in masks().items():
        module, shape = MODULES[role]
        kind = pattern_of(layer, role)
        block = None
        if kind in ("heads", "channels"):
            block = _rows_map(mask, "cols" if role in ("o", "ffn_out") else "rows")
        nnz = int(mask.sum())
        out.append(
            MatrixStats(
                name=f"model.layers.{layer}.{module}.weight",
                layer=layer,
                role=role,
                shape=shape,
                dense_shape=shape,
                nnz=nnz,
                density=nnz / mask.size,
                dtype="float16",
                block=block,
                pattern=MatrixPattern(kind, 0.0 if kind == "dense" else 1.0),
            )
        )
    return tuple(sorted(out, key=lambda m: (m.layer, list(MODULES).index(m.role))))


def patterns(stats: tuple[MatrixStats, ...]) -> tuple[PatternTotals, ...]:
    rows = []
    for kind in ("2:4", "heads", "channels", "dense"):
        chosen = [m for m in stats if m.pattern.kind == kind]
        dense = sum(m.shape[0] * m.shape[1] for m in chosen)
        zeros = dense - sum(m.nnz for m in chosen)
        rows.append(PatternTotals(kind, len(chosen), dense, zeros, RUNTIMES[kind]))
    return tuple(rows)


def _base_parameters() -> int:
    per_layer = sum(
        r * c if not role.startswith("ffn") else HIDDEN * BASE_INTER
        for role, (_, (r, c)) in MODULES.items()
    )
    return 2 * VOCAB * HIDDEN + BASE_LAYERS * (per_layer + 2 * HIDDEN) + HIDDEN


def analysis(*, base: bool = True) -> Analysis:
    stats = matrices()
    dense = sum(m.shape[0] * m.shape[1] for m in stats)
    nnz = sum(m.nnz for m in stats)
    packed = sum(r * c for r, c in (packed_shape(m.layer, m.role) for m in stats))
    others = 2 * VOCAB * HIDDEN + LAYERS * 2 * HIDDEN + HIDDEN  # embeddings, lm_head, norms
    layers = tuple(
        LayerStats(
            layer=i,
            linear_nnz=sum(m.nnz for m in stats if m.layer == i),
            linear_dense=sum(m.shape[0] * m.shape[1] for m in stats if m.layer == i),
            linear_packed=sum(
                r * c for r, c in (packed_shape(i, m.role) for m in stats if m.layer == i)
            ),
            ffn_units_total=INTER,
            ffn_units_kept=INTER - (len(DEAD_CHANNELS) if i == 1 else 0),
        )
        for i in range(LAYERS)
    )
    heads = HeadTotals(
        total=LAYERS * HEADS,
        removed=len(DEAD_HEADS),
        layers=(
            LayerHeads(0, (), HEADS, kv_kept=KV_HEADS),
            LayerHeads(
                1,
                DEAD_HEADS,
                HEADS - len(DEAD_HEADS),
                removed_as_zeros=DEAD_HEADS,
                kv_removed=(1,),
                kv_kept=KV_HEADS - 1,
            ),
        ),
        rule=HEAD_RULE,
        kv_total=LAYERS * KV_HEADS,
        kv_removed=1,
    )
    changes = (
        ShapeChange("layers", BASE_LAYERS, LAYERS),
        ShapeChange("hidden size", HIDDEN, HIDDEN),
        ShapeChange("intermediate size", BASE_INTER, INTER),
        ShapeChange("query heads", HEADS, HEADS),
        ShapeChange("KV heads", KV_HEADS, KV_HEADS),
    )
    return Analysis(
        model_type="llama",
        family="llama",
        checkpoint="checkpoints/tiny-llama",
        dtype="float16",
        num_layers=LAYERS,
        num_heads=HEADS,
        hidden_size=HIDDEN,
        intermediate_size=INTER,
        heads=heads,
        linear=LinearTotals(nnz=nnz, dense=dense, packed=packed, stored=dense, density=nnz / dense),
        overall=OverallTotals(
            nnz=nnz + others,
            dense=dense + others,
            stored=dense + others,
            packed=packed + others,
            density=(nnz + others) / (dense + others),
        ),
        ffn=FfnTotals(units_total=LAYERS * INTER, units_kept=sum(s.ffn_units_kept for s in layers)),
        layers=layers,
        files=(FileInfo("model.safetensors", file_bytes(dense + others)),),
        matrices=stats,
        architectures=("LlamaForCausalLM",),
        kind="decoder",
        num_kv_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        patterns=patterns(stats),
        base=BaseComparison("base/config.json", changes, _base_parameters()) if base else None,
    )


def _shape(batch: int, seq: int, dense_ms: float, packed_ms: float, bound: float) -> BenchShape:
    return BenchShape(
        batch=batch,
        seq=seq,
        dense_ms=dense_ms,
        packed_ms=packed_ms,
        dense_spread_ms=0.02,
        packed_spread_ms=0.01,
        speedup=dense_ms / packed_ms,
        flop_bound=bound,
        fraction_of_bound=dense_ms / packed_ms / bound,
        repeats=20,
        verdict="stable",
    )


def bench() -> Bench:
    return Bench(
        threads=16,
        device="cuda",
        dtype="float16",
        shapes=(_shape(1, 128, 0.90, 0.80, 1.19), _shape(4, 512, 3.30, 2.80, 1.19)),
        equivalence=Equivalence(3.1e-5, 1e-4, "4 x 32 random token ids"),
        environment=ENV,
        decode=(
            DecodeRate(1, 16, 32, 210.0, 240.0, 240.0 / 210.0, 10, "stable"),
            DecodeRate(16, 16, 32, 2950.0, 3480.0, 3480.0 / 2950.0, 10, "stable"),
        ),
        semi_structured=(_shape(1, 4096, 2.10, 1.50, 2.0),),
        packed_bytes=file_bytes(analysis().overall.packed),
    )


# the papers' protocol on WikiText-2: a text of TEXT_TOKENS tokens in whole windows of SEQLEN
TEXT_TOKENS, SEQLEN = 300_000, 2048
PERPLEXITY = Perplexity(
    perplexity=23.456,
    ci_low=21.004,
    ci_high=26.5,
    level=0.95,
    resamples=1000,
    seed=0,
    tokens=TEXT_TOKENS,
    scored=(TEXT_TOKENS // SEQLEN) * (SEQLEN - 1),  # every token of a window but its first
    windows=TEXT_TOKENS // SEQLEN,
    window=SEQLEN,
    stride=SEQLEN,
    text="WikiText-2 raw, test split",
    text_sha256="ab" * 32,
    packed=True,
    device="cuda",
    dtype="float16",
    protocol="papers",
    dataset="wikitext",
    dataset_config="wikitext-2-raw-v1",
    dataset_split="test",
)
# the sliding window over a local text file: no Hub dataset
LOCAL_PERPLEXITY = replace(
    PERPLEXITY,
    tokens=4_000,
    scored=3_999,
    windows=8,
    window=1024,
    stride=512,
    text="/home/me/texts/my_paragraphs.txt",
    protocol="sliding",
    dataset="",
    dataset_config="",
    dataset_split="",
)
PUBLICATION = Publication(
    model_id="prunecard/tiny-llama-2of4",
    base_model="prunecard/tiny-llama-dense",
    license="apache-2.0",
)


def report(**changes) -> Report:
    """The decoder report; `changes` replace its records (analysis=None, bench=None, ...)."""
    full = Report(
        provenance=Provenance(
            tool_version="0.1.0",
            command="prunecard report checkpoints/tiny-llama --out card",
            checkpoint="checkpoints/tiny-llama",
            file_sha256={"config.json": "ef" * 32, "model.safetensors": "cd" * 32},
            created="2025-01-31T12:00:00Z",
            environment=ENV,
        ),
        analysis=analysis(),
        bench=bench(),
        publication=PUBLICATION,
        perplexity=PERPLEXITY,
    )
    return replace(full, **changes)
