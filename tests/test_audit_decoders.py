"""The audit on decoder cards: a card prunecard wrote for a decoder audits clean against its
own records, an edited figure is caught, and N:M / block pattern claims are checked against
the analysis's pattern summary."""

from __future__ import annotations

import dataclasses
import itertools

import decoder_reports as spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.audit.checks import audit, audit_claims
from analyzer.audit.sparsity_phrases import satisfies
from analyzer.audit.walker import extract_claims
from analyzer.publish.card import write_card
from analyzer.records import PatternTotals, write_record


def _findings(report, quantity):
    return [f for f in report.findings if f.quantity == quantity]


@pytest.fixture()
def card(tmp_path):
    report = spec.report()
    folder = write_card(tmp_path / "card", report, checkpoint=tmp_path / "no-such-checkpoint")
    write_record(report.bench, tmp_path / "bench.json")
    return folder / "README.md", tmp_path / "bench.json"


def test_a_decoder_card_audits_clean_against_its_records(card):
    readme, bench = card
    report = audit(readme, spec.analysis(), bench_path=bench)
    assert [f for f in report.findings if f.verdict == "mismatch"] == []
    ok = {(f.quantity, f.check) for f in report.findings if f.verdict == "ok"}
    assert {
        ("tag", "weights"),  # text-generation: a causal LM
        ("task", "weights"),
        ("heads_removed", "weights"),
        ("heads_kv_removed", "weights"),
        ("layer_kv_kept", "weights"),
        ("ffn_units_kept", "weights"),  # MLP channels
        ("perplexity", "internal"),  # model-index, .eval_results and summary agree
        ("linear_density", "weights"),
        ("speedup", "bench"),
    } <= ok
    scores = [f for f in report.findings if f.file == ".eval_results/perplexity.yaml"]
    assert {(f.quantity, f.claimed) for f in scores} >= {("perplexity", "23.46")}


def test_an_edited_decoder_card_is_caught(card):
    readme, _ = card
    text = readme.read_text()
    readme.write_text(text.replace("| **1 of 4** (25.0%) |", "| **2 of 4** (25.0%) |"))
    bad = {(f.quantity, f.claimed) for f in audit(readme, spec.analysis()).findings
           if f.verdict == "mismatch"}  # fmt: skip
    assert ("heads_kv_removed", "2") in bad
    readme.write_text(text.replace("value: 23.46", "value: 32.46", 1))
    bad = {(f.quantity, f.check) for f in audit(readme, spec.analysis()).findings
           if f.verdict == "mismatch"}  # fmt: skip
    assert ("perplexity", "internal") in bad


def test_task_tags_are_checked_against_the_kind_of_model(card):
    readme, _ = card
    encoder = dataclasses.replace(
        spec.analysis(), kind="encoder", architectures=("BertForQuestionAnswering",)
    )
    tags = _findings(audit(readme, encoder), "tag")
    (generation,) = [f for f in tags if f.claimed == "text-generation"]
    assert generation.verdict == "mismatch" and "BertForQuestionAnswering" in generation.measured
    qa = extract_claims("---\ntags:\n- question-answering\n---\n\n# m\n")
    (finding,) = _findings(audit_claims(qa, spec.analysis()), "tag")
    assert finding.verdict == "mismatch"  # a causal LM has no QA head


def _pattern_verdict(text: str, analysis) -> tuple[str, str]:
    claims = extract_claims(f"# m\n\n{text}\n")
    (finding,) = _findings(audit_claims(claims, analysis), "sparsity_pattern")
    return finding.verdict, finding.measured


