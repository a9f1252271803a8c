"""Reading SQuAD v2 JSON, reproducible subsets, the bundled sample."""

from __future__ import annotations

import json

import pytest
from conftest import SQUAD_DEV_HALF

from analyzer.errors import InputError
from analyzer.squad.data import (
    bundled_sample_path,
    paragraph_sample,
    read_squad,
    subset,
    write_squad,
)


@pytest.fixture(scope="module")
def sample():
    return read_squad(bundled_sample_path())


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not a readable JSON file"),
        ('{"version": "v2.0"}', '"data" list'),
        (
            '{"data": [{"paragraphs": [{"qas": []}]}]}',
            'data[0].paragraphs[0]: expected an object with a "context" string',
        ),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1", "question": "q"}]}]}]}',
            'data[0].paragraphs[0].qas[0]: expected an "answers" list',
        ),
        (
            '{"data": [{"paragraphs": [{"context": "c", "qas": ['
            '{"id": "1", "question": "q", "answers": []}, '
            '{"id": "1", "question": "q", "answers": []}]}]}]}',
            "duplicate id '1'",
        ),
        ('{"data": []}', "no questions"),
    ],
)
def test_malformed_files_name_the_file_and_the_place(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        read_squad(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_squad(tmp_path / "nope.json")


def test_subset_is_reproducible_and_in_official_format(sample, tmp_path):
    a, b = subset(sample, 25, seed=1), subset(sample, 25, seed=1)
    assert a.ids == b.ids and len(a.ids) == 25
    assert subset(sample, 25, seed=2).ids != a.ids
    order = {qid: i for i, qid in enumerate(sample.ids)}
    assert [order[q] for q in a.ids] == sorted(order[q] for q in a.ids)  # file order kept
    written = write_squad(a, tmp_path / "eval_data.json")
    raw = json.loads(written.read_text())
    assert raw["version"] == "v2.0"
    assert all(p["qas"] for art in raw["data"] for p in art["paragraphs"])
    again = read_squad(written)
    assert again.questions == a.questions
    assert subset(sample, 10_000, seed=0).ids == sample.ids


def test_subset_rejects_a_non_positive_limit(sample):
    with pytest.raises(InputError, match="--limit"):
        subset(sample, 0, seed=0)


def test_bundled_sample_is_whole_paragraphs_of_the_dev_half(sample):
    dev = read_squad(SQUAD_DEV_HALF)
    assert paragraph_sample(dev, 300, seed=0).questions == sample.questions
    n = len(sample.questions)
    answerable = sum(q.has_answer for q in sample.questions)
    assert 300 <= n < 330 and 0.3 < answerable / n < 0.7
    by_context = {}
    for q in dev.questions:
        by_context.setdefault(q.context, set()).add(q.id)
    kept = set(sample.ids)
    assert all(by_context[q.context] <= kept for q in sample.questions)  # whole paragraphs
    assert (bundled_sample_path().parent / "SQUAD_LICENSE.md").read_text().count("CC BY-SA 4.0")
