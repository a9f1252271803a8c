"""Machine-local paths on a card: an absolute path (`/home/me/...`, `C:\\Users\\...`,
`~/...`) names the author's machine, means nothing on the Hub and changes from one machine
to the next, so the audit reports each one as a mismatch of the card's format."""

from __future__ import annotations

import re
from pathlib import Path

from analyzer.audit.findings import MISMATCH, WARNING, AuditFinding
from analyzer.audit.placeholders import PLACEHOLDER

__all__ = ["card_paths", "local_paths"]

# A path starts a word (after a space, quote, backtick, bracket or '='), so URLs
# ("https://host/a/b") and relative links ("assets/density.png") never match; nor do link
# targets, which the Hub resolves against its own site (`src="/owner/model/raw/..."`).
_LINK = ('src="', "src='", 'href="', "href='", "](")
_PATH = re.compile(
    r"""(?:^|(?<=[\s`'"(\[=]))  # the start of a word
    (?: /[\w.@+-]+(?:/[\w.@+-]*)+  # /home/me/model, /tmp/x/
      | ~/[\w.@+-]+(?:/[\w.@+-]*)*  # ~/models/x
      | [A-Za-z]:\\[\w.@+-]+(?:\\[\w.@+-]*)*  # C:\Users\me
    )""",
    re.VERBOSE,
)
RULE = "files are named by name and sha256, the model by its Hub id; no absolute path"


def local_paths(text: str) -> list[AuditFinding]:
    """One finding per absolute or home-relative path in the card's text."""
    findings = []
    section = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        for match in _PATH.finditer(line):
            if line[: match.start()].endswith(_LINK):
                continue
            placeholder = bool(PLACEHOLDER.match(match.group(0)))
            findings.append(
                AuditFinding(
                    quantity="local path",
                    text=line.strip(),
                    line=number,
                    section=section,
                    source="text",
                    claimed=match.group(0),
                    measured="a placeholder" if placeholder else "a path on the author's machine",
                    check="format",
                    rule=RULE,
                    verdict=WARNING if placeholder else MISMATCH,
                    reason="a placeholder for the reader's own path"
                    if placeholder
                    else "a machine-local path; name the file and its sha256 instead",
                )
            )
    return findings


def card_paths(card: str | Path) -> list[AuditFinding]:
    """`local_paths` of a card file (already read once by the audit, so it exists)."""
    return local_paths(Path(card).read_text(encoding="utf-8"))
