"""Checkpoints as people published them, 2019-2026, each through every command that reads weights.

Each layout is built small (2 layers, hidden 32, 4 heads) the way its tool wrote it:
transformers 4 kept the integer buffers `embeddings.position_ids` / `token_type_ids` in the
weights file, nn_pruning removed heads physically (`pruned_heads`, smaller Q/K/V/O), the
Hub's bot converted `.bin` files to safetensors (buffers kept, tied aliases dropped), MLM
decoders share the word embeddings' storage. The expected figures are counted here from the
tensors written, never taken from prunecard's output.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import torch
import transformers
from conftest import save_checkpoint
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer import analyze
from analyzer.cli.main import main
from analyzer.records import Analysis, load_record
from analyzer.runtime.packing import load
from analyzer.weights.quantization import QUANTIZED_KEYS, QUANTIZED_MODULES

LAYERS, HIDDEN, HEADS, FFN = 2, 32, 4, 64
HEAD_DIM = HIDDEN // HEADS
VOCAB = 30522  # MiniLM's tokenizer, copied into every layout, so eval and report can run
ZERO_HEAD = (1, 2)  # (layer, head): value rows zeroed, so the head is removed as zeros
DEAD_UNITS = (1, range(10))  # (layer, units): FFN rows and columns zeroed

FAMILIES = {
    # family: config class, config keys, class prefix, layer path, Q/K/V/O, FFN in/out
    "bert": (
        transformers.BertConfig,
        {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
         "intermediate_size": FFN, "vocab_size": VOCAB},
        "Bert",
        "encoder.layer",
        ("attention.self.query", "attention.self.key", "attention.self.value",
         "attention.output.dense"),
        ("intermediate.dense", "output.dense"),
    ),
    "roberta": (
        transformers.RobertaConfig,
        {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
         "intermediate_size": FFN, "vocab_size": VOCAB, "max_position_embeddings": 514,
         "type_vocab_size": 1},
        "Roberta",
        "encoder.layer",
        ("attention.self.query", "attention.self.key", "attention.self.value",
         "attention.output.dense"),
        ("intermediate.dense", "output.dense"),
    ),
    "distilbert": (
        transformers.DistilBertConfig,
        {"dim": HIDDEN, "n_layers": LAYERS, "n_heads": HEADS, "hidden_dim": FFN,
         "vocab_size": VOCAB},
        "DistilBert",
        "transformer.layer",
        ("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin"),
        ("ffn.lin1", "ffn.lin2"),
    ),
}  # fmt: skip
# the integer buffers transformers 4 (< 4.31) saved in each family's weights file
BUFFERS = {
    "bert": ("embeddings.position_ids", "embeddings.token_type_ids"),
    "roberta": ("embeddings.position_ids",),
    "distilbert": ("embeddings.position_ids",),
}
HEAD_CLASSES = {"qa": "ForQuestionAnswering", "mlm": "ForMaskedLM", "base": "Model"}


@dataclass(frozen=True)
class Layout:
    """One way a checkpoint was published."""

    family: str = "bert"
    head: str = "qa"  # qa, mlm (decoder tied to the word embeddings) or base (no prefix)
    fmt: str = "bin"  # bin, safetensors or sharded (safetensors + index)
    dtype: torch.dtype = torch.float32
    pruned_heads: dict[int, tuple[int, ...]] = field(default_factory=dict)
    architectures: bool = True
    config_dtype: str | None = None  # torch_dtype in config.json when it is not the stored one

    @property
    def prefix(self) -> str:
        return "" if self.head == "base" else f"{self.family}."


NN_PRUNED = {0: (1, 3)}

LAYOUTS = {
    "t4-bin": Layout(),
    "t4-bin-pruned_heads": Layout(pruned_heads=NN_PRUNED),
    "hub-safetensors-pruned_heads": Layout(fmt="safetensors", pruned_heads=NN_PRUNED),
    "hub-sharded-pruned_heads": Layout(fmt="sharded", pruned_heads=NN_PRUNED),
    "hub-safetensors": Layout(fmt="safetensors"),
    "bert-fp16": Layout(dtype=torch.float16),
    "bert-bf16": Layout(fmt="safetensors", dtype=torch.bfloat16),
    "roberta-fp32": Layout("roberta"),
    "roberta-fp16-pruned_heads": Layout("roberta", dtype=torch.float16, pruned_heads=NN_PRUNED),
    "roberta-bf16": Layout("roberta", fmt="safetensors", dtype=torch.bfloat16),
    "distilbert-fp32-pruned_heads": Layout("distilbert", pruned_heads=NN_PRUNED),
    "distilbert-fp16": Layout("distilbert", fmt="safetensors", dtype=torch.float16),
    "distilbert-bf16": Layout("distilbert", dtype=torch.bfloat16),
    "bert-base-no-prefix": Layout(head="base"),
    "bert-base-no-prefix-safetensors": Layout(head="base", fmt="safetensors"),
    "bert-mlm-tied-bin": Layout(head="mlm"),
    "bert-mlm-tied-safetensors": Layout(head="mlm", fmt="safetensors"),
    "roberta-mlm-tied-bin": Layout("roberta", head="mlm"),
    "distilbert-mlm-tied-safetensors": Layout("distilbert", head="mlm", fmt="safetensors"),
    "no-architectures": Layout(architectures=False, pruned_heads=NN_PRUNED),
    "torch_dtype-disagrees": Layout(dtype=torch.float16, config_dtype="float32"),
}
LEGACY = "t4-bin-pruned_heads"  # the layout every command runs on
# the heavier commands (bench, eval, report) run on a representative subset
BENCHED = (LEGACY, "hub-sharded-pruned_heads", "roberta-fp16-pruned_heads",
           "distilbert-fp32-pruned_heads", "bert-base-no-prefix", "bert-mlm-tied-safetensors",
           "no-architectures")  # fmt: skip
EVALUATED = (LEGACY, "hub-safetensors-pruned_heads", "roberta-fp32", "distilbert-bf16",
             "no-architectures", "torch_dtype-disagrees")  # fmt: skip


@dataclass(frozen=True)
class Expected:
    """Figures counted from the tensors as written."""

    path: Path
    stored: int  # floating-point values in the file, a tied tensor once
    dense: int  # the same before heads were physically removed
    nnz: int
    linear_nnz: int
    linear_dense: int
    removed: dict[int, tuple[int, ...]]  # layer -> dense indices of removed heads
    units_kept: int
    buffers: frozenset[str]
    tied: dict[str, str]
    reference: torch.nn.Module  # the dense fp32 model, removed heads zeroed in place


def build(layout: Layout, out: Path) -> Expected:
    config_cls, keys, cls_prefix, layer_path, attention, ffn = FAMILIES[layout.family]
    config = config_cls(**keys)
    model_cls = getattr(transformers, cls_prefix + HEAD_CLASSES[layout.head])
    torch.manual_seed(0)
    model = model_cls(config).eval()
    layer = f"{layout.prefix}{layer_path}"
    with torch.no_grad():
        for p in model.parameters():  # tied parameters appear once here
            p.normal_(0, 0.02)
        state = model.state_dict()
        zl, zh = ZERO_HEAD
        state[f"{layer}.{zl}.{attention[2]}.weight"][zh * HEAD_DIM : (zh + 1) * HEAD_DIM] = 0
        ul, units = DEAD_UNITS
        state[f"{layer}.{ul}.{ffn[0]}.weight"][list(units)] = 0
        state[f"{layer}.{ul}.{ffn[1]}.weight"][:, list(units)] = 0
        for li, heads in layout.pruned_heads.items():  # zero first: the reference model
            for h in heads:
                rows = slice(h * HEAD_DIM, (h + 1) * HEAD_DIM)
                for name in attention[:3]:
                    state[f"{layer}.{li}.{name}.weight"][rows] = 0
                    state[f"{layer}.{li}.{name}.bias"][rows] = 0
                state[f"{layer}.{li}.{attention[3]}.weight"][:, rows] = 0
        model.to(layout.dtype)
    state = model.state_dict()  # in the stored dtype, ties kept
    unique = _unique(state)
    dense = sum(state[n].numel() for n in unique)
    linear = [f"{layer}.{i}.{m}.weight" for i in range(LAYERS) for m in attention + ffn]
    linear_dense = sum(state[n].numel() for n in linear)
    for li, heads in layout.pruned_heads.items():  # then remove them, as nn_pruning did
        keep = [r for h in range(HEADS) if h not in heads for r in _rows(h)]
        for name in attention[:3]:
            for kind in ("weight", "bias"):
                key = f"{layer}.{li}.{name}.{kind}"
                state[key] = state[key][keep].contiguous()
        key = f"{layer}.{li}.{attention[3]}.weight"
        state[key] = state[key][:, keep].contiguous()
    buffers = {}
    for name in BUFFERS[layout.family]:
        positions = config.max_position_embeddings
        ids = torch.arange(positions) if "position" in name else torch.zeros(positions)
        buffers[f"{layout.prefix}{name}"] = ids.long().expand((1, -1))  # as transformers 4
    state = {**buffers, **state}
    ties = _ties(state) if layout.fmt == "bin" else {}
    config_dict = config.to_dict()
    config_dict.pop("dtype", None)
    config_dict.update(
        architectures=[model_cls.__name__],
        torch_dtype=layout.config_dtype or str(layout.dtype).removeprefix("torch."),
        transformers_version="4.10.0",
        pruned_heads={str(k): list(v) for k, v in layout.pruned_heads.items()},
    )
    if not layout.architectures:
        del config_dict["architectures"]
    save_checkpoint(out, state, config_dict, fmt=layout.fmt, dtype=None)
    if layout.family != "bert":  # their tokenizers give no token types (one type embedding)
        tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
        tokenizer_config["model_input_names"] = ["input_ids", "attention_mask"]
        (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    removed = {li: tuple(heads) for li, heads in layout.pruned_heads.items()}
    removed[ZERO_HEAD[0]] = tuple(sorted((*removed.get(ZERO_HEAD[0], ()), ZERO_HEAD[1])))
    unique = _unique(state)
    reference = model.float()
    return Expected(
        path=out,
        stored=sum(state[n].numel() for n in unique if state[n].is_floating_point()),
        dense=dense,
        nnz=sum(int(state[n].count_nonzero()) for n in unique if state[n].is_floating_point()),
        linear_nnz=sum(int(state[n].count_nonzero()) for n in linear),
        linear_dense=linear_dense,
        removed=removed,
        units_kept=LAYERS * FFN - len(DEAD_UNITS[1]),
        buffers=frozenset(buffers),
        tied=ties,
        reference=reference,
    )


def _rows(head: int) -> range:
    return range(head * HEAD_DIM, (head + 1) * HEAD_DIM)


def _unique(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of distinct tensors: the first name of each storage."""
    return [n for n in state if n not in _ties(state)]


