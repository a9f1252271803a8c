"""Real checkpoints for tests, built from the embedded MiniLM and the nn_pruning statistics.

Each builder prunes in ways that do not overlap (physically removed heads, heads with zero
value rows, dead FFN units, single 32x32 blocks elsewhere), so the expected counts follow
by arithmetic from the spec, independently of the analyzer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from analyzer.runtime.demo import minilm_path, qa_state
from analyzer.weights.checkpoint import copy_tokenizer_files

# Everything the suite reads lives here (sources and licences in data/README.md).
DATA = Path(__file__).resolve().parent / "data"


def data_files(folder: str, pattern: str) -> list[Path]:
    """The files under tests/data/`folder` matching `pattern`; never an empty list, so a
    parametrized test cannot lose its cases without failing."""
    found = sorted((DATA / folder).glob(pattern))
    assert found, f"no {pattern} in {DATA / folder}"
    return found


NN_PRUNING_FIXTURE = DATA / "nn_pruning_bert_base_squadv2.json"
SEED_CARD = DATA / "reference" / "seed_model_card.md"
NN_PRUNING_CARDS = data_files("reference/nn_pruning_cards", "*.md")
SQUAD_DEV_HALF = DATA / "squad" / "squad_v2_dev_half.json"
METRIC_ORACLE = DATA / "squad" / "squad_v2_metric_oracle.json"

HIDDEN, HEADS, HEAD_DIM, FFN, LAYERS = 384, 12, 32, 1536, 6


@dataclass(frozen=True)
class PruneSpec:
    """What to remove from MiniLM; layers and indices must not overlap between kinds."""

    pruned_heads: dict[int, tuple[int, ...]] = field(default_factory=dict)  # physically, legacy
    zero_heads: dict[int, tuple[int, ...]] = field(default_factory=dict)  # value rows zeroed
    zero_units: dict[int, tuple[int, ...]] = field(default_factory=dict)  # FFN row + column
    zero_q_blocks: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    # ---- expected figures, by arithmetic
    @property
    def heads_removed(self) -> int:
        return sum(map(len, self.pruned_heads.values())) + sum(map(len, self.zero_heads.values()))

    @property
    def linear_zeros(self) -> int:
        """Weights that are zero (or absent) in the linear layers, at dense size."""
        physical = 4 * HEAD_DIM * HIDDEN * sum(map(len, self.pruned_heads.values()))
        value_rows = HEAD_DIM * HIDDEN * sum(map(len, self.zero_heads.values()))
        units = 2 * HIDDEN * sum(map(len, self.zero_units.values()))
        blocks = 32 * 32 * sum(map(len, self.zero_q_blocks.values()))
        return physical + value_rows + units + blocks

    @property
    def linear_packed(self) -> int:
        dense = LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)
        heads = 4 * HEAD_DIM * HIDDEN * self.heads_removed
        units = 2 * HIDDEN * sum(map(len, self.zero_units.values()))
        return dense - heads - units


LINEAR_DENSE = LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)

EXAMPLE_SPEC = PruneSpec(
    pruned_heads={0: (1, 5), 3: (0,)},
    zero_heads={1: (2,), 2: (4, 7)},
    zero_units={0: tuple(range(100)), 4: tuple(range(1000, 1536))},
    zero_q_blocks={5: ((0, 0), (3, 7))},
)


def apply_spec(state: dict[str, torch.Tensor], config: dict, spec: PruneSpec) -> None:
    """Prune `state` in place as `spec` says; legacy removal also edits `config`."""
    for layer, heads in spec.zero_heads.items():
        w = state[f"bert.encoder.layer.{layer}.attention.self.value.weight"]
        for h in heads:
            w[h * HEAD_DIM : (h + 1) * HEAD_DIM] = 0
    for layer, units in spec.zero_units.items():
        p = f"bert.encoder.layer.{layer}."
        state[p + "intermediate.dense.weight"][list(units)] = 0
        state[p + "output.dense.weight"][:, list(units)] = 0
    for layer, blocks in spec.zero_q_blocks.items():
        w = state[f"bert.encoder.layer.{layer}.attention.self.query.weight"]
        for r, c in blocks:
            w[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32] = 0
    for layer, heads in spec.pruned_heads.items():
        keep = [
            i
            for h in range(HEADS)
            if h not in heads
            for i in range(h * HEAD_DIM, (h + 1) * HEAD_DIM)
        ]
        p = f"bert.encoder.layer.{layer}.attention."
        for n in ("self.query", "self.key", "self.value"):
            state[f"{p}{n}.weight"] = state[f"{p}{n}.weight"][keep].contiguous()
            state[f"{p}{n}.bias"] = state[f"{p}{n}.bias"][keep].contiguous()
        state[f"{p}output.dense.weight"] = state[f"{p}output.dense.weight"][:, keep].contiguous()
    if spec.pruned_heads:
        config["pruned_heads"] = {str(k): list(v) for k, v in spec.pruned_heads.items()}


def save_checkpoint(
    out: Path,
    state: dict[str, torch.Tensor],
    config: dict,
    *,
    fmt: str = "safetensors",
    dtype: torch.dtype | None = torch.float32,
    tokenizer: bool = True,
) -> Path:
    """Write `state` as model.safetensors, pytorch_model.bin, or two shards (fmt='sharded'
    or 'sharded-bin'), with config.json and MiniLM's tokenizer files.

    Floating-point tensors are cast to `dtype` (None: kept). A tensor stored under two
    names (a tied weight) stays shared in .bin files, as torch.save keeps storage; in
    safetensors the later name is left out, as transformers and the Hub's conversion do."""
    out.mkdir(parents=True, exist_ok=True)
    cast: dict[tuple, torch.Tensor] = {}
    first: dict[tuple, str] = {}
    for k, v in state.items():
        if _where(v) not in cast:
            cast[_where(v)] = v.to(dtype) if dtype is not None and v.is_floating_point() else v
            first[_where(v)] = k
    if fmt in ("safetensors", "sharded"):
        state = {k: cast[_where(v)].contiguous() for k, v in state.items() if first[_where(v)] == k}
    else:
        state = {k: cast[_where(v)] for k, v in state.items()}
    if fmt == "safetensors":
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    elif fmt == "bin":
        torch.save(state, out / "pytorch_model.bin")
    elif fmt in ("sharded", "sharded-bin"):
        names = sorted(state)
        halves = (names[: len(names) // 2], names[len(names) // 2 :])
        ext = "safetensors" if fmt == "sharded" else "bin"
        stem = "model" if fmt == "sharded" else "pytorch_model"
        weight_map = {}
        for i, part in enumerate(halves, 1):
            shard = f"{stem}-{i:05d}-of-00002.{ext}"
            piece = {k: state[k] for k in part}
            if ext == "safetensors":
                save_file(piece, str(out / shard), metadata={"format": "pt"})
            else:
                torch.save(piece, out / shard)
            weight_map.update(dict.fromkeys(part, shard))
        (out / f"{stem}.{ext}.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map})
        )
    else:
        raise ValueError(fmt)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    if tokenizer:
        copy_tokenizer_files(minilm_path(), out)
    return out


def _where(tensor: torch.Tensor) -> tuple:
    """A tensor's storage, offset, shape and strides: equal for two names of one tensor."""
    if not tensor.numel():  # empty tensors may all report the same (null) storage
        return (id(tensor),)
    return (
        tensor.untyped_storage().data_ptr(),
        tensor.storage_offset(),
        tuple(tensor.shape),
        tuple(tensor.stride()),
    )


def build_minilm(out: Path, spec: PruneSpec = EXAMPLE_SPEC, **save_options) -> Path:
    """A real pruned MiniLM question-answering checkpoint (QA head seeded, untrained)."""
    state, config = qa_state(minilm_path())
    apply_spec(state, config, spec)
    return save_checkpoint(out, state, config, **save_options)


def build_nn_pruning(out: Path, index: int, *, dtype: torch.dtype = torch.float16) -> Path:
    """A bert-base QA checkpoint with exactly the per-layer structure of published
    nn_pruning checkpoint `index` (pruned heads, attention 32x32 blocks, FFN units);
    values are random. Every kept head keeps a non-zero value and output block."""
    record = json.loads(NN_PRUNING_FIXTURE.read_text())["checkpoints"][index]
    config, stats = dict(record["config"]), record["stats"]
    hidden, heads, ffn = (
        config["hidden_size"],
        config["num_attention_heads"],
        config["intermediate_size"],
    )
    head_dim = hidden // heads
    g = torch.Generator().manual_seed(index)

    def nonzero(*shape: int) -> torch.Tensor:
        x = torch.randn(*shape, generator=g)
        return (x.abs() + 0.01) * x.sign().where(x != 0, torch.ones(()))

    state: dict[str, torch.Tensor] = {
        "bert.embeddings.word_embeddings.weight": nonzero(config["vocab_size"], hidden),
        "bert.embeddings.position_embeddings.weight": nonzero(
            config["max_position_embeddings"], hidden
        ),
        "bert.embeddings.token_type_embeddings.weight": nonzero(config["type_vocab_size"], hidden),
        "bert.embeddings.LayerNorm.weight": torch.ones(hidden),
        "bert.embeddings.LayerNorm.bias": torch.zeros(hidden),
        "qa_outputs.weight": nonzero(2, hidden),
        "qa_outputs.bias": torch.zeros(2),
    }
    pruned = {int(k): v for k, v in stats["pruned_heads"].items() if v}
    for layer in range(config["num_hidden_layers"]):
        layer_stats = stats["layers"][str(layer)]
        kept = heads - len(pruned.get(layer, ()))
        rows = kept * head_dim
        masks = _attention_masks(
            rows, hidden, head_dim, layer_stats["linear_attention_nnz"] // 1024, g
        )
        p = f"bert.encoder.layer.{layer}."
        for name, mask in zip(
            (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
            ),
            masks,
            strict=True,
        ):
            state[p + name + ".weight"] = nonzero(*mask.shape) * mask
        for name in ("attention.self.query", "attention.self.key", "attention.self.value"):
            state[p + name + ".bias"] = nonzero(rows)
        state[p + "attention.output.dense.bias"] = nonzero(hidden)
        units = layer_stats["linear_dense_nnz"] // (2 * hidden)
        alive = torch.zeros(ffn, dtype=torch.bool)
        alive[torch.randperm(ffn, generator=g)[:units]] = True
        state[p + "intermediate.dense.weight"] = nonzero(ffn, hidden) * alive[:, None]
        state[p + "intermediate.dense.bias"] = nonzero(ffn) * alive
        state[p + "output.dense.weight"] = nonzero(hidden, ffn) * alive[None, :]
        state[p + "output.dense.bias"] = nonzero(hidden)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[p + ln + ".weight"] = torch.ones(hidden)
            state[p + ln + ".bias"] = torch.zeros(hidden)
    if pruned:
        config["pruned_heads"] = {str(k): list(v) for k, v in pruned.items()}
    return save_checkpoint(out, state, config, dtype=dtype)


def _attention_masks(
    rows: int, hidden: int, head_dim: int, blocks: int, g: torch.Generator
) -> list[torch.Tensor]:
    """Q, K, V (rows x hidden) and O (hidden x rows) masks with `blocks` 32x32 blocks set,
    one of them in each kept head's value rows and one in its output columns."""
    grids = [torch.zeros(rows // 32, hidden // 32, dtype=torch.bool) for _ in range(3)]
    grids.append(torch.zeros(hidden // 32, rows // 32, dtype=torch.bool))
    per_head = head_dim // 32
    for h in range(rows // head_dim):
        grids[2][h * per_head, h % grids[2].shape[1]] = True
        grids[3][h % grids[3].shape[0], h * per_head] = True
    flat = torch.cat([grid.reshape(-1) for grid in grids])
    free = (~flat).nonzero().squeeze(1)
    needed = blocks - int(flat.sum())
    flat[free[torch.randperm(len(free), generator=g)[:needed]]] = True
    masks, start = [], 0
    for grid in grids:
        part = flat[start : start + grid.numel()].reshape(grid.shape)
        start += grid.numel()
        masks.append(part.repeat_interleave(32, 0).repeat_interleave(32, 1).float())
    return masks


def one_paragraph_squad(context: str, qas: list[dict]) -> dict:
    """An official-format SQuAD v2 object: one article of one paragraph with `qas`."""
    return {
        "version": "v2.0",
        "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}],
    }


def nn_pruning_record(index: int) -> dict:
    return json.loads(NN_PRUNING_FIXTURE.read_text())["checkpoints"][index]


@pytest.fixture(scope="session")
def pruned_minilm(tmp_path_factory) -> Path:
    """EXAMPLE_SPEC applied to MiniLM, saved as safetensors (read-only use please)."""
    return build_minilm(tmp_path_factory.mktemp("minilm") / "ckpt")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """The tests' tiny Llama (tests/decoders.py: 256 positions, MiniLM's tokenizer), dense,
    shared by the perplexity tests (read-only use please)."""
    from decoders import build_decoder

    return build_decoder(tmp_path_factory.mktemp("tiny-llama") / "llama", "llama")


@pytest.fixture(scope="session")
def tiny_llama_model(tiny_llama: Path) -> tuple:
    """`tiny_llama` loaded as stored: (model, tokenizer), eval mode (do not modify)."""
    from analyzer.perplexity.model import load_causal_lm

    return load_causal_lm(tiny_llama)


@pytest.fixture(scope="session")
def lm_eval_tasks(tmp_path_factory) -> Path:
    """The bundled lm-eval task YAML (data/lm_eval) with each JSONL named by absolute path
    (lm-eval reads `data_files` relative to the working directory)."""
    folder = tmp_path_factory.mktemp("lm_eval_tasks")
    for task in sorted((DATA / "lm_eval").glob("*.yaml")):
        data = DATA / "lm_eval" / f"{task.stem}.jsonl"
        text = task.read_text(encoding="utf-8").replace(f"test: {data.name}", f"test: {data}")
        (folder / task.name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def nn_pruning_checkpoints(tmp_path_factory) -> list[Path]:
    """The three published nn_pruning structures as bert-base fp16 checkpoints."""
    base = tmp_path_factory.mktemp("nn_pruning")
    return [build_nn_pruning(base / f"ckpt{i}", i) for i in range(3)]


@pytest.fixture(scope="session")
def browser():
    """A headless system Chromium driven by Playwright (see tests/browser.py). Skips with
    the install line when Chromium is missing, fails instead under
    PRUNECARD_REQUIRE_BROWSER=1 (CI)."""
    from browser import INSTALL_HINT, browser_required, chromium, launch

    if chromium() is None:
        if browser_required():
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    with launch() as launched:
        yield launched


@pytest.fixture(scope="session")
def lm_eval_family(tmp_path_factory) -> tuple[Path, Path]:
    """(dense, pruned) tiny Llamas for the lm-eval tests (tests/lmeval_models.py)."""
    from lmeval_models import build_family

    return build_family(tmp_path_factory.mktemp("lm_eval_family"))


@pytest.fixture(scope="session")
def lm_eval_raw(lm_eval_family, lm_eval_tasks) -> tuple[dict, dict]:
    """lm-eval's own results dicts (dense, pruned) on the bundled tasks."""
    from lmeval_models import lm_eval_results

    dense, pruned = lm_eval_family
    return lm_eval_results(dense, lm_eval_tasks), lm_eval_results(pruned, lm_eval_tasks)
