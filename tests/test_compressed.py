"""compressed-tensors checkpoints, every format the library writes, through every command.

A small grouped-query Llama is pruned here (2:4 by magnitude, or 50% unstructured), with a
dead K/V group in layer 0 and dead MLP channels in layer 1, then compressed by the
compressed-tensors library itself (`tests/compressed.py`) in each format and combination.
Every expected figure is counted here from the weights before compression, or, for
quantized formats, from the dequantized values `tests/compressed.py` computes by the
quantization formulas (never by the code under test).
"""

from __future__ import annotations

import json
import sys

import pytest
import torch
from compressed import compress, scheme_for, targeted
from decoders import build_decoder, layer_weight
from safetensors import safe_open
from safetensors.torch import load_file

from analyzer.cli.main import main
from analyzer.records import Analysis, Perplexity, load_record
from analyzer.runtime.packing import load
from analyzer.weights.checkpoint import open_checkpoint
from analyzer.weights.sparsity import analyze

HEADS, KV, HEAD_DIM, INTERMEDIATE = 8, 2, 8, 96
SIZES = dict(
    layers=2, hidden=64, heads=HEADS, kv_heads=KV, intermediate=INTERMEDIATE, head_dim=HEAD_DIM
)
GROUP = HEADS // KV
DEAD_CHANNELS = 8  # layer 1's first MLP channels: zero columns of down_proj

# format -> how it is built: the sparsity_config format, the quantization scheme, the pruning
FORMATS = {
    "dense-2of4": dict(sparsity="dense"),
    "sparse-bitmask": dict(sparsity="sparse-bitmask", pruning="unstructured"),
    "sparse-24-bitmask": dict(sparsity="sparse-24-bitmask"),
    "fp8": dict(quantization="fp8"),
    "int8": dict(quantization="int8"),
    "w4a16": dict(quantization="w4a16"),
    "w4a16-asym": dict(quantization="w4a16-asym"),
    "w8a16-channel": dict(quantization="w8a16-channel"),
    "2of4-fp8": dict(sparsity="sparse-24-bitmask", quantization="fp8"),
    "2of4-w4a16": dict(sparsity="dense", quantization="w4a16"),
    "bitmask-int8": dict(sparsity="sparse-bitmask", quantization="int8", pruning="unstructured"),
    "compression_config": dict(sparsity="sparse-24-bitmask", field="compression_config"),
}
# schemes transformers itself decompresses on a CPU with this compressed-tensors: weights
# only (activation-quantized schemes also quantize activations in transformers' forward)
TRANSFORMERS_LOADS = {"w4a16", "w8a16-channel", "2of4-w4a16"}
IDS = torch.tensor([[101, 2023, 2003, 1037, 2460, 3231, 2000, 2156, 102]])


def _structure(state: dict[str, torch.Tensor]) -> None:
    """Layer 0 loses K/V group 0 (the output columns of its query heads), layer 1 its first
    MLP channels (their down_proj columns)."""
    layer_weight(state, 0, "self_attn.o_proj")[:, : GROUP * HEAD_DIM] = 0
    layer_weight(state, 1, "mlp.down_proj")[:, :DEAD_CHANNELS] = 0


def _prune_2of4(state: dict[str, torch.Tensor]) -> None:
    for name, weight in state.items():
        if targeted(name, weight):
            groups = weight.view(-1, 4)
            groups.scatter_(1, groups.abs().argsort(dim=1)[:, :2], 0)
    _structure(state)


def _prune_unstructured(state: dict[str, torch.Tensor], share: float = 0.5) -> None:
    for name, weight in state.items():
        if targeted(name, weight):
            cut = weight.abs().flatten().kthvalue(int(share * weight.numel())).values
            weight[weight.abs() <= cut] = 0
    _structure(state)


