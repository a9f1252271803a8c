"""The Hugging Face model card, rendered from a `Report` alone (nothing is re-measured).

The YAML front matter is built with huggingface_hub's `ModelCardData` and checked locally
(`validate_card`; `ModelCard.validate()` needs the network). The body comes from a Jinja2
template (the packaged `model_card.md.j2` or the user's own) that receives the records and
small formatting filters (`analyzer.text`, whose rounding rule the site, the figures and
the CLI share), so every number in the prose is a record's value rounded with a stated
precision. Differences to a reference are computed from the rounded values the card
displays, so "82.57 vs 85.85, -3.28" always adds up.

Templates run in Jinja2's sandbox (a user's `--template` cannot reach Python internals).
Every string a template prints is escaped for its output: Markdown text that cannot turn
into HTML, a link or a code span (`md_text`; the `code` filter makes a safe code span),
or HTML-escaped for a template whose name says it writes HTML (`*.html.j2`). The base
model must be a Hub id and names are one line, since both reach links and headings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from analyzer.card_labels import SUMMARY
from analyzer.errors import InputError, OutputError
from analyzer.publish.safe_html import md_code, md_text
from analyzer.records import (
    HEAD_RULE,
    PRODUCT_KINDS,
    SQUAD_V2_ID,
    TIME_KINDS,
    Analysis,
    Bench,
    Benchmarks,
    Compression,
    Evaluation,
    Perplexity,
    Publication,
    Recipe,
    Report,
    TaskResult,
    read_json,
)
from analyzer.text import count, fixed, megabytes, percent, ratio, rounded, signed_difference

__all__ = [
    "CARD_FILE",
    "CARD_OUTPUTS",
    "DEFAULT_TEMPLATE",
    "PERPLEXITY_METHODS",
    "SQUAD_V2_DEV_QUESTIONS",
    "CardOptions",
    "Reference",
    "benchmark_results_yaml",
    "card_metadata",
    "compression_scheme",
    "eval_results_files",
    "eval_results_yaml",
    "evaluation_scope",
    "is_causal_lm",
    "linear_roles_label",
    "load_reference",
    "packed_params_as_benchmarked",
    "perplexity_dataset",
    "perplexity_name",
    "perplexity_results_yaml",
    "publication_of",
    "recipe_claims",
    "render_card",
    "resolve_publication",
    "task_dataset",
    "validate_card",
    "write_card",
    "write_card_files",
]

CARD_FILE = "README.md"
# what a card writes into a folder, and so all it may replace in a checkpoint folder
CARD_OUTPUTS = (CARD_FILE, "report.json", "assets", ".eval_results")
HTML_SUFFIXES = (".html", ".htm", ".xml")  # a template named like this writes HTML
DEFAULT_TEMPLATE = "model_card.md.j2"
HUB_ID = re.compile(r"[\w.-]{1,96}(/[\w.-]{1,96})?")  # what huggingface.co/ID may name
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SQUAD_V2_DEV_QUESTIONS = 11_873  # the SQuAD v2 validation split (dev-v2.0.json), in full
RECIPE_SHOWN = 5  # matrices named per failed recipe check (the rest are counted)
SCORE_DIGITS = 2  # EM / F1 are percentages shown with 2 decimals, like the official script
PERPLEXITY_DIGITS = 2
PROMPT = "The Eiffel Tower is a wrought-iron lattice tower in"  # the causal usage block's
# what "linear layers" means on the card, per Analysis.kind (the weights the density counts)
LINEAR_ROLES_LABEL = {
    "encoder": "Q, K, V, O, FFN in and out",
    "decoder": "Q, K, V, O, gate, up, down",
    "generic": "2-D weights inside repeated blocks",
}
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
    """How to render, beyond the report: the user's reference scores and template.

    Names, license and datasets are the report's `Publication`, so they survive from
    `report` to `card --report` to `site`.
    """

    reference: Reference | None = None
    template: Path | None = None  # a user's Jinja2 template for the body
    # where the card links "prunecard" to: the project's repository, if you publish one;
    # None: no link (the package is on no package index, so no index page is linked)
    tool_url: str | None = None


def publication_of(report: Report) -> Publication:
    """The report's publication; older reports without one are named after their folder."""
    from analyzer.publish.report import portable

    if report.publication is not None:
        return report.publication
    return Publication(model_id=portable(report).provenance.checkpoint or "model")


