"""SQuAD v2 evaluation at GPU speed (issue 11) and against transformers 4.57's pipeline
(issue 4), each side in its own process, on the same machine.

1. eval: every question of a SQuAD v2 file through the packed reference-structured
   BERT-large (random weights; MiniLM's tokenizer has BERT's vocabulary), fp16, FFN widths
   aligned to 64: tokenization, inference, post-processing and the metric all inside the
   wall clock, with CUDA graphs (bucketed shapes, the default) and without. Then
   `prunecard eval` itself, process start to exit, on the same file.
2. pipeline: the same checkpoint answered by `pipeline("question-answering")` from
   transformers 4.57 (a separate `--reference-site` folder on PYTHONPATH; batch size 1,
   its default, in fp32 and fp16, and batch 32 in fp16) and by prunecard (as stored in fp32
   and fp16, and packed, its default), the same questions, matched post-processing.

    python benchmarks/gpu_eval.py --data squad_v2_dev_half.json --out DIR [--dry-run]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--questions", type=int, default=150, help="for the pipeline comparison")
    parser.add_argument("--reference-site", type=Path, help="transformers 4.57 on PYTHONPATH")
    parser.add_argument("--dry-run", action="store_true", help="CPU, 2 layers, 40 questions")
    parser.add_argument("--skip", nargs="*", default=(), help="steps to leave out, e.g. profile")
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(HERE))
    from pack_speed import build_reference

    from analyzer.squad.data import read_squad, subset, write_squad

    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    data = read_squad(args.data)
    if dry:
        data = subset(data, 40, seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory(prefix="gpu_eval.") as tmp:
        source = build_reference(Path(tmp) / "reference", layers=2 if dry else 24, dtype="float32")
        data_file = Path(tmp) / "data.json"
        write_squad(data, data_file)
        sample = subset(data, min(args.questions, len(data.questions)), seed=0)
        steps = {
            "eval": lambda: _eval(source, data, args, device, graphs=not dry),
            "eval-eager": lambda: _eval(source, data, args, device, graphs=False),
            "cli": lambda: _cli(source, data_file, Path(tmp) / "cli", device, dry),
            "pipeline": lambda: _pipeline(source, sample, args, device, tmp),
            "profile": lambda: _profile(source, data, args, device),
        }
        for name, step in steps.items():
            if name in args.skip:
                continue
            try:  # one failed step must not cost the others' GPU time
                results[name] = step()
            except Exception:
                print(f"{name} FAILED\n{traceback.format_exc()}", flush=True)
            (args.out / "gpu_eval.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _answers(source, data, *, device, dtype, packed, graphs, batch_size, warmup=64):
    """Load, warm up on a few questions (kernels, allocator), then answer all under a clock;
    returns (answers, seconds, the clock's start)."""
    import torch

    from analyzer.runtime.qa import answer_batch, load_qa_model

    model, tokenizer = load_qa_model(
        source, packed=packed, dtype=dtype, device=device, align=64 if packed else 1
    )
    questions = [q.question for q in data.questions]
    contexts = [q.context for q in data.questions]
    options = dict(device=device, graphs=graphs, batch_size=batch_size)
    answer_batch(model, tokenizer, questions[:warmup], contexts[:warmup], **options)
    if device == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    answers = answer_batch(model, tokenizer, questions, contexts, **options)
    return answers, time.perf_counter() - began, began


def _eval(source, data, args, device, *, graphs: bool) -> dict:
    """Every question, packed fp16, metric inside the clock."""
    import torch

    from analyzer.squad.metric import score_predictions

    dtype = torch.float32 if device == "cpu" else torch.float16
    answers, _, began = _answers(
        source, data, device=device, dtype=dtype, packed=True, graphs=graphs,
        batch_size=args.batch_size,
    )  # fmt: skip
    scores = score_predictions(
        data,
        {q.id: a.text for q, a in zip(data.questions, answers, strict=True)},
        {q.id: a.na_prob for q, a in zip(data.questions, answers, strict=True)},
    ).scores
    seconds = time.perf_counter() - began
    out = {
        "questions": len(data.questions),
        "seconds": seconds,
        "questions_per_second": len(data.questions) / seconds,
        "batch_size": args.batch_size,
        "dtype": str(dtype),
        "align": 64,
        "graphs": graphs,
        "f1": scores.f1,
        "exact": scores.exact,
    }
    print(
        f"eval: {len(data.questions)} questions in {seconds:.2f} s "
        f"({out['questions_per_second']:.0f} q/s), packed {dtype}, CUDA graphs "
        f"{'on' if graphs else 'off'}, tokenization and metric included",
        flush=True,
    )
    return out


def _cli(source, data_file, out, device, dry) -> dict:
    """`prunecard eval` as a user runs it: process start to exit, model load included."""
    command = [sys.executable, "-m", "analyzer.cli.main", "eval", str(source), "--data"]
    command += [str(data_file), "--out", str(out), "--batch-size", "128"]
    if dry:
        command += ["--device", "cpu"]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    print(f"prunecard eval (whole process): {seconds:.2f} s, exit {done.returncode}")
    print(done.stdout[-1500:] + done.stderr[-1500:], flush=True)
    return {"seconds": seconds, "returncode": done.returncode, "stdout": done.stdout[-3000:]}


def _pipeline(source, sample, args, device, tmp) -> dict:
    """prunecard vs transformers 4.57's pipeline, the same questions and checkpoint."""
    import torch
    from squad_eval import REFERENCE

    from analyzer.squad.metric import score_predictions

    rows = [{"id": q.id, "question": q.question, "context": q.context} for q in sample.questions]
    data_file = Path(tmp) / "questions.json"
    data_file.write_text(json.dumps(rows))
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error")
    if args.reference_site:
        env["PYTHONPATH"] = f"{args.reference_site}{os.pathsep}{env.get('PYTHONPATH', '')}"
    dry = device == "cpu"
    runs: dict = {"questions": len(rows), "pipeline": {}, "prunecard": {}}
    for dtype, batch in (("float32", 1), ("float16", 1), ("float16", 32)):
        if dry and dtype == "float16":
            continue
        out_file = Path(tmp) / f"reference-{dtype}-{batch}.json"
        argv = [str(source), str(data_file), str(out_file), "4", "-1" if dry else "0", dtype]
        done = subprocess.run(
            [sys.executable, "-c", REFERENCE, *argv, str(batch)],
            env=env,
            capture_output=True,
            text=True,
        )
        name = f"{dtype} batch {batch}"
        if done.returncode:
            print(f"pipeline {name} failed: {done.stderr[-1500:]}", flush=True)
            continue
        ref = json.loads(out_file.read_text())
        scores = score_predictions(sample, ref["predictions"]).scores
        runs["pipeline"][name] = {
            "seconds": ref["seconds"],
            "transformers": ref["transformers"],
            "exact": scores.exact,
            "f1": scores.f1,
            "predictions": ref["predictions"],
        }
        print(f"pipeline {name}: {ref['seconds']:.2f} s, F1 {scores.f1:.2f}", flush=True)
    for name, dtype, packed in (
        ("as stored, float32", torch.float32, False),
        ("as stored, float16", torch.float16, False),
        ("packed, float16", torch.float16, True),
    ):
        if dry and dtype == torch.float16:
            continue
        answers, seconds, _ = _answers(
            source, sample, device=device, dtype=dtype, packed=packed, graphs=not dry,
            batch_size=args.batch_size, warmup=4,
        )  # fmt: skip
        preds = {r["id"]: a.text for r, a in zip(rows, answers, strict=True)}
        scores = score_predictions(sample, preds).scores
        runs["prunecard"][name] = {"seconds": seconds, "exact": scores.exact, "f1": scores.f1}
        for ref_name, ref in runs["pipeline"].items():
            if ref_name.startswith(str(dtype).removeprefix("torch.")):
                same = sum(preds[qid] == ref["predictions"][qid] for qid in preds)
                print(
                    f"prunecard {name}: {seconds:.2f} s vs pipeline {ref_name} "
                    f"{ref['seconds']:.2f} s = {ref['seconds'] / seconds:.1f}x; F1 "
                    f"{scores.f1:.2f} vs {ref['f1']:.2f}, EM {scores.exact:.2f} vs "
                    f"{ref['exact']:.2f}; identical answers {same}/{len(rows)}",
                    flush=True,
                )
    for ref in runs["pipeline"].values():
        del ref["predictions"]
    return runs


def _profile(source, data, args, device) -> None:
    """Where the eval's wall clock goes on the host (cProfile of one more packed run)."""
    import torch

    profiler = cProfile.Profile()
    profiler.enable()
    _answers(
        source, data, device=device, dtype=torch.float16 if device == "cuda" else torch.float32,
        packed=True, graphs=device == "cuda", batch_size=args.batch_size,
    )  # fmt: skip
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
    (args.out / "eval-profile.txt").write_text(text.getvalue())
    print(text.getvalue()[:6000], flush=True)


if __name__ == "__main__":
    sys.exit(main())
