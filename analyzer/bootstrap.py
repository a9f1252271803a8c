"""The percentile bootstrap that every confidence interval on a card comes from.

SQuAD scores resample questions (a mean); perplexity resamples windows (a ratio of sums:
negative log-likelihood over tokens scored). Both draw the same way: `resamples` samples
of n items with replacement from numpy's default generator seeded with `seed`, so an
interval is reproducible from its record's `resamples` and `seed`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["percentile_interval", "resampled_sums"]

_CELLS = 2_000_000  # indices drawn at once: bounds memory for any n


def resampled_sums(rows: Sequence[Sequence[float]], *, resamples: int, seed: int) -> Any:
    """Sums of each row over `resamples` bootstrap samples of its n columns: an array of
    shape (len(rows), resamples). Every row is resampled with the same indices, so ratios
    of rows (NLL / tokens) stay paired."""
    import numpy as np

    values = np.asarray(rows, dtype=np.float64)  # (k, n)
    n = values.shape[1]
    rng = np.random.default_rng(seed)
    sums = np.empty((values.shape[0], resamples))
    chunk = max(1, _CELLS // max(n, 1))
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        sums[:, start:stop] = values[:, idx].sum(axis=2)
    return sums


def percentile_interval(samples: Any, level: float) -> tuple[Any, Any]:
    """The central `level` interval of bootstrap statistics along their last axis:
    (low, high), each with the leading shape of `samples`."""
    import numpy as np

    tail = 100 * (1 - level) / 2
    return np.percentile(samples, tail, axis=-1), np.percentile(samples, 100 - tail, axis=-1)
