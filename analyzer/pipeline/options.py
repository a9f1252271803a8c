"""What `eval`, `bench` and `report` are asked to do: one typed record each, shared by the
CLI (which fills them from its arguments) and the pipeline (which runs them).

Each record checks its own options: which options go together, and, once the checkpoint
says what kind of model it is, which evaluation they ask for. An option that does not
apply is refused in one line, never ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from analyzer.errors import InputError
from analyzer.runtime.plan import BenchPlan, bench_plan

if TYPE_CHECKING:
    from analyzer.lmeval.options import LmEvalOptions, TaskSources
    from analyzer.perplexity.text import Text

__all__ = [
    "SQUAD_BATCH",
    "BenchOptions",
    "EvalOptions",
    "PerplexityOptions",
    "PerplexityRun",
    "ReportOptions",
]

_T = TypeVar("_T", int, float)
SQUAD_BATCH = 32  # SQuAD v2 windows per batch unless told otherwise


@dataclass(frozen=True)
class PerplexityOptions:
    """A causal LM's perplexity: over this text or named dataset (neither: the bundled
    text), by this protocol (None: sliding) and its windows, over the first tokens only."""

    text: Path | None = None
    dataset: str | None = None
    protocol: str | None = None
    window: int | None = None
    stride: int | None = None
    seqlen: int | None = None
    limit_tokens: int | None = None

    def given(self, dataset: str = "--dataset") -> list[str]:
        """The options given, spelled as the command spells them (`report`'s dataset
        option is --text-dataset: its --dataset is a training dataset)."""
        return [
            dataset if f.name == "dataset" else _spelled(f.name)
            for f in fields(self)
            if getattr(self, f.name) is not None
        ]

    def prepare(self) -> PerplexityRun:
        """The window options checked and the text loaded, once, before any step runs (a
        dataset not in the cache fails here, not after the bench)."""
        from analyzer.perplexity.evaluate import load_text, plan_options

        protocol = self.protocol or "sliding"
        window, stride = plan_options(protocol, self.window, self.stride, self.seqlen)
        text = load_text(self.text, self.dataset)
        return PerplexityRun(text, protocol, window, stride, self.limit_tokens)


@dataclass(frozen=True)
class PerplexityRun:
    """A perplexity measurement ready to run: `PerplexityOptions.prepare`'s result."""

    text: Text
    protocol: str
    window: int | None
    stride: int | None
    limit_tokens: int | None


# the evaluation each kind of model gets; the options of the other kinds are refused
SQUAD, PERPLEXITY, TASKS = "squad", "perplexity", "tasks"
_SQUAD_ONLY = ("data", "limit", "seed", "out", "force", "no_pack", "batch_size", "no_graphs")
_PERPLEXITY_ONLY = ("packed", "json")  # beside `PerplexityOptions`' own
_TASK_SOURCES = ("tasks", "results", "dense_base", "base_results")
# lm-eval's tasks take --limit (documents per task), --batch-size, --packed and --json
# (and the perplexity's options)
_NOT_FOR_TASKS = tuple(o for o in _SQUAD_ONLY if o not in ("limit", "batch_size"))


