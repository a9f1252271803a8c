"""prunecard's extractive QA vs transformers 4.57's `pipeline("question-answering")`.

transformers 5 removed that pipeline, so the reference runs in a separate virtual
environment that this script creates (transformers 4.57 and the same torch, from PyPI).
Both sides answer the same questions with the same model (the demo checkpoint, an
unpacked BertForQuestionAnswering; prunecard also runs it packed, its `eval` default) and
matched post-processing: windows of 384 tokens, stride 128, answers up to 30 tokens,
no-answer when the [CLS] score wins, answers cut at token offsets (`align_to_words=False`).
Each side warms up on a few questions, then answers
all of them once under a wall clock; model loading is not timed. EM and F1 come from
prunecard's implementation of the official metric.

    python benchmarks/squad_eval.py [--questions 150] [--batch-size 32] [--venv DIR]
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

REFERENCE = """
import json, sys, time
import torch, transformers
from transformers import pipeline
model, data_file, out_file = sys.argv[1:4]
warmup, device, dtype, batch = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], int(sys.argv[7])
qs = json.load(open(data_file))
qa = pipeline("question-answering", model=model, tokenizer=model, device=device,
              torch_dtype=getattr(torch, dtype))
kw = dict(top_k=1, handle_impossible_answer=True, max_answer_len=30, max_seq_len=384,
          doc_stride=128, align_to_words=False, batch_size=batch)
qa(question=[q["question"] for q in qs[:warmup]], context=[q["context"] for q in qs[:warmup]], **kw)
began = time.perf_counter()
out = qa(question=[q["question"] for q in qs], context=[q["context"] for q in qs], **kw)
seconds = time.perf_counter() - began
json.dump({"seconds": seconds, "transformers": transformers.__version__,
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "predictions": {q["id"]: o["answer"] for q, o in zip(qs, out)}}, open(out_file, "w"))
"""


def reference_python(venv: Path) -> Path:
    """The venv with transformers 4.57, created on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with transformers 4.57 (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "transformers==4.57.*", "torch==2.13.0"],
            check=True,
        )
    return python


def main() -> None:
    from analyzer.runtime.demo import demo_checkpoint
    from analyzer.runtime.qa import answer_batch, load_qa_model
    from analyzer.squad.data import bundled_sample_path, read_squad, subset
    from analyzer.squad.metric import score_predictions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument(
        "--venv",
        type=Path,
        default=Path.home() / ".cache" / "prunecard" / "bench-transformers-4.57",
    )
    args = parser.parse_args()

    model_path = demo_checkpoint()
    data = subset(read_squad(bundled_sample_path()), args.questions, seed=0)
    rows = [{"id": q.id, "question": q.question, "context": q.context} for q in data.questions]
    python = reference_python(args.venv)

    with tempfile.TemporaryDirectory() as tmp:
        data_file, out_file = Path(tmp) / "questions.json", Path(tmp) / "reference.json"
        data_file.write_text(json.dumps(rows))
        env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error"}
        subprocess.run(
            [
                str(python),
                "-c",
                REFERENCE,
                str(model_path),
                str(data_file),
                str(out_file),
                str(args.warmup),
                "-1",  # the CPU
                "float32",
                "1",  # the pipeline's default batch size
            ],
            check=True,
            env=env,
        )
        reference = json.loads(out_file.read_text())

    import torch
    import transformers

    questions, contexts = [r["question"] for r in rows], [r["context"] for r in rows]
    theirs = score_predictions(data, reference["predictions"])
    print(f"model      {model_path}, {len(rows)} questions, CPU, {torch.get_num_threads()} threads")
    print(
        f"reference  transformers {reference['transformers']} pipeline, torch "
        f"{reference['torch']}: {reference['seconds']:.2f} s, EM {theirs.scores.exact:.2f}, "
        f"F1 {theirs.scores.f1:.2f}"
    )
    for packed in (False, True):  # the checkpoint as stored (as the pipeline ran it), packed
        model, tokenizer = load_qa_model(model_path, packed=packed)
        answer_batch(
            model, tokenizer, questions[: args.warmup], contexts[: args.warmup], device="cpu"
        )
        began = time.perf_counter()
        answers = answer_batch(
            model, tokenizer, questions, contexts, device="cpu", batch_size=args.batch_size
        )
        seconds = time.perf_counter() - began
        texts = {r["id"]: a.text for r, a in zip(rows, answers, strict=True)}
        ours = score_predictions(data, texts)
        agree = sum(texts[qid] == reference["predictions"][qid] for qid in texts)
        em, f1 = ours.scores.exact, ours.scores.f1
        print(
            f"prunecard  {'packed' if packed else 'as stored'}, transformers "
            f"{transformers.__version__}, batch {args.batch_size}: {seconds:.2f} s, "
            f"EM {em:.2f}, F1 {f1:.2f}; speedup {reference['seconds'] / seconds:.2f}x, "
            f"EM {em - theirs.scores.exact:+.2f}, F1 {f1 - theirs.scores.f1:+.2f}, "
            f"identical answers {agree}/{len(rows)}"
        )


if __name__ == "__main__":
    main()
