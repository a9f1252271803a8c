"""The audit report for people: the terminal table and the Markdown report."""

from __future__ import annotations

from analyzer.audit.findings import MISMATCH, OK, UNCHECKED, WARNING, AuditReport
from analyzer.text import table

__all__ = ["audit_markdown", "format_audit"]


def _summary(report: AuditReport) -> str:
    return (
        f"{report.claims} claims, {len(report.findings)} checks: {report.count(OK)} ok, "
        f"{report.count(MISMATCH)} mismatch, {report.count(WARNING)} warning, "
        f"{report.count(UNCHECKED)} not checkable"
    )


def _inputs(report: AuditReport) -> list[tuple[str, str]]:
    return [
        ("card", report.card),
        ("weights", report.checkpoint or "not read (--no-weights)"),
        ("evaluation", report.evaluation or "not given"),
        ("bench", report.bench or "not given"),
    ]


def format_audit(report: AuditReport, strict: bool = False) -> str:
    """The terminal view: one row per check, then each mismatch and warning with its rule."""

    def cut(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 3] + "..."

    lines = [f"{name:<11}{value}" for name, value in _inputs(report)]
    rows = [
        (
            f.line,
            f.quantity,
            cut(f.claimed, 14),
            cut(f.measured, 30) or "-",
            f.check or "-",
            f.verdict,
        )
        for f in report.findings
    ]
    lines += ["", table(("line", "claim", "claimed", "measured", "check", "verdict"), rows)]
    for verdict, title in ((MISMATCH, "Mismatches:"), (WARNING, "Warnings:")):
        bad = [f for f in report.findings if f.verdict == verdict]
        if bad:
            lines += ["", title]
        for f in bad:
            where = f"{f.file} line {f.line}" if f.file else f"line {f.line} ({f.section})"
            lines.append(f'  {where}: "{cut(f.text, 90)}"')
            lines.append(f"    claimed {f.claimed}, found {f.measured or '-'}; rule: {f.rule}")
            if f.reason:
                lines.append(f"    note: {f.reason}")
    lines += ["", _summary(report) + (" -> FAIL" if report.failed(strict) else " -> PASS")]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return (text or "-").replace("|", "\\|").replace("\n", " ")


def audit_markdown(report: AuditReport) -> str:
    """A Markdown report: inputs, summary, every check with its quote and rule."""
    lines = ["# Model card audit", ""]
    lines += [f"- **{name}**: `{value}`" for name, value in _inputs(report)]
    verdict = "passed" if report.passed else "failed"
    lines += ["", f"**Result: {verdict}** ({_summary(report)}).", ""]
    lines += [
        "| Line | Section | Quote | Claim | Claimed | Measured | Check | Rule | Verdict |",
        "| ---: | --- | --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for f in report.findings:
        verdict_cell = f"**{f.verdict}**" if f.verdict in (MISMATCH, WARNING) else f.verdict
        if f.reason:
            verdict_cell += f" ({f.reason})"
        lines.append(
            f"| {f.line} | {_cell(f.section)} | {_cell(f.text)} | {f.quantity} | "
            f"{_cell(f.claimed)} | {_cell(f.measured)} | {_cell(f.check)} | {_cell(f.rule)} | "
            f"{_cell(verdict_cell)} |"
        )
    return "\n".join(lines) + "\n"
