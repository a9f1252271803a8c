"""Progress of the long loops (bench runs, eval questions) on a terminal and in logs.

On a terminal, tqdm redraws one line. In a log (CI, `nohup`, a pipe) that line is either
missing or thousands of carriage-return fragments, so there a plain line such as
`answering: 1,200/6,078 questions, 41.3 questions/s, ETA 1m58s` is printed every
`interval` seconds by a timer thread, even while one slow step runs, and once at the end.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from analyzer.text import count, fixed

__all__ = ["LogProgress", "progress_bar"]

INTERVAL_S = 10.0  # the longest a log stays silent while a loop runs


def progress_bar(
    total: int,
    desc: str,
    unit: str,
    *,
    enabled: bool = True,
    stream: TextIO | None = None,
    interval: float = INTERVAL_S,
) -> Any:
    """tqdm where `stream` (stderr) is a terminal, else a `LogProgress`; silent when not
    `enabled`. Both take `update(n)` (n may be fractional) and work as context managers."""
    from tqdm import tqdm

    stream = stream or sys.stderr
    if not enabled:
        return tqdm(total=total, disable=True)
    if stream.isatty():
        return tqdm(total=total, desc=desc, unit=unit, leave=False, file=stream)
    return LogProgress(total, desc, unit, stream=stream, interval=interval)


class LogProgress:
    """Counts progress and prints a line with the rate and ETA every `interval` seconds."""

    def __init__(
        self, total: int, desc: str, unit: str, *, stream: TextIO, interval: float = INTERVAL_S
    ) -> None:
        self.total, self.desc, self.unit, self.stream = total, desc, unit, stream
        self.n = 0.0
        self.began = time.monotonic()
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._tick, args=(interval,), daemon=True)
        self._timer.start()

    def update(self, n: float = 1) -> None:
        self.n += n

    def line(self) -> str:
        """`desc: n/total units, rate units/s, ETA 1m58s` at this moment."""
        elapsed = time.monotonic() - self.began
        rate = self.n / elapsed if elapsed > 0 else 0.0
        eta = _duration((self.total - self.n) / rate) if rate > 0 else "unknown"
        return (
            f"{self.desc}: {count(self.n)}/{self.total:,} {self.unit}s, "
            f"{fixed(rate, 1)} {self.unit}s/s, ETA {eta}"
        )

    def close(self, *, summary: bool = True) -> None:
        """Stop the timer; print the totals unless the loop failed (its error is the news)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._timer.join()
        if not summary:
            return
        elapsed = time.monotonic() - self.began
        rate = self.n / elapsed if elapsed > 0 else 0.0
        self._say(
            f"{self.desc}: {count(self.n)}/{self.total:,} {self.unit}s in "
            f"{_duration(elapsed)}, {fixed(rate, 1)} {self.unit}s/s"
        )

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        self.close(summary=kind is None)

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._say(self.line())

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    """1m58s, 2h03m, 7s: the width of a log line, not more."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
