"""Site pages are named after the model id in report.json, not after the report folder, and
do not depend on the order of the folders on the command line."""

from __future__ import annotations

from conftest import EXAMPLE_SPEC, PruneSpec, build_minilm
from site_reports import write_report_dir

from analyzer.publish.site import build_site, read_report_dir


def _pages(site_index) -> set[str]:
    return {p.name for p in (site_index.parent / "models").iterdir()}


def test_slugs_come_from_model_ids_whatever_the_order(tmp_path):
    light = build_minilm(tmp_path / "ckpt-light", PruneSpec(zero_units={0: (1,)}))
    heavy = build_minilm(tmp_path / "ckpt-heavy", EXAMPLE_SPEC)
    a = write_report_dir(tmp_path / "a" / "report", light, "org/Alpha.v2")
    b = write_report_dir(tmp_path / "b" / "report", heavy, "org/beta")
    same = write_report_dir(tmp_path / "c" / "report", heavy, "org/Alpha.v2")
    assert read_report_dir(a).slug == "org-alpha-v2"  # folder "report" plays no part
    forward = build_site([a, b, same], tmp_path / "s1")
    backward = build_site([same, b, a], tmp_path / "s2")
    assert _pages(forward) == _pages(backward)
    pages = _pages(forward)
    assert "org-beta" in pages and "report" not in pages
    twins = sorted(p for p in pages if p.startswith("org-alpha-v2-"))
    assert len(twins) == 2  # one model id, two reports: told apart by report.json's sha256