def resolve_publication(
    base: Publication | None, default_id: str, overrides: Mapping[str, Any] | None = None
) -> Publication:
    """`base` (or a publication named `default_id`) with the options the user gave (None:
    not given) replacing its fields: the command line wins over report.json."""
    base = base or Publication(model_id=default_id)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    for many in ("datasets", "tags"):
        if many in given:
            given[many] = tuple(given[many])
    return _checked(replace(base, **given))


def _checked(publication: Publication) -> Publication:
    """Names go into the card's YAML and Markdown and the site's navigation: one line of
    text each, and Hub ids where the Hub expects one."""
    p = publication
    lines = (("--name", p.model_id), ("--license", p.license), ("--language", p.language))
    value: str | None
    for option, value in (*lines, *(("--tag", tag) for tag in p.tags)):
        if value is not None and (not value or _CONTROL.search(value)):
            raise InputError(option, f"must be one line of text, got {value!r}")
    ids = (("--base", p.base_model), ("--eval-dataset", p.eval_dataset))
    for option, value in (*ids, *(("--dataset", d) for d in p.datasets)):
        if value is not None and not HUB_ID.fullmatch(value):
            raise InputError(
                option, f"{value!r} is not a Hub id (owner/name, letters, digits, -_.)"
            )
    return publication


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
        if value is not None and key != "total" and not 0 <= value <= 100:  # NaN fails too
            raise InputError(path, f"{key!r} must be a score from 0 to 100, got {value!r}")
        if key == "total" and value is not None and not (isinstance(value, int) and value > 0):
            raise InputError(path, f"'total' must be a positive count of questions, got {value!r}")
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


def recipe_claims(recipe: Recipe) -> list[tuple[str, str, str]]:
    """Each recipe check in words, as (claim, verdict, what was measured): the card's
    "How it was pruned" table and the audit's findings say the same thing."""
    rows = []
    for c in recipe.checks:
        if c.claim == "pattern":
            claim = f"{c.modifier}: every targeted matrix is {c.expected or 'N:M'}"
        elif c.claim == "density":
            density = percent(c.expected_density) if c.expected_density is not None else "?"
            claim = f"{c.modifier}: every targeted matrix at density {density}"
        else:
            floor = percent(c.expected_density) if c.expected_density is not None else "?"
            claim = f"{c.modifier}: ignored matrices left unpruned (density above {floor})"
        if c.verdict == "unchecked":
            measured = f"not checked: {c.reason}"
        elif not c.failures:
            measured = f"holds in {c.matrices} of {c.matrices}"
        else:
            shown = [
                f"{f.name} ({f.pattern + ', ' if f.pattern else ''}density {percent(f.density)})"
                for f in c.failures[:RECIPE_SHOWN]
            ]
            more = len(c.failures) - RECIPE_SHOWN
            measured = f"{len(c.failures)} of {c.matrices} do not: " + ", ".join(shown)
            measured += f" and {more} more" if more > 0 else ""
        if c.verdict == "match" and c.density_range:
            low, high = (percent(d) for d in c.density_range)
            measured += f"; density {low}" if low == high else f"; density {low} to {high}"
            measured += f" ({c.reason})" if c.reason else ""
        rows.append((claim, c.verdict, measured))
    return rows


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
    "basename": lambda path: Path(path).name,
    "code": md_code,
    "kind_ms": _kind_ms,
    "kind_share": _kind_share,
    "pct": percent,
    "count": count,
    "mb": megabytes,
    "fixed": fixed,
    "ratio": ratio,
    "signed_difference": signed_difference,
}


# --------------------------------------------------------------------------- metadata


def _hub_id(name: str | None) -> bool:
    return name is not None and "/" in name


