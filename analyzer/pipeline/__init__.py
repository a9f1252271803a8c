"""The stages joined: `report`, `eval`, `bench`, `card`, `audit` and `demo` as the CLI runs
them, each from an options record (`options`), each record kept.

This is the one package that joins measuring (weights, runtime, squad, perplexity, lmeval)
to rendering (publish): rendering reads records only, never weights. Its modules:
`options` (what a command is asked to do, checked), `stages` (eval and bench, alone or in a
report), `report` (report and demo), `card` (provenance, card from files, audit).
"""

from __future__ import annotations

from analyzer.pipeline.card import audit_checkpoint, build_report, card_from_files, utc_now
from analyzer.pipeline.options import BenchOptions, EvalOptions, PerplexityOptions, ReportOptions
from analyzer.pipeline.report import DEMO_LIMIT, DEMO_NOTICE, run_demo, run_report
from analyzer.pipeline.stages import run_bench, run_eval

__all__ = [
    "DEMO_LIMIT",
    "DEMO_NOTICE",
    "BenchOptions",
    "EvalOptions",
    "PerplexityOptions",
    "ReportOptions",
    "audit_checkpoint",
    "build_report",
    "card_from_files",
    "run_bench",
    "run_demo",
    "run_eval",
    "run_report",
    "utc_now",
]
