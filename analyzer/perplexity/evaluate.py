"""Perplexity of a causal LM over a text: windows by one of two protocols (windows.py),
summed negative log-likelihoods per window, and a percentile bootstrap over windows.

    perplexity = exp(total NLL / tokens scored)

where the NLL is in nats and the CI resamples windows with replacement and recomputes
exp(sum NLL / sum tokens scored) (a ratio: a sliding plan's first window scores more tokens
than the others). "sliding" scores the text as it is (each token after the first exactly
once); "papers" joins its documents with "\\n\\n" and scores the non-overlapping windows,
each of `seqlen - 1` tokens, which is SparseGPT's exp(sum(loss_i * seqlen) / (n * seqlen)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError, InputError
from analyzer.perplexity.text import Text
from analyzer.perplexity.windows import Window, default_window, plan_blocks, plan_windows
from analyzer.records import PERPLEXITY_PROTOCOLS, Perplexity
from analyzer.weights.checkpoint import Checkpoint

__all__ = [
    "evaluate_perplexity",
    "load_text",
    "measure_perplexity",
    "perplexity_interval",
    "plan_options",
    "window_nll",
]


def measure_perplexity(
    checkpoint: Path | Checkpoint,
    text: Text,
    *,
    protocol: str = "sliding",
    window: int | None = None,
    stride: int | None = None,
    limit_tokens: int | None = None,
    packed: bool = False,
    dtype: Any = None,
    device: str = "cpu",
    align: int = 1,
    progress: bool = True,
) -> Perplexity:
    """Load the causal LM at `checkpoint` and measure it on `text` (`load_text`), windows
    as `plan_options` gives them: the one path `eval` and `report` both take."""
    from analyzer.perplexity.model import load_causal_lm

    model, tokenizer = load_causal_lm(
        checkpoint, packed=packed, dtype=dtype, device=device, align=align
    )
    return evaluate_perplexity(
        model,
        tokenizer,
        text,
        protocol=protocol,
        window=window,
        stride=stride,
        limit_tokens=limit_tokens,
        packed=packed,
        checkpoint=str(checkpoint.root if isinstance(checkpoint, Checkpoint) else checkpoint),
        progress=progress,
    )


def plan_options(
    protocol: str, window: int | None, stride: int | None, seqlen: int | None
) -> tuple[int | None, int | None]:
    """(window, stride) for `evaluate_perplexity` from the command line's options: --window
    and --stride shape the sliding window, --seqlen the papers' windows; one given to the
    other protocol is refused rather than ignored."""
    _check_protocol(protocol)
    if protocol == "papers":
        foreign, other = {"--window": window, "--stride": stride}, "sliding"
    else:
        foreign, other = {"--seqlen": seqlen}, "papers"
    wrong = next((name for name, value in foreign.items() if value is not None), None)
    if wrong is not None:
        raise InputError(None, f"{wrong} applies to --protocol {other}, not {protocol}")
    return (seqlen, None) if protocol == "papers" else (window, stride)


def _check_protocol(protocol: str) -> None:
    if protocol not in PERPLEXITY_PROTOCOLS:
        raise InputError(None, f"--protocol must be one of {', '.join(PERPLEXITY_PROTOCOLS)}")


def load_text(text_file: Path | None, dataset: str | None) -> Text:
    """The text to score: a file, a named dataset, or without either the bundled text."""
    from analyzer.perplexity.text import bundled_text, read_text

    if text_file is not None and dataset is not None:
        raise InputError(None, "--text and a dataset name two texts: give one of them")
    if dataset is not None:
        from analyzer.perplexity.corpora import load_corpus

        return load_corpus(dataset)
    return read_text(text_file) if text_file is not None else bundled_text()


def evaluate_perplexity(
    model: Any,
    tokenizer: Any,
    text: Text,
    *,
    protocol: str = "sliding",
    window: int | None = None,
    stride: int | None = None,
    limit_tokens: int | None = None,
    packed: bool = False,
    checkpoint: str = "",
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    progress: bool = False,
) -> Perplexity:
    """The `Perplexity` record of `model` on `text` by `protocol`. "sliding": `window`
    defaults to the model's positions capped at 1024, `stride` to half the window. "papers":
    `window` is the seqlen, by default the positions capped at 2048, and `stride` must be
    None. `limit_tokens` keeps the text's first N tokens. Tokens are the tokenizer's own,
    special tokens included (a BOS), from the plain text, tokenized in one call: a chat
    template is never applied, and a window needs no padding. The pair is the caller's:
    `load_causal_lm` refuses a tokenizer past the model's embedding."""
    from analyzer.runtime.bench import dtype_option
    from analyzer.runtime.environment import device_name
    from analyzer.runtime.tokenizer import tokenizer_info

    _check_protocol(protocol)
    papers = protocol == "papers"
    option = "--seqlen" if papers else "--window"
    if papers and stride is not None:
        raise InputError(None, "--stride applies to --protocol sliding, not papers")
    positions = model.config.max_position_embeddings
    window = default_window(positions, protocol) if window is None else window
    if window > positions:
        raise InputError(None, f"{option} {window} exceeds the model's {positions} positions")
    ids = tokenizer(text.joined() if papers else text.content, verbose=False)["input_ids"]
    if limit_tokens is not None:
        if limit_tokens < 2:
            raise InputError(None, f"--limit-tokens must be at least 2, got {limit_tokens}")
        ids = ids[:limit_tokens]
    if papers:
        stride, windows = window, plan_blocks(len(ids), window)
    else:
        stride = window // 2 if stride is None else stride
        windows = plan_windows(len(ids), window, stride)
    parameter = next(model.parameters())
    began = time.perf_counter()
    nll = window_nll(model, ids, windows, progress=progress)
    elapsed = time.perf_counter() - began
    scored = [w.tokens for w in windows]
    covered = windows[-1].end  # "papers" drops the tokens after the last whole window
    total = sum(nll)
    if not math.isfinite(total):
        raise CheckpointError(
            checkpoint or None,
            f"the model's log-likelihoods are not finite ({total}) in "
            f"{dtype_option(parameter.dtype)}: try --dtype fp32",
        )
    low, high = perplexity_interval(nll, scored, resamples=resamples, seed=seed, level=level)
    return Perplexity(
        perplexity=math.exp(total / sum(scored)),
        ci_low=low,
        ci_high=high,
        level=level,
        resamples=resamples,
        seed=seed,
        tokens=len(ids),
        scored=sum(scored),
        windows=len(windows),
        window=window,
        stride=stride,
        text=text.name,
        text_sha256=text.sha256,
        packed=packed,
        checkpoint=checkpoint,
        device=device_name(str(parameter.device)),
        dtype=dtype_option(parameter.dtype),
        tokens_per_second=covered / max(elapsed, 1e-9),
        limit_tokens=limit_tokens,
        tokenizer=tokenizer_info(tokenizer),  # one window at a time: no padding
        protocol=protocol,
        dataset=text.dataset,
        dataset_config=text.config,
        dataset_split=text.split,
    )


