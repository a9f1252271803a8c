"""llm-compressor's recipe.yaml: parsed from the real files `oneshot` wrote
(tests/data/llmcompressor), checked against plain safetensors checkpoints pruned here, shown on
the card, used by the audit, and refused in one line when hostile."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from badio import one_line_error
from conftest import DATA
from decoders import build_decoder

from analyzer.cli.main import main
from analyzer.errors import PrunecardError
from analyzer.pipeline import build_report
from analyzer.publish.card import CardOptions, render_card
from analyzer.records import Analysis, RecipeModifier, from_dict, to_dict
from analyzer.weights.recipe import read_recipe
from analyzer.weights.sparsity import analyze

FIXTURES = DATA / "llmcompressor"
LINEARS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)
LAYERS = 2
SPARSEGPT_24 = RecipeModifier(
    type="SparseGPTModifier",
    stage="default",
    sparsity=0.5,
    mask_structure="2:4",
    targets=("Linear",),
    ignore=("re:.*lm_head",),
)


def prune_24(weight: torch.Tensor) -> None:
    """Keep the 2 largest magnitudes of every aligned group of 4 input weights."""
    groups = weight.view(-1, 4)
    drop = groups.abs().argsort(dim=1)[:, :2]
    groups.scatter_(1, drop, 0.0)


def prune_share(weight: torch.Tensor, sparsity: float) -> None:
    """Zero the smallest `sparsity` share of a matrix's weights (unstructured)."""
    flat = weight.view(-1)
    flat[flat.abs().argsort()[: round(sparsity * flat.numel())]] = 0.0


def pruned_llama(out: Path, *, dense: str = "", lm_head_24: bool = False, share: float = 0.0):
    """A tiny untied Llama, every decoder Linear pruned 2:4 (or `share` unstructured)
    but the module `dense` names; `lm_head_24` prunes the lm_head 2:4 too."""

    def prune(state):
        for layer in range(LAYERS):
            for module in LINEARS:
                if f"model.layers.{layer}.{module}" == dense:
                    continue
                weight = state[f"model.layers.{layer}.{module}.weight"]
                prune_share(weight, share) if share else prune_24(weight)
        if lm_head_24:
            prune_24(state["lm_head.weight"])

    return build_decoder(out, "llama", prune=prune, layers=LAYERS, tie_word_embeddings=False)


def with_recipe(folder: Path, text: str | None = None, fixture: str = "sparse24") -> Path:
    if text is None:
        shutil.copyfile(FIXTURES / fixture / "recipe.yaml", folder / "recipe.yaml")
    else:
        (folder / "recipe.yaml").write_text(text, encoding="utf-8")
    return folder


# --------------------------------------------------------------------------- parsing


def test_the_recipe_oneshot_wrote_is_read_as_the_modifiers_it_ran():
    assert read_recipe(FIXTURES / "sparse24") == (SPARSEGPT_24,)
    assert read_recipe(FIXTURES / "sparse24-fp8") == (
        SPARSEGPT_24,
        RecipeModifier(
            type="QuantizationModifier",
            stage="default",
            targets=("Linear",),
            ignore=("re:.*lm_head",),
            scheme="FP8_DYNAMIC",
        ),
    )


def test_older_recipe_shapes_are_read(tmp_path):
    (tmp_path / "recipe.yaml").write_text(
        "version: 1.1.0\n"
        "sparsity_stage:\n"
        "  run_type: oneshot\n"
        "  sparsity_modifiers:\n"
        "    WandaPruningModifier: {sparsity: 0.7, mask_structure: '0:0', targets: "
        "['re:model.layers.\\d+$']}\n"
        "quant_stage_1:\n"
        "  quant_modifiers:\n"
        "    - GPTQModifier: {ignore: [lm_head], config_groups: {group_0: {targets: [Linear]}}}\n"
        "    - ConstantPruningModifier: {targets: __ALL_PRUNABLE__}\n"
        "pruning_modifiers:\n"
        "  MagnitudePruningModifier: {init_sparsity: 0.05, final_sparsity: 0.8, targets: "
        "['re:.*q_proj.weight']}\n"
    )
    assert read_recipe(tmp_path) == (
        RecipeModifier(
            "WandaPruningModifier",
            "sparsity",
            0.7,
            "unstructured",
            ("re:model.layers.\\d+$",),
        ),
        RecipeModifier(
            "GPTQModifier", "quant", ignore=("lm_head",), scheme="config_groups: group_0"
        ),
        RecipeModifier("ConstantPruningModifier", "quant", targets=("__ALL_PRUNABLE__",)),
        RecipeModifier("MagnitudePruningModifier", "default", 0.8, "", ("re:.*q_proj.weight",)),
    )


def test_no_recipe_leaves_the_analysis_without_one(tmp_path):
    assert analyze(pruned_llama(tmp_path / "m")).recipe is None