@pytest.fixture(scope="module")
def dense_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("dense")
    return {
        "2:4": build_decoder(root / "2of4", "llama", prune=_prune_2of4, **SIZES),
        "unstructured": build_decoder(root / "u50", "llama", prune=_prune_unstructured, **SIZES),
    }


@pytest.fixture(scope="module", params=list(FORMATS))
def built(request, dense_models, tmp_path_factory):
    spec = dict(FORMATS[request.param])
    pruning = spec.pop("pruning", "2:4")
    if "sparsity" in spec:
        spec["structure"] = pruning
    out = tmp_path_factory.mktemp("compressed") / request.param
    return request.param, compress(dense_models[pruning], out, **spec)


def _analysis(path, tmp_path) -> Analysis:
    assert main(["analyze", str(path), "--json", str(tmp_path / "analysis.json")]) == 0
    return load_record(Analysis, tmp_path / "analysis.json")


def _is_2of4(t: torch.Tensor) -> bool:
    return bool(((t != 0).view(-1, 4).sum(dim=1) <= 2).all())


def _reference(dense_folder, state: dict[str, torch.Tensor]):
    """transformers' own model of the decompressed weights the test computed."""
    from transformers import AutoConfig, AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(dense_folder)).eval()
    model.load_state_dict(state)
    return model


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def test_analyze_measures_the_decompressed_weights(built, tmp_path):
    name, b = built
    expected = b.expected
    a = _analysis(b.path, tmp_path)
    linear = {n: t for n, t in expected.items() if targeted(n, t)}
    assert len(linear) == 14  # 2 layers x q, k, v, o, gate, up, down
    assert {m.name: m.nnz for m in a.matrices if m.name in linear} == {
        n: int(t.count_nonzero()) for n, t in linear.items()
    }
    assert a.linear.nnz == sum(int(t.count_nonzero()) for t in linear.values())
    assert a.overall.nnz == sum(int(t.count_nonzero()) for t in expected.values())
    assert a.overall.stored == sum(t.numel() for t in expected.values())
    assert a.dtype == "float32"
    # quantization never turns a zero into a non-zero: a 2:4 model stays 2:4
    kinds = {m.name: m.pattern.kind for m in a.matrices if m.name in linear}
    if FORMATS[name].get("pruning") == "unstructured":
        assert not any(_is_2of4(t) for t in linear.values())
        assert "2:4" not in kinds.values()
    else:
        assert all(_is_2of4(t) for t in linear.values())
        assert set(kinds.values()) == {"2:4"}

    o_proj = linear["model.layers.0.self_attn.o_proj.weight"]
    dead = [h for h in range(HEADS) if not o_proj[:, h * HEAD_DIM : (h + 1) * HEAD_DIM].any()]
    assert dead == list(range(GROUP))
    layer0 = a.heads.layers[0]
    assert layer0.removed == tuple(dead) and layer0.kv_removed == (0,)
    down = linear["model.layers.1.mlp.down_proj.weight"]
    alive = sum(bool(down[:, c].any()) for c in range(INTERMEDIATE))
    assert alive == INTERMEDIATE - DEAD_CHANNELS
    assert a.layers[1].ffn_units_kept == alive

    c = a.compression
    assert c is not None and c.method == "compressed-tensors"
    assert c.config_field == FORMATS[name].get("field", "quantization_config")
    assert c.sparsity_format == FORMATS[name].get("sparsity", "")
    assert c.quantized_matrices == len(b.quantized)
    assert c.sparse_matrices == len(b.stored_sparse)
    with safe_open(str(b.path / "model.safetensors"), "pt") as f:
        stored = sum(f.get_tensor(k).numel() * f.get_tensor(k).element_size() for k in f.keys())  # noqa: SIM118
    assert c.stored_bytes == stored
    assert c.decompressed_bytes == sum(4 * t.numel() for t in expected.values())
    if "quantization" in FORMATS[name]:
        scheme = scheme_for(FORMATS[name]["quantization"])
        (group,) = c.groups
        assert (group.num_bits, group.type, group.strategy) == (
            scheme.weights.num_bits,
            scheme.weights.type,
            scheme.weights.strategy,
        )
        assert group.group_size == (scheme.weights.group_size or 0)
        assert group.symmetric == scheme.weights.symmetric
        assert group.matrices == 14 and c.ignore == ("lm_head",)
    else:
        assert c.groups == ()
    fields = {k.field for k in c.claims}
    if "sparsity" in FORMATS[name]:
        assert {"global_sparsity", "sparsity_structure", "sparsity targets"} <= fields
    if "quantization" in FORMATS[name]:
        assert {"quantization targets", "quantization ignore"} <= fields
    assert all(k.verdict == "matches" for k in c.claims), c.claims
    assert analyze(b.path) == a  # the record round-trips through its JSON


