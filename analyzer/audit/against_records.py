"""Claims against records: the evaluation and the bench record a card was rendered from
(exact as printed), and a fresh re-measurement (the only place for the 10% rule)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from analyzer.audit import findings
from analyzer.audit.claims import Claim, dataset_id
from analyzer.errors import InputError
from analyzer.records import (
    BENCHMARKS_SCHEMA,
    EVAL_SCHEMA,
    PERPLEXITY_SCHEMA,
    REPORT_SCHEMA,
    STILL_READ,
    Bench,
    Benchmarks,
    BenchShape,
    Evaluation,
    Perplexity,
    Report,
    SquadScores,
    from_dict,
    load_record,
    read_json,
)
from analyzer.text import fixed, megabytes, percent, ratio, signed

__all__ = [
    "SHAPE_FIGURES",
    "SPEEDUP_TOLERANCE",
    "EvalScores",
    "flop_bound",
    "from_bench",
    "load_bench",
    "load_eval",
    "packed_size",
    "retimed",
    "speedup",
    "variation_vs_eval",
]

SPEEDUP_TOLERANCE = 0.10  # relative: timings vary between runs and machines


@dataclass(frozen=True)
class EvalScores:
    """Scores from an Evaluation record or an official eval_metrics.json (in percent), or
    a causal LM's Perplexity record."""

    values: dict[str, float]  # claim quantity -> measured value ("f1", "exact", "perplexity")
    # "squad_v2" (v2 script keys, prunecard eval), "squad" (v1.1 keys); for a perplexity
    # the Hub dataset its text is ("wikitext"), or "" for a local text file
    dataset: str
    path: str
    benchmarks: Benchmarks | None = None  # lm-eval tasks (with the dense base's), if given


def load_eval(path: str | Path) -> EvalScores:
    """An Evaluation, Perplexity or Benchmarks record, a report.json with them, or the
    official script's JSON."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(path, "expected a JSON object of SQuAD scores")
    schema = data.get("schema")
    if schema == REPORT_SCHEMA:
        report = load_record(Report, path)
        tasks = report.benchmarks
        if report.evaluation is not None:
            return replace(_scores(report.evaluation.scores, "squad_v2", path), benchmarks=tasks)
        if report.perplexity is not None:
            return replace(_perplexity(report.perplexity, path), benchmarks=tasks)
        if tasks is not None:
            return EvalScores({}, "", str(path), tasks)
        raise InputError(path, "this report has no evaluation (run `prunecard eval`)")
    if schema == BENCHMARKS_SCHEMA:
        return EvalScores({}, "", str(path), load_record(Benchmarks, path))
    if schema == PERPLEXITY_SCHEMA or schema in STILL_READ[PERPLEXITY_SCHEMA]:
        return _perplexity(load_record(Perplexity, path), path)
    if schema is not None:
        return _scores(load_record(Evaluation, path).scores, "squad_v2", path)
    if "exact" in data and "f1" in data:
        try:
            scores = from_dict(SquadScores, data)
        except TypeError as exc:
            raise InputError(path, f"not valid official SQuAD v2 scores: {exc}") from None
        return _scores(scores, "squad_v2", path)
    if "exact_match" in data and "f1" in data:
        values = {k: data[k] for k in ("exact_match", "f1")}
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values.values()):
            raise InputError(path, "exact_match and f1 must be numbers")
        return EvalScores({"exact": values["exact_match"], "f1": values["f1"]}, "squad", str(path))
    raise InputError(
        path,
        f"not a {EVAL_SCHEMA} record or official SQuAD scores (needs 'exact'/'exact_match' and "
        "'f1')",
    )


def _scores(scores: SquadScores, dataset: str, path: Path) -> EvalScores:
    values = {
        key: float(getattr(scores, key))
        for key in SquadScores.__dataclass_fields__
        if getattr(scores, key) is not None
    }
    values["eval_questions"] = values.pop("total")
    return EvalScores(values, dataset, str(path))


def _perplexity(record: Perplexity, path: Path) -> EvalScores:
    dataset = dataset_id(record.dataset) if record.dataset else ""  # "": a local text file
    return EvalScores({"perplexity": record.perplexity}, dataset, str(path))


def load_bench(path: str | Path) -> Bench:
    """A Bench record, or the bench inside a report.json."""
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict) and data.get("schema") == REPORT_SCHEMA:
        bench = load_record(Report, path).bench
        if bench is None:
            raise InputError(path, "this report has no bench (run `prunecard bench`)")
        return bench
    bench = load_record(Bench, path)
    if not bench.shapes:
        raise InputError(path, "the bench record has no measured shapes")
    return bench


_SHAPE = re.compile(r"batch (\d+) x (\d+)")


def _shape(claim: Claim, bench: Bench) -> BenchShape | None:
    """The bench shape a claim names ("batch 8 x 384"), if it names one and it was run."""
    m = _SHAPE.fullmatch(claim.about)
    if m is None:
        return None
    return next(
        (s for s in bench.shapes if (s.batch, s.seq) == (int(m.group(1)), int(m.group(2)))), None
    )


def packed_size(claim: Claim, bench: Bench | None) -> findings.AuditFinding:
    if bench is None or not bench.packed_bytes:
        return findings.unchecked(
            claim, "no bench record with a packed size given (--bench)", "bench"
        )
    size = bench.packed_bytes
    found = findings.compare(claim, "bench", size / 1e6, 1)
    return replace(
        found,
        measured=f"{megabytes(size)} ({size:,} bytes)",
        rule=findings.rounding_rule(claim) + "; MB = 10^6 bytes",
        measured_value=float(size),
    )


def flop_bound(claim: Claim, bench: Bench | None) -> findings.AuditFinding:
    shape = _shape(claim, bench) if bench is not None else None
    if shape is None:
        return findings.unchecked(
            claim, f"no bench record with {claim.about or 'this shape'} given (--bench)", "bench"
        )
    return findings.compare(claim, "bench", shape.flop_bound, 3)


SHAPE_FIGURES = {  # speed-table columns: record field and its factor to the printed unit
    "dense_ms": ("dense_ms", 1.0),
    "packed_ms": ("packed_ms", 1.0),
    "dense_spread_ms": ("dense_spread_ms", 1.0),
    "packed_spread_ms": ("packed_spread_ms", 1.0),
    "share_of_bound": ("fraction_of_bound", 100.0),
}
_EXACT = "the bench record the card was rendered from: {}"


def from_bench(claim: Claim, bench: Bench | None) -> findings.AuditFinding:
    """A speed-table figure against the record's value for its shape, exactly as printed."""
    shape = _shape(claim, bench) if bench is not None else None
    if shape is None:
        return findings.unchecked(
            claim, f"no bench record with {claim.about or 'this shape'} given (--bench)", "bench"
        )
    field, factor = SHAPE_FIGURES[claim.quantity]
    value = factor * getattr(shape, field)
    return findings.compare(
        claim, "bench", value, claim.decimals, rule=_EXACT.format(findings.rounding_rule(claim))
    )