def evaluation_scope(evaluation: Evaluation, dataset: str) -> str | None:
    """Which questions were scored, in words, when fewer than the full SQuAD v2 validation
    split (None for the full split): a leaderboard must not read a subset as the dev score."""
    full = dataset == SQUAD_V2_ID
    if full and evaluation.limit is None and evaluation.n == SQUAD_V2_DEV_QUESTIONS:
        return None
    data = f"{Path(evaluation.data).name} (sha256 {evaluation.data_sha256[:12]})"
    how = (
        f"a random sample of {evaluation.limit:,} drawn with seed {evaluation.seed} from {data}"
        if evaluation.limit
        else f"every question of {data}"
    )
    of = f" of the {SQUAD_V2_DEV_QUESTIONS:,}" if full else ""
    return f"subset: {evaluation.n:,}{of} questions of the validation split, {how}"


def is_causal_lm(report: Report) -> bool:
    """Whether the card describes a causal language model (text generation) rather than an
    extractive-QA encoder: a decoder analysis, a *ForCausalLM architecture or a perplexity."""
    a = report.analysis
    if a is not None:
        return a.causal_lm
    return report.perplexity is not None


def linear_roles_label(analysis: Analysis) -> str:
    """The weights "linear layers" counts, in the words of the model's kind (an unknown
    family counts every 2-D weight inside repeated blocks, whatever its kind)."""
    kind = "generic" if analysis.family == "generic" else analysis.kind
    return LINEAR_ROLES_LABEL.get(kind, LINEAR_ROLES_LABEL["generic"])


# how each protocol cuts the text (analyzer/perplexity/windows.py), in the card's words
PERPLEXITY_METHODS = {
    "sliding": "strided sliding window",
    "papers": "non-overlapping windows as in SparseGPT and Wanda",
}


def perplexity_name(perplexity: Perplexity) -> str:
    """The text's name on a card: a dataset's or the bundled text's name as it is, a local
    file's name without its folder."""
    return perplexity.text if perplexity.dataset else Path(perplexity.text).name


def perplexity_dataset(perplexity: Perplexity) -> str:
    """The text a perplexity was measured on, in words: name, digest, tokens, protocol,
    window and stride."""
    return (
        f"{perplexity_name(perplexity)} (sha256 {perplexity.text_sha256[:12]}, "
        f"{perplexity.tokens:,} tokens, {perplexity.protocol} protocol, "
        f"window {perplexity.window:,}, stride {perplexity.stride:,})"
    )


def card_metadata(report: Report) -> Any:
    """The card's `ModelCardData`: Hub tags, the widget and the model-index results
    (question answering for encoders, text generation with perplexity for causal LMs)."""
    from huggingface_hub import ModelCardData

    analysis = report.analysis
    publication = publication_of(report)
    causal = is_causal_lm(report)
    task = "text-generation" if causal else "question-answering"
    tags = [task, "pruned", "prunecard"]
    if analysis is not None:
        tags.append(analysis.model_type)
    tags = list(dict.fromkeys([*tags, *publication.tags]))
    if causal:
        results = _perplexity_results(report.perplexity, publication)
        results = (results or []) + _benchmark_results(report.benchmarks) or None
        metrics = ["perplexity"] if report.perplexity is not None else None
    else:
        results = _squad_results(report.evaluation, publication)
        metrics = ["squad_v2"] if report.evaluation is not None else None
    return ModelCardData(
        language=publication.language,
        license=publication.license,
        tags=tags,
        datasets=list(publication.datasets) or None,  # on the Hub: training data only
        metrics=metrics,
        base_model=publication.base_model,
        pipeline_tag=task,
        library_name="transformers" if causal else None,
        model_name=publication.model_id,
        eval_results=results,
        widget=None if causal else [dict(w) for w in WIDGET],
    )