@dataclass(frozen=True)
class EvalOptions:
    """What `prunecard eval` measures: a QA model on SQuAD v2, a causal LM by its
    perplexity, or (`tasks` or `results`) by lm-eval's tasks. None: the default."""

    device: str | None = None  # None: cuda if available
    dtype: str | None = None  # None: fp16 on a GPU, fp32 on the CPU
    align: int | None = None  # None: 64 on a GPU, 1 on the CPU
    # SQuAD v2
    data: Path | None = None  # None: the bundled sample
    limit: int | None = None  # questions drawn at random (lm-eval: documents per task)
    seed: int | None = None  # of the --limit subset (None: 0)
    out: Path | None = None  # the results folder (required)
    force: bool = False
    no_pack: bool = False
    batch_size: int | None = None  # windows per batch (None: 32; lm-eval: 1)
    no_graphs: bool = False
    perplexity: PerplexityOptions = PerplexityOptions()  # causal LMs
    packed: bool = False  # perplexity and tasks: the packed model (default: as stored)
    json: Path | None = None  # perplexity and tasks: where the record is written
    # causal LMs: lm-eval's tasks run (`tasks`, "t1,t2") or imported (`results`), and the
    # dense base's (`dense_base`: a folder or Hub id; `base_results`)
    tasks: str | None = None
    num_fewshot: int | None = None
    include_path: Path | None = None
    results: Path | None = None
    dense_base: Path | None = None
    base_results: Path | None = None
    backend: str = "hf"
    model_args: str | None = None

    def __post_init__(self) -> None:
        sources = self._given(_TASK_SOURCES)
        ignored = self._given(_NOT_FOR_TASKS) + self.perplexity.given()
        if sources and ignored:
            raise InputError(
                None,
                f"{ignored[0]} does not apply to {sources[0]} (lm-eval's tasks): measure the "
                "perplexity or SQuAD v2 in a run of its own",
            )

    def kind(self, causal: bool, name: str) -> str:
        """Which evaluation the checkpoint `name` gets (SQUAD, PERPLEXITY or TASKS), the
        options of the other kinds refused."""
        if self._given(_TASK_SOURCES):
            _tasks_need_a_causal_lm(causal, name)
            return TASKS
        if causal:
            self._refuse(
                _SQUAD_ONLY,
                name,
                "is a causal LM: {option} is a SQuAD v2 option (its perplexity is measured; "
                "see --text)",
            )
            return PERPLEXITY
        given = self.perplexity.given() + self._given(_PERPLEXITY_ONLY)
        if given:
            raise InputError(
                name,
                f"is not a causal LM: {given[0]} is a perplexity option (it is evaluated on "
                "SQuAD v2; see --data)",
            )
        if self.out is None:
            raise InputError(None, "--out DIR is required for a SQuAD v2 evaluation (its results)")
        if self.squad_batch < 1:
            raise InputError(
                None, f"--batch-size must be a positive integer, got {self.squad_batch}"
            )
        return SQUAD

    @property
    def squad_batch(self) -> int:
        return SQUAD_BATCH if self.batch_size is None else self.batch_size

    def lm_eval(self) -> LmEvalOptions | None:
        """The lm-eval run `tasks` asks for (None: no tasks to run)."""
        from analyzer.lmeval.options import LmEvalOptions, parse_tasks

        if not self.tasks:
            return None
        return LmEvalOptions(
            tasks=parse_tasks(self.tasks),
            num_fewshot=self.num_fewshot,
            limit=self.limit,
            batch_size=self.batch_size or 1,
            include_path=self.include_path,
            packed=self.packed,
            backend=self.backend,
            model_args=self.model_args or "",
        )

    def task_sources(self) -> TaskSources | None:
        """`lm_eval` or `results`, and the dense base (fetched first when a Hub id), as the
        `TaskSources` of `eval` and `report`; None when no task option is given."""
        from analyzer.lmeval.options import TaskSources
        from analyzer.weights.hub import fetch, parse_source

        if not self._given(_TASK_SOURCES):
            return None
        options = self.lm_eval()
        base = self.dense_base and fetch(parse_source(self.dense_base), tokenizer=True)
        return TaskSources(
            options=options,
            results=self.results,
            base=base.path if base else None,
            base_hub=base.hub if base else None,
            base_results=self.base_results,
        )

    def _given(self, names: tuple[str, ...]) -> list[str]:
        return [_spelled(n) for n in names if getattr(self, n) not in (None, False)]

    def _refuse(self, names: tuple[str, ...], name: str, problem: str) -> None:
        given = self._given(names)
        if given:
            raise InputError(name, problem.format(option=given[0]))


