"""The audit reports any machine-local path on a card; prunecard's own cards have none."""

from __future__ import annotations

from conftest import EXAMPLE_SPEC, build_minilm

from analyzer.audit.paths import local_paths
from analyzer.cli.main import main


def test_absolute_home_and_windows_paths_are_found():
    card = "\n".join(
        [
            "# Model",
            "- Checkpoint: `/home/me/models/minilm-pruned`",
            "Data: C:\\Users\\me\\dev-v2.0.json and ~/cache/squad",
            "See https://huggingface.co/org/model/blob/main/x.json and assets/density.png,",
            '<script src="/org/model/raw/main/info.js"></script> [a](/org/model/tree/main)',
            "41.3 questions/s, 12/50 questions, owner/name",
        ]
    )
    found = [(f.line, f.claimed, f.section, f.verdict) for f in local_paths(card)]
    assert found == [
        (2, "/home/me/models/minilm-pruned", "Model", "mismatch"),
        (3, "C:\\Users\\me\\dev-v2.0.json", "Model", "mismatch"),
        (3, "~/cache/squad", "Model", "mismatch"),
    ]


def test_audit_fails_a_card_naming_a_local_path(tmp_path, capsys):
    model = build_minilm(tmp_path / "model", EXAMPLE_SPEC)
    assert main(["card", str(model), "--out", str(model), "--name", "org/model"]) == 0
    assert main(["audit", str(model)]) == 0  # prunecard's own card: no path
    card = model / "README.md"
    text = card.read_text()
    card.write_text(text.replace("## Usage\n", f"## Usage\n\nWeights in `{model}`.\n"))
    capsys.readouterr()
    assert main(["audit", str(model)]) == 1
    out = capsys.readouterr().out
    assert "local path" in out and str(model) in out and "-> FAIL" in out