def _squad_results(evaluation: Evaluation | None, publication: Publication) -> list | None:
    from huggingface_hub import EvalResult

    if evaluation is None:
        return None
    scope = evaluation_scope(evaluation, publication.eval_dataset)
    dataset_name = "SQuAD v2 validation" + (f" ({scope})" if scope else "")
    common: dict[str, Any] = {  # EvalResult's keyword arguments, each a string
        "task_type": "question-answering",
        "task_name": "Extractive question answering",
        "dataset_type": publication.eval_dataset,
        "dataset_name": dataset_name,
        "dataset_config": "squad_v2",
        "dataset_split": "validation",
    }
    return [
        EvalResult(
            **common,
            metric_type="exact_match",
            metric_name="Exact match",
            metric_value=float(rounded(evaluation.scores.exact, SCORE_DIGITS)),
        ),
        EvalResult(
            **common,
            metric_type="f1",
            metric_name="F1",
            metric_value=float(rounded(evaluation.scores.f1, SCORE_DIGITS)),
        ),
    ]


def _perplexity_results(perplexity: Perplexity | None, publication: Publication) -> list | None:
    """One text-generation result: the perplexity, filed under the Hub dataset its text
    is; none for a local text file (a model-index result needs a Hub dataset id)."""
    from huggingface_hub import EvalResult

    if perplexity is None or not perplexity.dataset:
        return None
    method = PERPLEXITY_METHODS.get(perplexity.protocol, perplexity.protocol)
    return [
        EvalResult(
            task_type="text-generation",
            task_name="Causal language modeling",
            dataset_type=perplexity.dataset,
            dataset_name=perplexity_dataset(perplexity),
            dataset_config=perplexity.dataset_config or None,
            dataset_split=perplexity.dataset_split or None,
            metric_type="perplexity",
            metric_name=f"Perplexity ({method}; lower is better)",
            metric_value=float(rounded(perplexity.perplexity, PERPLEXITY_DIGITS)),
        )
    ]


LM_EVAL_URL = "https://github.com/EleutherAI/lm-evaluation-harness"


def task_dataset(task: TaskResult) -> tuple[str, str]:
    """A task's dataset as (id, words): lm-eval's `dataset_path` (a Hub id) and config; a
    local-file task has no Hub id, so it is named by its file, the sha256 in the words."""
    if task.data_files:
        first = task.data_files[0]
        digest = f"sha256 {first.sha256[:12]}" if first.sha256 else "sha256 not recorded"
        files = ", ".join(f.name for f in task.data_files)
        return first.name, f"{files} ({digest}), a local file read by lm-eval's {task.dataset_path}"
    config = f" {task.dataset_name}" if task.dataset_name else ""
    return task.dataset_path, f"{task.dataset_path}{config}"


def _task_words(task: TaskResult) -> str:
    """What a score is, for the model-index and .eval_results: the metric, shots, subset."""
    from analyzer.publish.benchmarks import PERCENT_METRICS

    metric = task.headline.name
    words = f"{metric}, {task.num_fewshot}-shot" + (
        ", percent" if metric in PERCENT_METRICS else ""
    )
    if task.subset:
        words += f"; subset: {task.documents:,} of {task.documents_total:,} documents"
    return words


def _benchmark_results(benchmarks: Benchmarks | None) -> list:
    """One text-generation result per lm-eval task: its headline metric as the card shows it."""
    from huggingface_hub import EvalResult

    from analyzer.publish.benchmarks import shown_value

    if benchmarks is None:
        return []
    results = []
    for task in benchmarks.tasks:
        ident, words = task_dataset(task)
        results.append(
            EvalResult(
                task_type="text-generation",
                task_name=f"lm-eval {task.task}",
                dataset_type=ident,
                dataset_name=f"{task.task}: {words}",
                dataset_config=None if task.data_files else task.dataset_name,
                dataset_split=task.split or None,
                metric_type=task.headline.name,
                metric_name=_task_words(task),
                metric_value=float(shown_value(task.headline)),
                source_name=f"lm-evaluation-harness {benchmarks.lm_eval_version}".strip(),
                source_url=LM_EVAL_URL,
            )
        )
    return results


