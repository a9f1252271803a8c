"""The card of a decoder LLM (a causal LM): a golden README, text-generation metadata with
a perplexity model-index that validates offline, `.eval_results/perplexity.yaml`, "not
measured" for every missing record, and the linear roles named per family.

The report comes from `decoder_reports` (records built by arithmetic from a small spec),
so every expected figure below is computed here from the spec, not read from the card.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import decoder_reports as spec
import pytest
import yaml
from decoders import build_decoder
from huggingface_hub import ModelCardData
from huggingface_hub.repocard_data import model_index_to_eval_results

from analyzer.publish.card import (
    eval_results_files,
    perplexity_results_yaml,
    render_card,
    validate_card,
    write_card,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PRUNECARD_UPDATE_GOLDEN") == "1"
FIGURES = ("density", "heads", "blocks")


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text[4 : text.index("\n---\n", 3)])


def _linear() -> tuple[int, int]:
    """(non-zero, dense) weights of the linear matrices, counted from the masks."""
    masks = spec.masks().values()
    return sum(int(m.sum()) for m in masks), sum(m.size for m in masks)


def test_golden_decoder_card():
    text = render_card(spec.report(), figures=FIGURES)
    golden = GOLDEN / "decoder_card.md"
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_decoder_card_states_the_measured_figures():
    text = render_card(spec.report(), figures=FIGURES)
    nnz, dense = _linear()
    heads, groups = spec.LAYERS * spec.HEADS, spec.LAYERS * spec.KV_HEADS
    channels = spec.LAYERS * spec.INTER
    kept = channels - len(spec.DEAD_CHANNELS)
    for line in (
        "A pruned version of [prunecard/tiny-llama-dense](https://huggingface.co/"
        "prunecard/tiny-llama-dense): a causal language model for text generation.",
        f"| Linear layers: non-zero weights (Q, K, V, O, gate, up, down; weights only) | "
        f"**{100 * nnz / dense:.1f}%** ({nnz:,} of {dense:,}) |",
        f"| Attention heads removed (query heads) | **{len(spec.DEAD_HEADS)} of {heads}** "
        f"({100 * len(spec.DEAD_HEADS) / heads:.1f}%) |",
        f"| KV groups removed (every query head sharing the group removed) | **1 of {groups}** "
        f"({100 / groups:.1f}%) |",
        f"| MLP channels kept | **{kept} of {channels}** ({100 * kept / channels:.1f}%) |",
        f"| Width and depth against the dense base | layers {spec.BASE_LAYERS} -> {spec.LAYERS}, "
        f"intermediate size {spec.BASE_INTER} -> {spec.INTER} |",
        f"| Perplexity, WikiText-2 raw, test split ({spec.TEXT_TOKENS:,} tokens) | **23.46** "
        "(95% CI 21.00 to 26.50) |",
        "| Decoding, batch 1: tokens/s dense / packed (NVIDIA H100 80GB HBM3) | "
        f"210.0 / 240.0 (**{240 / 210:.2f}x**) |",
        "| Semi-structured sparse kernels on the 2:4 matrices vs dense, batch 1 x 4096 tokens "
        f"(NVIDIA H100 80GB HBM3) | **{2.10 / 1.50:.2f}x** (2.10 ms dense, 1.50 ms sparse) |",
        "| Layer | Linear density | Heads kept | KV groups kept | Heads removed | "
        "MLP channels kept | Packed linear weights |",
        "| 1 | 76.5% | 4 of 8 | 1 of 2 | 4, 5, 6, 7 | 96 of 128 (75.0%) | 23,552 |",
        "**1 of 4 KV groups (25.0%) are removed.**",
        "model = AutoModelForCausalLM.from_pretrained(model_id).eval()",
        'model = load(model_id, layout="packed")',
    ):
        assert line in text
    # the pattern summary: layer 0's seven matrices are 2:4, half of the linear weights
    zeros_24 = sum(int((~m).sum()) for (layer, _), m in spec.masks().items() if layer == 0)
    assert f"| 2:4 | 7 | 50.0% | {zeros_24:,} (50.0%) | 2:4 sparse tensor cores" in text
    assert "question" not in text.lower() and "SQuAD" not in text.split("## Accuracy")[1]


def test_decoder_metadata_validates_and_round_trips():
    text = render_card(spec.report())
    assert validate_card(text) == []
    data = _front_matter(text)
    card = ModelCardData(**data)
    assert card.pipeline_tag == "text-generation" and card.library_name == "transformers"
    assert card.tags[:3] == ["text-generation", "pruned", "prunecard"] and "llama" in card.tags
    assert data["metrics"] == ["perplexity"] and "widget" not in data
    name, results = model_index_to_eval_results(data["model-index"])
    assert name == spec.PUBLICATION.model_id
    (result,) = results
    assert (result.task_type, result.metric_type, result.metric_value) == (
        "text-generation",
        "perplexity",
        round(spec.PERPLEXITY.perplexity, 2),
    )
    # filed under the Hub dataset the text is, with its config and split
    assert (result.dataset_type, result.dataset_config, result.dataset_split) == (
        "wikitext",
        "wikitext-2-raw-v1",
        "test",
    )
    assert result.dataset_name == (
        f"WikiText-2 raw, test split (sha256 abababababab, {spec.TEXT_TOKENS:,} tokens, "
        f"papers protocol, window {spec.SEQLEN:,}, stride {spec.SEQLEN:,})"
    )
    assert "SparseGPT" in result.metric_name


def test_a_question_answering_widget_is_still_required_for_encoders():
    text = render_card(spec.report())
    broken = text.replace("pipeline_tag: text-generation", "pipeline_tag: question-answering")
    broken = broken.replace("---\n\n#", "widget:\n- text: Who?\n---\n\n#", 1)
    assert validate_card(broken) == ["widget[0] needs 'text' and 'context'"]


def test_perplexity_eval_results_file(tmp_path):
    report = spec.report()
    assert list(eval_results_files(report)) == ["perplexity.yaml"]
    (entry,) = yaml.safe_load(perplexity_results_yaml(report))
    assert entry == {
        "dataset": {"id": "wikitext", "task_id": "perplexity"},
        "value": 23.46,
        "date": "2025-01-31",
        "source": {"url": "https://huggingface.co/prunecard/tiny-llama-2of4", "name": "Model card"},
        "notes": "perplexity, lower is better; non-overlapping windows as in SparseGPT and "
        f"Wanda; text WikiText-2 raw, test split (sha256 abababababab, {spec.TEXT_TOKENS:,} "
        f"tokens, papers protocol, window {spec.SEQLEN:,}, stride {spec.SEQLEN:,})",
    }
    write_card(tmp_path / "card", report, checkpoint=tmp_path / "no-such-checkpoint")
    assert sorted(p.name for p in (tmp_path / "card" / ".eval_results").iterdir()) == [
        "perplexity.yaml"
    ]
    assert perplexity_results_yaml(dataclasses.replace(report, perplexity=None)) is None


def test_the_papers_protocol_is_described_with_its_dropped_tail():
    text = render_card(spec.report())
    windows = spec.TEXT_TOKENS // spec.SEQLEN
    dropped = spec.TEXT_TOKENS - windows * spec.SEQLEN
    assert f"| Windows (tokens per window, stride) | {windows} (2,048, 2,048) |" in text
    assert f"| Tokens scored | {windows * (spec.SEQLEN - 1):,} |" in text
    assert "| Protocol | papers: non-overlapping windows as in SparseGPT and Wanda |" in text
    assert f"the last {dropped:,} tokens, which fill no whole window, are not scored" in text
    assert "the Hub dataset `wikitext`, config `wikitext-2-raw-v1`, split `test`" in text


def test_a_local_text_file_is_filed_under_no_dataset(tmp_path):
    """A perplexity over the user's own file names the file and its sha256 in the card, and
    goes into neither the model-index nor `.eval_results` (both need a Hub dataset id):
    never under SQuAD v2's, the publication's default `eval_dataset`."""
    report = spec.report(perplexity=spec.LOCAL_PERPLEXITY)
    text = render_card(report)
    assert validate_card(text) == []
    assert "model-index" not in _front_matter(text) and "squad" not in text.lower()
    assert eval_results_files(report) == {} and perplexity_results_yaml(report) is None
    assert (
        "on `my_paragraphs.txt` (sha256 `abababababab`; a local text file, no Hub dataset)" in text
    )
    assert "/home/me" not in text
    assert "| Perplexity, my_paragraphs.txt (4,000 tokens) | **23.46**" in text
    assert "| Protocol | sliding: strided sliding window |" in text
    assert "with up to 512 tokens of context before it" in text
    write_card(tmp_path / "card", report, checkpoint=tmp_path / "no-such-checkpoint")
    assert not (tmp_path / "card" / ".eval_results" / "perplexity.yaml").exists()


def test_missing_decoder_records_say_not_measured():
    bare = spec.report(bench=None, perplexity=None)
    text = render_card(bare)
    assert validate_card(text) == []
    for line in (
        "| Speedup, packed vs dense | not measured |",
        "| Perplexity | not measured |",
        "Perplexity was not measured",
        "Speed was not measured",
    ):
        assert line in text
    assert "model-index" not in _front_matter(text)
    no_decode = dataclasses.replace(spec.bench(), decode=(), semi_structured=())
    text = render_card(spec.report(bench=no_decode))
    assert "| Decoding tokens/s, dense / packed | not measured |" in text
    assert "Decoding speed was not measured." in text
    assert (
        "| Semi-structured sparse kernels on the 2:4 matrices vs dense | not measured (needs a "
        "GPU with sparse tensor cores, Ampere or later) |"
    ) in text
    assert "### Semi-structured sparse kernels" not in text


def test_without_a_base_dense_figures_are_the_checkpoints_own():
    text = render_card(spec.report(analysis=spec.analysis(base=False)))
    assert (
        "| Width and depth against the dense base | no base given: dense figures are "
        "relative to the checkpoint's own shapes |"
    ) in text
    assert "No dense base was given (`--base-config`)" in text


@pytest.mark.parametrize(
    ("family", "kind", "roles"),
    [
        ("bert", "encoder", "Q, K, V, O, FFN in and out"),
        ("llama", "decoder", "Q, K, V, O, gate, up, down"),
        ("generic", "generic", "2-D weights inside repeated blocks"),
        ("generic", "encoder", "2-D weights inside repeated blocks"),  # kind left at default
    ],
)
def test_linear_roles_are_named_per_family(family, kind, roles):
    analysis = dataclasses.replace(spec.analysis(), family=family, kind=kind)
    text = render_card(spec.report(analysis=analysis))
    assert f"| Linear layers: non-zero weights ({roles}; weights only) |" in text
    assert "Q, K, V, O, FFN;" not in text


def test_causal_usage_block_runs_as_printed(tmp_path):
    """The transformers block, executed on a real tiny Llama stored at its dense shapes;
    the packed block is prunecard's decoder loader (issue 22, part C) and must compile."""
    build_decoder(tmp_path / "ckpt", "llama")
    publication = dataclasses.replace(spec.PUBLICATION, model_id="ckpt")
    text = render_card(spec.report(publication=publication))
    plain, packed = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert "AutoModelForCausalLM" in plain and 'layout="packed"' in packed
    compile(packed, "packed-usage", "exec")
    script = tmp_path / "usage.py"
    script.write_text(plain)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("'")  # the generated text's repr


