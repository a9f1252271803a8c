"""The Hugging Face model card, rendered from a `Report` alone (nothing is re-measured).

The YAML front matter is built with huggingface_hub's `ModelCardData` and checked locally
(`validate_card`; `ModelCard.validate()` needs the network). The body comes from a Jinja2
template (the packaged `model_card.md.j2` or the user's own) that receives the records and
small formatting filters, so every number in the prose is a record's value rounded with a
stated precision. Differences to a reference are computed from the rounded values the card
displays, so "82.57 vs 85.85, -3.28" always adds up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from analyzer.errors import InputError, OutputError
from analyzer.records import PRODUCT_KINDS, TIME_KINDS, Analysis, Bench, Report, read_json

__all__ = [
    "CARD_FILE",
    "DEFAULT_TEMPLATE",
    "EVAL_DATASET_ID",
    "CardOptions",
    "Reference",
    "card_from_files",
    "card_metadata",
    "eval_results_yaml",
    "load_reference",
    "packed_params_as_benchmarked",
    "render_card",
    "signed_difference",
    "validate_card",
    "write_card",
    "write_card_files",
]

CARD_FILE = "README.md"
DEFAULT_TEMPLATE = "model_card.md.j2"
EVAL_DATASET_ID = "rajpurkar/squad_v2"  # the Hub id of SQuAD v2
SCORE_DIGITS = 2  # EM / F1 are percentages shown with 2 decimals, like the official script
WIDGET = (
    {
        "text": "Where is the Eiffel Tower located?",
        "context": "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in "
        "Paris, France. It is named after the engineer Gustave Eiffel, whose company "
        "designed and built the tower.",
    },
    {
        "text": "Who designed the Eiffel Tower?",
        "context": "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in "
        "Paris, France. It is named after the engineer Gustave Eiffel, whose company "
        "designed and built the tower.",
    },
)


@dataclass(frozen=True)
class Reference:
    """Scores of a reference model in the official script's keys (`exact`, `f1`)."""

    exact: float | None
    f1: float | None
    source: str  # the file they were read from, as the user named it
    total: int | None = None


@dataclass(frozen=True)
class CardOptions:
    """What the records cannot know: names, license and the user's reference and template."""

    model_name: str  # title and model-index name; a Hub id ("owner/name") also gives URLs
    base_model: str | None = None  # Hub id of the model this one was pruned from
    license: str = "unknown"  # a Hub license id; "unknown" unless the user says
    language: str = "en"  # SQuAD v2, the task's data, is English
    reference: Reference | None = None
    template: Path | None = None  # a user's Jinja2 template for the body


