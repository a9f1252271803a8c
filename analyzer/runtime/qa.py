"""Extractive question answering on transformers 5, which dropped the QA pipeline.

Each question and its context are tokenized into windows of `max_length` tokens that
overlap by `stride` tokens; windows run in batches sorted by length (little padding), and
every stage after the tokenizer works on whole arrays, so that a GPU is not kept waiting
by Python loops:

- start and end logits are turned into log-probabilities by a softmax over the window's
  context tokens and its [CLS] token (question and padding tokens excluded);
- a span (i, j) of context tokens with i <= j < i + max_answer_length scores
  log p_start(i) + log p_end(j); the `n_best` best spans per window are kept;
- the null score is log p_start(CLS) + log p_end(CLS).

Per question, the best span is the highest-scoring span over all windows and the null score
the lowest over all windows (the window most sure an answer is there). The answer is ""
when the null score is strictly higher than the best span's score, the rule of
transformers 4's question-answering pipeline with `handle_impossible_answer=True`.

The no-answer probability is sigmoid(null - best) = p_null / (p_null + p_best): the
probability the null span wins a softmax between the two contenders. It lies in [0, 1],
is 1 when the context has no span at all, and exceeds 0.5 exactly when the answer is "".

Batches are planned for the hardware (`plan_batches`). On the CPU, a batch holds windows of
one length: no padding, no attention mask, no wasted work. On a GPU, batch lengths are
rounded up to a multiple of `bucket` tokens so that few input shapes occur, and in half
precision consecutive windows share a batch whatever their lengths (fewer shapes still):
there, each new shape costs cuBLAS a set-up of about a millisecond per matrix product,
which dwarfs the product itself (measured on an H200 in fp16: 6,078 questions took 15 s
with one shape per batch, 2 to 7 s bucketed; benchmarks/results-h200). A shape seen
again is captured as a CUDA graph and replayed from then on (no kernel-launch cost).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analyzer.errors import CheckpointError
from analyzer.runtime.environment import pick_device
from analyzer.runtime.graphs import GraphedForward

if TYPE_CHECKING:
    from analyzer.weights.checkpoint import Checkpoint
from analyzer.runtime.tokenizer import check_vocabulary, load_tokenizer, pad_token
from analyzer.weights.checkpoint import checkpoint_folder

__all__ = [
    "Answer",
    "Batch",
    "QASettings",
    "QuestionTooLong",
    "Span",
    "answer",
    "answer_batch",
    "load_qa_model",
    "plan_batches",
]


@dataclass(frozen=True)
class QASettings:
    """Post-processing settings; the defaults are those of SQuAD v2 evaluations."""

    max_length: int = 384  # tokens per window, question included
    stride: int = 128  # tokens shared by consecutive windows
    n_best: int = 20  # spans kept per window and per question
    max_answer_length: int = 30  # tokens


class QuestionTooLong(ValueError):
    """A question that leaves no room for its context in a window."""

    def __init__(self, index: int, tokens: int, settings: QASettings) -> None:
        super().__init__(
            f"the question is {tokens} tokens long: windows of {settings.max_length} tokens "
            f"overlapping by {settings.stride} leave its context no room"
        )
        self.index = index


@dataclass(frozen=True)
class Span:
    text: str
    start: int  # character offsets into the context
    end: int
    score: float  # log p_start + log p_end within its window


@dataclass(frozen=True)
class Answer:
    text: str  # "" when the model says the context holds no answer
    na_prob: float  # probability of no answer, in [0, 1] (module docstring)
    spans: tuple[Span, ...]  # the n-best spans, best first, whatever the answer is


def load_qa_model(
    path: str | Path | Checkpoint,
    *,
    packed: bool = True,
    dtype: Any = None,
    device: str = "cpu",
    align: int = 1,
    model: Any = None,
) -> tuple[Any, Any]:
    """A question-answering model and its tokenizer from a checkpoint folder (or an opened
    `Checkpoint`); `packed` slices removed heads and FFN units out first (same outputs,
    less work), padding FFN widths to multiples of `align`. `model`: the model already
    built from it (`report` evaluates the packed model it timed), checked as a loaded one."""
    from analyzer.runtime.packing import load
    from analyzer.weights.architecture import usable_positions

    tokenizer = load_tokenizer(path)
    if tokenizer is None:
        raise CheckpointError(
            checkpoint_folder(path),
            "has no tokenizer files (tokenizer.json or vocab.txt, ...); evaluation needs the "
            "tokenizer the model was trained with: copy it into the checkpoint folder",
        )
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise CheckpointError(
            checkpoint_folder(path), "tokenizer has no fast (Rust) version, which QA needs"
        )
    if model is None:
        layout = "packed" if packed else "stored"
        model = load(path, layout=layout, dtype=dtype, device=device, align=align)
    config_path = checkpoint_folder(path) / "config.json"
    if not type(model).__name__.endswith("ForQuestionAnswering"):
        raise CheckpointError(
            config_path,
            f"{type(model).__name__} has no question-answering head: eval needs a model "
            "with a span-prediction head (qa_outputs), fine-tuned on SQuAD",
        )
    check_vocabulary(tokenizer, model, config_path)
    if usable_positions(model.config) < QASettings.max_length:
        raise CheckpointError(
            config_path,
            f"max_position_embeddings {model.config.max_position_embeddings} leaves "
            f"{usable_positions(model.config)} positions, fewer than the "
            f"{QASettings.max_length}-token windows of the SQuAD evaluation",
        )
    return model, tokenizer


def answer(model: Any, tokenizer: Any, question: str, context: str, **kwargs: Any) -> Answer:
    """Answer one question from its context (see `answer_batch` for the keywords)."""
    return answer_batch(model, tokenizer, [question], [context], **kwargs)[0]


def answer_batch(
    model: Any,
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    settings: QASettings = QASettings(),  # frozen, so one shared default is safe
    batch_size: int = 32,
    device: str | None = None,
    graphs: bool | None = None,
    bucket: int | None = None,
    progress: bool = False,
) -> list[Answer]:
    """Answer many questions, one context each; the model is moved to `device`.

    `bucket` (default: 64 on CUDA, 1 on the CPU) rounds batch lengths up; `graphs`
    (default: on for CUDA) replays a CUDA graph for each input shape seen twice.
    """
    import torch

    from analyzer.runtime.progress import progress_bar

    if len(questions) != len(contexts):
        raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
    if not questions:
        return []
    device = pick_device(device)
    cuda = device.startswith("cuda")
    graphs = cuda if graphs is None else graphs
    bucket = bucket or (64 if cuda else 1)
    model.to(device).eval()
    windows = _tokenize(tokenizer, questions, contexts, settings)
    forward = GraphedForward(model) if graphs else None
    half = next(model.parameters()).dtype in (torch.float16, torch.bfloat16)
    plan = plan_batches(windows.lengths, batch_size, bucket, settings.max_length, mix=cuda and half)
    pad = pad_token(tokenizer)[0] or 0  # under the attention mask: any id does
    parts = []
    questions_per_window = len(questions) / len(windows.lengths)
    bar = progress_bar(len(questions), "answering", "question", enabled=progress)
    with bar, torch.inference_mode():
        for batch in plan:
            inputs, context, cls = windows.batch(batch.rows, batch.length, pad)
            inputs = {k: _to_device(v, device) for k, v in inputs.items()}
            out = forward(inputs) if forward else model(**inputs)
            decoded = _decode(
                out["start_logits"].float(),
                out["end_logits"].float(),
                _to_device(context, device),
                _to_device(cls, device),
                settings,
            )
            parts.append(decoded)
            bar.update(len(batch.rows) * questions_per_window)
    scores, starts, ends, null = (torch.cat(t).cpu().numpy() for t in zip(*parts, strict=True))
    order = np.argsort(np.concatenate([b.rows for b in plan]), kind="stable")
    return _gather(
        windows, scores[order], starts[order], ends[order], null[order], contexts, settings
    )


@dataclass(frozen=True)
class Batch:
    rows: np.ndarray  # the windows in the batch
    length: int  # tokens each row is padded to


def plan_batches(
    lengths: np.ndarray, batch_size: int, bucket: int, max_length: int, *, mix: bool = False
) -> list[Batch]:
    """Windows in batches of at most `batch_size` rows, longest first, each padded to a
    length rounded up to a multiple of `bucket` tokens (never beyond `max_length` or, if
    longer, the longest window).

    With `mix`, consecutive windows share a batch whatever their lengths (fewest input
    shapes); without, a batch holds one rounded length only (padding under `bucket` tokens
    per row, none at all with `bucket=1`)."""
    lengths = np.asarray(lengths)
    cap = max(max_length, int(lengths.max()))
    padded = np.minimum(-(-lengths // bucket) * bucket, cap)
    order = np.argsort(-padded, kind="stable")
    starts = [0] if mix else np.flatnonzero(np.diff(padded[order], prepend=-1)).tolist()
    plan = []
    for group in np.split(order, starts[1:]):
        for i in range(0, len(group), batch_size):
            rows = group[i : i + batch_size]
            plan.append(Batch(rows, int(padded[rows[0]])))
    return plan


def _to_device(array: np.ndarray, device: str) -> Any:
    import torch

    tensor = torch.from_numpy(array)
    if device.startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


@dataclass(frozen=True)
class _Windows:
    """All windows of all questions as flat token arrays (window w holds tokens
    `first[w]` to `first[w] + lengths[w]`), in question order."""

    ids: np.ndarray
    types: np.ndarray | None
    offsets: np.ndarray  # (tokens, 2): character offsets into the context
    context: np.ndarray  # token belongs to the context
    lengths: np.ndarray
    first: np.ndarray
    example: np.ndarray  # question of each window, ascending
    cls_id: int | None

    def batch(
        self, rows: np.ndarray, length: int, pad: int
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Model inputs for `rows`, right-padded to `length`; context mask; [CLS] index."""
        position = np.arange(length)
        real = position < self.lengths[rows, None]
        index = np.where(real, self.first[rows, None] + position, 0)
        inputs = {
            "input_ids": np.where(real, self.ids[index], pad),
            "attention_mask": real.astype(np.int64),
        }
        if self.types is not None:
            inputs["token_type_ids"] = np.where(real, self.types[index], 0)
        context = real & self.context[index]
        if self.cls_id is None:
            cls = np.zeros(len(rows), dtype=np.int64)
        else:
            cls = np.argmax(inputs["input_ids"] == self.cls_id, axis=1)
        return inputs, context, cls