def test_tensors_decompress_to_the_quantized_values_and_keep_every_zero(built):
    """iter_tensors yields the logical tensors one at a time, decompressed: the values the
    quantization formulas give, zero exactly where the weights before compression were
    zero or rounded to zero (symmetric: q = 0; asymmetric: q = zero point; fp8: 0)."""
    _, b = built
    checkpoint = open_checkpoint(b.path)
    assert set(checkpoint.tensors) == set(b.expected)
    for ref, tensor in checkpoint.iter_tensors():
        want = b.expected[ref.name]
        assert ref.shape == tuple(want.shape) and str(tensor.dtype) == f"torch.{ref.dtype}"
        assert torch.equal(tensor == 0, want == 0), ref.name
        torch.testing.assert_close(tensor, want, rtol=1e-6, atol=0)
    name = "model.layers.1.mlp.down_proj.weight"
    assert torch.equal(checkpoint.load(name), b.expected[name])


def test_load_pack_and_eval_give_the_decompressed_model(built, dense_models, tmp_path, capsys):
    name, b = built
    pruning = FORMATS[name].get("pruning", "2:4")
    reference = _logits(_reference(dense_models[pruning], b.expected))
    torch.testing.assert_close(_logits(load(b.path)), reference, rtol=0, atol=1e-5)
    if name in TRANSFORMERS_LOADS:
        from transformers import AutoModelForCausalLM

        theirs = AutoModelForCausalLM.from_pretrained(b.path, dtype=torch.float32).eval()
        torch.testing.assert_close(_logits(load(b.path)), _logits(theirs), rtol=0, atol=1e-5)

    packed = tmp_path / "packed"
    assert main(["pack", str(b.path), str(packed)]) == 0
    config = json.loads((packed / "config.json").read_text())
    assert "quantization_config" not in config and "compression_config" not in config
    torch.testing.assert_close(_logits(load(packed)), reference, rtol=0, atol=1e-4)
    torch.testing.assert_close(_logits(load(b.path, layout="packed")), reference, rtol=0, atol=1e-4)

    plain = tmp_path / "plain"
    _reference(dense_models[pruning], b.expected).save_pretrained(plain)
    for file in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (b.path / file).is_file():
            (plain / file).write_bytes((b.path / file).read_bytes())
    figures = []
    for folder in (b.path, plain):
        out = tmp_path / f"{folder.name}-ppl.json"
        assert main(["eval", str(folder), "--limit-tokens", "200", "--json", str(out)]) == 0
        figures.append(load_record(Perplexity, out).perplexity)
    assert figures[0] == pytest.approx(figures[1], rel=1e-5)