@dataclass(frozen=True)
class BenchOptions:
    """What `prunecard bench` times; None: the default plan's (`analyzer.runtime.plan`,
    by `quick` and the kind of model)."""

    device: str | None = None
    dtype: str | None = None
    align: int | None = None
    quick: bool = False
    batches: tuple[int, ...] | None = None
    seqs: tuple[int, ...] | None = None
    decode_batches: tuple[int, ...] | None = None
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    repeats: int | None = None  # the protocol's least timed runs
    threshold: float | None = None  # ... its spread to reach
    budget: float | None = None  # ... its seconds per shape
    profile: bool = True
    threads: int | None = None
    graphs: bool = False
    fuse: str | None = None
    accept_unstable: bool = False  # keep an implausible timing (the card marks it)
    progress: bool = True  # the shapes' progress lines on stderr

    def plan(self, causal: bool) -> BenchPlan:
        """The default plan with the options given in its place."""
        default = bench_plan(quick=self.quick, causal=causal)
        timing = default.protocol
        protocol = replace(
            timing,
            min_repeats=_default(self.repeats, timing.min_repeats),
            threshold=_default(self.threshold, timing.threshold),
            budget_s=_default(self.budget, timing.budget_s),
        )
        return replace(
            default,
            batches=self.batches or default.batches,
            seqs=self.seqs or default.seqs,
            decode_batches=self.decode_batches or default.decode_batches,
            prompt_tokens=_default(self.prompt_tokens, default.prompt_tokens),
            new_tokens=_default(self.new_tokens, default.new_tokens),
            protocol=protocol,
            profile_runs=default.profile_runs if self.profile else 0,
        )


@dataclass(frozen=True)
class ReportOptions:
    """What `report` runs; the defaults are what a publishing author wants."""

    data: Path | None = None  # SQuAD v2 JSON; None: the bundled sample
    limit: int | None = None
    seed: int = 0
    evaluate: bool = True
    benchmark: bool = True
    quick: bool = False  # a short benchmark (analyzer.runtime.plan.bench_plan)
    device: str | None = None  # None: cuda if available
    dtype: str | None = None  # None: fp16 on a GPU, fp32 on the CPU
    align: int | None = None  # FFN width alignment; None: 64 on a GPU, 1 on the CPU
    batch_size: int = SQUAD_BATCH
    accept_unstable: bool = False  # keep an implausible timing (the card marks it)
    base: Path | None = None  # the dense base's config.json or folder (decoders: `--base-config`)
    # causal LMs: perplexity as `eval` measures it, and lm-eval tasks run or imported
    perplexity: PerplexityOptions = PerplexityOptions()
    tasks: TaskSources | None = None
    # the long loops' progress lines on stderr (a collection prints one line a model)
    progress: bool = True

    def check_kind(self, causal: bool, name: str) -> None:
        """The options of the other kind of evaluation refused before any step runs: they
        would be ignored without a word."""
        if self.tasks is not None:
            _tasks_need_a_causal_lm(causal, name)
        if not self.evaluate:
            return
        tasks = self.tasks is not None  # --limit then limits the tasks' documents
        squad = {"--data": self.data, "--limit": None if tasks else self.limit}
        given = (
            [option for option, value in squad.items() if value is not None]
            if causal
            else self.perplexity.given("--text-dataset")
        )
        if given:
            kind = "is a causal LM (its perplexity is measured)" if causal else "is not a causal LM"
            raise InputError(name, f"{kind}: {given[0]} does not apply to it")

    def bench_options(self, device: str, dtype: str, align: int) -> BenchOptions:
        """The bench of `report`: the default plan, on the device the report runs on."""
        return BenchOptions(
            device=device, dtype=dtype, align=align, quick=self.quick, progress=self.progress
        )


def _tasks_need_a_causal_lm(causal: bool, name: str) -> None:
    if not causal:
        raise InputError(name, "is not a causal LM: --tasks and --results need one")


def _spelled(field: str) -> str:
    return "--" + field.replace("_", "-")


def _default(value: _T | None, default: _T) -> _T:
    return default if value is None else value