def load_reference(path: Path) -> Reference:
    """Read a reference's official-keys JSON (`{"exact": .., "f1": .., "total": ..}`)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(path, "expected a JSON object with the official keys 'exact' and 'f1'")
    values: dict[str, Any] = {}
    for key in ("exact", "f1", "total"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InputError(path, f"{key!r} must be a number, got {value!r}")
        values[key] = value
    if values["exact"] is None and values["f1"] is None:
        raise InputError(path, "holds neither 'exact' nor 'f1' (the official script's keys)")
    total = values["total"]
    return Reference(
        exact=None if values["exact"] is None else float(values["exact"]),
        f1=None if values["f1"] is None else float(values["f1"]),
        source=Path(path).name,
        total=int(total) if total is not None else None,
    )


# --------------------------------------------------------------------------- numbers


def _round(value: float, digits: int) -> Decimal:
    """Round half up on the decimal value as printed by repr: 83.125 -> 83.13 (never truncate)."""
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)


def fixed(value: float, digits: int = 2) -> str:
    return f"{_round(value, digits):f}"


def signed_difference(value: float, reference: float, digits: int = SCORE_DIGITS) -> str:
    """`value - reference` from the two numbers as displayed (rounded first), with a sign."""
    diff = _round(value, digits) - _round(reference, digits)
    return f"{diff:+f}" if diff else f"{Decimal(0).quantize(Decimal(1).scaleb(-digits)):f}"


def _pct(fraction: float, digits: int = 1) -> str:
    return f"{fixed(100 * fraction, digits)}%"


def _count(n: int) -> str:
    return f"{n:,}"


def _mb(n_bytes: int) -> str:
    return f"{fixed(n_bytes / 1e6, 1)} MB"


def _ratio(value: float, digits: int = 2) -> str:
    return f"{fixed(value, digits)}x"


def packed_params_as_benchmarked(analysis: Analysis, bench: Bench) -> int | None:
    """`analysis.overall.packed` plus the zero FFN units the benchmarked packed model was
    padded with (`bench.align`); None for records without parameter counts.

    `bench.packed_parameters` alone is not comparable: the benchmarked models lack tensors
    the checkpoint stores but the task model never loads (BERT's pooler under a QA head).
    Its dense model lacks the same ones, so the difference between the analysis's dense
    count and the benchmarked dense count is added back.
    """
    if not bench.packed_parameters or not bench.dense_parameters:
        return None
    return bench.packed_parameters + analysis.overall.dense - bench.dense_parameters


def _kind_ms(profile: tuple, kind: str) -> float:
    """Milliseconds a profile spent on one kind of work (0 when absent)."""
    return sum(t.ms for t in profile if t.kind == kind)


def _kind_share(profile: tuple, kinds: str | tuple[str, ...]) -> float:
    """The fraction of a profile's time spent on `kinds` (one kind or several)."""
    total = sum(t.ms for t in profile)
    chosen = (kinds,) if isinstance(kinds, str) else kinds
    return sum(t.ms for t in profile if t.kind in chosen) / total if total else 0.0


def _time_kinds(bench: Bench | None) -> tuple[str, ...]:
    """The kinds of work any profile of `bench` saw, in the standard order."""
    seen = {
        t.kind
        for s in (bench.shapes if bench else ())
        for p in (s.dense_profile, s.packed_profile)
        for t in p
    }
    return tuple(k for k in TIME_KINDS if k in seen)


FILTERS = {
    "kind_ms": _kind_ms,
    "kind_share": _kind_share,
    "pct": _pct,
    "count": _count,
    "mb": _mb,
    "fixed": fixed,
    "ratio": _ratio,
    "signed_difference": signed_difference,
}


# --------------------------------------------------------------------------- metadata


def _hub_id(name: str | None) -> bool:
    return bool(name) and "/" in name


def card_metadata(report: Report, options: CardOptions) -> Any:
    """The card's `ModelCardData`: Hub tags, the QA widget and the model-index results."""
    from huggingface_hub import EvalResult, ModelCardData

    evaluation = report.evaluation
    analysis = report.analysis
    tags = ["question-answering", "pruned", "prunecard"]
    if analysis is not None and analysis.model_type not in tags:
        tags.append(analysis.model_type)
    results = None
    if evaluation is not None:
        dataset_name = f"SQuAD v2 ({evaluation.n:,} questions of {Path(evaluation.data).name})"
        common = {
            "task_type": "question-answering",
            "task_name": "Extractive question answering",
            "dataset_type": EVAL_DATASET_ID,
            "dataset_name": dataset_name,
            "dataset_config": "squad_v2",
            "dataset_split": "validation",
        }
        results = [
            EvalResult(
                **common,
                metric_type="exact_match",
                metric_name="Exact match",
                metric_value=float(_round(evaluation.scores.exact, SCORE_DIGITS)),
            ),
            EvalResult(
                **common,
                metric_type="f1",
                metric_name="F1",
                metric_value=float(_round(evaluation.scores.f1, SCORE_DIGITS)),
            ),
        ]
    return ModelCardData(
        language=options.language,
        license=options.license,
        tags=tags,
        datasets=[EVAL_DATASET_ID] if evaluation is not None else None,
        metrics=["squad_v2"] if evaluation is not None else None,
        base_model=options.base_model,
        pipeline_tag="question-answering",
        model_name=options.model_name,
        eval_results=results,
        widget=[dict(w) for w in WIDGET],
    )


def validate_card(text: str) -> list[str]:
    """Problems the Hub would reject or misread in a card's front matter ([] when valid).

    Offline: the YAML must parse into a mapping, build a `ModelCardData`, and its
    model-index must survive `model_index_to_eval_results` unchanged.
    """
    import yaml
    from huggingface_hub import ModelCardData
    from huggingface_hub.repocard_data import (
        eval_results_to_model_index,
        model_index_to_eval_results,
    )

    if not text.startswith("---\n") or "\n---\n" not in text[3:]:
        return ["no YAML front matter between '---' lines at the top"]
    front = text[4 : text.index("\n---\n", 3) + 1]
    try:
        data = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        return ["front matter is not valid YAML: " + " ".join(str(exc).split())]
    if not isinstance(data, dict):
        return ["front matter is not a YAML mapping"]
    problems = []
    try:
        ModelCardData(**data)
    except (TypeError, ValueError, KeyError) as exc:
        problems.append(f"huggingface_hub rejects the metadata: {exc}")
    for key in ("language", "license", "pipeline_tag", "tags"):
        if not data.get(key):
            problems.append(f"missing {key!r}")
    if data.get("pipeline_tag") != "question-answering":
        problems.append("pipeline_tag is not 'question-answering'")
    for i, example in enumerate(data.get("widget") or []):
        if not isinstance(example, dict) or not example.get("text") or not example.get("context"):
            problems.append(f"widget[{i}] needs 'text' and 'context'")
    if "model-index" in data:
        try:
            name, results = model_index_to_eval_results(data["model-index"])
            if eval_results_to_model_index(name, results) != data["model-index"]:
                problems.append("model-index does not round-trip through huggingface_hub")
        except (TypeError, ValueError, KeyError) as exc:
            problems.append(f"model-index is malformed: {exc}")
    return problems


def eval_results_yaml(report: Report, options: CardOptions) -> str | None:
    """`.eval_results/squad_v2.yaml`, the Hub's per-benchmark score file (F1), or None."""
    import yaml

    evaluation = report.evaluation
    if evaluation is None:
        return None
    source: dict[str, str] = {"name": f"prunecard {report.provenance.tool_version} report.json"}
    if _hub_id(options.model_name):
        source = {"url": f"https://huggingface.co/{options.model_name}", "name": "Model card"}
    entry = {
        "dataset": {"id": EVAL_DATASET_ID, "task_id": "squad_v2"},
        "value": float(_round(evaluation.scores.f1, SCORE_DIGITS)),
        "date": report.provenance.created[:10],
        "source": source,
    }
    return yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- body


def _environment(template: Path | None) -> tuple[Any, str]:
    try:
        import jinja2
    except ImportError:  # pragma: no cover - jinja2 is a dependency
        raise OutputError(None, "rendering cards needs jinja2: pip install jinja2") from None
    if template is None:
        from importlib.resources import files

        source = files("analyzer.templates").joinpath(DEFAULT_TEMPLATE).read_text("utf-8")
    else:
        try:
            source = Path(template).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(template, f"cannot read the template ({exc})") from None
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    env.filters.update(FILTERS)
    return env, source


def template_context(report: Report, options: CardOptions, figures: tuple[str, ...]) -> dict:
    """The variables a card template receives (documented in docs/card.md)."""
    from analyzer.weights.sparsity import HEAD_RULE

    analysis, bench = report.analysis, report.bench
    return {
        "report": report,
        "provenance": report.provenance,
        "analysis": analysis,
        "bench": report.bench,
        "evaluation": report.evaluation,
        "reference": options.reference,
        "model_name": options.model_name,
        "base_model": options.base_model,
        "license": options.license,
        "head_rule": analysis.heads.rule if analysis is not None else HEAD_RULE,
        "figures": figures,
        "checkpoint_literal": json.dumps(report.provenance.checkpoint),
        "widget": WIDGET,
        # one source per figure: the analysed files, else what bench saw
        "original_bytes": analysis.file_bytes
        if analysis
        else (bench.original_bytes if bench else 0),
        "packed_bytes": bench.packed_bytes if bench else 0,
        # shown next to the packed count only when packing padded the FFN widths
        "padded_params": packed_params_as_benchmarked(analysis, bench)
        if analysis and bench and bench.align > 1
        else None,
        "score_digits": SCORE_DIGITS,
        "time_kinds": _time_kinds(bench),
        "product_kinds": PRODUCT_KINDS,
    }


def render_card(report: Report, options: CardOptions, figures: tuple[str, ...] = ()) -> str:
    """README.md text: validated front matter, then the template's body.

    `figures` names the stems drawn under assets/ ("density", "heads", "blocks"), so the
    body only links images that exist.
    """
    import jinja2

    env, source = _environment(options.template)
    try:
        body = env.from_string(source).render(**template_context(report, options, figures))
    except jinja2.TemplateError as exc:
        where = options.template or DEFAULT_TEMPLATE
        raise InputError(where, f"template failed: {exc}") from None
    text = f"---\n{card_metadata(report, options).to_yaml()}\n---\n\n{body.lstrip()}"
    problems = validate_card(text)
    if problems:
        raise OutputError(CARD_FILE, "invalid card metadata: " + "; ".join(problems))
    return text


def write_card(out: Path, report: Report, options: CardOptions, *, force: bool = False) -> Path:
    """Write OUT/README.md, OUT/report.json, OUT/assets/ and OUT/.eval_results/ all at once.

    OUT is normally a new folder, replaced as a whole. When OUT is the checkpoint itself
    (the author's "write the card into my model folder"), only those files are replaced,
    each by a rename, and the weights are left alone.
    """
    import os
    import shutil

    from analyzer.outputs import staged_dir

    out = Path(out)
    if out.exists() and out.resolve() == Path(report.provenance.checkpoint).resolve():
        if (out / CARD_FILE).exists() and not force:
            raise OutputError(out / CARD_FILE, "already exists (pass --force to replace it)")
        with staged_dir(out / ".prunecard-card", force=True) as tmp:
            write_card_files(tmp, report, options)
        staged = out / ".prunecard-card"
        try:
            for file in sorted(p for p in staged.rglob("*") if p.is_file()):
                target = out / file.relative_to(staged)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(file, target)
        except OSError as exc:
            raise OutputError(out, f"write failed ({exc.strerror or exc})") from None
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        return out
    with staged_dir(out, force=force) as tmp:
        write_card_files(tmp, report, options)
    return out


def write_card_files(folder: Path, report: Report, options: CardOptions) -> None:
    """The card, its figures, report.json and .eval_results/ into an existing folder."""
    from analyzer.outputs import atomic_write_text
    from analyzer.publish.figures import write_figures
    from analyzer.publish.report import write_report

    figures: tuple[str, ...] = ()
    if report.analysis is not None:
        drawn = write_figures(report.analysis, folder / "assets")
        figures = tuple(dict.fromkeys(p.stem for p in drawn))
    atomic_write_text(folder / CARD_FILE, render_card(report, options, figures))
    write_report(folder, report)
    scores = eval_results_yaml(report, options)
    if scores is not None:
        atomic_write_text(folder / ".eval_results" / "squad_v2.yaml", scores)


def card_from_files(
    checkpoint: Path,
    *,
    out: Path | None = None,
    analysis: Path | None = None,
    bench: Path | None = None,
    evaluation: Path | None = None,
    report: Path | None = None,
    base_model: str | None = None,
    model_name: str | None = None,
    license: str = "unknown",
    reference: Path | None = None,
    template: Path | None = None,
    force: bool = False,
) -> Path:
    """What `prunecard card` does: gather records (analysing the checkpoint when no analysis
    is given; never evaluating or benchmarking), then write the card folder."""
    from analyzer.publish.report import build_report, read_report
    from analyzer.records import Analysis, Bench, Evaluation, load_record
    from analyzer.weights.sparsity import analyze

    checkpoint = Path(checkpoint)
    old = read_report(report) if report is not None else None
    a = load_record(Analysis, analysis) if analysis else (old.analysis if old else None)
    b = load_record(Bench, bench) if bench else (old.bench if old else None)
    e = load_record(Evaluation, evaluation) if evaluation else (old.evaluation if old else None)
    ref = load_reference(reference) if reference else None
    if template is not None and not Path(template).is_file():
        raise InputError(template, "no such template file")
    if a is None:
        a = analyze(checkpoint)
    new = build_report(checkpoint, analysis=a, bench=b, evaluation=e)
    if old is not None and old.provenance.file_sha256 != new.provenance.file_sha256:
        raise InputError(report, f"describes other weights than {checkpoint} (sha256 differ)")
    root = Path(new.provenance.checkpoint)
    target = Path(out) if out is not None else Path.cwd() / f"{root.name}-card"
    options = CardOptions(
        model_name=model_name or root.name,
        base_model=base_model,
        license=license,
        reference=ref,
        template=template,
    )
    return write_card(target, new, options, force=force)
