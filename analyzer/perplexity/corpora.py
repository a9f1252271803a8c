"""Named Hub datasets a perplexity can be measured on (`--dataset NAME`), read through the
`datasets` library from the user's cache or the Hub (the `datasets` extra).

`wikitext2` is the text the pruning papers report (SparseGPT, Wanda): WikiText-2 raw,
`load_dataset("wikitext", "wikitext-2-raw-v1", split="test")`, its rows joined with
"\\n\\n". Offline (`HF_HUB_OFFLINE=1`) the cached copy is used; without one the error is one
line naming the dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from analyzer.errors import InputError
from analyzer.perplexity.text import Text

__all__ = ["CORPORA", "Corpus", "load_corpus"]


@dataclass(frozen=True)
class Corpus:
    """A Hub dataset split whose text column is the text."""

    title: str  # its name in records and on cards (the Hub id, config and split beside it)
    path: str  # the Hub id `datasets.load_dataset` takes
    config: str
    split: str
    column: str

    @property
    def name(self) -> str:
        """The dataset as errors name it."""
        return f"{self.path} ({self.config}, {self.split} split)"


CORPORA = {
    "wikitext2": Corpus(
        "WikiText-2 raw, test split", "wikitext", "wikitext-2-raw-v1", "test", "text"
    )
}


def load_corpus(key: str) -> Text:
    """The named dataset's rows as a Text (content and documents: the rows; sha256 of the
    rows joined with "\\n\\n", the text scored)."""
    corpus = CORPORA.get(key)
    if corpus is None:
        raise InputError(None, f"--dataset {key!r} is not one of {', '.join(CORPORA)}")
    try:
        import datasets
    except ImportError:
        raise InputError(
            corpus.name, "needs the datasets library (pip install 'prunecard[datasets]')"
        ) from None
    with _quiet(datasets):
        try:
            table = datasets.load_dataset(corpus.path, corpus.config, split=corpus.split)
        except Exception as exc:  # offline without a cache, a Hub error, a broken cache, ...
            raise InputError(corpus.name, _problem(exc, datasets.config.HF_HUB_OFFLINE)) from None
    if corpus.column not in table.column_names:
        raise InputError(corpus.name, f"has no {corpus.column!r} column ({table.column_names})")
    rows = tuple(table[corpus.column])
    if not all(isinstance(row, str) for row in rows) or not "".join(rows).strip():
        raise InputError(corpus.name, f"its {corpus.column!r} column holds no text")
    joined = "\n\n".join(rows)
    return Text(
        name=corpus.title,
        sha256=hashlib.sha256(joined.encode("utf-8")).hexdigest(),
        content=joined,
        documents=rows,
        dataset=corpus.path,
        config=corpus.config,
        split=corpus.split,
    )


def _problem(exc: Exception, offline: bool) -> str:
    why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    if offline or isinstance(exc, ConnectionError):
        where = "offline mode" if offline else why
        return (
            f"not in the datasets cache and the Hub cannot be reached ({where}); "
            "load it once with network, or give the text with --text FILE"
        )
    return f"cannot be loaded by datasets ({type(exc).__name__}: {why})"


@contextlib.contextmanager
def _quiet(datasets: Any) -> Iterator[None]:
    """datasets' progress bars and cache notices off: prunecard prints its own progress."""
    bars, verbosity = datasets.is_progress_bar_enabled(), datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        yield
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars:
            datasets.enable_progress_bars()
