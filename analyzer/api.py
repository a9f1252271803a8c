"""The Python API for scripts: `analyze`, `load`, `render_card`, `audit_card`.

Each is what a CLI command does at its core, without the command's files and exit codes;
`analyzer` exposes them lazily (`import analyzer` loads no torch). The stages they call
import what they need when called: auditing and rendering never load torch or the weights
code. The doctests run in the suite (tests/test_api.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.records import Analysis

if TYPE_CHECKING:
    from analyzer.audit.findings import AuditReport
    from analyzer.records import Report

__all__ = ["analyze", "audit_card", "load", "render_card"]


def analyze(path: str | Path, base: str | Path | None = None) -> Analysis:
    """Measure a checkpoint's weights: density, block structure, heads, FFN units.

    Args:
        path: a checkpoint folder (config.json and safetensors files), a single weights
            file, or a Hub id ("owner/name", "owner/name@revision") cached or fetched.
        base: for a width- or depth-pruned decoder, the config.json (or its folder) of the
            dense model it was pruned from.

    Returns:
        The Analysis record (`analyzer.records.Analysis`), as `prunecard analyze --json`
        writes it.

    Raises:
        CheckpointError: a file of the checkpoint is missing, corrupt or contradicts
            config.json (the message names the file).
        InputError: `base` is not a config of the same decoder family.

    Example:
        >>> from analyzer import analyze
        >>> from analyzer.runtime.demo import minilm_path
        >>> a = analyze(minilm_path())  # MiniLM-L6: 6 layers of 12 heads, FFN 1536
        >>> a.family, a.heads.total, a.ffn.units_total
        ('bert', 72, 9216)
    """
    from analyzer.weights.sparsity import analyze as measure

    return measure(path, base)


def load(
    path: str | Path,
    *,
    layout: str = "stored",
    dtype: Any = None,
    device: str = "cpu",
    align: int = 1,
) -> Any:
    """transformers' model of a checkpoint, in eval mode: as stored, or packed.

    Args:
        path: a checkpoint folder or file, or a Hub id (see `analyze`); an unpacked,
            legacy-pruned (`pruned_heads`) or prunecard-packed checkpoint.
        layout: "stored": the weights as stored (a packed checkpoint stays packed); "dense":
            removed heads back as zero rows;
            "packed": heads, K/V groups and FFN units that cannot change the output
            removed first.
        dtype: a torch dtype; default the weights' own.
        device: where the model goes ("cpu", "cuda", ...).
        align: with "packed", FFN widths padded with zero units to a multiple of this.

    Returns:
        A `transformers.PreTrainedModel` (the class `architectures` names), gradients off.

    Raises:
        CheckpointError: the family is not supported for loading, or the files contradict
            config.json.

    Example:
        >>> from analyzer import load
        >>> from analyzer.runtime.demo import minilm_path
        >>> model = load(minilm_path(), layout="packed")
        >>> type(model).__name__, model.config.num_hidden_layers
        ('BertModel', 6)
    """
    from analyzer.runtime.packing import load as build

    return build(path, dtype=dtype, device=device, layout=layout, align=align)


def render_card(
    report: Report | str | Path,
    *,
    template: str | Path | None = None,
    tool_url: str | None = None,
) -> str:
    """The model card (README.md text) of a report.

    Args:
        report: a Report record, or a report.json (or the card folder holding one).
        template: a Jinja2 template replacing the built-in one.
        tool_url: where the card links "prunecard" to (the project's repository);
            None: no link.

    Returns:
        The card: its validated YAML front matter, then the body.

    Raises:
        InputError: the report file or the template is unreadable or invalid.
        OutputError: the card's metadata would not validate on the Hub.

    Example:
        >>> from analyzer import analyze, render_card
        >>> from analyzer.pipeline import build_report
        >>> from analyzer.runtime.demo import minilm_path
        >>> report = build_report(minilm_path(), analysis=analyze(minilm_path()))
        >>> card = render_card(report)
        >>> card.startswith("---"), "72" in card
        (True, True)
    """
    from analyzer.publish.card import CardOptions
    from analyzer.publish.card import render_card as render
    from analyzer.publish.report import read_report

    record = read_report(report) if isinstance(report, str | Path) else report
    options = CardOptions(template=Path(template) if template else None, tool_url=tool_url)
    return render(record, options)


def audit_card(
    card: str | Path,
    analysis: Analysis | None = None,
    *,
    eval_path: str | Path | None = None,
    bench_path: str | Path | None = None,
) -> AuditReport:
    """Every claim a model card makes, checked against measured records.

    Named `audit_card` because `analyzer.audit` is the subpackage that does it.

    Args:
        card: the card's README.md (the `.eval_results/` beside it are read too).
        analysis: the weights' Analysis (`analyze`); None audits the card on its own
            (internal consistency only).
        eval_path: the eval.json record the card's scores came from.
        bench_path: the bench.json record its timings came from.

    Returns:
        The AuditReport: one finding per claim (`passed` when none is a mismatch).

    Raises:
        InputError: the card or a record is unreadable or invalid.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from analyzer import analyze, audit_card, render_card
        >>> from analyzer.pipeline import build_report
        >>> from analyzer.runtime.demo import minilm_path
        >>> a = analyze(minilm_path())
        >>> folder = Path(tempfile.mkdtemp())
        >>> card = render_card(build_report(minilm_path(), analysis=a))
        >>> _ = (folder / "README.md").write_text(card, encoding="utf-8")
        >>> result = audit_card(folder / "README.md", a)
        >>> result.claims > 0, [f.quantity for f in result.findings if f.verdict == "mismatch"]
        (True, ['tag'])

        The one mismatch is real: MiniLM is a bare BertModel, and the card's default
        `question-answering` tag claims a QA head the weights do not have.
    """
    from analyzer.audit.checks import audit

    return audit(card, analysis, eval_path=eval_path, bench_path=bench_path)
