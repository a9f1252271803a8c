"""Progress in logs: a line with the rate and an ETA at least every interval when stderr is
not a terminal (tqdm where it is), from bench and eval alike."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time

from conftest import EXAMPLE_SPEC, build_minilm
from tqdm import tqdm

from analyzer.runtime.progress import LogProgress, progress_bar

LINE = re.compile(
    r"^answering: (\d+)/10 questions, (\d+\.\d) questions/s, ETA (\d+s|\d+m\d\ds|unknown)$"
)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_come_while_a_slow_step_runs():
    log = io.StringIO()
    with progress_bar(10, "answering", "question", stream=log, interval=0.05) as bar:
        bar.update(4)
        time.sleep(0.3)  # one slow batch: the timer still reports
    lines = log.getvalue().splitlines()
    ticks = [LINE.match(line) for line in lines[:-1]]
    assert len(ticks) >= 3 and all(ticks), lines
    assert {m.group(1) for m in ticks} == {"4"}
    assert float(ticks[-1].group(2)) > 0 and ticks[-1].group(3) != "unknown"
    assert re.fullmatch(r"answering: 4/10 questions in \d+s, \d+\.\d questions/s", lines[-1])


def test_terminal_gets_tqdm_and_disabled_prints_nothing():
    assert isinstance(progress_bar(3, "bench", "run", stream=_Terminal()), tqdm)
    assert not isinstance(progress_bar(3, "bench", "run", stream=io.StringIO()), tqdm)
    silent = io.StringIO()
    with progress_bar(3, "bench", "run", enabled=False, stream=silent) as bar:
        bar.update(3)
    assert silent.getvalue() == ""


def test_a_failed_loop_prints_no_totals():
    log = io.StringIO()
    try:
        with LogProgress(5, "answering", "question", stream=log, interval=60):
            raise ValueError("the error is the news")
    except ValueError:
        pass
    assert log.getvalue() == ""


def test_eval_in_a_log_reports_questions(tmp_path):
    """`prunecard eval` with stderr in a file: the totals line names questions and a rate."""
    model = build_minilm(tmp_path / "m", EXAMPLE_SPEC)
    args = ["eval", str(model), "--limit", "6", "--out", str(tmp_path / "eval"), "--device", "cpu"]
    done = subprocess.run(
        [sys.executable, "-m", "analyzer.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^answering: 6/6 questions in \d+s, [\d.]+ questions/s$", done.stderr, re.M)