# --------------------------------------------------------------------------- checks


def test_a_recipe_of_24_everywhere_but_lm_head_finds_exactly_that(tmp_path):
    folder = with_recipe(pruned_llama(tmp_path / "m"))
    analysis = analyze(folder)
    recipe = analysis.recipe
    assert recipe is not None and recipe.modifiers == (SPARSEGPT_24,)
    pattern, ignored = recipe.checks
    assert (pattern.claim, pattern.expected, pattern.verdict) == ("pattern", "2:4", "match")
    assert pattern.matrices == LAYERS * len(LINEARS) and pattern.failures == ()
    assert (ignored.claim, ignored.verdict, ignored.matrices) == ("ignored", "match", 1)
    assert ignored.expected_density == 0.75
    # the record round-trips, recipe included
    assert from_dict(Analysis, to_dict(analysis)) == analysis


def test_a_targeted_layer_left_dense_is_a_mismatch_naming_it_and_both_figures(tmp_path):
    dense = "model.layers.1.mlp.down_proj"
    folder = with_recipe(pruned_llama(tmp_path / "m", dense=dense))
    from safetensors.torch import load_file

    weight = load_file(folder / "model.safetensors")[f"{dense}.weight"]
    density = int(torch.count_nonzero(weight)) / weight.numel()
    assert density > 0.99
    check = analyze(folder).recipe.checks[0]
    assert (check.claim, check.expected, check.verdict) == ("pattern", "2:4", "mismatch")
    assert check.matrices == LAYERS * len(LINEARS)
    (failure,) = check.failures
    assert (failure.name, failure.pattern, failure.density) == (dense, "dense", density)


def test_lm_head_pruned_despite_the_ignore_list_is_a_mismatch(tmp_path):
    # what llm-compressor 0.14 does with `ignore: [lm_head]` (it matches "lm_head.")
    recipe = (
        (FIXTURES / "sparse24" / "recipe.yaml").read_text().replace("'re:.*lm_head'", "lm_head")
    )
    folder = with_recipe(pruned_llama(tmp_path / "m", lm_head_24=True), recipe)
    pattern, ignored = analyze(folder).recipe.checks
    assert pattern.verdict == "match"
    assert ignored.verdict == "mismatch"
    # the lm_head gets no pattern (patterns are measured on the decoder's linear roles):
    # its density says it was pruned
    assert [(f.name, f.pattern, f.density) for f in ignored.failures] == [("lm_head", "", 0.5)]


@pytest.mark.parametrize(("stated", "verdict"), [(0.6, "match"), (0.3, "mismatch")])
def test_unstructured_sparsity_is_checked_as_density(tmp_path, stated, verdict):
    folder = pruned_llama(tmp_path / "m", share=0.6)
    with_recipe(
        folder,
        f"sparsity_stage:\n  sparsity_modifiers:\n    SparseGPTModifier:\n"
        f"      sparsity: {stated}\n      mask_structure: '0:0'\n      targets: [Linear]\n"
        f"      ignore: ['re:.*lm_head']\n",
    )
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    expected = {
        f"model.layers.{i}.{m}": int(torch.count_nonzero(state[f"model.layers.{i}.{m}.weight"]))
        / state[f"model.layers.{i}.{m}.weight"].numel()
        for i in range(LAYERS)
        for m in LINEARS
    }
    check = analyze(folder).recipe.checks[0]
    assert (check.claim, check.verdict, check.matrices) == ("density", verdict, len(expected))
    assert check.expected_density == pytest.approx(1 - stated)
    assert check.density_range == (min(expected.values()), max(expected.values()))
    if verdict == "mismatch":
        assert {f.name: f.density for f in check.failures} == expected
    else:
        assert check.failures == ()


def test_a_targeted_lm_head_is_named_as_not_checked_and_the_rest_is_checked(tmp_path):
    recipe = (FIXTURES / "sparse24" / "recipe.yaml").read_text().replace("'re:.*lm_head'", "")
    folder = with_recipe(pruned_llama(tmp_path / "m", lm_head_24=True), recipe)
    (check,) = analyze(folder).recipe.checks
    assert (check.claim, check.verdict, check.matrices) == ("pattern", "match", LAYERS * 7)
    assert check.reason == "lm_head: no pattern measured, not checked"


def test_a_class_target_the_weights_cannot_show_is_unchecked(tmp_path):
    folder = with_recipe(
        pruned_llama(tmp_path / "m"),
        "s:\n  x_modifiers:\n    WandaPruningModifier: {sparsity: 0.5, mask_structure: '2:4', "
        "targets: [LlamaDecoderLayer]}\n",
    )
    (check,) = analyze(folder).recipe.checks
    assert check.verdict == "unchecked" and "LlamaDecoderLayer" in check.reason


# --------------------------------------------------------------------------- card and audit


