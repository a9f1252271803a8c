"""The text a perplexity is measured on: a UTF-8 file the user gives, the bundled one, or a
named Hub dataset (corpora.py).

The bundled text is the Wikipedia paragraphs already shipped in the SQuAD v2 sample
(`analyzer/data/squad_v2_sample.json`, CC BY-SA 4.0, see SQUAD_LICENSE.md beside it):
its distinct contexts in file order, joined by blank lines. They come from SQuAD v2's
development set, which is the validation split of the Hub's `rajpurkar/squad_v2`, so
records file them under that dataset; they are named by a stable name and the sha256 of
the data file, never by a machine-local path.

Each text also has its documents, which the papers' protocol joins with "\\n\\n" (as
SparseGPT and Wanda join WikiText's rows): a dataset's rows, the bundled paragraphs, or a
file's lines as the `datasets` library reads a raw text file (WikiText's `wiki.test.raw`
gives exactly the Hub's rows: every line with its newline, blank lines as "").
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import InputError
from analyzer.hashing import sha256_file
from analyzer.inputs import DATA_LIMIT, read_input
from analyzer.records import SQUAD_V2_ID

__all__ = ["BUNDLED_TEXT", "Text", "bundled_text", "file_rows", "read_text"]

BUNDLED_TEXT = "squad_v2 sample contexts (Wikipedia, CC BY-SA 4.0)"


@dataclass(frozen=True)
class Text:
    """A text to score, with what identifies it in the record."""

    name: str  # the file path, BUNDLED_TEXT, or the dataset in words
    sha256: str  # of the file's bytes (the bundled text: of the SQuAD sample file)
    content: str  # what the sliding window scores
    documents: tuple[str, ...]  # what the papers' protocol joins with "\n\n"
    dataset: str = ""  # the Hub dataset id ("" for a local file)
    config: str = ""
    split: str = ""

    def joined(self) -> str:
        """The documents joined with "\\n\\n": the papers' text."""
        return "\n\n".join(self.documents)


def read_text(path: str | Path) -> Text:
    """A regular UTF-8 text file of at most the data limit (a byte-order mark is dropped);
    an empty, binary, undecodable or oversized file raises an InputError naming it."""
    data = read_input(path, DATA_LIMIT)
    if b"\0" in data:
        raise InputError(path, "is a binary file (it holds NUL bytes), not text")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            path, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    if not content.strip():
        raise InputError(path, "holds no text (empty or white space only)")
    return Text(
        name=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        content=content,
        documents=file_rows(content),
    )


def file_rows(content: str) -> tuple[str, ...]:
    """A text file's rows as `datasets`' WikiText builder yields them: each line with its
    newline (universal newlines, as `open` reads it), a blank line as ""."""
    return tuple(line if line.strip() else "" for line in io.StringIO(content, newline=None))


def bundled_text() -> Text:
    """The distinct paragraphs of the bundled SQuAD v2 sample, in order, blank-line joined."""
    from analyzer.squad.data import bundled_sample_path, read_squad

    path = bundled_sample_path()
    contexts = tuple(dict.fromkeys(q.context for q in read_squad(path).questions))
    return Text(
        name=BUNDLED_TEXT,
        sha256=sha256_file(path),
        content="\n\n".join(contexts),
        documents=contexts,
        dataset=SQUAD_V2_ID,
        config="squad_v2",
        split="validation",
    )