def _ties(state: dict[str, torch.Tensor]) -> dict[str, str]:
    first: dict[tuple, str] = {}
    ties = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if first.setdefault(key, name) != name:
            ties[name] = first[key]
    return ties


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Expected]:
    base = tmp_path_factory.mktemp("layouts")
    return {name: build(layout, base / name) for name, layout in LAYOUTS.items()}


def _analyze(path: Path, tmp_path: Path) -> Analysis:
    out = tmp_path / "analysis.json"
    assert main(["analyze", str(path), "--json", str(out)]) == 0
    return load_record(Analysis, out)


# --------------------------------------------------------------------------- every layout


@pytest.mark.parametrize("name", LAYOUTS)
def test_analyze_counts_floating_point_tensors_only(name, corpus, tmp_path):
    layout, expected = LAYOUTS[name], corpus[name]
    a = _analyze(expected.path, tmp_path)
    assert a == analyze(expected.path)  # what the JSON record holds is what analyze returns
    assert a.family == layout.family
    assert a.dtype == str(layout.dtype).removeprefix("torch.")
    assert (a.overall.stored, a.overall.dense, a.overall.nnz) == (
        expected.stored,
        expected.dense,
        expected.nnz,
    )
    assert a.overall.density == expected.nnz / expected.dense
    assert (a.linear.nnz, a.linear.dense) == (expected.linear_nnz, expected.linear_dense)
    assert a.linear.density == expected.linear_nnz / expected.linear_dense
    assert {h.layer: h.removed for h in a.heads.layers if h.removed} == expected.removed
    assert a.heads.removed == sum(map(len, expected.removed.values()))
    assert a.ffn.units_kept == expected.units_kept
    assert set(a.buffers) == expected.buffers
    assert a.tied == expected.tied
    assert not any(m.name in expected.buffers for m in a.matrices)
    if layout.config_dtype:
        assert any(layout.config_dtype in n and a.dtype in n for n in a.notes), a.notes
    else:
        assert a.notes == ()


