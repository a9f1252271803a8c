"""How long `audit --no-weights` takes on a large card, and how the time grows with size.

Two cards are generated at 1.25, 5 and 20 MB: "dense", every line a claim with partners
(results-table rows and nn_pruning sentences: value, reference, variation), and "prose",
paragraphs of text with one such block per 100 paragraphs. Reading the claims and auditing
them are timed separately. Linear work keeps time / MB flat; the old
scan for partners made it grow with the card (a 20 MB card ran past 90 s).

    python benchmarks/audit_speed.py [--mb 20]
"""

from __future__ import annotations

import argparse
import time

from analyzer.audit.checks import audit_claims
from analyzer.audit.claims import extract_claims

HEADER = "---\nlicense: mit\ntags:\n- question-answering\n---\n# A large card\n\n"
TABLE = "| Metric | Value | Original | Variation |\n| --- | --- | --- | --- |\n"
ROWS = "| F1 | 88.11 | 88.50 | -0.39 |\n| EM | 80.94 | 80.80 | +0.14 |\n"
PROSE = (
    "F1 is 88.11, compared with 88.50 for bert-base-uncased, a F1 drop of 0.39. "
    "22 heads were removed on a total of 144 (15.3%).\n\n"
)


TEXT = "The model was pruned while it was fine-tuned; its heads and units were removed. " * 4


def card(megabytes: float, kind: str) -> str:
    block = TABLE + ROWS * 20 + "\n" + PROSE * 10
    if kind == "prose":
        block = (TEXT + "\n\n") * 100 + block
    return HEADER + block * int(megabytes * 1e6 / len(block))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="largest card, in MB")
    args = parser.parse_args()
    print(
        f"{'kind':>6}  {'card':>8}  {'claims':>9}  {'read (s)':>9}  {'audit (s)':>9}  {'s / MB':>7}"
    )
    for kind, mb in [(k, m) for k in ("prose", "dense") for m in (1 / 16, 1 / 4, 1)]:
        text = card(mb * args.mb, kind)
        start = time.perf_counter()
        claims = extract_claims(text)
        read = time.perf_counter() - start
        start = time.perf_counter()
        report = audit_claims(claims)
        checked = time.perf_counter() - start
        assert report.passed, "the generated card is consistent"
        size = len(text) / 1e6
        print(
            f"{kind:>6}  {size:>6.2f}MB  {len(claims.claims):>9,}  {read:>9.2f}  {checked:>9.2f}  "
            f"{(read + checked) / size:>7.2f}"
        )


if __name__ == "__main__":
    main()
