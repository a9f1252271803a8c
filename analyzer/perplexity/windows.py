"""The window plans: which tokens each forward pass sees and which it scores.

"sliding" (the default), the strided sliding window:

A causal LM sees at most `window` tokens at once, so a long text is cut into windows that
start `stride` tokens apart (https://huggingface.co/docs/transformers/perplexity). The
first window scores every token but the first; each later one scores only the tokens no
earlier window scored, so every token after the first is scored exactly once, and the
first token a later window scores has exactly `window - stride` tokens of context before
it (the tokens after it, more). A smaller stride gives more context and costs more passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.errors import InputError

__all__ = [
    "MAX_DEFAULT_SEQLEN",
    "MAX_DEFAULT_WINDOW",
    "Window",
    "default_window",
    "plan_blocks",
    "plan_windows",
]

MAX_DEFAULT_WINDOW = 1024  # "sliding": tokens per window unless --window says otherwise
MAX_DEFAULT_SEQLEN = 2048  # "papers": SparseGPT's and Wanda's seqlen, unless --seqlen


@dataclass(frozen=True)
class Window:
    """One forward pass over tokens [begin, end) that scores tokens [scored, end)."""

    begin: int
    end: int
    scored: int  # begin < scored < end: the first token this window predicts

    @property
    def tokens(self) -> int:
        """Tokens scored (predicted from the ones before them)."""
        return self.end - self.scored


def default_window(max_positions: int, protocol: str = "sliding") -> int:
    """The model's positions, capped at MAX_DEFAULT_WINDOW (attention cost is quadratic),
    or for "papers" at MAX_DEFAULT_SEQLEN, as the papers cap a model's context."""
    cap = MAX_DEFAULT_SEQLEN if protocol == "papers" else MAX_DEFAULT_WINDOW
    return min(max_positions, cap)


def plan_windows(tokens: int, window: int, stride: int) -> tuple[Window, ...]:
    """The windows over a text of `tokens` tokens, in order; needs 2 <= window and
    1 <= stride < window (a stride of `window` would leave the first token of every
    window unscored, with no context)."""
    if window < 2:
        raise InputError(None, f"--window must be at least 2 tokens, got {window}")
    if not 1 <= stride < window:
        raise InputError(
            None, f"--stride must be from 1 to window - 1 ({window - 1}), got {stride}"
        )
    if tokens < 2:
        raise InputError(None, f"the text has {tokens} token(s): perplexity needs at least 2")
    windows: list[Window] = []
    begin = done = 0  # done: tokens [0, done) are scored or are the first token
    while done < tokens:
        end = min(begin + window, tokens)
        windows.append(Window(begin, end, max(done, begin + 1)))
        done, begin = end, begin + stride
    return tuple(windows)


def plan_blocks(tokens: int, seqlen: int) -> tuple[Window, ...]:
    """The papers' windows: [i * seqlen, (i + 1) * seqlen) for i < tokens // seqlen, each
    scoring all its tokens but the first; needs seqlen >= 2 and one whole window."""
    if seqlen < 2:
        raise InputError(None, f"--seqlen must be at least 2 tokens, got {seqlen}")
    if tokens < seqlen:
        raise InputError(
            None,
            f"the text has {tokens:,} token(s), fewer than one window of --seqlen {seqlen:,}: "
            "--protocol papers scores whole windows only (give a lower --seqlen)",
        )
    return tuple(Window(b, b + seqlen, b + 1) for b in range(0, tokens - seqlen + 1, seqlen))