@pytest.mark.parametrize("name", LAYOUTS)
def test_pack_card_and_audit(name, corpus, tmp_path):
    layout, expected = LAYOUTS[name], corpus[name]
    packed = tmp_path / "packed"
    assert main(["pack", str(expected.path), str(packed)]) == 0
    a = _analyze(packed, tmp_path)
    assert a.heads.removed == sum(map(len, expected.removed.values()))
    assert a.overall.dense == expected.dense
    assert a.buffers == () and a.tied == {}  # the packed file holds parameters only
    if layout.dtype == torch.float32:
        ids = torch.randint(1000, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            want = _outputs(expected.reference(input_ids=ids))
            for model in (load(expected.path), load(packed)):
                for got, ref in zip(_outputs(model(input_ids=ids)), want, strict=True):
                    assert (got - ref).abs().max() <= 1e-4
    card = tmp_path / "card"
    assert main(["card", str(expected.path), "--out", str(card)]) == 0
    audit = ["audit", str(expected.path), "--card", str(card / "README.md")]
    assert main([*audit, "--json", str(tmp_path / "audit.json")]) == (layout.head != "qa")
    findings = json.loads((tmp_path / "audit.json").read_text())["findings"]
    mismatches = [f["text"] for f in findings if f["verdict"] == "mismatch"]
    # a card is a question-answering card: on a model without a QA head its QA tag is
    # the one claim the weights refute
    assert mismatches == ([] if layout.head == "qa" else ["tags: question-answering"])


def test_a_tie_kept_under_the_alias_loads(corpus, tmp_path):
    """A conversion may keep `cls.predictions.decoder.bias` and drop `cls.predictions.bias`
    (the name the model ties it to): the tensor still lands where the model needs it."""
    from safetensors.torch import load_file, save_file

    expected = corpus["bert-mlm-tied-safetensors"]
    state = load_file(str(expected.path / "model.safetensors"))
    state["cls.predictions.decoder.bias"] = state.pop("cls.predictions.bias")
    copy = tmp_path / "alias"
    copy.mkdir()
    (copy / "config.json").write_text((expected.path / "config.json").read_text())
    save_file(state, str(copy / "model.safetensors"))
    assert analyze(copy).overall.nnz == expected.nnz
    ids = torch.randint(1000, VOCAB, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        got, want = load(copy)(input_ids=ids).logits, expected.reference(input_ids=ids).logits
    assert (got - want).abs().max() <= 1e-4


def _outputs(output) -> list[torch.Tensor]:
    keys = ("start_logits", "end_logits", "logits", "last_hidden_state")
    return [getattr(output, k) for k in keys if getattr(output, k, None) is not None]


# --------------------------------------------------------------------------- heavier commands


@pytest.mark.parametrize("name", BENCHED)
def test_bench_quick(name, corpus, tmp_path):
    out = tmp_path / "bench.json"
    argv = ["bench", str(corpus[name].path), "--quick", "--device", "cpu", "--threads", "1"]
    # the layout is under test here, not this machine's timing (a tiny model on a busy CPU
    # is often judged implausible, which is test_bench's business)
    assert main([*argv, "--accept-unstable", "--json", str(out)]) == 0
    equivalence = json.loads(out.read_text())["equivalence"]
    assert equivalence["max_abs_diff"] <= equivalence["tolerance"]


@pytest.mark.parametrize("name", EVALUATED)
def test_eval_a_few_questions(name, corpus, tmp_path):
    argv = ["eval", str(corpus[name].path), "--limit", "3", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "eval")]) == 0
    evaluation = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert evaluation["n"] == 3


