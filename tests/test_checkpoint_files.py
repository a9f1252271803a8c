"""The files around the weights: hashes found by name (nothing unpickled), tokenizer files
carried into every folder prunecard writes, and the bias beside a weight."""

from __future__ import annotations

import hashlib
import pickle

import pytest
from conftest import PruneSpec, build_minilm
from hypothesis import given
from hypothesis import strategies as st

from analyzer.errors import CheckpointError
from analyzer.hashing import sha256_file
from analyzer.runtime.packing import pack
from analyzer.weights.architecture import bias_name, classify
from analyzer.weights.checkpoint import TOKENIZER_FILES, checkpoint_hashes


class _Bomb:
    def __reduce__(self):
        return (pytest.fail, ("hashing unpickled the checkpoint",))


def test_hashes_come_from_the_files_found_by_name_without_unpickling(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps(_Bomb()))
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "vocab.txt").write_text("[PAD]\n")  # not a weight file: not hashed
    hashes = checkpoint_hashes(tmp_path)
    assert hashes == {
        name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        for name in ("config.json", "pytorch_model.bin")
    }


def test_hashes_of_a_missing_checkpoint_are_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        checkpoint_hashes(tmp_path / "missing")


def test_sha256_file_reads_in_chunks_and_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 10_000  # over one 1 MiB chunk
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_packing_keeps_every_tokenizer_file_bpe_and_sentencepiece_included(tmp_path):
    source = build_minilm(tmp_path / "ckpt", PruneSpec(zero_units={0: (1, 2)}))
    extra = {"vocab.json": '{"a": 0}', "merges.txt": "#version: 0.2\n", "spiece.model": "x"}
    for name, text in extra.items():
        (source / name).write_text(text)
    pack(source, tmp_path / "packed")
    present = {n for n in TOKENIZER_FILES if (source / n).is_file()}
    assert set(extra) | {"tokenizer.json", "vocab.txt"} <= present
    for name in present:
        assert (tmp_path / "packed" / name).read_bytes() == (source / name).read_bytes(), name


_part = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)


@given(st.lists(_part | st.integers(0, 99).map(str), min_size=0, max_size=6))
def test_the_bias_beside_a_weight_is_classified_as_its_bias(parts):
    weight = ".".join([*parts, "weight"])
    param = classify(weight, None)
    assert param.kind == "weight"
    assert classify(bias_name(weight), None) == param.__class__(param.layer, param.role, "bias")
    assert bias_name(weight).removesuffix("bias") == weight.removesuffix("weight")
