"""The public Python API (`analyzer.api`): its doctests run here, and importing the
record-only stages (audit, publish) loads neither the weights code nor torch."""

from __future__ import annotations

import doctest
import json
import subprocess
import sys

import analyzer
import analyzer.api


def test_the_api_doctests_pass():
    result = doctest.testmod(analyzer.api)
    assert result.attempted >= 4 and result.failed == 0


def test_the_api_is_reached_from_the_package_lazily():
    assert analyzer.analyze is analyzer.api.analyze
    assert {"analyze", "load", "render_card", "audit_card"} <= set(analyzer.__all__)


def test_importing_audit_or_publish_loads_no_weights_code_and_no_torch():
    code = (
        "import sys, json, analyzer, analyzer.audit.checks, analyzer.publish.card, "
        "analyzer.publish.site; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers') or m.startswith(('analyzer.weights', 'analyzer.runtime')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_card_links_prunecard_only_where_told(tmp_path):
    from analyzer.pipeline import build_report
    from analyzer.runtime.demo import minilm_path

    report = build_report(minilm_path(), analysis=analyzer.analyze(minilm_path()))
    plain = analyzer.render_card(report)
    linked = analyzer.render_card(report, tool_url="https://example.org/prunecard")
    version = analyzer.__version__
    assert f"measured by prunecard {version} from" in plain and "pypi.org" not in plain
    assert f"measured by [prunecard](https://example.org/prunecard) {version} " in linked
    assert "from analyzer import load" in plain  # the usage block uses the public API
