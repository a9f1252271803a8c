"""Published geometry end to end: the real config.json files of Llama 3.x, Qwen2.5, Mistral,
Phi-3, Gemma 2, Minitron and Sheared-LLaMA (tests/data/configs) and OLMo 2 7B's shape, shrunk by
`decoders.shrink_config` with their shape rules kept (explicit head_dim that is not
hidden / heads, GQA ratios, rope_scaling dicts, tied embeddings with no lm_head key, q/k/v
biases, soft-capping, sliding windows), built by transformers, pruned here, then run
through every command. Expected figures are counted from the tensors saved; the packed
model's logits are compared with transformers' own model of the unpacked weights.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from decoders import PUBLISHED, build_published, published_config, shrink_config
from safetensors.torch import load_file

from analyzer.cli.main import main
from analyzer.publish.report import read_report
from analyzer.runtime.packing import load
from analyzer.weights.families import find_family


def _longrope(config: dict) -> dict:
    """Phi-3's 128k variants' rope_scaling: LongRoPE's per-frequency short and long factors
    (`original_max_position_embeddings` 4096 of 131072). The published lists' 48 values are
    not stored here (see tests/data/README.md): these rise from 1 like theirs."""
    width = config["hidden_size"] // config["num_attention_heads"]
    return {
        **config,
        "max_position_embeddings": 131072,
        "original_max_position_embeddings": 4096,
        "rope_scaling": {
            "type": "longrope",
            "short_factor": [1.0 + i / width for i in range(width // 2)],
            "long_factor": [1.0 + 4 * i / width for i in range(width // 2)],
        },
    }


def _olmo2_7b() -> dict:
    """OLMo 2 7B's geometry (q and k normed over all heads, norms after attention and MLP):
    transformers' Olmo2Config defaults, which its docstring calls "a Olmo2 7B style
    configuration", at the 4096-token context the allenai/OLMo-2-1124-7B model card states.
    Not a published config.json (none is stored here: see tests/data/README.md)."""
    from transformers import Olmo2Config

    fields = Olmo2Config.__annotations__
    config = {k: v for k, v in Olmo2Config().to_dict().items() if k in fields}
    config.update(model_type="olmo2", max_position_embeddings=4096)
    return {"architectures": ["Olmo2ForCausalLM"], **config}


GEOMETRIES = {name: published_config(name) for name in PUBLISHED}
GEOMETRIES["phi-3-longrope"] = _longrope(GEOMETRIES["phi-3-mini-4k-instruct"])
GEOMETRIES["olmo-2-7b"] = _olmo2_7b()


def _parts(config: dict) -> dict:
    c = config
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    width = c.get("head_dim") or c["hidden_size"] // heads
    return dict(heads=heads, kv=kv, group=heads // kv, width=width, ffn=c["intermediate_size"])


def _tied(config: dict) -> bool:
    """Tied embeddings as transformers reads the config (Gemma's default is tied)."""
    from transformers import CONFIG_MAPPING

    return bool(CONFIG_MAPPING[config["model_type"]].from_dict(dict(config)).tie_word_embeddings)


def _views(state: dict, config: dict, layer: int) -> dict[str, torch.Tensor]:
    """v rows, o columns side, gate rows of `layer`: views into Phi-3's fused matrices."""
    p, prefix = _parts(config), f"model.layers.{layer}."
    fused = state.get(prefix + "self_attn.qkv_proj.weight")
    if fused is not None:
        q, kv = p["heads"] * p["width"], p["kv"] * p["width"]
        v, gate = fused[q + kv :], state[prefix + "mlp.gate_up_proj.weight"][: p["ffn"]]
    else:
        v, gate = state[prefix + "self_attn.v_proj.weight"], state[prefix + "mlp.gate_proj.weight"]
    return {"v": v, "o": state[prefix + "self_attn.o_proj.weight"], "gate": gate}


DEAD_CHANNELS = (0, 1, 2, 5)  # layer 0's gate rows


def _prune(config: dict):
    """Layer 0: K/V group 0 dead (its query heads' O columns; where a norm reads Q or K
    over its whole width, those rows of it zero too) and 4 MLP channels (gate rows);
    layer 1: query head `group` (the first of group 1) dead inside a live group when
    groups hold more than one head; every layer: a third of down_proj's weights zeroed at
    random (no column whole: 1 in 3**hidden)."""
    p = _parts(config)

    def prune(state: dict) -> None:
        w = p["width"]
        views = _views(state, config, 0)
        views["o"][:, : p["group"] * w] = 0
        family = find_family(config["model_type"])
        modules = {role: module for module, role in family.roles.items()}
        for norm in family.width_norms:  # OLMo2's q/k norms read group 0's rows: zero them
            rows = p["group"] * w if norm.role == "q" else w
            state[f"model.layers.0.{modules[norm.role]}.weight"][:rows] = 0
        views["gate"][list(DEAD_CHANNELS)] = 0
        if p["group"] > 1:
            _views(state, config, 1)["o"][:, p["group"] * w : (p["group"] + 1) * w] = 0
        generator = torch.Generator().manual_seed(1)
        for layer in range(config["num_hidden_layers"]):
            down = state[f"model.layers.{layer}.mlp.down_proj.weight"]
            down[torch.rand(down.shape, generator=generator) < 1 / 3] = 0

    return prune


def _expected(folder, config: dict) -> dict:
    """Figures counted from the saved tensors and what `_prune` zeroed."""
    state = load_file(folder / "model.safetensors")
    linear = [t for n, t in state.items() if ".layers." in n and t.ndim == 2]
    p, layers = _parts(config), config["num_hidden_layers"]
    return dict(
        nnz=sum(int(t.count_nonzero()) for t in linear),
        dense=sum(t.numel() for t in linear),
        kv_total=p["kv"] * layers,
        units_kept=p["ffn"] * layers - len(DEAD_CHANNELS),
        lm_head="lm_head.weight" in state,
    )


@pytest.fixture(scope="module", params=sorted(GEOMETRIES))
def published(request, tmp_path_factory):
    """A shrunk published geometry, pruned, stored in bf16 as published models are."""
    config = shrink_config(GEOMETRIES[request.param])
    root = tmp_path_factory.mktemp(request.param)
    folder = build_published(
        root / request.param, config, prune=_prune(config), dtype=torch.bfloat16
    )
    return request.param, config, folder, root


def _ids(config: dict, length: int = 96) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(1000, config["vocab_size"], (2, length), generator=generator)


def _reference_logits(folder, ids: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.inference_mode():
        return model(input_ids=ids).logits


def test_the_shrunk_config_keeps_the_published_rules():
    for name, published_ in GEOMETRIES.items():
        small = shrink_config(published_)
        assert set(small) == set(published_), name
        p0, p = _parts(published_), _parts(small)
        assert p["group"] == p0["group"], name
        explicit = published_.get("head_dim")
        assert (p["heads"] * p["width"] != small["hidden_size"]) == (
            explicit is not None and p0["heads"] * p0["width"] != published_["hidden_size"]
        ), name
        for key in ("tie_word_embeddings", "attn_logit_softcapping", "final_logit_softcapping"):
            assert small.get(key) == published_.get(key), name
        rope0, rope = published_.get("rope_scaling"), small.get("rope_scaling")
        assert (rope0 is None) == (rope is None), name
        if rope0:
            kind = {r.get("rope_type", r.get("type")) for r in (rope0, rope)}
            assert len(kind) == 1, name
        assert (small.get("sliding_window") is None) == (published_.get("sliding_window") is None)
    gemma = shrink_config(GEOMETRIES["gemma-2-2b"])
    assert gemma["head_dim"] * gemma["num_attention_heads"] < gemma["hidden_size"]
    assert gemma["query_pre_attn_scalar"] == gemma["head_dim"]  # 256 of head_dim 256
    minitron = shrink_config(GEOMETRIES["llama-3.1-minitron-4b-width-base"])
    assert minitron["head_dim"] * minitron["num_attention_heads"] > minitron["hidden_size"]
    depth = shrink_config(GEOMETRIES["llama-3.1-minitron-4b-depth-base"])
    assert depth["num_hidden_layers"] < minitron["num_hidden_layers"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_packed_logits_equal_transformers_model_of_the_unpacked_weights(name, dtype, tmp_path):
    """In fp32 to 1e-4, whatever dtype the checkpoint is stored in (both upcast to fp32:
    the stored values are exact there, so only the order of the sums differs)."""
    config = shrink_config(GEOMETRIES[name])
    folder = build_published(tmp_path / "model", config, prune=_prune(config), dtype=dtype)
    assert main(["pack", str(folder), str(tmp_path / "packed")]) == 0
    ids = _ids(config)
    reference = _reference_logits(folder, ids)
    with torch.inference_mode():
        packed = load(tmp_path / "packed", dtype=torch.float32)(input_ids=ids).logits
        stored = load(folder, layout="packed", dtype=torch.float32)(input_ids=ids).logits
    assert float((packed - reference).abs().max()) < 1e-4
    assert float((stored - reference).abs().max()) < 1e-4

    packed_config = json.loads((tmp_path / "packed" / "config.json").read_text())
    for key in (
        "rope_scaling",
        "rope_theta",
        "head_dim",
        "sliding_window",
        "tie_word_embeddings",
        "attn_logit_softcapping",
        "final_logit_softcapping",
        "query_pre_attn_scalar",
    ):
        assert packed_config.get(key) == config.get(key), key
    p = _parts(config)
    assert packed_config["prunecard_packing"]["kv_heads"][0] == p["kv"] - 1
    tensors = load_file(tmp_path / "packed" / "model.safetensors")
    assert ("lm_head.weight" in tensors) == (not _tied(config))


def test_every_command_runs_and_states_the_figures_of_the_weights(published, capsys):
    name, config, folder, root = published
    want, p = _expected(folder, config), _parts(config)
    assert want["lm_head"] == (not _tied(config))

    assert main(["analyze", str(folder), "--json", str(root / "analysis.json")]) == 0
    analysis = json.loads((root / "analysis.json").read_text())
    assert analysis["linear"]["nnz"] == want["nnz"]
    assert analysis["linear"]["dense"] == want["dense"]
    assert analysis["heads"]["kv_total"] == want["kv_total"]
    assert analysis["heads"]["kv_removed"] == 1
    assert analysis["ffn"]["units_kept"] == want["units_kept"]
    assert analysis["head_dim"] == p["width"]

    assert main(["pack", str(folder), str(root / "packed")]) == 0
    packed = load_file(root / "packed" / "model.safetensors")
    k = packed.get("model.layers.0.self_attn.k_proj.weight")
    if k is not None:
        assert k.shape[0] == (p["kv"] - 1) * p["width"]

    bench = root / "bench.json"
    args = ["bench", str(folder), "--quick", "--decode-batch", "1", "--no-profile"]
    assert main([*args, "--accept-unstable", "--json", str(bench)]) == 0
    timed = json.loads(bench.read_text())
    stored_tensors = load_file(folder / "model.safetensors")
    assert timed["dense_parameters"] == sum(t.numel() for t in stored_tensors.values())
    assert timed["packed_parameters"] == sum(t.numel() for t in packed.values())
    assert timed["equivalence"]["max_abs_diff"] <= timed["equivalence"]["tolerance"]
    # the FLOP model, from the tensors: every layer matrix once per token (2 FLOPs a weight),
    # scores and context 2 x 2 x tokens x context x (query rows = heads x head_dim) a layer
    (shape,) = timed["shapes"]
    tokens = shape["batch"] * shape["seq"]
    query_rows = p["heads"] * p["width"]  # from head_dim, never hidden / heads
    flops = 2 * tokens * want["dense"]
    flops += 4 * tokens * shape["seq"] * query_rows * config["num_hidden_layers"]
    assert shape["dense_gflop"] == pytest.approx(flops / 1e9, rel=1e-12)

    ppl = root / "perplexity.json"
    assert main(["eval", str(folder), "--limit-tokens", "200", "--json", str(ppl)]) == 0
    stored = json.loads(ppl.read_text())
    assert stored["tokens"] == 200 and math.isfinite(stored["perplexity"])
    packed_ppl = root / "perplexity-packed.json"
    args = ["eval", str(folder), "--limit-tokens", "200", "--packed", "--json", str(packed_ppl)]
    assert main(args) == 0
    assert json.loads(packed_ppl.read_text())["perplexity"] == pytest.approx(
        stored["perplexity"], rel=1e-2
    )

    out = root / "report"
    args = ["report", str(folder), "--out", str(out), "--no-bench", "--limit-tokens", "200"]
    assert main([*args, "--name", name]) == 0
    report = read_report(out)
    assert report.analysis.linear.nnz == want["nnz"]
    card = (out / "README.md").read_text()
    assert f"({want['nnz']:,} of {want['dense']:,})" in card

    card_out = root / "card"
    args = ["card", str(folder), "--out", str(card_out), "--analysis", str(root / "analysis.json")]
    assert main([*args, "--bench", str(bench), "--perplexity", str(ppl), "--name", name]) == 0
    assert f"({want['nnz']:,} of {want['dense']:,})" in (card_out / "README.md").read_text()

    capsys.readouterr()
    assert main(["audit", str(folder), "--card", str(out / "README.md")]) == 0
    assert "0 mismatch" in capsys.readouterr().out

    assert main(["site", str(out), "--out", str(root / "site")]) == 0
    (page,) = (root / "site" / "site" / "models").glob("*/index.html")  # the name, slugged
    assert f"{want['nnz']:,}" in page.read_text()


def test_a_width_pruned_minitron_is_compared_with_its_llama_base(tmp_path):
    """Minitron-4B-Width (hidden 3072, 32 heads of head_dim 128: 4096 wide attention) against
    Llama-3.1-8B, both shrunk alike: the base's parameter count is the model transformers
    builds from the base's config, and head_dim stays explicit (8, not 48 / 8 = 6)."""
    from transformers import CONFIG_MAPPING, AutoModelForCausalLM

    from analyzer import analyze

    minitron = shrink_config(GEOMETRIES["llama-3.1-minitron-4b-width-base"])
    base = shrink_config(GEOMETRIES["llama-3.1-8b"])
    folder = build_published(tmp_path / "minitron", minitron, dtype=torch.bfloat16)
    (tmp_path / "base.json").write_text(json.dumps(base))
    analysis = analyze(folder, base=tmp_path / "base.json")
    base_model = AutoModelForCausalLM.from_config(CONFIG_MAPPING["llama"].from_dict(dict(base)))
    assert analysis.base.base_parameters == sum(p.numel() for p in base_model.parameters())
    changes = {c.what: (c.base, c.model) for c in analysis.base.changes}
    assert changes["hidden size"] == (base["hidden_size"], minitron["hidden_size"])
    assert changes["head dim"] == (8, 8)
    assert analysis.head_dim == 8 != minitron["hidden_size"] // minitron["num_attention_heads"]