@pytest.mark.parametrize("name", ["bert-base-no-prefix", "bert-mlm-tied-bin"])
def test_eval_refuses_a_model_without_a_qa_head(name, corpus, tmp_path, capsys):
    argv = ["eval", str(corpus[name].path), "--limit", "3", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no question-answering head" in err
    assert not (tmp_path / "eval").exists()


def test_report_on_the_legacy_layout(corpus, tmp_path):
    expected = corpus[LEGACY]
    out = tmp_path / "report"
    assert main(["report", str(expected.path), "--limit", "3", "--quick", "--out", str(out),
                 "--device", "cpu", "--accept-unstable"]) == 0  # fmt: skip
    analysis = load_record(Analysis, out / "analysis.json")
    assert analysis.overall.nnz == expected.nnz
    assert set(analysis.buffers) == expected.buffers
    assert main(["audit", str(expected.path), "--card", str(out / "README.md")]) == 0


def test_a_buffer_changes_no_figure(corpus, tmp_path, capsys):
    """The legacy file and the same weights without its buffers give the same record,
    apart from the buffers listed and the file's size."""
    expected = corpus[LEGACY]
    assert main(["analyze", str(expected.path)]) == 0
    shown = capsys.readouterr().out
    assert f"buffers         {', '.join(sorted(expected.buffers))} (not parameters" in shown
    state = torch.load(expected.path / "pytorch_model.bin", weights_only=True)
    bare = {k: v for k, v in state.items() if v.is_floating_point()}
    assert len(bare) == len(state) - len(expected.buffers)
    config = json.loads((expected.path / "config.json").read_text())
    plain = save_checkpoint(tmp_path / "bare", bare, config, fmt="bin", dtype=None)
    with_buffers, without = _analyze(expected.path, tmp_path), _analyze(plain, tmp_path)
    assert set(with_buffers.buffers) == expected.buffers and without.buffers == ()
    same = {"buffers": (), "checkpoint": "", "files": ()}
    assert replace(with_buffers, **same) == replace(without, **same)


_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)
_buffer_names = st.from_regex(r"[a-z]{1,6}(_[a-z]{1,6})?", fullmatch=True).filter(
    lambda n: n not in QUANTIZED_KEYS and n not in QUANTIZED_MODULES and n != "weight"
)