def test_card_site_and_audit_take_every_format(dense_models, tmp_path_factory, capsys):
    """One card per format (stored bytes, savings, scheme, config.json's claims), all of
    them on one site, and the audit of each against its weights passes."""
    root = tmp_path_factory.mktemp("cards")
    cards = []
    for name, spec in FORMATS.items():
        spec = dict(spec)
        pruning = spec.pop("pruning", "2:4")
        if "sparsity" in spec:
            spec["structure"] = pruning
        b = compress(dense_models[pruning], root / name, **spec)
        card = root / f"{name}-card"
        assert main(["card", str(b.path), "--out", str(card), "--name", f"tiny-{name}"]) == 0
        text = (card / "README.md").read_text()
        with safe_open(str(b.path / "model.safetensors"), "pt") as f:
            stored = sum(f.get_tensor(k).numel() * f.get_tensor(k).element_size() for k in f.keys())  # noqa: SIM118
        decompressed = sum(4 * t.numel() for t in b.expected.values())
        assert "### How the weights are stored" in text
        assert f"| {stored / 1e6:.1f} MB | {decompressed / 1e6:.1f} MB |" in text
        assert "| global_sparsity |" in text or "sparsity" not in spec
        capsys.readouterr()
        assert main(["audit", str(b.path), "--card", str(card / "README.md")]) == 0, name
        out = capsys.readouterr().out
        assert "0 mismatch" in out
        assert ("config sparsity_structure" in out) == ("sparsity" in spec)
        cards.append(card)
    assert main(["site", *map(str, cards), "--out", str(root / "site")]) == 0
    page = (root / "site" / "site" / "models" / "tiny-2of4-w4a16" / "index.html").read_text()
    assert "How the weights are stored" in page and "pack-quantized" in page


