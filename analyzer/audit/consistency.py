"""Internal consistency a card can be held to without its weights.

- a parameter count against the file size stated for the same model and its dtype
  (1228 MB of fp32 weights hold about 307M parameters, not 445M);
- a density against the non-zero and total counts printed beside it;
- a sparsity against a density stated elsewhere (they must add up to 100%);
- "N times smaller" against the two file sizes it compares.

(Speedups stated twice, percentages of heads and dataset names against headings are
`checks.py`'s agreement, percentage and dataset rules; counts are `counts.py`'s.)
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit.claims import Claim

if TYPE_CHECKING:
    from analyzer.audit.checks import AuditFinding, EvalScores
    from analyzer.records import Analysis

__all__ = ["BYTES_PER_PARAMETER", "PARAMS_TOLERANCE", "internal", "measured", "prose"]

BYTES_PER_PARAMETER = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}
PARAMS_TOLERANCE = 0.10  # relative: buffers, non-parameter tensors and file headers
_DTYPE = re.compile(
    r"\b(fp32|float32|fp16|float16|half[ -]precision|bf16|bfloat16|int8|8-bit)\b", re.I
)
_CANONICAL = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "8-bit": "int8"}


def prose(plain: str, line: int, section: str) -> list[Claim]:
    """The weights' dtype where a line names one ("fp16", "INT8 quantized", ...)."""
    out = []
    for m in _DTYPE.finditer(plain):
        word = m.group(1).lower()
        name = "fp16" if word.startswith("half") else _CANONICAL.get(word, word)
        out.append(Claim("dtype", m.group(0), line, section, "prose", name=name))
    return out


def measured(
    claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
) -> AuditFinding | None:
    from analyzer.audit.checks import UNCHECKED, _finding

    if claim.quantity == "dtype":
        return _finding(claim, "", "", "", UNCHECKED, "a label; used by the size rule")
    return None


def internal(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    return [
        *_params_vs_size(claims),
        *_density_vs_counts(claims),
        *_sparsity_vs_density(claims),
        *_size_ratio(claims),
    ]


def _first(claims: tuple[Claim, ...], quantity: str) -> Claim | None:
    return next((c for c in claims if c.quantity == quantity and c.value is not None), None)


def _params_vs_size(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    """The dense model's parameter count (nn_pruning's `print("X parameters: 445.0M")`)
    against the size stated for that same model ("original BERT: 1228.0MB")."""
    from analyzer.audit.checks import MISMATCH, OK, UNCHECKED, _finding

    size = _first(claims, "reference_file_size")
    if size is None or not size.value:
        return []
    dtypes = sorted({c.name for c in claims if c.quantity == "dtype"})
    out = []
    for claim in claims:
        if claim.quantity != "params_dense" or claim.value is None:
            continue
        if len(dtypes) > 1:
            out.append(
                _finding(
                    claim,
                    "internal",
                    "",
                    "",
                    UNCHECKED,
                    f"the card names several dtypes ({', '.join(dtypes)})",
                )
            )
            continue
        dtype = dtypes[0] if dtypes else "fp32"
        width = BYTES_PER_PARAMETER[dtype]
        count = claim.value * 1e6 if claim.unit == "M" else claim.value
        low, high = size.value * 1e6 / width, size.value * 2**20 / width
        ok = any(abs(count - held) <= PARAMS_TOLERANCE * held for held in (low, high))
        assumed = "" if dtypes else ", assumed: the card names no dtype"
        rule = (
            f"parameters x bytes per parameter = file size: {size.printed} (line {size.line}, "
            f"read as 10^6 or 2^20 bytes) of {dtype} ({width} bytes each{assumed}) holds "
            f"{low / 1e6:.1f}M to {high / 1e6:.1f}M parameters; the stated count must be within "
            f"{PARAMS_TOLERANCE:.0%} of one (buffers and file headers)"
        )
        shown = f"{low / 1e6:.1f}M-{high / 1e6:.1f}M ({dtype} in {size.printed})"
        out.append(
            _finding(claim, "internal", shown, rule, OK if ok else MISMATCH, measured_value=high)
        )
    return out


def _density_vs_counts(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    """ "97.0% (N of M)": the density is the non-zero count over the total beside it."""
    from analyzer.audit.checks import _compare, _partner

    out = []
    for density_q, nnz_q, total_q in (
        ("overall_density", "params_nonzero", "params_dense"),
        ("linear_density", "linear_nnz", "linear_dense"),
    ):
        for claim in claims:
            if claim.quantity != density_q or claim.value is None:
                continue
            nnz, total = _partner(claim, claims, nnz_q), _partner(claim, claims, total_q)
            if nnz is None or total is None or not total.value:
                continue
            assert nnz.value is not None
            rule = f"density = {nnz.printed} / {total.printed}, rounded as printed"
            out.append(_compare(claim, "internal", 100 * nnz.value / total.value, 3, rule=rule))
    return out


def _sparsity_vs_density(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    """A sparsity and a density of the same weights add up to 100%."""
    from analyzer.audit.checks import MISMATCH, OK, _finding, _half

    out = []
    for sparsity_q, density_q in (
        ("linear_sparsity", "linear_density"),
        ("overall_sparsity", "overall_density"),
    ):
        density = next(
            (c for c in claims if c.quantity == density_q and c.value is not None and not c.about),
            None,
        )
        if density is None or density.value is None:
            continue
        for claim in claims:
            if claim.quantity != sparsity_q or claim.value is None or claim.about:
                continue
            expected = 100 - density.value
            slack = _half(claim) + _half(density)
            ok = abs(claim.value - expected) <= slack + 1e-9
            rule = (
                f"sparsity = 100% - density {density.printed} (line {density.line}), within "
                f"the rounding slack of both printed figures (|difference| <= {slack:g})"
            )
            out.append(
                _finding(
                    claim,
                    "internal",
                    f"{expected:.{claim.decimals}f}%",
                    rule,
                    OK if ok else MISMATCH,
                    measured_value=expected,
                )
            )
    return out


def _size_ratio(claims: tuple[Claim, ...]) -> list[AuditFinding]:
    """ "4x smaller" against the stated file sizes of this model and the original."""
    from analyzer.audit.checks import _compare

    size, reference = _first(claims, "file_size"), _first(claims, "reference_file_size")
    if size is None or reference is None or not size.value or reference.value is None:
        return []
    ratio = reference.value / size.value
    rule = f"ratio = original size {reference.printed} / this model's {size.printed}"
    return [
        _compare(claim, "internal", ratio, 2, rule=f"{rule}, rounded as printed")
        for claim in claims
        if claim.quantity == "size_ratio" and claim.value is not None and not claim.about
    ]
