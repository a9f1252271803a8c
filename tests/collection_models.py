"""A collection of tiny checkpoints for `prunecard collection` (test_collection.py and
benchmarks/collection_speed.py): decoders that differ by seed and size, some with the card
prunecard renders for them, one whose card claims heads the weights still hold, one corrupt
and one listed but missing. Which outcome each model must have follows from how it was
built, not from the collection's output."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from decoders import build_decoder

from analyzer.pipeline import card_from_files

CORRUPT, MISSING, TAMPERED = "corrupt", "missing", "tampered"
# the tampered card's claim and what the weights hold (build_decoder: 4 query heads a layer)
TRUE_HEADS, FALSE_HEADS = "**0 of {}**", "**2 of {}**"


@dataclass(frozen=True)
class Collection:
    list: Path
    names: tuple[str, ...]  # as listed, in order
    cards: frozenset[str]  # models with a card rendered by prunecard (audit: no mismatch)
    tampered_line: int  # the line of the tampered card's false claim


def build_collection(root: Path, models: int = 20, cards: int = 4) -> Collection:
    """`models` entries: `models - 2` decoders (the first `cards` with their card, the next
    with a tampered card), a corrupt checkpoint and a missing one, listed in LIST with
    comments and a blank line."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"decoder-{i:02d}" for i in range(models - 2)] + [CORRUPT, MISSING]
    for i, name in enumerate(names[:-2]):
        build_decoder(root / name, seed=i, layers=1 + i % 2, vocab=512)
    with_card = names[: cards + 1]
    for name in with_card:
        rendered = card_from_files(root / name, out=root / "cards" / name)
        shutil.copyfile(rendered / "README.md", root / name / "README.md")
    shutil.rmtree(root / "cards")
    tampered = root / with_card[-1] / "README.md"
    lines = tampered.read_text(encoding="utf-8").splitlines(keepends=True)
    total = 4 * (1 + cards % 2)  # query heads of that decoder: 4 a layer
    line = next(i for i, text in enumerate(lines) if TRUE_HEADS.format(total) in text)
    lines[line] = lines[line].replace(TRUE_HEADS.format(total), FALSE_HEADS.format(total))
    tampered.write_text("".join(lines), encoding="utf-8")
    (root / CORRUPT).mkdir()
    shutil.copyfile(root / names[0] / "config.json", root / CORRUPT / "config.json")
    (root / CORRUPT / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{")
    listing = ["# tiny checkpoints, paths from this folder", *names[:3], "", *names[3:]]
    (root / "models.txt").write_text("\n".join(listing) + "\n", encoding="utf-8")
    return Collection(root / "models.txt", tuple(names), frozenset(with_card[:-1]), line + 1)
