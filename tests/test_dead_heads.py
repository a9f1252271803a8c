"""A dead query head inside a live K/V group is "dead (kept by packing)", never "removed":
in the record, the CLI table, the card, the site and the audit of prunecard's own card.
Expected figures are derived here from the rows and columns the test zeroed."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from decoders import build_decoder, layer_weight

from analyzer import analyze
from analyzer.cli.main import main

LAYERS, HEADS, KV, HEAD_DIM = 2, 8, 2, 4
GROUP = HEADS // KV
SIZES = dict(layers=LAYERS, hidden=32, heads=HEADS, kv_heads=KV, intermediate=64)
TOTAL = LAYERS * HEADS
# what the test zeroes: layer 0 loses K/V group 1's value rows (its 4 query heads die with
# it) and query head 1's output columns (head 1 is in group 0, which stays alive)
DEAD_GROUPS = {0: (1,)}
DEAD_O_HEADS = {0: (1,)}


def _pct(part: int, whole: int) -> str:
    """A share as cards print it: 1 decimal, halves rounded up."""
    return f"{(Decimal(100 * part) / whole).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def _prune(state) -> None:
    for layer, groups in DEAD_GROUPS.items():
        for g in groups:
            layer_weight(state, layer, "self_attn.v_proj")[g * HEAD_DIM : (g + 1) * HEAD_DIM] = 0
    for layer, heads in DEAD_O_HEADS.items():
        for h in heads:
            layer_weight(state, layer, "self_attn.o_proj")[:, h * HEAD_DIM : (h + 1) * HEAD_DIM] = 0


def _expected() -> dict[int, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Per layer: (removed, dead but kept), from what `_prune` zeroed. A head is dead when
    its group's value rows or its own output columns are zero; a group goes when all its
    heads are dead, and only its heads count as removed."""
    out = {}
    for layer in range(LAYERS):
        dead = {h for h in range(HEADS) if h // GROUP in DEAD_GROUPS.get(layer, ())}
        dead |= set(DEAD_O_HEADS.get(layer, ()))
        gone = {g for g in range(KV) if all(h in dead for h in range(g * GROUP, (g + 1) * GROUP))}
        removed = tuple(sorted(h for h in dead if h // GROUP in gone))
        out[layer] = removed, tuple(sorted(h for h in dead if h // GROUP not in gone))
    return out


EXPECTED = _expected()
REMOVED = sum(len(r) for r, _ in EXPECTED.values())
DEAD_KEPT = sum(len(k) for _, k in EXPECTED.values())


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    root = tmp_path_factory.mktemp("dead-heads")
    model = build_decoder(root / "gqa-llama", "llama", prune=_prune, **SIZES)
    assert main(["card", str(model), "--out", str(root / "card")]) == 0
    return model, root / "card"


def test_the_record_keeps_removed_and_dead_heads_apart(card):
    model, _ = card
    assert (REMOVED, DEAD_KEPT) == (4, 1)  # the case the test is about
    a = analyze(model)
    assert (a.heads.total, a.heads.removed, a.heads.dead_kept) == (TOTAL, REMOVED, DEAD_KEPT)
    for h in a.heads.layers:
        removed, dead_kept = EXPECTED[h.layer]
        assert (h.removed, h.dead_kept) == (removed, dead_kept)
        assert h.kept == HEADS - len(removed)  # the query heads of the packed model
    assert a.heads.kv_removed == sum(map(len, DEAD_GROUPS.values()))


def test_the_cli_says_dead_kept_by_packing_never_removed(card, capsys):
    model, _ = card
    capsys.readouterr()
    assert main(["analyze", str(model)]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("query heads"))
    assert line.split(None, 2)[2] == (
        f"{REMOVED} of {TOTAL} removed ({_pct(REMOVED, TOTAL)}), {DEAD_KEPT} dead (kept by packing)"
    )
    header = next(line for line in out.splitlines() if line.startswith("layer "))
    assert "removed" in header and "dead, kept" in header
    row = next(line for line in out.splitlines() if line.split()[:1] == ["0"])
    removed, dead_kept = EXPECTED[0]
    assert ",".join(map(str, removed)) in row.split() and ",".join(map(str, dead_kept)) in row


def test_the_card_and_site_say_dead_kept_by_packing(card, tmp_path):
    _, folder = card
    text = (folder / "README.md").read_text()
    assert (
        f"| Attention heads removed (query heads) | **{REMOVED} of {TOTAL}** "
        f"({_pct(REMOVED, TOTAL)}) |" in text
    )
    assert (
        f"| Query heads dead, kept by packing (their KV group is live) | **{DEAD_KEPT} of "
        f"{TOTAL}** ({_pct(DEAD_KEPT, TOTAL)}) |" in text
    )
    assert f"**{DEAD_KEPT} more query head is dead (kept by packing)**" in text
    removed, dead_kept = EXPECTED[0]
    cell = (
        f"{', '.join(map(str, removed))}; dead (kept by packing): {', '.join(map(str, dead_kept))}"
    )
    assert f"| {cell} |" in text

    assert main(["site", str(folder), "--out", str(tmp_path / "site")]) == 0
    (page,) = (tmp_path / "site" / "site" / "models").glob("*/index.html")
    html = page.read_text()
    assert f"{REMOVED} of {TOTAL}, {DEAD_KEPT} dead (kept by packing)" in html
    assert cell in html


def test_the_audit_reads_the_dead_heads_of_prunecards_own_card(card, tmp_path, capsys):
    model, folder = card
    capsys.readouterr()
    assert main(["audit", str(model), "--card", str(folder / "README.md")]) == 0
    out = capsys.readouterr().out
    assert "0 mismatch" in out
    lines = [line for line in out.splitlines() if "heads_dead_kept " in line]
    assert lines and all(line.split()[-1] == "ok" for line in lines)

    text = (folder / "README.md").read_text()
    row = f"**{DEAD_KEPT} of {TOTAL}** ({_pct(DEAD_KEPT, TOTAL)})"
    wrong = text.replace(row, f"**{DEAD_KEPT + 1} of {TOTAL}** ({_pct(DEAD_KEPT + 1, TOTAL)})")
    assert wrong != text
    (tmp_path / "README.md").write_text(wrong)
    assert main(["audit", str(model), "--card", str(tmp_path / "README.md")]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if "heads_dead_kept " in line]
    assert any(line.split()[-1] == "mismatch" for line in lines)
