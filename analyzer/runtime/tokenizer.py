"""The checkpoint's own tokenizer: loading it (a bad file named in one line), and what pads
a batch of texts of unequal lengths.

Published tokenizers differ in what they define. BERT's WordPiece has a pad token; Llama 2,
Mistral and Llama 3 have none (only BOS and EOS); Qwen2.5 has a pad token but no BOS. A
batch of several texts is padded with the tokenizer's own pad token ("own"), else with its
EOS token ("eos": the attention mask hides it, so its value never reaches a real token's
output), else not at all ("none": the texts are cut to the shortest one's length). A
batch of one text (perplexity's windows) needs no padding and uses none.

A chat template (tokenizer_config.json's `chat_template`, or chat_template.jinja) is
loaded with the tokenizer but never rendered: prunecard tokenizes plain text as it is,
and a template's Jinja is not run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError
from analyzer.records import TokenizerInfo
from analyzer.weights.checkpoint import TOKENIZER_FILES, Checkpoint, checkpoint_folder

__all__ = ["check_vocabulary", "load_tokenizer", "pad_token", "tokenizer_info"]

# what makes a tokenizer: without one of these, transformers would build an empty one
_VOCABULARIES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)
# a SentencePiece model without a tokenizer.json is converted by transformers 5 with these
_SENTENCEPIECE_NEEDS = ("sentencepiece", "google.protobuf")
_JSON_FILES = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")


def load_tokenizer(path: str | Path | Checkpoint) -> Any:
    """The checkpoint's own tokenizer, or None when it ships no vocabulary file.

    Its files must be regular files within the size limits. A file that cannot be used (a
    corrupt tokenizer.json, a tokenizer.model that is not SentencePiece, a config naming a
    tokenizer class transformers does not have) is a CheckpointError naming that file."""
    from analyzer.inputs import CONFIG_LIMIT, TOKENIZER_LIMIT, check_regular_file

    folder = checkpoint_folder(path)
    present = {n: folder / n for n in TOKENIZER_FILES if (folder / n).exists()}
    vocabularies = [n for n in _VOCABULARIES if n in present]
    if not vocabularies:
        return None
    for name, file in present.items():
        small = name.endswith(("config.json", ".jinja"))
        check_regular_file(file, CONFIG_LIMIT if small else TOKENIZER_LIMIT, CheckpointError)
    _check_class(present.get("tokenizer_config.json"))
    used = present[vocabularies[0]]  # what transformers reads first
    if used.name.endswith(".model"):
        _check_sentencepiece_installed(used)
    from transformers import AutoTokenizer

    try:
        with _quiet():
            return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # JSON, Rust, protobuf and OS errors alike
        file, problem = _diagnose(present, used) or (used, _line(exc))
        raise CheckpointError(file, f"tokenizer cannot be loaded ({problem})") from None


def check_vocabulary(tokenizer: Any, model: Any, config_path: Path) -> None:
    """Refuse a tokenizer with more tokens than the model has embedding rows (another
    model's, or one with tokens added and the embedding never resized): its ids past the
    last row would stop the model's forward pass with an IndexError."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise CheckpointError(
            config_path,
            f"vocab_size {rows:,} is smaller than the tokenizer's {len(tokenizer):,} tokens: "
            "not the tokenizer of this model",
        )


def pad_token(tokenizer: Any) -> tuple[int | None, str]:
    """The id that pads a batch of unequal lengths and where it comes from: the
    tokenizer's own pad token ("own"), else its EOS ("eos"), else none ((None, "none"))."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id, "own"
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id, "eos"
    return None, "none"


def tokenizer_info(tokenizer: Any, pad: str = "none") -> TokenizerInfo:
    """What the record says about the tokenizer a measurement used and its padding `pad`
    ("own", "eos" or "none", as `pad_token` gives it)."""
    token = {"own": tokenizer.pad_token, "eos": tokenizer.eos_token}.get(pad) or ""
    return TokenizerInfo(
        name=type(tokenizer).__name__,
        vocab_size=len(tokenizer),
        pad=pad,
        pad_token=str(token),
        bos_token=str(tokenizer.bos_token or ""),
        eos_token=str(tokenizer.eos_token or ""),
        chat_template=bool(getattr(tokenizer, "chat_template", None)),
    )


def _check_class(config_file: Path | None) -> None:
    """transformers 5 quietly builds a generic tokenizer for a class it does not know: the
    checkpoint's own would then be silently replaced by something else."""
    if config_file is None:
        return
    config = _json_object(config_file)
    name = config.get("tokenizer_class")
    if name is None:
        return
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    if not isinstance(name, str) or tokenizer_class_from_name(name) is None:
        raise CheckpointError(
            config_file,
            f"tokenizer_class {name!r} is not a tokenizer class transformers has "
            "(e.g. LlamaTokenizer, PreTrainedTokenizerFast)",
        )


def _check_sentencepiece_installed(model_file: Path) -> None:
    missing = [m for m in _SENTENCEPIECE_NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        packages = " ".join("protobuf" if m == "google.protobuf" else m for m in missing)
        raise CheckpointError(
            model_file,
            "a SentencePiece model without a tokenizer.json: reading it needs "
            f"`pip install {packages}`",
        )


def _diagnose(present: dict[str, Path], used: Path) -> tuple[Path, str] | None:
    """The file transformers failed on, and why, found by reading each file with its own
    parser; None when each one reads."""
    for name in _JSON_FILES:
        if name in present:
            try:
                _json_object(present[name])
            except CheckpointError as exc:
                return present[name], exc.problem
    if "tokenizer.json" in present:
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(present["tokenizer.json"]))
        except Exception as exc:  # the Rust parser's errors
            return present["tokenizer.json"], f"not a tokenizers file: {_line(exc)}"
    elif used.name.endswith(".model"):
        import sentencepiece

        try:
            sentencepiece.SentencePieceProcessor(model_proto=used.read_bytes())
        except Exception as exc:  # a protobuf that does not parse
            return used, f"not a SentencePiece model: {_line(exc)}"
    return None


def _json_object(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(file, f"not a readable JSON file ({_line(exc)})") from None
    if not isinstance(data, dict):
        raise CheckpointError(file, f"not a JSON object (a {type(data).__name__})")
    return data


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """transformers' warnings off while loading: a published tokenizer_config.json's
    settings (Llama 3's clean_up_tokenization_spaces) are the publisher's, not the user's."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def _line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