def validate_card(text: str) -> list[str]:
    """Problems the Hub would reject or misread in a card's front matter ([] when valid).

    Offline: the YAML must parse into a mapping, build a `ModelCardData`, and its
    model-index must survive `model_index_to_eval_results` unchanged.
    """
    from huggingface_hub import ModelCardData
    from huggingface_hub.repocard_data import (
        eval_results_to_model_index,
        model_index_to_eval_results,
    )

    from analyzer.front_matter import load_front_matter, split_front_matter

    split = split_front_matter(text)
    if split.source is None or not text.startswith("---"):
        return ["no YAML front matter between '---' lines at the top"]
    try:
        data = load_front_matter(split.source)
    except InputError as exc:
        return [exc.problem]
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
    task = data.get("pipeline_tag")
    if task not in ("question-answering", "text-generation"):
        problems.append("pipeline_tag is neither 'question-answering' nor 'text-generation'")
    for i, example in enumerate(data.get("widget") or []):
        needs = ("text", "context") if task == "question-answering" else ("text",)
        if not isinstance(example, dict) or not all(example.get(k) for k in needs):
            problems.append(f"widget[{i}] needs {' and '.join(repr(k) for k in needs)}")
    if "model-index" in data:
        try:
            name, results = model_index_to_eval_results(data["model-index"])
            if eval_results_to_model_index(name, results) != data["model-index"]:
                problems.append("model-index does not round-trip through huggingface_hub")
        except (TypeError, ValueError, KeyError) as exc:
            problems.append(f"model-index is malformed: {exc}")
    return problems


def _results_source(report: Report) -> dict[str, str]:
    """An `.eval_results` entry's source: the card's Hub URL, else the report."""
    publication = publication_of(report)
    if _hub_id(publication.model_id):
        return {"url": f"https://huggingface.co/{publication.model_id}", "name": "Model card"}
    return {"name": f"prunecard {report.provenance.tool_version} report.json"}


def eval_results_yaml(report: Report) -> str | None:
    """`.eval_results/squad_v2.yaml`, the Hub's per-benchmark score file (exact match and
    F1, with `notes` naming the metric and any subset), or None without an evaluation."""
    import yaml

    evaluation = report.evaluation
    if evaluation is None:
        return None
    publication = publication_of(report)
    source = _results_source(report)
    scope = evaluation_scope(evaluation, publication.eval_dataset)
    entries = [
        {
            "dataset": {"id": publication.eval_dataset, "task_id": "squad_v2"},
            "value": float(rounded(value, SCORE_DIGITS)),
            "date": report.provenance.created[:10],
            "source": dict(source),  # a copy each: YAML anchors confuse readers
            "notes": f"{metric}, percent" + (f"; {scope}" if scope else ""),
        }
        for metric, value in (
            ("exact match", evaluation.scores.exact),
            ("F1", evaluation.scores.f1),
        )
    ]
    return yaml.safe_dump(entries, sort_keys=False, allow_unicode=True)


def perplexity_results_yaml(report: Report) -> str | None:
    """`.eval_results/perplexity.yaml`: the perplexity in the same format under the Hub
    dataset its text is, its `notes` naming the metric, the protocol and the text (name,
    sha256, tokens, window, stride); None without a perplexity record, or for a local text
    file (an entry needs a Hub dataset id: the card's body names the file)."""
    import yaml

    perplexity = report.perplexity
    if perplexity is None or not perplexity.dataset:
        return None
    method = PERPLEXITY_METHODS.get(perplexity.protocol, perplexity.protocol)
    entry = {
        "dataset": {"id": perplexity.dataset, "task_id": "perplexity"},
        "value": float(rounded(perplexity.perplexity, PERPLEXITY_DIGITS)),
        "date": report.provenance.created[:10],
        "source": _results_source(report),
        "notes": f"perplexity, lower is better; {method}; text {perplexity_dataset(perplexity)}",
    }
    return yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)