def speedup(claim: Claim, bench: Bench | None) -> findings.AuditFinding:
    """Against the record the card was rendered from: exact as printed, no tolerance."""
    if bench is None:
        return findings.unchecked(claim, "no bench record given (--bench)", "bench")
    value = claim.value
    assert value is not None
    named = _shape(claim, bench)
    if claim.about.startswith("batch ") and named is None:
        return findings.unchecked(claim, f"the bench record has no {claim.about} shape", "bench")
    shapes = (named,) if named is not None else bench.shapes
    printed = fixed(value, claim.decimals)
    best = next(
        (s for s in shapes if fixed(s.speedup, claim.decimals) == printed),
        min(shapes, key=lambda s: abs(s.speedup - value)),
    )
    which = "its shape" if named is not None else f"one of its {len(shapes)} shape(s)"
    found = findings.compare(
        claim,
        "bench",
        best.speedup,
        claim.decimals,
        rule=_EXACT.format(f"the speedup of {which}, " + findings.rounding_rule(claim)),
    )
    return replace(found, measured=f"{found.measured} (batch {best.batch}, seq {best.seq})")


def retimed(claim: Claim, bench: Bench) -> findings.AuditFinding:
    """Against a fresh re-measurement (`audit --rebench`): timings vary between runs and
    machines, so only here a speedup holds within SPEEDUP_TOLERANCE."""
    value = claim.value
    assert value is not None
    named = _shape(claim, bench)
    if claim.about.startswith("batch ") and named is None:
        return findings.unchecked(
            claim, f"the re-measurement has no {claim.about} shape", "re-timed"
        )
    best = named or min(bench.shapes, key=lambda s: abs(s.speedup - value))
    ok = abs(best.speedup - value) <= SPEEDUP_TOLERANCE * best.speedup
    rule = (
        f"a fresh re-measurement, not the card's record: timings vary between runs and "
        f"machines, so within {percent(SPEEDUP_TOLERANCE, 0)} of the speedup re-timed now "
        f"({'the named shape' if named else f'closest of {len(bench.shapes)} shape(s)'}, "
        f"{bench.device})"
    )
    shown = f"{ratio(best.speedup)} (batch {best.batch}, seq {best.seq})"
    return findings.judged(claim, "re-timed", shown, rule, ok, best.speedup)


def variation_vs_eval(
    claim: Claim, partners: findings.Partners, evaluation: EvalScores | None
) -> findings.AuditFinding:
    metric = claim.quantity.removesuffix("_variation")
    reference = partners.of(claim, f"{metric}_reference")
    if evaluation is None or metric not in evaluation.values:
        return findings.unchecked(
            claim, f"no evaluation {metric} given (--eval); see the internal check", "evaluation"
        )
    if reference is None or reference.value is None:
        return findings.unchecked(claim, "no reference figure beside it", "evaluation")
    measured = evaluation.values[metric] - reference.value
    rule = (
        f"measured {metric} minus the printed reference {reference.printed}, "
        "within the rounding slack of both printed figures"
    )
    shown = signed(measured, max(2, claim.decimals))
    return findings.within_slack(
        claim, "evaluation", measured, findings.half(claim) + findings.half(reference), rule, shown
    )