@settings(max_examples=10, deadline=None)
@given(
    buffers=st.dictionaries(
        _buffer_names,
        st.tuples(st.sampled_from(_INT_DTYPES), st.lists(st.integers(0, 5), max_size=3)),
        min_size=1,
        max_size=4,
    ),
    fmt=st.sampled_from(["bin", "safetensors"]),
)
def test_any_integer_or_boolean_buffer_changes_no_figure(corpus, buffers, fmt):
    """Whatever its name, dtype or shape, an integer or boolean tensor is listed, not counted."""
    expected = corpus["t4-bin-pruned_heads"]
    state = torch.load(expected.path / "pytorch_model.bin", weights_only=True)
    extra = {f"bert.buffers.{n}": torch.ones(shape, dtype=d) for n, (d, shape) in buffers.items()}
    config = json.loads((expected.path / "config.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(
            Path(tmp), {**state, **extra}, config, fmt=fmt, dtype=None, tokenizer=False
        )
        a = analyze(path)
    assert set(a.buffers) == expected.buffers | set(extra)
    assert (a.overall.stored, a.overall.dense, a.overall.nnz) == (
        expected.stored,
        expected.dense,
        expected.nnz,
    )
    assert a.linear.nnz == expected.linear_nnz
    assert a.heads.removed == sum(map(len, expected.removed.values()))


# --------------------------------------------------------------------------- quantized


def _quantized(tmp_path: Path, extra: dict[str, torch.Tensor], config: dict) -> Path:
    """A tiny BERT whose file or config carries a quantization scheme's marks."""
    bert = FAMILIES["bert"][1]
    state = transformers.BertModel(transformers.BertConfig(**bert)).state_dict()
    state.update(extra)
    config = {"model_type": "bert", **bert, **config}
    return save_checkpoint(tmp_path / "ckpt", state, config, tokenizer=False, dtype=None)


Q = "encoder.layer.0.attention.self.query"
QUANTIZED = {
    "bitsandbytes-int8": ({f"{Q}.SCB": torch.ones(HIDDEN)}, {}, f"{Q}.SCB"),
    "bitsandbytes-nf4": (
        {f"{Q}.weight.quant_state.bitsandbytes__nf4": torch.zeros(8, dtype=torch.uint8)},
        {},
        "quant_state",
    ),
    "gptq": ({f"{Q}.qweight": torch.zeros(4, HIDDEN, dtype=torch.int32)}, {}, f"{Q}.qweight"),
    "awq-scales": ({f"{Q}.scales": torch.ones(1, HIDDEN, dtype=torch.float16)}, {}, "scales"),
    "fp8-scale": ({f"{Q}.weight_scale": torch.ones(())}, {}, f"{Q}.weight_scale"),
    "fp8-weight": ({f"{Q}.weight": torch.zeros(HIDDEN, HIDDEN).to(torch.float8_e4m3fn)}, {},
                   "float8_e4m3fn"),
    "int8-weight": ({f"{Q}.weight": torch.zeros(HIDDEN, HIDDEN, dtype=torch.int8)}, {}, "int8"),
    "config": ({}, {"quantization_config": {"quant_method": "gptq", "bits": 4}},
               "GPTQ-quantized checkpoint (config.json quantization_config, quant_method 'gptq')"),
}  # fmt: skip


@pytest.mark.parametrize("scheme", QUANTIZED)
@pytest.mark.parametrize("command", ["analyze", "pack", "card"])
def test_quantized_checkpoints_are_refused_naming_the_evidence(scheme, command, tmp_path, capsys):
    extra, config, evidence = QUANTIZED[scheme]
    path = _quantized(tmp_path, extra, config)
    argv = {"pack": [str(tmp_path / "out")], "card": ["--out", str(tmp_path / "out")]}
    assert main([command, str(path), *argv.get(command, [])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.match(r"prunecard: error: .*: (GPTQ-)?quantized checkpoint", err), err
    assert evidence in err
    assert not (tmp_path / "out").exists()
