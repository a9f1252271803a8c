"""The `eval` and `score` stages: predictions in, an `Evaluation` record and files out.

`eval` runs a model over SQuAD v2 data (see `qa.py`) and writes, into one folder that
appears only when complete:

    predictions.json   id -> answer text ("" for no answer), the official script's input
    na_probs.json      id -> no-answer probability in [0, 1]
    eval_metrics.json  the official script's keys, plus "n" (sample size) and "ci"
    eval_data.json     the questions evaluated, official format (only with a limit)
    evaluation.json    the Evaluation record (schema prunecard.eval/1)

`score` reads predictions made anywhere and builds the same record.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from analyzer.errors import InputError
from analyzer.hashing import sha256_file
from analyzer.records import Evaluation, read_json, to_dict, write_record
from analyzer.squad.data import SquadData, read_squad, subset, write_squad
from analyzer.squad.metric import MetricResult, bootstrap_ci, breakdown, score_predictions

__all__ = [
    "build_evaluation",
    "metrics_dict",
    "predict",
    "read_na_probs",
    "read_predictions",
    "run_eval",
    "score_files",
]


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    value = read_json(path)
    if not isinstance(value, dict):
        raise InputError(path, f"expected a JSON object mapping question id to {what}")
    return value


def read_predictions(path: str | Path) -> dict[str, str]:
    """An official predictions file: id -> answer text ("" for no answer)."""
    preds = _read_json_object(Path(path), "answer text")
    for qid, text in preds.items():
        if not isinstance(text, str):
            raise InputError(path, f"answer for id {qid!r} is {text!r}, not a string")
    return preds


def read_na_probs(path: str | Path, required: list[str]) -> dict[str, float]:
    """No-answer probabilities (id -> number in [0, 1]); every id in `required` needs one."""
    probs = _read_json_object(Path(path), "a probability")
    for qid, p in probs.items():
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise InputError(path, f"probability for id {qid!r} is {p!r}, not a number in [0, 1]")
    missing = [qid for qid in required if qid not in probs]
    if missing:
        raise InputError(
            path, f"no probability for {len(missing)} predicted id(s), first {missing[0]!r}"
        )
    return probs


def metrics_dict(ev: Evaluation) -> dict[str, Any]:
    """eval_metrics.json: the official script's output, then the sample size and the CI."""
    official = {k: v for k, v in to_dict(ev.scores).items() if v is not None}
    return {**official, "n": ev.n, "ci": to_dict(ev.ci)}


def build_evaluation(
    data: SquadData, result: MetricResult, *, data_path: str | Path, **fields: Any
) -> Evaluation:
    """The record: official figures, bootstrap CI, sample size, groups, provenance fields."""
    return Evaluation(
        scores=result.scores,
        ci=bootstrap_ci(result.exact, result.f1),
        n=len(data.questions),
        data=str(data_path),
        data_sha256=sha256_file(data_path),
        missing_predictions=result.missing,
        extra_predictions=result.extra,
        groups=breakdown(data, result),
        **fields,
    )


def score_files(
    data_path: str | Path,
    predictions_path: str | Path,
    na_probs_path: str | Path | None = None,
    *,
    version: str = "2.0",
) -> Evaluation:
    """`prunecard score`: figures for predictions made by any inference stack. `version`
    "1.1" scores v1.1 data (no unanswerable questions) with the same metric."""
    if version == "1.1" and na_probs_path is not None:
        raise InputError(na_probs_path, "no-answer probabilities apply to SQuAD v2 only")
    data = read_squad(data_path, version)
    preds = read_predictions(predictions_path)
    ids = set(data.ids)
    na_probs = None
    if na_probs_path is not None:
        na_probs = read_na_probs(na_probs_path, [k for k in preds if k in ids])
    result = score_predictions(data, preds, na_probs)
    return build_evaluation(
        data, result, data_path=data_path, packed=False, predictions=str(predictions_path)
    )


def predict(
    model: Any, tokenizer: Any, data: SquadData, **kwargs: Any
) -> tuple[dict[str, str], dict[str, float], float]:
    """Answers for every question: (predictions, na_probs, questions per second)."""
    from analyzer.runtime.qa import answer_batch

    began = time.perf_counter()
    answers = answer_batch(
        model,
        tokenizer,
        [q.question for q in data.questions],
        [q.context for q in data.questions],
        **kwargs,
    )
    rate = len(answers) / max(time.perf_counter() - began, 1e-9)
    ids = data.ids
    return (
        {qid: a.text for qid, a in zip(ids, answers, strict=True)},
        {qid: a.na_prob for qid, a in zip(ids, answers, strict=True)},
        rate,
    )


def run_eval(
    model: Any,
    tokenizer: Any,
    data_path: str | Path,
    out: str | Path,
    *,
    packed: bool,
    checkpoint: str = "",
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    device: str | None = None,
    graphs: bool | None = None,  # None: CUDA graphs on a GPU (see qa.answer_batch)
    force: bool = False,
    progress: bool = False,
) -> Evaluation:
    """`prunecard eval`: answer, score, and write the result folder (all or nothing)."""
    from analyzer.outputs import atomic_write_text, staged_dir
    from analyzer.runtime.bench import dtype_option
    from analyzer.runtime.environment import device_name, pick_device
    from analyzer.runtime.qa import QuestionTooLong
    from analyzer.runtime.tokenizer import pad_token, tokenizer_info

    data = read_squad(data_path)
    if limit is not None:
        data = subset(data, limit, seed)
    device = pick_device(device)
    try:
        preds, na_probs, rate = predict(
            model,
            tokenizer,
            data,
            batch_size=batch_size,
            device=device,
            graphs=graphs,
            progress=progress,
        )
    except QuestionTooLong as exc:
        raise InputError(data_path, f"question {data.questions[exc.index].id!r}: {exc}") from None
    result = score_predictions(data, preds, na_probs)
    ev = build_evaluation(
        data,
        result,
        data_path=data_path,
        packed=packed,
        checkpoint=checkpoint,
        limit=limit,
        seed=seed if limit is not None else None,
        questions_per_second=rate,
        device=device_name(device),
        dtype=dtype_option(next(model.parameters()).dtype),
        tokenizer=tokenizer_info(tokenizer, pad_token(tokenizer)[1]),
    )
    with staged_dir(Path(out), force=force) as tmp:
        for name, value in (
            ("predictions.json", preds),
            ("na_probs.json", na_probs),
            ("eval_metrics.json", metrics_dict(ev)),
        ):
            atomic_write_text(tmp / name, json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        if limit is not None:
            write_squad(data, tmp / "eval_data.json")
        write_record(ev, tmp / "evaluation.json")
    return ev
