"""The options of an lm-eval run, one typed record shared by the CLI and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import InputError
from analyzer.records import HubSource

__all__ = [
    "BACKENDS",
    "INSTALL_HINT",
    "VLLM_HINT",
    "LmEvalOptions",
    "TaskSources",
    "parse_tasks",
    "require_lm_eval",
]

BACKENDS = ("hf", "vllm")  # lm-eval's model types prunecard drives
INSTALL_HINT = "pip install 'prunecard[lm-eval]'"
VLLM_HINT = "pip install 'lm-eval[vllm]' (a CUDA GPU)"
_NAMED_BY_PRUNECARD = ("pretrained", "tokenizer")  # model_args keys prunecard sets itself
MAX_TASKS = 64


@dataclass(frozen=True)
class LmEvalOptions:
    """What `prunecard eval --tasks` runs; None leaves lm-eval's own default."""

    tasks: tuple[str, ...]
    num_fewshot: int | None = None
    limit: int | None = None  # documents per task at most (the record marks a subset)
    batch_size: int = 1
    include_path: Path | None = None  # a folder of the user's task YAML files
    packed: bool = False  # the packed model (default: as stored)
    backend: str = "hf"
    model_args: str = ""  # passed through to the backend (e.g. "parallelize=True")

    def __post_init__(self) -> None:
        if not self.tasks:
            raise InputError(None, "--tasks needs at least one task name")
        if self.backend not in BACKENDS:
            raise InputError(None, f"--backend must be one of {', '.join(BACKENDS)}")
        for option, value in (("--limit", self.limit), ("--batch-size", self.batch_size)):
            if value is not None and value < 1:
                raise InputError(None, f"{option} must be a positive integer, got {value}")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise InputError(None, f"--num-fewshot must be 0 or more, got {self.num_fewshot}")
        if self.include_path is not None and not Path(self.include_path).is_dir():
            raise InputError(self.include_path, "--include-path is not a folder")
        for pair in filter(None, self.model_args.split(",")):
            key = pair.split("=", 1)[0].strip()
            if "=" not in pair or not key:
                raise InputError(None, f"--model-args takes key=value,key=value, got {pair!r}")
            if key in _NAMED_BY_PRUNECARD:
                raise InputError(None, f"--model-args: {key} is the checkpoint prunecard was given")
        if self.packed and self.loads_itself:
            raise InputError(
                None,
                "--packed builds the packed model in memory; --model-args and --backend vllm "
                "have lm-eval load the stored weights itself: give one or the other",
            )

    @property
    def loads_itself(self) -> bool:
        """lm-eval's backend loads the stored checkpoint (vLLM, or HFLM with --model-args
        such as parallelize=True); otherwise it runs on the model prunecard loaded."""
        return self.backend != "hf" or bool(self.model_args)


@dataclass(frozen=True)
class TaskSources:
    """Where a Benchmarks record's figures come from, for the pruned model and its dense
    base: the tasks run (`options`) or lm_eval's results JSON imported (`results`)."""

    options: LmEvalOptions | None = None
    results: Path | None = None
    base: Path | None = None  # the dense base's folder: runs `options`' tasks ...
    base_hub: HubSource | None = None  # ... named by its Hub id and commit when fetched
    base_results: Path | None = None  # ... or its results, bound to `base` when given

    def __post_init__(self) -> None:
        if (self.options is None) == (self.results is None):
            given = "not both" if self.options is not None else "one of them"
            raise InputError(None, f"--tasks runs the tasks, --results imports them: {given}")
        if self.base is not None and not self.base.exists():
            raise InputError(self.base, "--dense-base: no such checkpoint")
        if self.base is not None and self.base_results is None and self.options is None:
            raise InputError(self.base, "--dense-base runs the --tasks on it: give them")


def parse_tasks(text: str) -> tuple[str, ...]:
    """`arc_easy,hellaswag` as task names (lm-eval's: letters, digits, _ - .)."""
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if len(names) > MAX_TASKS:
        raise InputError(None, f"--tasks names more than {MAX_TASKS} tasks")
    for name in names:
        if not all(c.isalnum() or c in "_-." for c in name):
            raise InputError(None, f"--tasks: {name!r} is not a task name")
    return names


def require_lm_eval() -> str:
    """lm-eval's version; absent, a one-line error naming the extra to install."""
    try:
        import accelerate  # noqa: F401  (HFLM imports it)
        import lm_eval
    except ImportError:
        raise InputError(None, f"--tasks runs lm-evaluation-harness: {INSTALL_HINT}") from None
    return str(getattr(lm_eval, "__version__", ""))
