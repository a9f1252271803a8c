"""Helpers for the hostile-input tests: a tiny complete QA checkpoint, digests of inputs,
and the one-line-error check every bad input must pass."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from analyzer.runtime.demo import minilm_path
from analyzer.weights.checkpoint import TOKENIZER_FILES


def tiny_qa(
    folder: Path, *, tokenizer: bool = False, vocab: int = 200, positions: int = 512, **config
) -> Path:
    """A complete BertForQuestionAnswering checkpoint of one small layer (loads, packs,
    benches in a second). `config` overrides config.json values after the weights are made,
    so a value can contradict them; `tokenizer` copies MiniLM's tokenizer files."""
    import transformers

    settings = transformers.BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=positions,
        architectures=["BertForQuestionAnswering"],
    )
    torch.manual_seed(0)
    model = transformers.BertForQuestionAnswering(settings)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({**settings.to_dict(), **config}))
    if tokenizer:
        for name in TOKENIZER_FILES:
            if (minilm_path() / name).exists():
                shutil.copy2(minilm_path() / name, folder / name)
    return folder


def digest(*paths: Path) -> dict[str, str]:
    """sha256 of every file under `paths` (files or folders), to prove inputs unchanged."""
    out = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def one_line_error(code: int, captured, *names: str) -> str:
    """Exit 2, exactly one stderr line `prunecard: error: ...` naming each of `names`.
    `captured`: pytest's capsys output or a finished subprocess."""
    err = getattr(captured, "err", None) or getattr(captured, "stderr", "") or ""
    out = getattr(captured, "out", None) or getattr(captured, "stdout", "") or ""
    assert code == 2, f"exit {code}, stderr {err!r}"
    assert "Traceback" not in err + out, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("prunecard: error: "), err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Hidden (temporary) names left in `folder`: none may survive a failed run."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
