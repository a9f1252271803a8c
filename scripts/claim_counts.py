"""How many claims the audit reads on each test card, by kind (`python scripts/claim_counts.py
[CARD_OR_FOLDER ...]`; default: tests/data/reference and tests/data/cards).

A re-count after a phrasing family changes: one line per card (its total), then its claims
by kind (the claim's quantity), and with `--examples` one quoted example of each kind over
all the cards. It reads the cards' text only (`walker.read_card`), no weights.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from analyzer.audit.claims import Claim
from analyzer.audit.walker import read_card
from analyzer.errors import PrunecardError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = (ROOT / "tests/data/reference", ROOT / "tests/data/cards")


def cards(paths: list[Path]) -> list[Path]:
    """The .md files given, and those under the folders given, sorted."""
    out: list[Path] = []
    for path in paths:
        out += sorted(path.rglob("*.md")) if path.is_dir() else [path]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=list(DEFAULT))
    parser.add_argument("--examples", action="store_true", help="one example of each kind")
    args = parser.parse_args(argv)
    examples: dict[str, tuple[Path, Claim]] = {}
    overall: Counter[str] = Counter()
    for path in cards(args.paths):
        try:
            claims = read_card(path).claims
        except PrunecardError as exc:
            print(f"prunecard: {exc}", file=sys.stderr)
            return 1
        kinds = Counter(c.quantity for c in claims)
        overall += kinds
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{shown}: {len(claims)} claims, {len(kinds)} kinds")
        print("  " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))
        for claim in claims:
            examples.setdefault(claim.quantity, (shown, claim))
    print(f"all cards: {sum(overall.values())} claims, {len(overall)} kinds")
    if args.examples:
        print("\n| Kind | Claims | Example | Card, line |\n| --- | ---: | --- | --- |")
        for kind, n in sorted(overall.items()):
            card, claim = examples[kind]
            quote = claim.text[:70].replace("|", "/")
            print(f"| {kind} | {n} | {claim.printed}: {quote} | {card.name}:{claim.line} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