def test_the_card_shows_how_it_was_pruned_and_the_audit_fails_on_a_mismatch(tmp_path, capsys):
    dense = "model.layers.0.self_attn.q_proj"
    folder = with_recipe(pruned_llama(tmp_path / "m", dense=dense))
    card = render_card(build_report(folder, analysis=analyze(folder)), CardOptions())
    section = card.split("### How it was pruned", 1)[1].split("###", 1)[0]
    assert "| default | SparseGPTModifier | 50.0% | 2:4 | Linear | re:.\\*lm_head | - |" in section
    assert "**mismatch**" in section and f"1 of 14 do not: {dense} (dense" in section
    assert "density 100.0%" in section

    assert main(["card", str(folder), "--out", str(folder)]) == 0
    capsys.readouterr()
    assert main(["audit", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "recipe.yaml line 0" in out and dense in out

    good = with_recipe(pruned_llama(tmp_path / "good"))
    assert main(["card", str(good), "--out", str(good)]) == 0
    assert main(["audit", str(good)]) == 0


def test_names_from_a_recipe_print_as_text_on_the_card(tmp_path):
    hostile = "<img src=x onerror=alert(1)>|[link](http://x)"
    folder = with_recipe(
        pruned_llama(tmp_path / "m"),
        _MOD
        + f"SparseGPTModifier: {{sparsity: 0.5, mask_structure: '2:4', ignore: ['{hostile}']}}\n",
    )
    card = render_card(build_report(folder, analysis=analyze(folder)), CardOptions())
    section = card.split("### How it was pruned", 1)[1].split("###", 1)[0]
    assert "<img" not in section and "[link](http" not in section  # printed escaped
    rows = [line for line in section.splitlines() if "SparseGPTModifier |" in line]
    assert len(rows) == 1 and rows[0].count(" | ") == 6  # the "|" did not add a column


# --------------------------------------------------------------------------- hostile recipes

_MOD = "s:\n  m_modifiers:\n    "  # one modifier group; the modifier follows
HOSTILE = {
    "python tag": _MOD + "X: !!python/object/apply:os.system [ls]\n",
    "local tag": "default_stage:\n  default_modifiers:\n    - !SparseGPTModifier {sparsity: 0.5}\n",
    "alias bomb": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
    "deep nesting": "a: " + "[" * 200 + "]" * 200 + "\n",
    "sparsity abc": _MOD + "SparseGPTModifier: {sparsity: abc, mask_structure: '2:4'}\n",
    "mask 7:4": _MOD + "SparseGPTModifier: {sparsity: 0.5, mask_structure: '7:4'}\n",
    "sparsity 2": _MOD + "WandaPruningModifier: {sparsity: 2}\n",
    "targets number": _MOD + "SparseGPTModifier: {sparsity: 0.5, targets: 3}\n",
    "nested regex": _MOD + "SparseGPTModifier: {sparsity: 0.5, ignore: ['re:(a+)+$']}\n",
    "alternation repeated": _MOD + "SparseGPTModifier: {targets: ['re:(a|ab)*c']}\n",
    "list at the top": "- SparseGPTModifier: {sparsity: 0.5}\n",
    "no modifiers": "version: 1\n",
    "not yaml": "a: [b\n",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_recipe_is_one_line_naming_it(tmp_path_factory, case, capsys):
    folder = tmp_path_factory.mktemp("hostile")
    build_decoder(folder / "m", "llama", layers=1)
    with_recipe(folder / "m", HOSTILE[case])
    with pytest.raises(PrunecardError):
        read_recipe(folder / "m")
    capsys.readouterr()  # the build's progress lines
    one_line_error(main(["analyze", str(folder / "m")]), capsys.readouterr(), "recipe.yaml")


def test_ordinary_target_patterns_are_accepted(tmp_path):
    patterns = ["re:.*lm_head", "re:model.layers.\\d+$", "re:.*(q|k|v)_proj$", "re:.*mlp.*"]
    (tmp_path / "recipe.yaml").write_text(
        _MOD + f"SparseGPTModifier: {{sparsity: 0.5, targets: {json.dumps(patterns)}}}\n"
    )
    (modifier,) = read_recipe(tmp_path)
    assert modifier.targets == tuple(patterns)


def test_a_huge_or_special_recipe_file_is_refused_unread(tmp_path, capsys):
    folder = build_decoder(tmp_path / "m", "llama", layers=1)
    (folder / "recipe.yaml").write_text("a: " + "x" * (2 << 20) + "\n")
    capsys.readouterr()  # the build's progress lines
    line = one_line_error(main(["analyze", str(folder)]), capsys.readouterr(), "recipe.yaml")
    assert "bytes" in line
    (folder / "recipe.yaml").unlink()
    os.mkfifo(folder / "recipe.yaml")
    line = one_line_error(main(["analyze", str(folder)]), capsys.readouterr(), "recipe.yaml")
    assert "not a regular file" in line