def benchmark_results_yaml(report: Report) -> dict[str, str]:
    """`.eval_results/<task>.yaml` per lm-eval task: the headline figure as the card shows
    it, `notes` naming the metric, shots, any subset, lm-eval's version and, for a local
    file, the file and its sha256 (no Hub id: `dataset` then holds the task id alone)."""
    import yaml

    from analyzer.publish.benchmarks import shown_value

    benchmarks = report.benchmarks
    if benchmarks is None:
        return {}
    files = {}
    for task in benchmarks.tasks:
        ident, words = task_dataset(task)
        dataset = {"task_id": task.task} if task.data_files else {"id": ident, "task_id": task.task}
        entry = {
            "dataset": dataset,
            "value": float(shown_value(task.headline)),
            "date": report.provenance.created[:10],
            "source": _results_source(report),
            "notes": f"{_task_words(task)}; lm-evaluation-harness "
            f"{benchmarks.lm_eval_version}; data {words}",
        }
        files[f"{task.task}.yaml"] = yaml.safe_dump([entry], sort_keys=False, allow_unicode=True)
    return files


def eval_results_files(report: Report) -> dict[str, str]:
    """The `.eval_results/` files a report gives, by file name."""
    files = {"squad_v2.yaml": eval_results_yaml(report)}
    files["perplexity.yaml"] = perplexity_results_yaml(report)
    files.update(benchmark_results_yaml(report))
    return {name: text for name, text in files.items() if text is not None}


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
    from jinja2.sandbox import SandboxedEnvironment
    from markupsafe import Markup

    html = template is not None and Path(template).name.removesuffix(".j2").endswith(HTML_SUFFIXES)
    env = SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=html,
        # a Markdown card: strings print as text (filters that build Markdown return Markup)
        finalize=None if html else lambda v: v if isinstance(v, Markup | int | float) else _md(v),
    )
    env.filters.update(FILTERS)
    if not html:
        env.filters["code"] = lambda text: Markup(md_code(text))
    return env, source


def _md(value: Any) -> Any:
    return md_text(value) if isinstance(value, str) else value


def template_context(report: Report, options: CardOptions, figures: tuple[str, ...]) -> dict:
    """The variables a card template receives (documented in docs/card.md)."""
    from markupsafe import Markup

    analysis, bench = report.analysis, report.bench
    publication = publication_of(report)
    return {
        "report": report,
        "provenance": report.provenance,
        "analysis": analysis,
        "bench": report.bench,
        "evaluation": report.evaluation,
        "reference": options.reference,
        "tool_url": options.tool_url,
        "publication": publication,
        "model_name": publication.model_id,
        "base_model": publication.base_model,
        "license": publication.license,
        "scope": report.evaluation
        and evaluation_scope(report.evaluation, publication.eval_dataset),
        "head_rule": analysis.heads.rule if analysis is not None else HEAD_RULE,
        "figures": figures,
        # Python string literals inside a fenced block: no backtick may close the fence
        "model_literal": Markup(json.dumps(publication.model_id).replace("`", r"\u0060")),
        "plain_transformers": _plain_transformers(analysis, is_causal_lm(report)),
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
        # causal LMs (issue 22): the kind of card, perplexity, patterns, width/depth changes
        "causal": is_causal_lm(report),
        "labels": SUMMARY,
        "units_label": SUMMARY.units_decoder if is_causal_lm(report) else SUMMARY.units_encoder,
        "prompt": PROMPT,
        "linear_roles": linear_roles_label(analysis) if analysis else "",
        "perplexity": report.perplexity,
        "perplexity_text": report.perplexity and perplexity_dataset(report.perplexity),
        "perplexity_name": report.perplexity and perplexity_name(report.perplexity),
        "perplexity_method": report.perplexity
        and PERPLEXITY_METHODS.get(report.perplexity.protocol, report.perplexity.protocol),
        "perplexity_digits": PERPLEXITY_DIGITS,
        "base_changes": tuple(c for c in analysis.base.changes if c.base != c.model)
        if analysis and analysis.base
        else (),
        "time_kinds": _time_kinds(bench),
        "product_kinds": PRODUCT_KINDS,
        "compression_scheme": compression_scheme(analysis.compression)
        if analysis and analysis.compression
        else "",
        "recipe_claims": recipe_claims(analysis.recipe) if analysis and analysis.recipe else [],
        "benchmarks": report.benchmarks,
        "benchmark_table": _benchmark_table(report),
    }


def _benchmark_table(report: Report) -> Any:
    from analyzer.publish.benchmarks import benchmark_table

    return benchmark_table(report.benchmarks) if report.benchmarks is not None else None