def test_pattern_claims_against_the_pattern_summary():
    analysis = spec.analysis()
    zeros = sum(p.zeros for p in analysis.patterns)
    two_four = next(p.zeros for p in analysis.patterns if p.kind == "2:4")
    verdict, measured = _pattern_verdict("Pruned to 2:4 sparsity with SparseGPT.", analysis)
    assert verdict == "ok"
    assert measured.startswith(f"2:4 holds {two_four:,} of {zeros:,} linear zeros")
    assert _pattern_verdict("It is 4:8 sparse.", analysis)[0] == "ok"  # 2:4 is also 4:8
    assert _pattern_verdict("It is 1:4 sparse.", analysis)[0] == "mismatch"
    assert _pattern_verdict("Pruned with 1x4 blocks.", analysis)[0] == "mismatch"
    unstructured = dataclasses.replace(
        analysis,
        patterns=(PatternTotals("unstructured", 14, 69_632, 25_600, "sparse CPU runtimes"),),
    )
    verdict, measured = _pattern_verdict("Pruned to 2:4 sparsity.", unstructured)
    assert verdict == "mismatch"
    assert measured == (
        "2:4 holds 0 of 25,600 linear zeros (0.0%); matrices by pattern: unstructured 14"
    )
    blocks = dataclasses.replace(
        analysis, patterns=(PatternTotals("32x32", 6, 1000, 500, "block-sparse kernels"),)
    )
    assert _pattern_verdict("Pruned with 16x16 blocks.", blocks)[0] == "ok"  # 32x32 tiles it
    assert _pattern_verdict("Pruned with 1x4 blocks.", blocks)[0] == "ok"
    older = dataclasses.replace(analysis, patterns=())
    assert _pattern_verdict("Pruned to 2:4 sparsity.", older)[0] == "not checkable"


def _densest(n: int, m: int, width: int) -> list[bool]:
    """The mask with the most non-zeros N:M allows, over `width` weights."""
    return [i % m < n for i in range(width)]


def _is_nm(mask: list[bool], n: int, m: int) -> bool:
    return all(sum(mask[i : i + m]) <= n for i in range(0, len(mask), m))


@pytest.mark.parametrize(
    ("measured", "claimed"), list(itertools.product(("1:4", "2:4", "4:8", "1:2"), repeat=2))
)
def test_n_m_satisfaction_is_the_densest_mask_rule(measured, claimed):
    """N':M' satisfies N:M exactly when the densest N':M' mask, its non-zeros packed at the
    start of every group (the worst case for nested groups), is N:M."""
    n, m = map(int, measured.split(":"))
    want_n, want_m = map(int, claimed.split(":"))
    mask = _densest(n, m, 8)
    assert satisfies(measured, claimed) == _is_nm(mask, want_n, want_m)


NM = ("1:2", "1:4", "2:4", "4:8", "2:8", "3:4")


@settings(max_examples=200, deadline=None)
@given(
    measured=st.sampled_from(NM),
    claimed=st.sampled_from(NM),
    data=st.data(),
)
def test_a_satisfied_claim_holds_for_every_mask(measured, claimed, data):
    """Soundness: whenever `satisfies` says N':M' is also N:M, every N':M' mask is N:M."""
    n, m = map(int, measured.split(":"))
    groups = 16 // m
    mask = []
    for _ in range(groups):
        kept = data.draw(st.sets(st.integers(0, m - 1), max_size=n))
        mask += [i in kept for i in range(m)]
    want_n, want_m = map(int, claimed.split(":"))
    if satisfies(measured, claimed):
        assert _is_nm(mask, want_n, want_m)


def test_a_card_of_a_local_text_file_audits_clean(tmp_path):
    """No model-index or .eval_results entry (a local file has no Hub dataset id): the
    summary's perplexity is still read and nothing mismatches."""
    report = spec.report(perplexity=spec.LOCAL_PERPLEXITY)
    folder = write_card(tmp_path / "card", report, checkpoint=tmp_path / "no-such-checkpoint")
    found = audit(folder / "README.md", spec.analysis())
    assert [f for f in found.findings if f.verdict == "mismatch"] == []
    claimed = {f.claimed for f in _findings(found, "perplexity")}
    assert claimed == {"23.46"}
    assert not any(f.file == ".eval_results/perplexity.yaml" for f in found.findings)


def test_the_perplexity_dataset_is_checked_against_its_record(card, tmp_path):
    """`audit --eval perplexity.json`: the card's model-index and `.eval_results` dataset
    must be the one the record evaluated; a record of another dataset mismatches."""
    readme, _ = card
    record = tmp_path / "perplexity.json"
    write_record(spec.PERPLEXITY, record)

    def against_record():
        found = _findings(audit(readme, spec.analysis(), eval_path=record), "dataset")
        return {(f.file or "model-index", f.verdict) for f in found if f.check == "evaluation"}

    assert against_record() == {("model-index", "ok"), (".eval_results/perplexity.yaml", "ok")}
    write_record(dataclasses.replace(spec.PERPLEXITY, dataset="ptb_text_only"), record)
    assert against_record() == {
        ("model-index", "mismatch"),
        (".eval_results/perplexity.yaml", "mismatch"),
    }
