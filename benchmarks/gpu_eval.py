"""SQuAD v2 evaluation at GPU speed (issue 11) and against transformers 4.57's pipeline
(issue 4), in one process each, on the same machine.

1. eval: every question of a SQuAD v2 file through the packed reference-structured BERT-large
   (random weights; MiniLM's tokenizer has BERT's vocabulary), fp16, tokenization, inference,
   post-processing and the metric all inside the wall clock. Prints questions per second.
2. pipeline: the same unpacked checkpoint answered by prunecard (batched) and by
   `pipeline("question-answering")` from transformers 4.57 (a separate `--reference-site`
   folder on PYTHONPATH), the same questions, matched settings, both in fp32.

    python benchmarks/gpu_eval.py --data squad_v2_dev_half.json --out DIR [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
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
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(HERE))
    from pack_speed import build_reference
    from squad_eval import REFERENCE

    from analyzer.packing import load
    from analyzer.qa import answer_batch
    from analyzer.squad_data import read_squad, subset
    from analyzer.squad_metric import score_predictions

    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    data = read_squad(args.data)
    if dry:
        data = subset(data, 40, seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory(prefix="gpu_eval.") as tmp:
        source = build_reference(Path(tmp) / "reference", layers=2 if dry else 24, dtype="float32")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
        dtype = torch.float32 if dry else torch.float16
        model = load(source, dtype=dtype, device=device, layout="packed", align=1 if dry else 64)
        questions = [q.question for q in data.questions]
        contexts = [q.context for q in data.questions]
        answer_batch(
            model,
            tokenizer,
            questions[:64],
            contexts[:64],
            device=device,
            batch_size=args.batch_size,
        )  # warm-up: kernels, allocator
        if device == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        answers = answer_batch(
            model, tokenizer, questions, contexts, device=device, batch_size=args.batch_size
        )
        scores = score_predictions(
            data,
            {q.id: a.text for q, a in zip(data.questions, answers, strict=True)},
            {q.id: a.na_prob for q, a in zip(data.questions, answers, strict=True)},
        ).scores
        seconds = time.perf_counter() - began
        results["eval"] = {
            "questions": len(questions),
            "seconds": seconds,
            "questions_per_second": len(questions) / seconds,
            "batch_size": args.batch_size,
            "dtype": str(dtype),
            "align": 64,
            "f1": scores.f1,
            "exact": scores.exact,
        }
        print(
            f"eval: {len(questions)} questions in {seconds:.2f} s "
            f"({len(questions) / seconds:.0f} q/s), packed fp16, tokenization and metric "
            f"included",
            flush=True,
        )
        del model
        if args.reference_site or dry:
            results["pipeline"] = _pipeline(
                source,
                data,
                args,
                device,
                REFERENCE,
                tmp,
                answer_batch,
                load,
                score_predictions,
                subset,
            )
    (args.out / "gpu_eval.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _pipeline(
    source, data, args, device, reference_code, tmp, answer_batch, load, score_predictions, subset
) -> dict:
    """prunecard (batched) vs transformers 4.57's pipeline on the same unpacked model."""
    import torch
    from transformers import AutoTokenizer

    sample = subset(data, min(args.questions, len(data.questions)), seed=0)
    rows = [{"id": q.id, "question": q.question, "context": q.context} for q in sample.questions]
    data_file, out_file = Path(tmp) / "questions.json", Path(tmp) / "reference.json"
    data_file.write_text(json.dumps(rows))
    code = reference_code.replace("device=-1", f"device={0 if device == 'cuda' else -1}")
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error")
    if args.reference_site:
        env["PYTHONPATH"] = f"{args.reference_site}{os.pathsep}{env.get('PYTHONPATH', '')}"
    done = subprocess.run(
        [sys.executable, "-c", code, str(source), str(data_file), str(out_file), "4"],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        print(f"pipeline failed: {done.stderr[-1500:]}", flush=True)
        return {"error": done.stderr[-1500:]}
    reference = json.loads(out_file.read_text())
    model = load(source, dtype=torch.float32, device=device, layout="stored")
    tokenizer = AutoTokenizer.from_pretrained(source)
    questions, contexts = [r["question"] for r in rows], [r["context"] for r in rows]
    answer_batch(model, tokenizer, questions[:4], contexts[:4], device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    answers = answer_batch(
        model, tokenizer, questions, contexts, device=device, batch_size=args.batch_size
    )
    seconds = time.perf_counter() - began
    ours = score_predictions(sample, {r["id"]: a.text for r, a in zip(rows, answers, strict=True)})
    theirs = score_predictions(sample, reference["predictions"])
    same = sum(
        a.text == reference["predictions"][r["id"]] for r, a in zip(rows, answers, strict=True)
    )
    out = {
        "questions": len(rows),
        "pipeline_seconds": reference["seconds"],
        "prunecard_seconds": seconds,
        "speedup": reference["seconds"] / seconds,
        "pipeline_transformers": reference["transformers"],
        "pipeline_f1": theirs.scores.f1,
        "prunecard_f1": ours.scores.f1,
        "pipeline_exact": theirs.scores.exact,
        "prunecard_exact": ours.scores.exact,
        "identical_answers": same,
    }
    print(
        f"pipeline (transformers {reference['transformers']}, fp32, unpacked): "
        f"{reference['seconds']:.2f} s; prunecard batched: {seconds:.2f} s; "
        f"speedup {out['speedup']:.1f}x; F1 {theirs.scores.f1:.2f} vs {ours.scores.f1:.2f}; "
        f"identical answers {same}/{len(rows)}",
        flush=True,
    )
    return out


if __name__ == "__main__":
    sys.exit(main())
