"""The card-text walker: one pass over a card, each piece handed to every phrasing family.

The pieces are the YAML front matter, headings, prose lines and list items, Markdown
tables and fenced code blocks; `registry.py` holds the families that read them. The walker
knows no phrasing: it finds the pieces, the section each sits under, and refuses figures
no card prints (a 400-digit number is reported in one line, not read).
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

from analyzer.audit import families
from analyzer.audit.claims import CardClaims, Claim, FormatProblem, dataset_mentions, plain
from analyzer.audit.registry import Rows, registered
from analyzer.errors import InputError
from analyzer.front_matter import FrontMatterSyntaxError, load_front_matter, split_front_matter

__all__ = ["MAX_CARD_BYTES", "MAX_FIGURE_DIGITS", "bounded", "extract_claims", "read_card"]

MAX_CARD_BYTES = 64 << 20  # 64 MiB: a card is text; real ones are a few kB
MAX_FIGURE_DIGITS = 24  # integer digits + decimals of one figure (real cards: under 16)


def read_card(path: str | Path) -> CardClaims:
    """Read a card file; an unreadable, empty, oversized or non-regular file (a FIFO, a
    device) is an InputError."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            raise InputError(path, "not a regular file")
        if path.is_file() and path.stat().st_size > MAX_CARD_BYTES:
            raise InputError(path, f"the card is over {MAX_CARD_BYTES >> 20} MiB")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such card (give one with --card)") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a card file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a readable UTF-8 text file ({exc})") from None
    if not text.strip():
        raise InputError(path, "the card is empty")
    return extract_claims(text, str(path))


def extract_claims(text: str, path: str = "<card>") -> CardClaims:
    """Every claim of a card's text, in the order they appear."""
    lines = text.splitlines()
    front, body_start, problems = _front_matter(lines, path)
    claims: list[Claim] = [c for f in registered() for c in f.metadata(front, lines, body_start)]
    claims += _body_claims(lines, body_start)
    sections = _section_map(lines, body_start)
    claims += [
        dataclasses.replace(c, section=sections[c.line - 1])
        for f in registered()
        for c in f.body_lines(lines, body_start)
    ]
    claims.sort(key=lambda c: c.line)
    kept, refused = bounded(claims)
    return CardClaims(path=path, claims=tuple(kept), problems=(*problems, *refused), metadata=front)


def _digits(claim: Claim) -> int:
    assert claim.value is not None
    if not math.isfinite(claim.value) or abs(claim.value) >= 1e30:
        return 10**6
    return len(f"{abs(claim.value):.0f}") + claim.decimals


def bounded(claims: list[Claim]) -> tuple[list[Claim], list[FormatProblem]]:
    """The claims whose figure a card can print (finite, at most MAX_FIGURE_DIGITS digits);
    each other one is one warning naming its line, never a figure to compare."""
    kept, refused = [], []
    for claim in claims:
        if claim.value is None or _digits(claim) <= MAX_FIGURE_DIGITS:
            kept.append(claim)
            continue
        problem = (
            f"a figure of over {MAX_FIGURE_DIGITS} digits ({claim.quantity}) is not read: "
            "no measurement is printed that long"
        )
        refused.append(FormatProblem(claim.line, claim.text[:80], problem, "warning"))
    return kept, refused


def _front_matter(lines: list[str], path: str) -> tuple[dict[str, Any], int, list[FormatProblem]]:
    """The front matter from the first '---' line (page-scrape text before it is tolerated
    and reported), read by the package's one bounded reader; returns (metadata, index of the
    first body line, problems). Aliases, deep nesting and huge integers are InputErrors."""
    start = next((i for i, line in enumerate(lines) if line.strip() == "---"), None)
    if start is None or any(line.startswith("#") for line in lines[:start]):
        missing = "no YAML front matter (--- ... ---): no metadata to check"
        return {}, 0, [FormatProblem(1, lines[0][:80], missing, "warning")]
    split = split_front_matter("\n".join(lines[start:]))
    if split.source is None:
        return {}, 0, [FormatProblem(start + 1, "---", "front matter is never closed by ---")]
    end = start + split.body_line - 1  # the closing '---' line
    problems = []
    if start:
        problems.append(
            FormatProblem(1, lines[0][:80], f"{start} line(s) of text before the front matter")
        )
    try:
        data = load_front_matter(split.source, path) or {}
    except FrontMatterSyntaxError as exc:
        at = start + 1 + split.yaml_line + (exc.line or 0)
        at = min(at, end)
        problems.append(FormatProblem(at, lines[at - 1].strip()[:80], exc.problem))
        data = _lenient_lists(lines[start + 1 : end])
    if not isinstance(data, dict):
        problems.append(FormatProblem(start + 1, "---", "front matter is not a YAML mapping"))
        data = {}
    return data, end + 1, problems


# Patterns used with .match/.fullmatch are anchored with ^ as well: unanchored, a search
# would retry them at every position of a long line.
_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*):\s*(.*)$")
_LIST_ITEM = re.compile(r"^\s*-\s+([^:\s][^:]*)$")
_HEADING = re.compile(r"#{1,6}\s")


def _lenient_lists(lines: list[str]) -> dict[str, Any]:
    """Top-level `key:` lists and scalars from YAML that does not parse as a whole."""
    data: dict[str, Any] = {}
    key = None
    for line in lines:
        if m := _TOP_KEY.match(line):
            key, value = m.group(1), m.group(2).strip()
            data[key] = value or []
        elif key and isinstance(data[key], list) and (m := _LIST_ITEM.match(line)):
            data[key].append(m.group(1).strip().strip("\"'"))
    return data


def _heading(stripped: str) -> str | None:
    """A Markdown heading's text without its closing #s, or None (string methods, not a
    lazy group before optional runs: that regex was cubic on a heading of spaces)."""
    if not _HEADING.match(stripped):
        return None
    return plain(stripped.lstrip("#").strip().rstrip("#"))


def _body_claims(lines: list[str], start: int) -> list[Claim]:
    out: list[Claim] = []
    section, block_start = "(top)", 0
    fence: str | None = None
    block: list[str] = []
    table: Rows = []
    for i in range(start, len(lines)):
        raw, number = lines[i], i + 1
        stripped = raw.strip()
        if fence is not None:
            if stripped.startswith(fence):
                out += families.code_block(block, block_start, section)
                fence = None
            else:
                block.append(raw)
            continue
        if stripped.startswith("```") or stripped.startswith("~~~"):
            fence, block, block_start = stripped[:3], [], number + 1
            continue
        if stripped.startswith("|"):
            table.append((number, [c.strip() for c in stripped.strip("|").split("|")]))
            continue
        if table:
            out += families.table(table, section)
            table = []
        if (title := _heading(stripped)) is not None:
            section = title
            out += dataset_mentions(section, number, section, "heading")
            out += [
                dataclasses.replace(c, source="heading")
                for c in families.prose(title, number, title)
            ]
            continue
        out += families.prose(plain(raw), number, section)
    if table:
        out += families.table(table, section)
    if fence is not None:
        out += families.code_block(block, block_start, section)
    return out


def _section_map(lines: list[str], start: int) -> list[str]:
    """The heading each line sits under (code blocks' '#' comments are not headings)."""
    out, section, fence = [], "front matter", False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if i == start:
            section = "(top)"
        if i >= start and stripped.startswith(("```", "~~~")):
            fence = not fence
        elif i >= start and not fence and (title := _heading(stripped)) is not None:
            section = title
        out.append(section)
    return out
