"""Decoding speed of a causal LM: greedy generation with a KV cache, as a timed run.

A run generates `new_tokens` tokens for each of `batch` sequences after a prompt: one
forward pass over the prompt (it gives the first token), then one step per further token
that reads and grows the cache. Tokens per second are batch x new_tokens over the run's
median time, prefill included; the dense and the packed model run the same prompts, and
their rates are timed interleaved by `analyzer.runtime.timing` like the prefill shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from analyzer.records import DecodeRate

__all__ = ["DECODE_BATCHES", "NEW_TOKENS", "PROMPT_TOKENS", "decode_rate", "greedy_runner"]

DECODE_BATCHES = (1, 16)  # the issue's: one user, and a small server batch
PROMPT_TOKENS = 32
NEW_TOKENS = 32


def greedy_runner(model: Any, ids: Any, new_tokens: int) -> Callable[[], Any]:
    """A no-argument run: greedy generation of `new_tokens` tokens after the prompt `ids`
    (batch x prompt), in a fresh dynamic KV cache; returns the generated token ids."""
    import torch
    from transformers import DynamicCache

    def run() -> Any:
        cache = DynamicCache(config=model.config)
        out = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        tokens = [out.logits[:, -1:].argmax(-1)]
        for _ in range(new_tokens - 1):
            out = model(input_ids=tokens[-1], cache=cache, use_cache=True, logits_to_keep=1)
            tokens.append(out.logits[:, -1:].argmax(-1))
        return torch.cat(tokens, dim=1)

    return run


def decode_rate(
    batch: int, prompt: int, new_tokens: int, dense_ms: float, packed_ms: float, repeats: int,
    verdict: str,
) -> DecodeRate:  # fmt: skip
    """The record of one batch size from the median milliseconds per run of each model."""
    dense, packed = (batch * new_tokens / (ms / 1000) for ms in (dense_ms, packed_ms))
    return DecodeRate(
        batch=batch,
        prompt=prompt,
        new_tokens=new_tokens,
        dense_tokens_per_s=dense,
        packed_tokens_per_s=packed,
        speedup=packed / dense,
        repeats=repeats,
        verdict=verdict,
    )
