"""Extractive question answering on transformers 5, which dropped the QA pipeline.

Each question and its context are tokenized into windows of `max_length` tokens that
overlap by `stride` tokens, windows run in batches sorted by length (little padding),
and each window is decoded in one vectorised step:

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "QASettings", "Span", "answer", "answer_batch", "load_qa_model", "pick_device"]


@dataclass(frozen=True)
class QASettings:
    """Post-processing settings; the defaults are those of SQuAD v2 evaluations."""

    max_length: int = 384  # tokens per window, question included
    stride: int = 128  # tokens shared by consecutive windows
    n_best: int = 20  # spans kept per window and per question
    max_answer_length: int = 30  # tokens


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


def pick_device(device: str | None = None) -> str:
    """The given device, else the GPU when there is one, else the CPU."""
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def load_qa_model(path, *, packed: bool = True):
    """A question-answering model and its tokenizer from a checkpoint folder; `packed` slices
    removed heads and FFN units out first (same outputs, less work)."""
    from transformers import AutoTokenizer

    from .packing import load

    model = load(path, layout="packed" if packed else "stored")
    return model, AutoTokenizer.from_pretrained(path)


def answer(model, tokenizer, question: str, context: str, **kwargs: Any) -> Answer:
    """Answer one question from its context (see `answer_batch` for the keywords)."""
    return answer_batch(model, tokenizer, [question], [context], **kwargs)[0]


def answer_batch(
    model,
    tokenizer,
    questions: Sequence[str],
    contexts: Sequence[str],
    *,
    settings: QASettings = QASettings(),  # frozen, so one shared default is safe
    batch_size: int = 32,
    device: str | None = None,
    progress: bool = False,
) -> list[Answer]:
    """Answer many questions, one context each; the model is moved to `device`."""
    import torch
    from tqdm.auto import tqdm

    if len(questions) != len(contexts):
        raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
    if not questions:
        return []
    device = pick_device(device)
    model.to(device).eval()
    windows = _windows(tokenizer, questions, contexts, settings)
    order = sorted(range(len(windows)), key=lambda w: -len(windows[w].input_ids))
    decoded: list[tuple[float, list[tuple[float, int, int]]]] = [(0.0, [])] * len(windows)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.inference_mode():
        for batch in tqdm(batches, desc="answering", unit="batch", disable=not progress):
            inputs, candidates, context_mask, cls_index = _collate(
                [windows[w] for w in batch], tokenizer, device
            )
            out = model(**inputs)
            results = _decode(
                out.start_logits.float(),
                out.end_logits.float(),
                candidates,
                context_mask,
                cls_index,
                settings,
            )
            for w, result in zip(batch, results, strict=True):
                decoded[w] = result
    return _gather(windows, decoded, contexts, settings)


@dataclass(frozen=True)
class _Window:
    example: int
    input_ids: list[int]
    token_type_ids: list[int] | None
    offsets: list[tuple[int, int]]
    context: list[bool]  # token belongs to the context


def _windows(tokenizer, questions, contexts, settings: QASettings) -> list[_Window]:
    """Tokenize into overlapping windows; the question goes on the side without padding."""
    question_first = tokenizer.padding_side == "right"
    questions = [q.lstrip() for q in questions]
    pair = (questions, list(contexts)) if question_first else (list(contexts), questions)
    enc = tokenizer(
        *pair,
        truncation="only_second" if question_first else "only_first",
        max_length=settings.max_length,
        stride=settings.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    context_id = 1 if question_first else 0
    types = enc.get("token_type_ids")
    return [
        _Window(
            example=enc["overflow_to_sample_mapping"][f],
            input_ids=enc["input_ids"][f],
            token_type_ids=types[f] if types is not None else None,
            offsets=enc["offset_mapping"][f],
            context=[s == context_id for s in enc.sequence_ids(f)],
        )
        for f in range(len(enc["input_ids"]))
    ]


def _collate(windows: list[_Window], tokenizer, device: str):
    """Pad a batch on the right; masks of span candidates, context tokens and [CLS]."""
    import torch

    length = max(len(w.input_ids) for w in windows)
    pad = tokenizer.pad_token_id or 0
    ids = torch.full((len(windows), length), pad, dtype=torch.long)
    attention = torch.zeros((len(windows), length), dtype=torch.long)
    context = torch.zeros((len(windows), length), dtype=torch.bool)
    types = torch.zeros((len(windows), length), dtype=torch.long)
    cls_index = torch.zeros(len(windows), dtype=torch.long)
    for row, w in enumerate(windows):
        n = len(w.input_ids)
        ids[row, :n] = torch.tensor(w.input_ids)
        attention[row, :n] = 1
        context[row, :n] = torch.tensor(w.context)
        if w.token_type_ids is not None:
            types[row, :n] = torch.tensor(w.token_type_ids)
        if tokenizer.cls_token_id in w.input_ids:
            cls_index[row] = w.input_ids.index(tokenizer.cls_token_id)
    candidates = context.clone()
    candidates[torch.arange(len(windows)), cls_index] = True
    inputs = {"input_ids": ids, "attention_mask": attention}
    if windows[0].token_type_ids is not None:
        inputs["token_type_ids"] = types
    inputs = {k: v.to(device) for k, v in inputs.items()}
    return inputs, candidates.to(device), context.to(device), cls_index.to(device)


def _decode(start, end, candidates, context, cls_index, settings: QASettings):
    """Null score and n-best spans of every window in the batch, in one pass."""
    import torch

    neg = torch.finfo(start.dtype).min
    log_start = start.masked_fill(~candidates, neg).log_softmax(-1)
    log_end = end.masked_fill(~candidates, neg).log_softmax(-1)
    rows = torch.arange(start.shape[0], device=start.device)
    null = log_start[rows, cls_index] + log_end[rows, cls_index]
    width = settings.max_answer_length
    # band[b, i, k]: span from token i to token i + k, for k < max_answer_length
    end_band = torch.nn.functional.pad(log_end, (0, width - 1), value=-math.inf).unfold(1, width, 1)
    ok_band = torch.nn.functional.pad(context, (0, width - 1), value=False).unfold(1, width, 1)
    ok = context[:, :, None] & ok_band
    band = (log_start[:, :, None] + end_band).masked_fill(~ok, -math.inf)
    k = min(settings.n_best, band.shape[1] * width)
    scores, flat = band.flatten(1).topk(k, dim=1)
    starts, lengths = flat // width, flat % width
    results = []
    for b, (s_row, st_row, ln_row) in enumerate(
        zip(scores.tolist(), starts.tolist(), lengths.tolist(), strict=True)
    ):
        spans = [
            (s, i, i + n) for s, i, n in zip(s_row, st_row, ln_row, strict=True) if s > -math.inf
        ]
        results.append((float(null[b]), spans))
    return results


def _gather(windows: list[_Window], decoded, contexts, settings: QASettings) -> list[Answer]:
    """Merge the windows of each question: best span overall, lowest null score."""
    nulls: dict[int, float] = {}
    spans: dict[int, list[Span]] = {i: [] for i in range(len(contexts))}
    for w, (null, window_spans) in zip(windows, decoded, strict=True):
        nulls[w.example] = min(null, nulls.get(w.example, math.inf))
        context = contexts[w.example]
        for score, i, j in window_spans:
            a, b = w.offsets[i][0], w.offsets[j][1]
            spans[w.example].append(Span(context[a:b], a, b, score))
    answers = []
    for example in range(len(contexts)):
        best = sorted(spans[example], key=lambda s: -s.score)[: settings.n_best]
        null = nulls[example]
        top = best[0].score if best else -math.inf
        na_prob = 1.0 if top == -math.inf else 1.0 / (1.0 + math.exp(min(top - null, 700.0)))
        text = best[0].text if best and not null > top else ""
        answers.append(Answer(text=text, na_prob=na_prob, spans=tuple(best)))
    return answers