def test_an_encoder_card_gains_only_the_pattern_summary(pruned_minilm):
    """The QA card of a real pruned MiniLM: a pattern summary adds its row, its table and
    the block legend's pattern sentence, and changes nothing else."""
    import difflib

    from analyzer import analyze
    from analyzer.pipeline import build_report
    from analyzer.records import LINEAR_ROLES, PatternTotals

    analysis = dataclasses.replace(analyze(pruned_minilm), patterns=())
    report = build_report(
        pruned_minilm, analysis=analysis, environment=spec.ENV, created="2025-01-31T12:00:00Z"
    )
    linear = [m for m in analysis.matrices if m.layer is not None and m.role in LINEAR_ROLES]
    dense = sum(m.shape[0] * m.shape[1] for m in linear)
    zeros = dense - sum(m.nnz for m in linear)
    rows = (PatternTotals("unstructured", len(linear), dense, zeros, "sparse CPU runtimes"),)
    plain = render_card(report, figures=FIGURES)
    patterned = render_card(
        dataclasses.replace(report, analysis=dataclasses.replace(analysis, patterns=rows)),
        figures=FIGURES,
    )
    diff = list(difflib.ndiff(plain.splitlines(), patterned.splitlines()))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    added = [line[2:] for line in diff if line.startswith("+ ")]
    assert [line[:40] for line in removed] == ["Each small map is one linear matrix at t"]
    assert f"| Sparsity patterns of the linear matrices | unstructured ({len(linear)} of " in (
        "\n".join(added)
    )
    assert "| Pattern | Matrices | Share of linear weights |" in "\n".join(added)
    share = f"{100 * dense / analysis.linear.dense:.1f}%"
    assert f"| unstructured | {len(linear)} | {share} | {zeros:,} (" in "\n".join(added)
    assert all("question" not in line.lower() for line in added)