def _tokenize(
    tokenizer: Any, questions: Sequence[str], contexts: Sequence[str], settings: QASettings
) -> _Windows:
    """Tokenize into overlapping windows with the fast (Rust) tokenizer, in one parallel
    call; the question goes on the side the tokenizer does not pad."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"{type(tokenizer).__name__} has no fast tokenizer (offsets needed)")
    question_first = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in questions]
    pairs: Iterable[tuple[str, str]] = zip(questions, contexts, strict=True)
    if not question_first:
        pairs = ((context, question) for question, context in pairs)
    saved = backend.truncation, backend.padding
    try:
        backend.no_truncation()
        backend.no_padding()
        _check_room(backend, tokenizer.num_special_tokens_to_add(pair=True), questions, settings)
        backend.enable_truncation(
            settings.max_length,
            stride=settings.stride,
            strategy="only_second" if question_first else "only_first",
        )
        encodings = backend.encode_batch(list(pairs), add_special_tokens=True)
    finally:
        _restore(backend, *saved)
    example = np.repeat(np.arange(len(encodings)), [1 + len(e.overflowing) for e in encodings])
    flat = [w for e in encodings for w in (e, *e.overflowing)]
    lengths = np.array([len(w.ids) for w in flat], dtype=np.int64)
    total = int(lengths.sum())

    def gather(field: str, per_token: int = 1) -> np.ndarray:
        chain = itertools.chain.from_iterable
        values = chain(getattr(w, field) for w in flat)
        if per_token > 1:
            values = chain(values)
        return np.fromiter(values, dtype=np.int64, count=total * per_token)

    sequence = np.array(
        list(itertools.chain.from_iterable(w.sequence_ids for w in flat)), dtype=float
    )  # None (special tokens) becomes NaN
    has_types = "token_type_ids" in tokenizer.model_input_names
    return _Windows(
        ids=gather("ids"),
        types=gather("type_ids") if has_types else None,
        offsets=gather("offsets", 2).reshape(total, 2),
        context=sequence == (1 if question_first else 0),
        lengths=lengths,
        first=np.concatenate([[0], np.cumsum(lengths)[:-1]]),
        example=example,
        cls_id=tokenizer.cls_token_id,
    )


def _check_room(backend: Any, special: int, questions: Sequence[str], settings: QASettings) -> None:
    """Every question must leave its context more than `stride` tokens per window (the Rust
    tokenizer would fail with a panic, not an error, otherwise)."""
    tokens = np.array(
        [len(e.ids) for e in backend.encode_batch(questions, add_special_tokens=False)]
    )
    short = np.flatnonzero(settings.max_length - special - tokens <= settings.stride)
    if short.size:
        raise QuestionTooLong(int(short[0]), int(tokens[short[0]]), settings)


def _restore(
    backend: Any, truncation: dict[str, Any] | None, padding: dict[str, Any] | None
) -> None:
    if truncation is None:
        backend.no_truncation()
    else:
        backend.enable_truncation(**truncation)
    if padding is None:
        backend.no_padding()
    else:
        backend.enable_padding(**padding)


def _decode(
    start: Any, end: Any, context: Any, cls_index: Any, settings: QASettings
) -> tuple[Any, Any, Any, Any]:
    """Per window: the n-best span scores, their first and last tokens, the null score."""
    import torch

    candidates = context.clone()
    rows = torch.arange(start.shape[0], device=start.device)
    candidates[rows, cls_index] = True
    neg = torch.finfo(start.dtype).min
    log_start = start.masked_fill(~candidates, neg).log_softmax(-1)
    log_end = end.masked_fill(~candidates, neg).log_softmax(-1)
    null = log_start[rows, cls_index] + log_end[rows, cls_index]
    width = settings.max_answer_length
    # band[b, i, k]: span from token i to token i + k, for k < max_answer_length
    end_band = torch.nn.functional.pad(log_end, (0, width - 1), value=-math.inf).unfold(1, width, 1)
    ok_band = torch.nn.functional.pad(context, (0, width - 1), value=False).unfold(1, width, 1)
    ok = context[:, :, None] & ok_band
    band = (log_start[:, :, None] + end_band).masked_fill(~ok, -math.inf)
    k = min(settings.n_best, band.shape[1] * width)
    scores, flat = band.flatten(1).topk(k, dim=1)
    starts = flat // width
    return scores, starts, starts + flat % width, null


def _gather(
    windows: _Windows,
    scores: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    null: np.ndarray,
    contexts: Sequence[str],
    settings: QASettings,
) -> list[Answer]:
    """Merge the windows of each question: the n best spans overall, the lowest null."""
    n_windows, k = scores.shape
    first_window = np.searchsorted(windows.example, np.arange(len(contexts)))
    nulls = np.minimum.reduceat(null, first_window)
    window = np.repeat(np.arange(n_windows), k)
    flat_scores = scores.ravel()
    valid = np.isfinite(flat_scores)
    window, flat_scores = window[valid], flat_scores[valid]
    example = windows.example[window]
    order = np.lexsort((-flat_scores, example))  # by question, best first, stable
    window, flat_scores, example = window[order], flat_scores[order], example[order]
    start_token = windows.first[window] + starts.ravel()[valid][order]
    end_token = windows.first[window] + ends.ravel()[valid][order]
    rank = np.arange(len(example)) - np.searchsorted(example, example)
    keep = rank < settings.n_best
    char_start = windows.offsets[start_token[keep], 0].tolist()
    char_end = windows.offsets[end_token[keep], 1].tolist()
    kept_scores = flat_scores[keep].tolist()
    bounds = np.searchsorted(example[keep], np.arange(len(contexts) + 1)).tolist()
    answers = []
    for q, context in enumerate(contexts):
        lo, hi = bounds[q], bounds[q + 1]
        spans = tuple(
            Span(context[a:b], a, b, s)
            for a, b, s in zip(char_start[lo:hi], char_end[lo:hi], kept_scores[lo:hi], strict=True)
        )
        lowest, top = float(nulls[q]), (spans[0].score if spans else -math.inf)
        na_prob = 1.0 if top == -math.inf else 1.0 / (1.0 + math.exp(min(top - lowest, 700.0)))
        text = spans[0].text if spans and not lowest > top else ""
        answers.append(Answer(text=text, na_prob=na_prob, spans=spans))
    return answers