def compression_scheme(compression: Compression) -> str:
    """The scheme in words: "2:4 sparsity stored as sparse-24-bitmask, int4 weights in
    groups of 128, symmetric (pack-quantized)"."""
    parts = []
    if compression.sparsity_format:
        structure = compression.sparsity_structure or "sparsity"
        parts.append(
            f"{structure} sparsity stored as {compression.sparsity_format}"
            if structure != "sparsity"
            else f"sparsity stored as {compression.sparsity_format}"
        )
    for g in compression.groups:
        how = f"in groups of {g.group_size}" if g.group_size else f"per {g.strategy}"
        sym = "symmetric" if g.symmetric else "asymmetric"
        acts = f", activations {g.activations}" if g.activations else ""
        parts.append(f"{g.type}{g.num_bits} weights {how}, {sym}{acts} ({g.format})")
    return "; ".join(parts) or "no sparsity or quantization stated"


def _plain_transformers(analysis: Analysis | None, causal: bool = False) -> bool:
    """Whether `AutoModelForQuestionAnswering.from_pretrained` (`AutoModelForCausalLM` for a
    causal LM) loads the checkpoint as it is: that architecture stored at its dense shapes
    (not packed, no `pruned_heads`)."""
    head = "ForCausalLM" if causal else "ForQuestionAnswering"
    return (
        analysis is not None
        and analysis.overall.stored == analysis.overall.dense
        and any(a.endswith(head) for a in analysis.architectures)
    )


def render_card(
    report: Report, options: CardOptions = CardOptions(), figures: tuple[str, ...] = ()
) -> str:
    """README.md text: validated front matter, then the template's body.

    `figures` names the stems drawn under assets/ ("density", "heads", "blocks"), so the
    body only links images that exist. Paths are reduced to names first (`portable`).
    """
    import jinja2

    from analyzer.publish.report import portable

    report = portable(report)
    env, source = _environment(options.template)
    try:
        body = env.from_string(source).render(**template_context(report, options, figures))
    except jinja2.TemplateError as exc:
        where = options.template or DEFAULT_TEMPLATE
        raise InputError(where, f"template failed: {exc}") from None
    text = f"---\n{card_metadata(report).to_yaml()}\n---\n\n{body.lstrip()}"
    problems = validate_card(text)
    if problems:
        raise OutputError(CARD_FILE, "invalid card metadata: " + "; ".join(problems))
    return text


def write_card(
    out: Path,
    report: Report,
    options: CardOptions = CardOptions(),
    *,
    force: bool = False,
    checkpoint: Path | None = None,
) -> Path:
    """Write OUT/README.md, OUT/report.json, OUT/assets/ and OUT/.eval_results/ all at once.

    OUT is normally a new folder, replaced as a whole. When OUT is the checkpoint itself
    (the author's "write the card into my model folder"; `checkpoint`, else the report's),
    only those files are replaced, each by a rename, and the weights are left alone.
    """
    import os
    import shutil

    from analyzer.outputs import MARKER, staged_dir

    out = Path(out)
    model = Path(checkpoint or report.provenance.checkpoint)
    if out.exists() and out.resolve() == model.resolve():
        if (out / CARD_FILE).exists() and not force:
            raise OutputError(out / CARD_FILE, "already exists (pass --force to replace it)")
        with staged_dir(out / ".prunecard-card", force=True) as tmp:
            write_card_files(tmp, report, options)
        staged = out / ".prunecard-card"
        try:
            for file in sorted(p for p in staged.rglob("*") if p.is_file() and p.name != MARKER):
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
    from analyzer.publish.report import portable, write_report

    report = portable(report)
    figures: tuple[str, ...] = ()
    if report.analysis is not None:
        drawn = write_figures(report.analysis, folder / "assets")
        figures = tuple(dict.fromkeys(p.stem for p in drawn))
    atomic_write_text(folder / CARD_FILE, render_card(report, options, figures))
    write_report(folder, report)
    for name, scores in eval_results_files(report).items():
        atomic_write_text(folder / ".eval_results" / name, scores)