def window_nll(
    model: Any, ids: Sequence[int], windows: Sequence[Window], *, progress: bool = False
) -> list[float]:
    """Each window's summed negative log-likelihood (nats, computed in fp32) of the tokens
    it scores, each predicted from the tokens before it inside the window."""
    import torch

    from analyzer.runtime.progress import progress_bar

    device = next(model.parameters()).device
    nll = []
    bar = progress_bar(len(windows), "scoring", "window", enabled=progress)
    with torch.no_grad(), bar:
        for w in windows:
            tokens = torch.tensor([ids[w.begin : w.end]], dtype=torch.long, device=device)
            logits = model(input_ids=tokens).logits[0]
            # the logits at position i predict token i + 1
            predicted = logits[w.scored - w.begin - 1 : w.end - w.begin - 1].float()
            target = tokens[0, w.scored - w.begin :]
            loss = torch.nn.functional.cross_entropy(predicted, target, reduction="sum")
            nll.append(float(loss))
            bar.update(1)
    return nll


def perplexity_interval(
    nll: Sequence[float], tokens: Sequence[int], *, resamples: int, seed: int, level: float
) -> tuple[float, float]:
    """Percentile bootstrap over windows: resample them with replacement, recompute
    exp(sum NLL / sum tokens scored)."""
    import numpy as np

    from analyzer.bootstrap import percentile_interval, resampled_sums

    sums = resampled_sums([nll, tokens], resamples=resamples, seed=seed)
    low, high = percentile_interval(np.exp(sums[0] / sums[1]), level)
    return float(low), float(high)