@pytest.mark.parametrize("name", ["2of4-fp8", "2of4-w4a16"])
def test_report_benches_the_sparse_and_quantized_forms(name, dense_models, tmp_path):
    """The published 2:4 forms through `report` (analyze, pack, bench --quick, eval, card)."""
    b = compress(dense_models["2:4"], tmp_path / name, **FORMATS[name], structure="2:4")
    out = tmp_path / "report"
    args = ["report", str(b.path), "--out", str(out), "--quick", "--accept-unstable"]
    assert main([*args, "--limit-tokens", "200", "--name", f"tiny-{name}"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["bench"]["quick"] is True
    assert report["analysis"]["compression"]["sparsity_format"] == FORMATS[name]["sparsity"]
    assert main(["audit", str(b.path), "--card", str(out / "README.md")]) == 0


def test_a_config_claim_the_weights_contradict_is_a_mismatch(dense_models, tmp_path, capsys):
    """config.json says half the parameters are zero and every matrix is 2:4; the weights
    are 50% unstructured in the linear layers only: both claims fail, in the analysis and
    in the audit."""
    b = compress(
        dense_models["unstructured"],
        tmp_path / "claims",
        sparsity="sparse-bitmask",
        global_sparsity=0.5,
        structure="2:4",
    )
    a = _analysis(b.path, tmp_path)
    zeros = sum(t.numel() - int(t.count_nonzero()) for t in b.expected.values())
    measured = zeros / sum(t.numel() for t in b.expected.values())
    assert measured < 0.3  # the embeddings are dense
    claims = {k.field: k for k in a.compression.claims}
    assert claims["global_sparsity"].verdict == "does not match"
    assert claims["global_sparsity"].measured == f"{measured:.6f}"
    assert claims["sparsity_structure"].verdict == "does not match"
    assert claims["sparsity targets"].verdict == "matches"

    assert main(["card", str(b.path), "--out", str(tmp_path / "card")]) == 0
    capsys.readouterr()
    assert main(["audit", str(b.path), "--card", str(tmp_path / "card" / "README.md")]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "config " in line]
    verdicts = {line.split()[1] + " " + line.split()[2]: line.split()[-1] for line in lines}
    assert verdicts.get("config global_sparsity") == "mismatch", lines
    assert verdicts.get("config sparsity_structure") == "mismatch", lines


def test_rounding_zeros_in_an_ignored_matrix_leave_the_claims_true(tmp_path):
    """Three exact zeros in the ignored lm_head (bf16 rounding leaves a few in any large
    matrix) are not pruning: it is still dense, so `ignore` and `targets` hold."""

    def prune(state: dict[str, torch.Tensor]) -> None:
        _prune_2of4(state)
        state["lm_head.weight"].view(-1)[[5, 700, 9000]] = 0.0

    dense = build_decoder(tmp_path / "dense", "llama", prune=prune, **SIZES)
    lm_head = load_file(dense / "model.safetensors")["lm_head.weight"]
    assert lm_head.numel() - int(lm_head.count_nonzero()) == 3
    b = compress(dense, tmp_path / "stray", sparsity="sparse-24-bitmask")
    a = _analysis(b.path, tmp_path)
    head = next(m for m in a.matrices if m.name == "lm_head.weight")
    assert head.nnz == lm_head.numel() - 3
    claims = {k.field: k.verdict for k in a.compression.claims}
    assert claims["sparsity ignore"] == "matches"
    assert claims["sparsity targets"] == "matches"


def _config_only(tmp_path, spec: dict, field: str = "quantization_config"):
    """A small Llama whose config.json carries `spec`: the refusal comes from config.json."""
    model = build_decoder(tmp_path / "model", "llama", **SIZES)
    config = json.loads((model / "config.json").read_text())
    config[field] = spec
    (model / "config.json").write_text(json.dumps(config))
    return model


REFUSED = {
    "marlin-24": (
        {"quant_method": "compressed-tensors", "format": "marlin-24", "config_groups": {}},
        "compressed-tensors format 'marlin-24' cannot be decoded",
    ),
    "gptq": ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "GPTQ-quantized checkpoint"),
    "awq": ({"quant_method": "awq", "bits": 4, "version": "gemm"}, "AWQ-quantized checkpoint"),
    "bitsandbytes": (
        {"quant_method": "bitsandbytes", "load_in_4bit": True},
        "bitsandbytes-quantized checkpoint",
    ),
    "fp8": (
        {"quant_method": "fp8", "weight_block_size": [128, 128]},
        "fp8 (block scales)-quantized checkpoint",
    ),
}


@pytest.mark.parametrize("scheme", REFUSED)
@pytest.mark.parametrize("command", ["analyze", "pack"])
def test_undecodable_schemes_are_refused_in_one_line(scheme, command, tmp_path, capsys):
    spec, words = REFUSED[scheme]
    model = _config_only(tmp_path, spec)
    extra = [str(tmp_path / "out")] if command == "pack" else []
    capsys.readouterr()
    assert main([command, str(model), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"prunecard: error: {model / 'config.json'}: {words}"), err
    assert "analyze the" in err  # what to do instead
    if scheme == "marlin-24":  # a 2:4 checkpoint is never called "quantized checkpoint"
        assert "quantized checkpoint" not in err
    assert not (tmp_path / "out").exists()


def test_marlin_24_tensors_are_refused_naming_the_format(dense_models, tmp_path, capsys):
    """Marlin-24's stored parts (weight_packed, scale_packed, meta) under a config that
    calls its format something else are refused the same way."""
    b = compress(dense_models["2:4"], tmp_path / "w4", quantization="w4a16")
    from safetensors.torch import load_file, save_file

    state = load_file(b.path / "model.safetensors")
    module = "model.layers.0.mlp.up_proj"
    state[f"{module}.scale_packed"] = state.pop(f"{module}.weight_scale")
    state[f"{module}.meta"] = torch.zeros(4, 4, dtype=torch.int16)
    save_file(state, b.path / "model.safetensors")
    capsys.readouterr()
    assert main(["analyze", str(b.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'marlin-24' cannot be decoded" in err, err


def test_without_the_library_the_command_says_what_to_install(
    dense_models, tmp_path, capsys, monkeypatch
):
    b = compress(dense_models["2:4"], tmp_path / "c", sparsity="sparse-24-bitmask")
    monkeypatch.setitem(sys.modules, "compressed_tensors", None)
    monkeypatch.setitem(sys.modules, "compressed_tensors.quantization", None)
    capsys.readouterr()
    assert main(["analyze", str(b.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith("(pip install 'prunecard[compressed]')"), err


def test_a_stated_shape_the_stored_parts_do_not_hold_is_refused(dense_models, tmp_path, capsys):
    """A hostile `shape` tensor (a billion columns) would make decompression allocate
    terabytes: it must fit the stored bitmask, or the checkpoint is refused in one line."""
    from safetensors.torch import load_file, save_file

    b = compress(dense_models["2:4"], tmp_path / "c", sparsity="sparse-24-bitmask")
    state = load_file(b.path / "model.safetensors")
    state["model.layers.0.mlp.up_proj.shape"] = torch.tensor([[96], [10**9]])
    save_file(state, b.path / "model.safetensors")
    capsys.readouterr()
    assert main(["analyze", str(b.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "up_proj.weight: stated shape [96, 1000000000] does not fit its stored bitmask" in err


def test_a_sharded_checkpoint_decodes_modules_split_across_shards(dense_models, tmp_path):
    """llm-compressor shards large models; a module's parts may land in two shards (here
    every other stored tensor goes to the second), and each is still decoded whole."""
    from safetensors.torch import load_file, save_file

    b = compress(
        dense_models["2:4"], tmp_path / "c", sparsity="sparse-24-bitmask", quantization="fp8"
    )
    state = load_file(b.path / "model.safetensors")
    names = sorted(state)
    shards = {
        "model-00001-of-00002.safetensors": names[::2],
        "model-00002-of-00002.safetensors": names[1::2],
    }
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, b.path / file, metadata={"format": "pt"})
    (b.path / "model.safetensors").unlink()
    weight_map = {k: file for file, keys in shards.items() for k in keys}
    index = {"metadata": {}, "weight_map": weight_map}
    (b.path / "model.safetensors.index.json").write_text(json.dumps(index))
    split = [
        m for m in b.quantized if len({weight_map[k] for k in names if k.startswith(m[:-6])}) > 1
    ]
    assert split  # some module's parts lie in both shards
    checkpoint = open_checkpoint(b.path)
    for ref, tensor in checkpoint.iter_tensors():
        assert torch.equal(tensor, b.expected[ref.name]), ref.name
    a = analyze(b.path)
    assert a.linear.nnz == sum(
        int(t.count_nonzero()) for n, t in b.expected.items() if targeted(n, t)
    )


def test_a_quantization_config_the_library_rejects_is_one_line(tmp_path, capsys):
    model = _config_only(
        tmp_path,
        {"quant_method": "compressed-tensors", "format": "pack-quantized",
         "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": "four"}}}},
    )  # fmt: skip
    capsys.readouterr()
    assert main(["analyze", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "config.json: compressed-tensors quantization_config rejected (" in err, err


def test_kv_cache_scales_are_stored_bytes_never_parameters(dense_models, tmp_path):
    """llm-compressor's kv_cache_scheme stores `k_scale` / `v_scale` on the attention
    modules: bytes as stored, but not weights of the model."""
    from safetensors.torch import load_file, save_file

    b = compress(dense_models["2:4"], tmp_path / "c", quantization="fp8")
    before = analyze(b.path)
    state = load_file(b.path / "model.safetensors")
    for layer in range(SIZES["layers"]):
        for name in ("k_scale", "v_scale"):
            state[f"model.layers.{layer}.self_attn.{name}"] = torch.ones(())
    save_file(state, b.path / "model.safetensors")
    after = analyze(b.path)
    assert after.overall == before.overall
    assert not any(m.name.endswith("_scale") for m in after.matrices)
    added = 4 * 2 * SIZES["layers"]  # float32 scalars
    assert after.compression.stored_bytes == before.compression.stored_bytes + added
    assert after.compression.decompressed_bytes == before.compression.decompressed_bytes
