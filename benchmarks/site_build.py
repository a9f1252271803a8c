"""How long `prunecard site` takes for 20 report folders (target: under 30 s).

One real card of the embedded default checkpoint (three figures, full tables) is written,
then copied into 20 folders whose report.json get different timings and scores, so the
home table, the plots and 20 model pages are all built. Only `build_site` is timed.

    python benchmarks/site_build.py [--reports 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

from analyzer.pipeline import card_from_files
from analyzer.publish.site import build_site
from analyzer.records import (
    Bench,
    BenchShape,
    ConfidenceInterval,
    Equivalence,
    Evaluation,
    Report,
    SquadScores,
    load_record,
    write_record,
)
from analyzer.runtime.demo import demo_checkpoint


def _variant(report: Report, i: int) -> Report:
    """The same analysis with a made-up speedup and score, different for each copy."""
    speedup = 1.2 + 0.15 * i
    shape = BenchShape(8, 128, 40.0, 40.0 / speedup, 1.0, 1.0, speedup, 3.0, speedup / 3, 10)
    env = report.provenance.environment
    bench = Bench(2, "cpu", "float32", (shape,), Equivalence(1e-6, 1e-4, "random"), env)
    f1 = 80.0 - 1.1 * i
    scores = SquadScores(exact=f1 - 3, f1=f1, total=500)
    ci = ConfidenceInterval(f1 - 6, f1, f1 - 3, f1 + 3, 0.95, 1000, 0)
    evaluation = Evaluation(scores, ci, 500, "squad_v2_dev_half.json", "0" * 64, True)
    return dataclasses.replace(report, bench=bench, evaluation=evaluation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        base = Path(work)
        card = card_from_files(
            demo_checkpoint(), out=base / "card", publication={"model_id": "demo"}
        )
        report = load_record(Report, card / "report.json")
        dirs = []
        for i in range(args.reports):
            folder = base / f"model-{i:02d}"
            shutil.copytree(card, folder)
            write_record(_variant(report, i), folder / "report.json")
            dirs.append(folder)
        start = time.perf_counter()
        index = build_site(dirs, base / "site")
        seconds = time.perf_counter() - start
        pages = len(list(index.parent.rglob("*.html")))
    print(f"{args.reports} reports -> {pages} pages in {seconds:.1f} s")


if __name__ == "__main__":
    main()
