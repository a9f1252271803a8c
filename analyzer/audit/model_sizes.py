"""Parameter counts and sizes of LLM cards: "1.3B", "~4.5B parameters", "56.6B total / 3B
active", "Disk size ~113 GB", "8.03 GB"; GB, GiB, MB and MiB kept apart (10^9, 2^30, 10^6,
2^20 bytes); the weights' dtype where the card says it is the weights' ("weights in FP8",
"- **Precision:** BF16", "quantized to INT4"), not any dtype word of a sentence; "N%
smaller". Checks without weights: parameters x bytes per parameter against the stated size,
and "N% smaller" against the two figures of its sentence; with weights, the count against
the analysis and the size against the files."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from analyzer.audit import findings
from analyzer.audit.claims import SIZE_BYTES, Claim, masked, number
from analyzer.audit.registry import Family, register
from analyzer.text import fixed, percent

if TYPE_CHECKING:
    from analyzer.audit.against_records import EvalScores
    from analyzer.records import Analysis

__all__ = ["BYTES", "SIZE_TOLERANCE", "ModelSizes"]

BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5,
         "nf4": 0.5, "fp4": 0.5}  # fmt: skip
SIZE_TOLERANCE = 0.10  # relative: headers, buffers, a quantized model's scales
_DTYPES = {
    "fp32": "fp32", "float32": "fp32", "fp16": "fp16", "float16": "fp16", "bf16": "bf16",
    "bfloat16": "bf16", "fp8": "fp8", "float8": "fp8", "e4m3": "fp8", "int8": "int8",
    "w8a8": "int8", "8-bit": "int8", "int4": "int4", "w4a16": "int4", "4-bit": "int4",
    "nf4": "nf4", "fp4": "fp4", "mxfp4": "fp4",
}  # fmt: skip
_DTYPE = (
    r"(fp32|float32|fp16|float16|bf16|bfloat16|fp8|float8|e4m3|int8|w8a8|8-bit|int4|w4a16"
    r"|4-bit|nf4|mxfp4|fp4)"
)
_WEIGHTS_DTYPE = (
    re.compile(
        rf"\b(?:dtype|precision|weight (?:dtype|precision|format|type)|tensor type"
        rf"|torch_dtype|quantization)\s?[:=]\s?{_DTYPE}\b",
        re.I,
    ),
    re.compile(
        rf"\b(?:weights|checkpoint|model) (?:is |are )?(?:stored |saved |released "
        rf"|quantized |shipped )?(?:in|as|to) {_DTYPE}\b",
        re.I,
    ),
    re.compile(rf"\b{_DTYPE} (?:weights|checkpoint)\b", re.I),
    re.compile(rf"\bquantized to {_DTYPE}\b", re.I),
)
_APPROX = r"(~\s?|about |approximately |around |roughly )?"
_PARAM_UNIT = r"(B|M|T|billion|million)"
_PARAMS = re.compile(
    rf"{_APPROX}(?<![\w.])(\d{{1,4}}(?:\.\d{{1,3}})?)\s?{_PARAM_UNIT}"
    r"(?: (total|active))?(?: (?:parameters|params)\b| total\b| active\b)",
    re.I,
)
_PARAMS_LABEL = re.compile(
    rf"\b(?:parameters|params|parameter count|model size)\s?:\s?{_APPROX}"
    rf"(\d{{1,4}}(?:\.\d{{1,3}})?)\s?{_PARAM_UNIT}\b",
    re.I,
)
_SIZE = re.compile(
    rf"\b(?:disk size|size on disk|model size|file size|checkpoint size|download size"
    rf"|size|weights)\s?(?::|is|of)?\s?{_APPROX}(\d{{1,6}}(?:\.\d{{1,3}})?)\s?"
    r"(GB|GiB|MB|MiB|TB|TiB)\b"
    rf"|{_APPROX}(?<![\d.])(\d{{1,6}}(?:\.\d{{1,3}})?)\s?(GB|GiB|MB|MiB|TB|TiB)"
    r" (?:on disk|of weights)\b",
    re.I,
)
_SMALLER = re.compile(
    r"\b(\d{1,3}(?:\.\d{1,2})?)\s?% (smaller|fewer parameters|less memory)\b", re.I
)
_ANY_SIZE = re.compile(r"(?<![\d.])(\d{1,6}(?:\.\d{1,3})?)\s?(GB|GiB|MB|MiB|TB|TiB)\b", re.I)
_PARAM_SCALE = {"b": "B", "billion": "B", "m": "M", "million": "M", "t": "T"}
_UNIT_CASE = {u.lower(): u for u in SIZE_BYTES}


def _approx(text: str | None) -> bool:
    return bool(text and text.strip())


@register("model_sizes")
class ModelSizes(Family):
    def prose(self, plain_line: str, line: int, section: str) -> list[Claim]:
        text = masked(plain_line)  # never a size or count out of a model id or URL
        out: list[Claim] = []

        def add(quantity: str, m: re.Match[str], printed: str, unit: str, approx: bool) -> None:
            value, decimals = number(printed)
            out.append(Claim(quantity, m.group(0).strip(), line, section, "prose", value,
                             decimals, unit, approximate=approx))  # fmt: skip

        for m in _PARAMS.finditer(text):
            kind = (m.group(4) or "").lower() or ("total" if " total" in m.group(0) else "")
            if " active" in m.group(0).lower():
                kind = "active"
            quantity = "stated_active_params" if kind == "active" else "stated_params"
            add(quantity, m, m.group(2), _PARAM_SCALE[m.group(3).lower()], _approx(m.group(1)))
        if not _PARAMS.search(text):
            for m in _PARAMS_LABEL.finditer(text):
                add("stated_params", m, m.group(2), _PARAM_SCALE[m.group(3).lower()],
                    _approx(m.group(1)))  # fmt: skip
        for m in _SIZE.finditer(text):
            approx, figure, unit = (m.group(1), m.group(2), m.group(3)) if m.group(2) else (
                m.group(4), m.group(5), m.group(6))  # fmt: skip
            add("model_size", m, figure, _UNIT_CASE[unit.lower()], _approx(approx))
        for m in _SMALLER.finditer(text):
            add("size_reduction_pct", m, m.group(1), "%", False)
            for size in _ANY_SIZE.finditer(text):  # the two figures it compares
                add("compared_size", size, size.group(1), _UNIT_CASE[size.group(2).lower()], False)
        seen = set()
        for pattern in _WEIGHTS_DTYPE:
            for m in pattern.finditer(text):
                name = _DTYPES[m.group(1).lower()]
                if name not in seen:
                    seen.add(name)
                    out.append(
                        Claim("weights_dtype", m.group(0), line, section, "prose", name=name)
                    )
        return out

    def measured(
        self, claim: Claim, analysis: Analysis | None, evaluation: EvalScores | None
    ) -> findings.AuditFinding | None:
        q = claim.quantity
        if q in ("stated_active_params", "size_reduction_pct", "compared_size"):
            return findings.unchecked(claim, "see the internal check")
        if q not in ("stated_params", "model_size", "weights_dtype"):
            return None
        if analysis is None:
            return findings.unchecked(claim, "no weights read (--no-weights)", "weights")
        if q == "weights_dtype":
            stored = _stored_dtypes(analysis)
            ok = _DTYPES.get(claim.name, claim.name) in stored
            rule = "a dtype the weights are stored in (quantized matrices: their scheme's)"
            return findings.judged(claim, "weights", ", ".join(sorted(stored)), rule, ok)
        assert claim.value is not None
        if q == "stated_params":
            rule = "the dense parameter count, rounded as printed"
            dense = analysis.overall.dense
            return findings.compare(claim, "weights", dense / _scale(claim), claim.decimals,
                                    rule=rule, measured_text=f"{dense:,}")  # fmt: skip
        size = analysis.file_bytes / SIZE_BYTES[claim.unit]
        per = SIZE_BYTES[claim.unit]
        rule = f"the weight files' bytes in {claim.unit} ({per:g} bytes), rounded as printed"
        if claim.approximate:
            within = percent(SIZE_TOLERANCE, 0)
            rule = f"'~': within {within} of the weight files' bytes in {claim.unit}"
            ok = abs(size - claim.value) <= SIZE_TOLERANCE * size
            return findings.judged(
                claim, "weights", f"{fixed(size, 3)} {claim.unit}", rule, ok, size
            )
        return findings.compare(claim, "weights", size, claim.decimals + 1, rule=rule)

    def internal(self, partners: findings.Partners) -> list[findings.AuditFinding]:
        return [*_fits(partners), *_smaller(partners)]


def _stored_dtypes(analysis: Analysis) -> set[str]:
    """The weights' dtype, and with compressed-tensors quantization each group's
    (float 8 bits: fp8, int 4 bits: int4, ...): a card may name either."""
    names = {_DTYPES.get(analysis.dtype.lower(), analysis.dtype.lower())}
    for g in analysis.compression.groups if analysis.compression else ():
        kind = "fp" if g.type == "float" else g.type
        names.add(f"{kind}{g.num_bits}")
    return names


def _scale(claim: Claim) -> float:
    return {"B": 1e9, "M": 1e6, "T": 1e12}.get(claim.unit, 1.0)


def _fits(partners: findings.Partners) -> list[findings.AuditFinding]:
    """Parameters x bytes per parameter of the stated dtype must fit the stated size."""
    params = partners.first("stated_params")
    if params is None or params.value is None:
        return []
    dtypes = sorted({c.name for c in partners.named("weights_dtype")})
    widths = [BYTES[dtypes[0]]] if len(dtypes) == 1 else sorted(set(BYTES.values()))
    count = params.value * _scale(params)
    out = []
    for size in partners.named("model_size"):
        if size.value is None:
            continue
        stated = size.value * SIZE_BYTES[size.unit]
        low = min(widths) * count * (1 - SIZE_TOLERANCE)
        # a quantized model keeps embeddings and norms in 16 bits: up to 2 bytes each
        high = max(max(widths), 2.0 if min(widths) < 2 else 0.0) * count * (1 + SIZE_TOLERANCE)
        which = (
            f"{dtypes[0]} ({widths[0]:g} bytes each)"
            if len(dtypes) == 1
            else (
                "any dtype (0.5 to 4 bytes each: the card names "
                + (", ".join(dtypes) or "none")
                + ")"
            )
        )
        rule = (
            f"parameters x bytes per parameter = size: {params.printed} parameters (line "
            f"{params.line}) of {which} take {fixed(low / 1e9)} to {fixed(high / 1e9)} GB; the "
            f"stated {size.printed} must lie within (±{percent(SIZE_TOLERANCE, 0)}; embeddings "
            "may stay 16-bit)"
        )
        shown = f"{fixed(low / 1e9)}-{fixed(high / 1e9)} GB for {params.printed} parameters"
        out.append(findings.judged(size, "internal", shown, rule, low <= stated <= high, stated))
    return out


def _smaller(partners: findings.Partners) -> list[findings.AuditFinding]:
    """ "N% smaller" against the two sizes (or parameter counts) of its sentence."""
    out = []
    for claim in partners.named("size_reduction_pct"):
        for quantity in ("compared_size", "stated_params"):
            pair = [c for c in partners.named(quantity) if c.line == claim.line and c.value]
            if len(pair) != 2:
                continue
            a, b = (x.value * (SIZE_BYTES.get(x.unit) or _scale(x)) for x in pair if x.value)
            small, large = min(a, b), max(a, b)
            expected = 100 * (1 - small / large)
            slack = findings.half(claim) + 100 * small / large * sum(
                findings.half(x) / x.value
                for x in pair
                if x.value  # relative rounding
            )
            rule = f"N% smaller = 100 x (1 - {pair[0].printed} / {pair[1].printed})"
            shown = f"{fixed(expected, claim.decimals + 1)}%"
            out.append(findings.within_slack(claim, "internal", expected, slack, rule, shown))
            break
    return out
