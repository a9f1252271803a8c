"""`prunecard demo`: the README's first command, end to end on the embedded default."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_builds_report_and_site(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "analyzer.cli.main", "demo", "--out", str(out), "--limit", "12"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    index = out / "site" / "site" / "index.html"
    assert done.stdout.strip() == f"site built: {index}"
    assert index.exists()
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["evaluation"]["n"] == 12
    assert report["analysis"]["heads"]["removed"] > 0
    assert report["bench"]["shapes"][0]["speedup"] > 0
    for record in (
        "analysis.json",
        "bench.json",
        "eval/evaluation.json",
        "packed/config.json",
        "README.md",
        "assets/density.svg",
    ):
        assert (out / "report" / record).exists(), record
    assert "prunecard-demo-minilm-pruned" in index.read_text()
    again = subprocess.run(
        [sys.executable, "-m", "analyzer.cli.main", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
