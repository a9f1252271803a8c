"""A decoder's config.json that contradicts its weights is refused in one line by every
command that reads it, before a model is built: never a traceback, never a model allocated
at the config's sizes, never a perplexity of layers transformers filled with random values."""

from __future__ import annotations

import json
import shutil

import pytest
from badio import one_line_error
from decoders import build_decoder

from analyzer.cli.main import main
from analyzer.runtime.packing import load, pack

SIZES = dict(layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    return build_decoder(tmp_path_factory.mktemp("hostile") / "llama", "llama", **SIZES)


def _edited(llama, tmp_path, **changes):
    folder = tmp_path / "edited"
    shutil.copytree(llama, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **changes}))
    return folder


COMMANDS = {
    "analyze": [],
    "pack": ["{out}"],
    "eval": ["--limit-tokens", "50"],
    "bench": ["--quick", "--accept-unstable"],
}
CONTRADICTIONS = [
    # (config change, words of the one-line error)
    ({"intermediate_size": 10**9}, "mlp.down_proj.weight has shape [32, 64]"),
    ({"head_dim": 100_000}, "k_proj.weight has shape [16, 32]"),
    ({"num_hidden_layers": 5}, "layer count is 5, but layer 2 has no q, k, v, o"),
    ({"num_key_value_heads": 3}, "not a multiple of num_key_value_heads 3"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("changes", "problem"), CONTRADICTIONS, ids=lambda c: str(c)[:30])
def test_a_config_that_contradicts_the_weights_is_refused(
    llama, tmp_path, capsys, command, changes, problem
):
    folder = _edited(llama, tmp_path, **changes)
    out = tmp_path / "out"
    args = [a.format(out=out) for a in COMMANDS[command]]
    line = one_line_error(main([command, str(folder), *args]), capsys.readouterr())
    assert problem in line and str(folder) in line
    assert not out.exists()


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_a_vocabulary_size_other_than_the_stored_tables_is_refused(
    llama, tmp_path, capsys, command
):
    folder = _edited(llama, tmp_path, vocab_size=1000)
    line = one_line_error(main([command, str(folder), *COMMANDS[command]]), capsys.readouterr())
    assert "vocab_size is 1,000 but the stored" in line and "has 30,522 rows" in line


def test_a_packed_checkpoint_is_built_at_its_stored_widths(llama, tmp_path, capsys):
    """A packed checkpoint's config states the dense FFN width, which the file does not
    hold: loading builds the stored widths (a config claiming billions of units costs
    nothing), and rebuilding the dense model is refused when it cannot fit in memory."""
    pack(llama, tmp_path / "packed")
    config = json.loads((tmp_path / "packed" / "config.json").read_text())
    widths = config["prunecard_packing"]["intermediate_sizes"]
    hostile = _edited(tmp_path / "packed", tmp_path, intermediate_size=10**12)

    model = load(hostile)  # as stored: a dense build would need 10^12 x 32 x 3 x 4 bytes
    assert [layer.mlp.up_proj.out_features for layer in model.model.layers] == widths
    assert model.config.intermediate_size == 10**12  # the config still says what it said

    code = main(["bench", str(hostile), "--quick", "--accept-unstable"])
    line = one_line_error(code, capsys.readouterr(), str(hostile))
    assert "would not fit in this machine's" in line


def test_a_generic_causal_lm_missing_a_weight_is_refused(tmp_path, capsys):
    """OPT is a causal LM prunecard has no family for: transformers builds it, and would
    fill a weight the files lack with random values; eval refuses instead."""
    from decoders import VOCAB
    from safetensors.torch import load_file, save_file
    from transformers import OPTConfig, OPTForCausalLM

    from analyzer.runtime.demo import minilm_path
    from analyzer.weights.checkpoint import copy_tokenizer_files

    config = OPTConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, ffn_dim=64,
        num_attention_heads=4, max_position_embeddings=128, word_embed_proj_dim=32,
    )  # fmt: skip
    folder = tmp_path / "opt"
    OPTForCausalLM(config).save_pretrained(folder)
    copy_tokenizer_files(minilm_path(), folder)
    assert main(["eval", str(folder), "--limit-tokens", "50"]) == 0
    capsys.readouterr()

    state = load_file(folder / "model.safetensors")
    gone = next(n for n in state if n.endswith("layers.1.fc1.weight"))
    save_file({n: t for n, t in state.items() if n != gone}, str(folder / "model.safetensors"))
    line = one_line_error(main(["eval", str(folder), "--limit-tokens", "50"]), capsys.readouterr())
    assert f"the weights lack {gone}, which config.json's model needs" in line
