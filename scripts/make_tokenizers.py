"""Small tokenizers in the styles LLM publishers ship, for tests/data/tokenizers/ (offline).

`python scripts/make_tokenizers.py [OUT]` (default tests/data/tokenizers) writes one folder
per style, each trained by the style's own library on the SQuAD v2 contexts of
tests/data/squad/squad_v2_dev_half.json (CC BY-SA 4.0), with the special tokens, the
tokenizer_config.json fields and the chat template of the published tokenizers:

- `mistral/`: Llama 2 / Mistral 7B v0.1: a SentencePiece BPE `tokenizer.model` only (no
  tokenizer.json), trained with Llama 2's trainer options (byte fallback, split digits,
  identity normalisation); `LlamaTokenizer`, bos `<s>`, eos `</s>`, unk `<unk>`, no pad,
  Mistral Instruct's `[INST]` chat template.
- `llama3/`: Llama 3: a byte-level BPE `tokenizer.json` (Llama 3's pre-tokenizer regex,
  `<|begin_of_text|>` prepended by the post-processor); `PreTrainedTokenizerFast`, bos
  `<|begin_of_text|>`, eos `<|eot_id|>`, no pad, Llama 3 Instruct's chat template.
- `qwen2/`: Qwen2.5: a byte-level BPE `tokenizer.json` (Qwen2's regex, NFC); `Qwen2Tokenizer`,
  no bos, eos `<|im_end|>`, pad `<|endoftext|>`, the `<|im_start|>` chat template (Qwen2.5
  Instruct's, without its tool-calling branch).

Vocabularies are small (about 1,000 entries) so that test models stay tiny. The builds
are deterministic (one training thread): running the script again rewrites the same bytes.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT / "tests" / "data" / "squad" / "squad_v2_dev_half.json"
VOCAB_SIZE = 1000  # entries learned from the text (special tokens come on top)

# the published chat templates (tokenizer_config.json's `chat_template`)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}"
    "{% endif %}{% endfor %}"
)
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
QWEN2_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. "
    "You are a helpful assistant.<|im_end|>\n' }}"
    "{%- endif %}{%- for message in messages %}"
    "{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def paragraphs() -> list[str]:
    """The training text: every context paragraph of the SQuAD v2 sample, in file order."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    return [p["context"] for article in data["data"] for p in article["paragraphs"]]


def build_mistral(out: Path, text: list[str]) -> None:
    import sentencepiece as spm

    model = io.BytesIO()  # in memory: a file path would be stored in the model's spec
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text),
        model_writer=model,
        model_type="bpe",
        vocab_size=VOCAB_SIZE,
        byte_fallback=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        character_coverage=0.99995,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    (out / "tokenizer.model").write_bytes(model.getvalue())
    _write_config(
        out,
        {
            "tokenizer_class": "LlamaTokenizer",
            "add_bos_token": True,
            "add_eos_token": False,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": None,
            "legacy": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 32768,
            "chat_template": MISTRAL_TEMPLATE,
        },
    )


def build_byte_level(
    out: Path, text: list[str], regex: str, special: list[str], prepend: str | None
) -> None:
    """A byte-level BPE tokenizer.json: the text's merges first, the special tokens after
    them (as in Llama 3 and Qwen2, whose special tokens have the highest ids)."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE(ignore_merges=prepend is not None))
    if prepend is None:  # Qwen2 normalises to NFC
        tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(regex), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(text, trainer)
    tokenizer.add_special_tokens(special)
    if prepend is None:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    else:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{prepend} $A",
            pair=f"{prepend} $A {prepend} $B",
            special_tokens=[(prepend, tokenizer.token_to_id(prepend))],
        )
    tokenizer.save(str(out / "tokenizer.json"))


def build_llama3(out: Path, text: list[str]) -> None:
    special = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|reserved_special_token_2|>",
        "<|eot_id|>",
    ]
    build_byte_level(out, text, LLAMA3_REGEX, special, prepend="<|begin_of_text|>")
    _write_config(
        out,
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<|begin_of_text|>",
            "eos_token": "<|eot_id|>",
            "clean_up_tokenization_spaces": True,
            "model_input_names": ["input_ids", "attention_mask"],
            "model_max_length": 131072,
            "chat_template": LLAMA3_TEMPLATE,
        },
    )


def build_qwen2(out: Path, text: list[str]) -> None:
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    build_byte_level(out, text, QWEN2_REGEX, special, prepend=None)
    _write_config(
        out,
        {
            "tokenizer_class": "Qwen2Tokenizer",
            "bos_token": None,
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "unk_token": None,
            "add_prefix_space": False,
            "errors": "replace",
            "split_special_tokens": False,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 131072,
            "chat_template": QWEN2_TEMPLATE,
        },
    )


def _write_config(out: Path, config: dict) -> None:
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    (out / "tokenizer_config.json").write_text(text, encoding="utf-8")


BUILDERS = {"mistral": build_mistral, "llama3": build_llama3, "qwen2": build_qwen2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "tests/data/tokenizers")
    out = parser.parse_args().out
    text = paragraphs()
    for style, build in BUILDERS.items():
        folder = out / style
        folder.mkdir(parents=True, exist_ok=True)
        build(folder, text)
        print(f"{folder}: {sorted(p.name for p in folder.iterdir())}")


if __name__ == "__main__":
    main()
