"""File sizes a card states, held against the figures beside them without the weights.

- a parameter count against the file size stated for the same model and its dtype
  (1228 MB of fp32 weights hold about 307M parameters, not 445M);
- "N times smaller" against the two file sizes it compares.

The dtype a line names ("fp16", "INT8 quantized") is read here for the first rule.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import Claim
from analyzer.audit.registry import Family, register
from analyzer.text import fixed, percent

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = [
    "BYTES_PER_PARAMETER",
    "PARAMS_TOLERANCE",
    "StatedSizes",
    "internal",
    "measured",
    "prose",
]

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
) -> findings.AuditFinding | None:
    if claim.quantity == "dtype":
        return findings.unchecked(claim, "a label; used by the size rule")
    return None


def internal(partners: findings.Partners) -> list[findings.AuditFinding]:
    return [*_params_vs_size(partners), *_size_ratio(partners)]


def _params_vs_size(partners: findings.Partners) -> list[findings.AuditFinding]:
    """The dense model's parameter count (nn_pruning's `print("X parameters: 445.0M")`)
    against the size stated for that same model ("original BERT: 1228.0MB")."""
    size = partners.first("reference_file_size")
    if size is None or not size.value:
        return []
    dtypes = sorted({c.name for c in partners.named("dtype")})
    out = []
    for claim in partners.named("params_dense"):
        if claim.value is None:
            continue
        if len(dtypes) > 1:
            out.append(
                findings.unchecked(
                    claim, f"the card names several dtypes ({', '.join(dtypes)})", "internal"
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
            f"{fixed(low / 1e6, 1)}M to {fixed(high / 1e6, 1)}M parameters; the stated count must "
            f"be within {percent(PARAMS_TOLERANCE, 0)} of one (buffers and file headers)"
        )
        shown = f"{fixed(low / 1e6, 1)}M-{fixed(high / 1e6, 1)}M ({dtype} in {size.printed})"
        out.append(findings.judged(claim, "internal", shown, rule, ok, high))
    return out


def _size_ratio(partners: findings.Partners) -> list[findings.AuditFinding]:
    """ "4x smaller" against the stated file sizes of this model and the original."""
    size, reference = partners.first("file_size"), partners.first("reference_file_size")
    if size is None or reference is None or not size.value or reference.value is None:
        return []
    ratio = reference.value / size.value
    rule = f"ratio = original size {reference.printed} / this model's {size.printed}"
    return [
        findings.compare(claim, "internal", ratio, 2, rule=f"{rule}, rounded as printed")
        for claim in partners.named("size_ratio")
        if claim.value is not None and not claim.about
    ]


@register("stated_sizes")
class StatedSizes(Family):
    prose = staticmethod(prose)
    measured = staticmethod(measured)
    internal = staticmethod(internal)
