"""The `prunecard` command: parses arguments, calls the library, prints, sets the exit code.

Exit codes: 0 success, 1 an audit found a mismatch or a timing is implausible (one line
on stderr), 2 bad input (one line on stderr, no traceback unless --debug).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from analyzer import __version__
from analyzer.errors import InputError, PrunecardError, printable
from analyzer.outputs import check_apart, check_output
from analyzer.runtime.plan import FULL, QUICK_LM_PLAN, QUICK_PLAN
from analyzer.text import fixed

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that exits with 2 and one line, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"prunecard: error: {printable(message)} (see --help)\n")


def _default_checkpoint(path: Path | None) -> Path:
    if path is not None:
        return path
    from analyzer.runtime.demo import demo_checkpoint

    return demo_checkpoint()


def _source(path: Path | None) -> Any:
    """The checkpoint argument before anything is fetched: a local path (the demo when none
    is given) or a Hub id (`analyzer.weights.hub`: an existing local path always wins)."""
    from analyzer.weights.hub import parse_source

    return parse_source(_default_checkpoint(path))


def _guarded(source: Any) -> Path:
    """What outputs must stay out of: the path, or a Hub id's whole folder in the cache."""
    from analyzer.weights.hub import HubRef

    return source.cache_folder if isinstance(source, HubRef) else source


def _model_name(source: Any) -> str:
    """A card's default model name: the Hub id, or the checkpoint folder's name."""
    from analyzer.weights.hub import HubRef

    if isinstance(source, HubRef):
        return source.repo_id
    path = _resolved(source)
    return (path if path.is_dir() else path.parent).name


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else "symlink loop"
        raise InputError(path, f"unusable path ({problem.lower()})") from None


def _check_file(out: Path | None, inputs: Sequence[Path | None]) -> None:
    """A single-file output (--json, --markdown, score --out): never an input, never a folder."""
    if out is not None:
        check_output(out, inputs, folder=False)


# --------------------------------------------------------------------------- commands


def _show(record: object, text: str, json_path: Path | None, what: str) -> int:
    """Write the record first (a failed write prints nothing), then its table."""
    from analyzer.records import write_record

    if json_path:
        write_record(record, json_path)
    print(text)
    if json_path:
        print(f"\n{what} written to {json_path}")
    return EXIT_OK


def _publication_given(args: argparse.Namespace) -> dict[str, object]:
    """The publication options as given (None: not given on the command line)."""
    return {
        "model_id": args.name,
        "license": args.license,
        "base_model": args.base,
        "datasets": args.dataset,
        "eval_dataset": args.eval_dataset,
        "language": args.language,
        "tags": args.tag,
    }


def cmd_report(args: argparse.Namespace) -> int:
    """analyze, pack, bench, eval and card in one go; every record is kept in DIR.

    Example: prunecard report ./my-pruned-bert --data dev-v2.0.json --limit 1000 --out ./report
    """
    from analyzer.pipeline import ReportOptions, run_report
    from analyzer.publish.card import resolve_publication
    from analyzer.weights.hub import fetch

    source = _source(args.path)
    out = args.out or Path(f"{_model_name(source).rpartition('/')[2]}-report")
    inputs = [args.data, args.text, args.base_config, args.results, args.base_results]
    check_output(out, [_guarded(source), *inputs], force=args.force)
    options = ReportOptions(
        data=args.data,
        text=args.text,
        text_dataset=args.text_dataset,
        protocol=args.protocol,
        window=args.window,
        stride=args.stride,
        seqlen=args.seqlen,
        limit_tokens=args.limit_tokens,
        limit=args.limit,
        seed=args.seed or 0,
        evaluate=not args.no_eval,
        benchmark=not args.no_bench,
        quick=args.quick,
        device=args.device,
        dtype=args.dtype,
        align=args.align,
        accept_unstable=args.accept_unstable,
        base=args.base_config,
        tasks=_task_sources(args),
    )
    publication = resolve_publication(None, _model_name(source), _publication_given(args))
    fetched = fetch(source, tokenizer=True)
    run_report(fetched.path, out, publication, options, force=args.force, hub=fetched.hub)
    print(out / "README.md")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Build a family from the embedded MiniLM (the dense model and four pruned variants:
    heads; heads and FFN units; 2:4; more heads and units), run `report` on each (a quick
    bench, 100 questions) and build one site comparing them against the dense base.

    Example: prunecard demo --out ./prunecard-demo
    """
    from analyzer.pipeline import run_demo

    check_output(args.out, force=args.force)
    index = run_demo(args.out, limit=args.limit, force=args.force)
    print(f"site built: {index}")
    return EXIT_OK


def cmd_analyze(args: argparse.Namespace) -> int:
    """Measure a checkpoint: densities, removed heads (decoders: and K/V groups), FFN units
    (MLP channels), block structure, sizes; --base-config compares with the dense base.

    Example: prunecard analyze ./my-pruned-llama --base-config ./Llama-3.1-8B/config.json
        --json analysis.json
    """
    from analyzer.cli.tables import format_analysis
    from analyzer.weights.hub import fetch, named
    from analyzer.weights.sparsity import analyze

    source = _source(args.path)
    _check_file(args.json, [_guarded(source), args.base_config])
    fetched = fetch(source)
    analysis = named(analyze(fetched.path, base=args.base_config), fetched.hub)
    return _show(analysis, format_analysis(analysis), args.json, "analysis")


def cmd_pack(args: argparse.Namespace) -> int:
    """Write a packed checkpoint: removed heads and dead FFN units physically gone, outputs
    unchanged.

    Example: prunecard pack ./my-pruned-bert ./my-pruned-bert-packed --align 64
    """
    from analyzer.cli.tables import format_pack
    from analyzer.runtime.packing import pack
    from analyzer.weights.hub import fetch

    if args.align < 1:
        raise InputError(None, f"--align must be a positive integer, got {args.align}")
    source = _source(args.path)
    check_output(args.out, [_guarded(source)], force=args.force)
    result = pack(fetch(source, tokenizer=True).path, args.out, align=args.align, force=args.force)
    print(format_pack(result))
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """Time the dense model against the packed one on this machine, per (batch, seq); for a
    causal LM, also greedy decoding in tokens/s (and, on a GPU, its 2:4 matrices as sparse).

    Example: prunecard bench ./my-pruned-bert --json bench.json --batch 1 8 --seq 384
    """
    from analyzer.cli.tables import format_bench
    from analyzer.perplexity.model import is_causal_lm
    from analyzer.runtime.bench import bench, bench_plan
    from analyzer.runtime.timing import require_plausible
    from analyzer.weights.checkpoint import open_checkpoint
    from analyzer.weights.hub import fetch

    source = _source(args.path)
    _check_file(args.json, [_guarded(source)])
    path = fetch(source, tokenizer=True).path
    quick = args.quick
    checkpoint = open_checkpoint(path)  # opened once: bench reads through it
    plan = bench_plan(quick=quick, causal=is_causal_lm(checkpoint.config))
    protocol = replace(
        plan.protocol, **{k: v for k, v in _protocol_options(args).items() if v is not None}
    )
    result = bench(
        checkpoint,
        device=args.device,
        dtype=args.dtype,
        align=args.align,
        shapes=[(b, s) for s in args.seq or plan.seqs for b in args.batch or plan.batches],
        threads=args.threads,
        protocol=protocol,
        graphs=args.graphs,
        fuse=args.fuse,
        profile_runs=0 if args.no_profile else plan.profile_runs,
        quick=quick,
        progress=True,
        decode_batches=args.decode_batch or plan.decode_batches,
        prompt_tokens=plan.prompt_tokens if args.prompt_tokens is None else args.prompt_tokens,
        new_tokens=plan.new_tokens if args.new_tokens is None else args.new_tokens,
    )
    code = _show(result, format_bench(result), args.json, "bench")
    if not args.accept_unstable:
        require_plausible(result)
    return code


def _protocol_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"min_repeats": args.repeats, "threshold": args.threshold, "budget_s": args.budget}


def cmd_card(args: argparse.Namespace) -> int:
    """Render the Hugging Face model card and its figures from the records (never re-runs eval
    or bench).

    Example: prunecard card ./my-pruned-bert --bench bench.json --eval eval.json --base
        bert-base-uncased --out ./my-pruned-bert-card
    """
    from analyzer.pipeline import card_from_files
    from analyzer.publish.card import CARD_OUTPUTS
    from analyzer.weights.checkpoint import checkpoint_folder
    from analyzer.weights.hub import fetch

    source = _source(args.path)
    out = args.out or Path.cwd() / f"{_model_name(source).rpartition('/')[2]}-card"
    inputs = [
        *(args.analysis, args.bench, args.eval, args.perplexity, args.benchmarks, args.report),
        *(args.reference_metrics, args.template),
    ]
    # a card goes into a local checkpoint folder (never into the Hub cache: it is an input)
    local = isinstance(source, Path)
    if local and _resolved(out) == checkpoint_folder(_resolved(source)):  # only the card's files
        # re-rendering from the folder's own report.json (the publish hook) rewrites it with
        # the records it holds, read in full before anything is written
        own = args.report is not None and _resolved(args.report) == _resolved(out / "report.json")
        for name in CARD_OUTPUTS:
            check_apart(out / name, [i for i in inputs if not (own and i is args.report)])
    else:
        check_output(out, [_guarded(source), *inputs], force=args.force)
    fetched = fetch(source)
    out = card_from_files(
        fetched.path,
        out=out,
        analysis=args.analysis,
        bench=args.bench,
        evaluation=args.eval,
        perplexity=args.perplexity,
        benchmarks=args.benchmarks,
        report=args.report,
        publication=_publication_given(args),
        reference=args.reference_metrics,
        template=args.template,
        force=args.force,
        hub=fetched.hub,
    )
    print(f"card written to {out / 'README.md'} (figures in {out / 'assets'})")
    return EXIT_OK


def cmd_site(args: argparse.Namespace) -> int:
    """Build a static documentation site (mkdocs-material) comparing report folders.

    Example: prunecard site reports/model-a reports/model-b --out site-out
    """
    from analyzer.publish.site import build_site

    check_output(args.out, [*args.reports, args.dense_base], force=args.force)
    print(build_site(args.reports, args.out, force=args.force, base=args.dense_base))
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    """Check a model card's claims against the weights, an evaluation and a bench record (exit 1
    on any mismatch).

    Example: prunecard audit ./my-pruned-bert --eval eval.json --bench bench.json --json
        audit.json
    """
    from analyzer.audit.checks import audit_markdown, format_audit
    from analyzer.errors import InputError
    from analyzer.outputs import atomic_write_text
    from analyzer.pipeline import audit_checkpoint
    from analyzer.records import write_record
    from analyzer.weights.hub import fetch

    card = args.card
    if args.path is None and (card is None or not args.no_weights):
        raise InputError(None, "audit: give the checkpoint folder, or --no-weights --card FILE")
    source = None if args.path is None else _source(args.path)
    for written in (args.json, args.markdown):  # the checkpoint holds the default card
        _check_file(written, [source and _guarded(source), card, args.eval, args.bench])
    path, hub = args.path, None
    if source is not None and not isinstance(source, Path):  # a Hub id: its card and weights
        fetched = fetch(
            source, weights=not args.no_weights, tokenizer=args.rebench, card=card is None
        )
        path, hub = fetched.path, fetched.hub
    if card is None:
        card = path if args.no_weights and path.is_file() else path / "README.md"
    if not args.no_weights and not path.exists():
        raise InputError(path, "no such checkpoint (pass --no-weights to audit a card alone)")
    report = audit_checkpoint(
        card,
        None if args.no_weights else path,
        eval_path=args.eval,
        bench_path=args.bench,
        rebench=args.rebench,
        hub=hub,
    )
    if args.json:
        write_record(report, args.json)
    if args.markdown:
        atomic_write_text(args.markdown, audit_markdown(report))
    print(format_audit(report, args.strict))
    return EXIT_MISMATCH if report.failed(args.strict) else EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate a model: a question-answering model on SQuAD v2 (official metric, bootstrap
    CIs, sample size); a causal LM by its perplexity over a text or a Hub dataset (strided
    sliding windows, or the papers' protocol; bootstrap CI over windows).

    Example: prunecard eval ./my-pruned-bert --data dev-v2.0.json --limit 500 --seed 0 --out
        ./eval
    """
    from analyzer.perplexity.model import is_causal_lm
    from analyzer.weights.checkpoint import open_checkpoint
    from analyzer.weights.hub import fetch

    source = _source(args.path)
    guarded = _guarded(source)
    if not isinstance(source, Path):  # a Hub id: outputs stay out of its cache folder
        for written in (args.out, args.json):
            if written is not None:
                check_apart(written, [guarded])
    fetched = fetch(source, tokenizer=True)
    path = fetched.path
    causal = is_causal_lm(open_checkpoint(path).config)
    tasks = (args.tasks, args.results, args.dense_base, args.base_results)
    if causal and any(v is not None for v in tasks):
        return _eval_tasks(args, fetched, guarded)
    if any(v is not None for v in tasks):
        raise InputError(fetched.name, "is not a causal LM: --tasks and --results need one")
    if causal:
        _refuse(
            args,
            _SQUAD_ONLY,
            fetched.name,
            "is a causal LM: {option} is a SQuAD v2 option "
            "(its perplexity is measured; see --text)",
        )
        return _eval_perplexity(args, fetched, guarded)
    _refuse(
        args,
        _PERPLEXITY_ONLY,
        fetched.name,
        "is not a causal LM: {option} is a perplexity option "
        "(it is evaluated on SQuAD v2; see --data)",
    )
    return _eval_squad(args, fetched, guarded)


# options that apply to one kind of evaluation only: given for the other kind, they are refused
_SQUAD_ONLY = ("data", "limit", "seed", "out", "force", "no_pack", "batch_size", "no_graphs")
_PERPLEXITY_ONLY = (
    *("text", "dataset", "protocol", "window", "stride", "seqlen", "limit_tokens"),
    *("packed", "json"),
)


def _refuse(args: argparse.Namespace, options: Sequence[str], path: str, problem: str) -> None:
    given = [name for name in options if getattr(args, name) not in (None, False)]
    if given:
        raise InputError(path, problem.format(option="--" + given[0].replace("_", "-")))


def _eval_squad(args: argparse.Namespace, fetched: Any, guarded: Path) -> int:
    from analyzer.cli.tables import format_evaluation
    from analyzer.runtime.bench import resolve_options, torch_dtype
    from analyzer.runtime.qa import load_qa_model
    from analyzer.squad.data import bundled_sample_path
    from analyzer.squad.evaluate import run_eval

    if args.out is None:
        raise InputError(None, "--out DIR is required for a SQuAD v2 evaluation (its results)")
    batch_size = 32 if args.batch_size is None else args.batch_size
    if batch_size < 1:
        raise InputError(None, f"--batch-size must be a positive integer, got {batch_size}")
    check_output(args.out, [guarded, args.data], force=args.force)
    device, dtype, align = resolve_options(args.device, args.dtype, args.align)
    model, tokenizer = load_qa_model(
        fetched.path, packed=not args.no_pack, dtype=torch_dtype(dtype), device=device, align=align
    )
    ev = run_eval(
        model,
        tokenizer,
        args.data or bundled_sample_path(),
        args.out,
        packed=not args.no_pack,
        checkpoint=fetched.name,
        limit=args.limit,
        seed=args.seed or 0,
        batch_size=batch_size,
        device=device,
        graphs=False if args.no_graphs else None,
        force=args.force,
        progress=True,
    )
    print(format_evaluation(ev))
    print(f"\nresults written to {args.out}")
    return EXIT_OK


def _eval_tasks(args: argparse.Namespace, fetched: Any, guarded: Path) -> int:
    """lm-eval tasks run on the model (`--tasks`) or imported (`--results`) into a record,
    with the dense base's (`--dense-base`, `--base-results`) beside them."""
    from analyzer.lmeval.run import benchmarks

    _check_file(args.json, [guarded, args.results, args.base_results])
    record = benchmarks(fetched.path, _task_sources(args), name=fetched.name, hub=fetched.hub)
    lines = [
        f"{who}{t.task} ({t.num_fewshot}-shot, {t.documents:,} of {t.documents_total:,} "
        "documents): " + ", ".join(f"{m.name} {fixed(m.value, 4)}" for m in t.metrics)
        for who, run in (("", record), ("dense base: ", record.base))
        if run is not None
        for t in run.tasks
    ]
    return _show(record, "\n".join(lines), args.json, "benchmarks")


def _task_sources(args: argparse.Namespace) -> Any:
    """`--tasks` or `--results`, and the dense base (fetched first when a Hub id), as the
    `TaskSources` of `eval` and `report`; None when no task option is given."""
    from analyzer.lmeval.options import LmEvalOptions, TaskSources, parse_tasks
    from analyzer.weights.hub import fetch

    given = (args.tasks, args.results, args.dense_base, args.base_results)
    if all(v is None for v in given):
        return None
    options = args.tasks and LmEvalOptions(
        tasks=parse_tasks(args.tasks),
        num_fewshot=args.num_fewshot,
        limit=args.limit,
        batch_size=getattr(args, "batch_size", None) or 1,
        include_path=args.include_path,
        packed=getattr(args, "packed", False),
        backend=getattr(args, "backend", "hf"),
        model_args=getattr(args, "model_args", None) or "",
    )
    base = args.dense_base and fetch(_source(args.dense_base), tokenizer=True)
    return TaskSources(
        options=options or None,
        results=args.results,
        base=base.path if base else None,
        base_hub=base.hub if base else None,
        base_results=args.base_results,
    )


def _eval_perplexity(args: argparse.Namespace, fetched: Any, guarded: Path) -> int:
    from analyzer.cli.tables import format_perplexity
    from analyzer.perplexity.evaluate import load_text, measure_perplexity, plan_options
    from analyzer.runtime.bench import resolve_options, torch_dtype
    from analyzer.weights.hub import named

    _check_file(args.json, [guarded, args.text])
    protocol = args.protocol or "sliding"
    window, stride = plan_options(protocol, args.window, args.stride, args.seqlen)
    device, dtype, align = resolve_options(args.device, args.dtype, args.align)
    record = measure_perplexity(
        fetched.path,
        load_text(args.text, args.dataset),
        protocol=protocol,
        window=window,
        stride=stride,
        limit_tokens=args.limit_tokens,
        packed=args.packed,
        dtype=torch_dtype(dtype),
        device=device,
        align=align,
    )
    record = named(record, fetched.hub)
    return _show(record, format_perplexity(record), args.json, "perplexity")


def cmd_score(args: argparse.Namespace) -> int:
    """Score SQuAD v2 predictions made anywhere with prunecard's metric (official keys, CIs, per
    question type).

    Example: prunecard score dev-v2.0.json predictions.json --na-probs na_probs.json --out
        evaluation.json
    """
    from analyzer.cli.tables import format_evaluation
    from analyzer.records import write_record
    from analyzer.squad.evaluate import score_files

    _check_file(args.out, [args.data, args.predictions, args.na_probs])
    ev = score_files(args.data, args.predictions, args.na_probs, version=args.squad_version)
    if args.out:
        write_record(ev, args.out)
    print(format_evaluation(ev))
    if args.out:
        print(f"\nevaluation written to {args.out}")
    return EXIT_OK


def cmd_collection(args: argparse.Namespace) -> int:
    """Analyze every model of a list (with --audit, audit each one's own card against its
    weights; with --report, bench and eval too) on this machine's cores or a Ray cluster,
    into one folder per model, collection.json and a site; a rerun resumes (exit 1 when a
    model failed or an audit found a mismatch).

    Example: prunecard collection models.txt --out ./collection --audit --jobs 4
    """
    from analyzer.collection import executors
    from analyzer.collection.listing import author_models, read_list
    from analyzer.collection.records import FAILED, CollectionOptions
    from analyzer.collection.run import SUMMARY_FILE, run_collection

    if (args.list is None) == (args.author is None):
        raise InputError(None, "collection: give a LIST file or --author ORG (one of them)")
    jobs = executors.cores() if args.jobs is None else args.jobs
    if jobs < 1:
        raise InputError(None, f"--jobs must be a positive integer, got {jobs}")
    entries = read_list(args.list) if args.list else author_models(args.author)
    options = CollectionOptions(audit=args.audit, report=args.report)
    given = [str(args.list) if args.list else f"--author={args.author}"]
    flags = ["--audit"] * options.audit + ["--report"] * options.report
    command = shlex.join(["prunecard", "collection", *given, *flags])
    executor, name = executors.choose(jobs, args.ray)
    local = [Path(e.source) for e in entries if not e.hub]
    summary = run_collection(
        entries,
        args.out,
        options,
        executor,
        list_name=given[0],
        executor_name=name,
        command=command,
        inputs=[*filter(None, [args.list]), *local],
        say=lambda line: print(printable(line), file=sys.stderr),
    )
    failed = summary.count(FAILED)
    mismatched = sum(1 for m in summary.models if m.record and m.record.verdicts.get("mismatch"))
    finished = len(summary.models) - failed - summary.count("not run")
    print(f"{finished} of {len(summary.models)} models finished, {failed} failed", end="")
    print(f", {mismatched} with audit mismatches" if options.audit else "", end="")
    print(f": {args.out / SUMMARY_FILE}")
    if summary.interrupted:
        print(
            "prunecard: error: interrupted; the finished models are kept and "
            f"{SUMMARY_FILE} lists the rest as not run: rerun to resume",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    return EXIT_MISMATCH if failed or mismatched else EXIT_OK


# --------------------------------------------------------------------------- parser

COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, str]] = {}


# --------------------------------------------------------------------------- shared options
# Declared once and given to each command through `parents=`, so a shared option reads the
# same in every command's --help.

BUNDLED_SAMPLE = "the bundled SQuAD v2 sample"
BUNDLED_TEXT = "the bundled SQuAD v2 sample's Wikipedia paragraphs"


def _option_group(*options: Callable[[argparse.ArgumentParser], object]) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    for option in options:
        option(parent)
    return parent


HUB_ID_HELP = "or a Hub id org/name[@revision], fetched into the Hugging Face cache"


def _checkpoint(*, weights_file: bool = False) -> argparse.ArgumentParser:
    """The optional checkpoint argument; without it, commands run the embedded demo."""
    what = "checkpoint folder or weights file" if weights_file else "checkpoint folder"
    return _option_group(
        lambda p: p.add_argument(
            "path",
            nargs="?",
            type=Path,
            metavar="PATH_OR_ID",
            help=f"{what}, {HUB_ID_HELP} (default: the embedded demo checkpoint)",
        )
    )


def _device() -> argparse.ArgumentParser:
    """Where and how the models run: the same options and defaults for report, bench, eval."""
    return _option_group(
        lambda p: p.add_argument(
            "--device", choices=("cpu", "cuda"), help="default: cuda if available"
        ),
        lambda p: p.add_argument(
            "--dtype", choices=("fp32", "fp16", "bf16"), help="default: fp16 on GPU, fp32 on CPU"
        ),
        lambda p: p.add_argument(
            "--align", type=int, metavar="N", help="FFN width alignment (default: 64 GPU, 1 CPU)"
        ),
    )


def _eval_data() -> argparse.ArgumentParser:
    """Which questions an evaluation answers."""
    return _option_group(
        lambda p: p.add_argument(
            "--data",
            type=Path,
            metavar="FILE",
            help=f"SQuAD v2 JSON, official format (default: {BUNDLED_SAMPLE})",
        ),
        _limit,
        lambda p: p.add_argument(
            "--seed", type=int, metavar="S", help="seed of the --limit subset (default 0)"
        ),
    )


def _text(dataset: str = "--dataset") -> argparse.ArgumentParser:
    """What a causal LM's perplexity is measured on, and how the text is cut into windows;
    `dataset` spells the dataset option (`report` has a --dataset of its own: training data)."""
    from analyzer.perplexity.corpora import CORPORA
    from analyzer.records import PERPLEXITY_PROTOCOLS

    return _option_group(
        lambda p: p.add_argument(
            "--text",
            type=Path,
            metavar="FILE",
            help=f"perplexity: a UTF-8 text file (default: {BUNDLED_TEXT})",
        ),
        lambda p: p.add_argument(
            dataset,
            choices=sorted(CORPORA),
            help="perplexity: a Hub dataset instead of a text file, read through datasets "
            "from its cache or the Hub (wikitext2: wikitext, wikitext-2-raw-v1, test split)",
        ),
        lambda p: p.add_argument(
            "--protocol",
            choices=PERPLEXITY_PROTOCOLS,
            help="perplexity: sliding (strided windows; the default) or papers (the text's "
            'documents joined with "\\n\\n", non-overlapping --seqlen windows, as SparseGPT '
            "and Wanda)",
        ),
        lambda p: p.add_argument(
            "--window",
            type=int,
            metavar="N",
            help="perplexity: tokens per window (default: the model's positions, at most 1024)",
        ),
        lambda p: p.add_argument(
            "--stride",
            type=int,
            metavar="N",
            help="perplexity: tokens between window starts (default: half the window)",
        ),
        lambda p: p.add_argument(
            "--seqlen",
            type=int,
            metavar="N",
            help="perplexity, --protocol papers: tokens per window (default: the model's "
            "positions, at most 2048)",
        ),
        lambda p: p.add_argument(
            "--limit-tokens",
            type=int,
            metavar="N",
            help="perplexity: evaluate the text's first N tokens only",
        ),
    )


def _limit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, metavar="N", help="evaluate N questions drawn at random")


def _json(what: str) -> argparse.ArgumentParser:
    return _option_group(
        lambda p: p.add_argument(
            "--json", type=Path, metavar="FILE", help=f"write the {what} record here (JSON)"
        )
    )


def _output(
    what: str,
    *,
    default: str | None = None,
    metavar: str = "DIR",
    replaces: str = "",
    required: bool | None = None,
) -> argparse.ArgumentParser:
    """--out and --force: where a command writes, all or nothing. `default` says in the help
    what an unset --out means; without it --out is required, unless `required` is False
    (the command checks it when it needs it)."""
    return _option_group(
        lambda p: p.add_argument(
            "--out",
            type=Path,
            required=default is None if required is None else required,
            metavar=metavar,
            help=what + (f" (default: {default})" if default else ""),
        ),
        lambda p: p.add_argument(
            "--force", action="store_true", help=f"replace {replaces or metavar} if it exists"
        ),
    )


def _publication() -> argparse.ArgumentParser:
    """How the model is published; `report` keeps them in report.json, `card --report`
    reuses them, and an option given to `card` wins over report.json's."""
    kept = "default: report.json's with card --report, else"
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--name", metavar="ID", help=f"Hub id or model name ({kept} the folder name)")
    p.add_argument("--license", help=f"Hub license id ({kept} unknown)")
    p.add_argument("--base", metavar="ID", help="Hub id of the model this one was pruned from")
    p.add_argument(
        "--dataset",
        action="append",
        metavar="ID",
        help="Hub id of a training dataset (repeatable; the card's `datasets:`)",
    )
    p.add_argument(
        "--eval-dataset",
        metavar="ID",
        help=f"Hub id of the SQuAD v2 data ({kept} rajpurkar/squad_v2)",
    )
    p.add_argument("--language", metavar="CODE", help=f"language code ({kept} en)")
    p.add_argument("--tag", action="append", metavar="TAG", help="an extra Hub tag (repeatable)")
    return p


def _base_config() -> argparse.ArgumentParser:
    """The dense model a width- or depth-pruned decoder came from, read from its config.json
    (not --base: that is the Hub id the card names)."""
    return _option_group(
        lambda p: p.add_argument(
            "--base-config",
            type=Path,
            metavar="CONFIG_OR_DIR",
            help="the dense base model's config.json (or its folder): a decoder's layers, "
            "widths and heads are compared with it",
        )
    )


def _task_options(p: argparse.ArgumentParser) -> None:
    """lm-eval's tasks (run or imported) and the dense base's, for `eval` and `report`
    (`--dense-base`: `--base` is the Hub id a card names as its base_model)."""
    p.add_argument("--tasks", metavar="T1,T2", help="causal LMs: lm-eval tasks to run")
    p.add_argument("--num-fewshot", type=int, metavar="N", help="--tasks: shots (lm-eval's)")
    p.add_argument("--include-path", type=Path, metavar="DIR", help="--tasks: your task YAML")
    p.add_argument("--results", type=Path, metavar="F", help="import lm_eval's results JSON")
    p.add_argument(
        "--dense-base",
        type=Path,
        metavar="DIR_OR_ID",
        help="the dense base: the same tasks and shots run on it (or see --base-results)",
    )
    p.add_argument(
        "--base-results",
        type=Path,
        metavar="F",
        help="the dense base's lm_eval results JSON (same tasks, shots and documents)",
    )


def _accept_unstable_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--accept-unstable",
        action="store_true",
        help="keep an implausible timing (exit 0); the card marks it unstable",
    )


def _command(
    sub: argparse._SubParsersAction,
    func: Callable[[argparse.Namespace], int],
    *parents: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """Declare `prunecard NAME` for `cmd_NAME`: its docstring gives the help (first
    paragraph) and the example (after "Example:"), `parents` the shared options."""
    name = func.__name__.removeprefix("cmd_")
    summary, _, example = (func.__doc__ or "").partition("Example:")
    help_text, example = " ".join(summary.split()), " ".join(example.split())
    parser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"Example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=list(parents),
    )
    parser.set_defaults(func=func)
    COMMANDS[name] = (func, help_text, example)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="prunecard",
        description="Measure pruned transformer checkpoints, render model cards, audit claims.",
    )
    parser.add_argument("--version", action="version", version=f"prunecard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p = _command(
        sub,
        cmd_demo,
        _output("folder for the report and the site", default="./prunecard-demo"),
    )
    p.set_defaults(out=Path("prunecard-demo"))
    _limit(p)

    p = _command(
        sub,
        cmd_report,
        _checkpoint(),
        _output("folder to write", default="./<checkpoint>-report"),
        _eval_data(),
        _text("--text-dataset"),
        _device(),
        _publication(),
        _base_config(),
    )
    p.add_argument(
        "--no-eval", action="store_true", help="skip the evaluation (SQuAD v2 or perplexity)"
    )
    p.add_argument("--no-bench", action="store_true", help="skip the dense vs packed timing")
    p.add_argument("--quick", action="store_true", help="a short timing, as bench --quick")
    _accept_unstable_option(p)
    _task_options(p)

    p = _command(
        sub,
        cmd_analyze,
        _json("analysis"),
        _checkpoint(weights_file=True),
        _base_config(),
    )

    p = _command(sub, cmd_pack)
    p.add_argument(
        "path",
        type=Path,
        metavar="PATH_OR_ID",
        help=f"checkpoint folder or weights file, {HUB_ID_HELP}",
    )
    p.add_argument("out", type=Path, help="folder to write (must not exist unless --force)")
    p.add_argument(
        "--align", type=int, default=1, metavar="N", help="pad FFN widths to multiples of N"
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")

    p = _command(sub, cmd_bench, _checkpoint(weights_file=True), _json("bench"), _device())
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"for trying things: batch 1, seq {QUICK_PLAN.seqs[0]} "
        f"({QUICK_LM_PLAN.seqs[0]} for causal LMs, lm_head timed once), 5 s budget",
    )
    p.add_argument(
        "--batch",
        type=int,
        nargs="+",
        metavar="B",
        help=f"batch sizes (default {' '.join(map(str, FULL.batches))})",
    )
    p.add_argument(
        "--seq",
        type=int,
        nargs="+",
        metavar="S",
        help=f"sequence lengths ({' '.join(map(str, FULL.seqs))})",
    )
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default: torch's)")
    p.add_argument(
        "--decode-batch",
        type=int,
        nargs="+",
        metavar="B",
        help="causal LMs: batch sizes to time greedy decoding at (default "
        f"{' '.join(map(str, FULL.decode_batches))}; "
        f"{' '.join(map(str, QUICK_LM_PLAN.decode_batches))} with --quick)",
    )
    p.add_argument(
        "--prompt-tokens",
        type=int,
        metavar="N",
        help=f"... after N prompt tokens ({FULL.prompt_tokens}; "
        f"{QUICK_LM_PLAN.prompt_tokens} with --quick)",
    )
    p.add_argument(
        "--new-tokens",
        type=int,
        metavar="N",
        help=f"... generating N tokens ({FULL.new_tokens}; "
        f"{QUICK_LM_PLAN.new_tokens} with --quick)",
    )
    p.add_argument(
        "--repeats", type=int, metavar="N", help="timed runs per model and shape, at least (10)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        metavar="F",
        help="time until IQR / median of each side is under F (default 0.05)",
    )
    p.add_argument(
        "--budget", type=float, metavar="S", help="... or S seconds per shape ran out (20)"
    )
    p.add_argument("--no-profile", action="store_true", help="skip the profiled runs")
    _accept_unstable_option(p)
    p.add_argument("--graphs", action="store_true", help="replay CUDA graphs (GPU only)")
    p.add_argument(
        "--fuse",
        nargs="?",
        const="both",
        choices=("both", "packed"),
        help="fused runtime (one QKV product, add+LayerNorm kernel) for both models or the "
        "packed one only",
    )

    p = _command(
        sub,
        cmd_card,
        _checkpoint(),
        _output(
            "folder to write", default="./<checkpoint>-card", replaces="DIR (or its README.md)"
        ),
        _publication(),
    )
    p.add_argument("--analysis", type=Path, metavar="F", help="analysis record (default: analyze)")
    p.add_argument("--bench", type=Path, metavar="F", help="bench record (else: not measured)")
    p.add_argument("--eval", type=Path, metavar="F", help="evaluation record (else: not measured)")
    p.add_argument(
        "--perplexity", type=Path, metavar="F", help="a causal LM's perplexity record (eval --json)"
    )
    p.add_argument(
        "--benchmarks", type=Path, metavar="F", help="lm-eval tasks' record (eval --tasks --json)"
    )
    p.add_argument(
        "--report", type=Path, metavar="F", help="earlier report.json to take records from"
    )
    p.add_argument("--template", type=Path, metavar="F", help="your Jinja2 template for the body")
    p.add_argument(
        "--reference-metrics",
        type=Path,
        metavar="F",
        help="the reference model's scores, with the official SQuAD v2 script's keys "
        '({"exact": .., "f1": ..})',
    )

    p = _command(
        sub,
        cmd_site,
        _output("folder for the mkdocs project; the built site goes to SITE/site", metavar="SITE"),
    )
    p.add_argument(
        "reports",
        nargs="+",
        type=Path,
        metavar="REPORT_DIR",
        help="report folders written by `prunecard card` (README.md, report.json)",
    )
    p.add_argument(
        "--dense-base",
        type=Path,
        metavar="REPORT_DIR",
        help="the dense base's report folder: the table shows each model's change against it "
        "and the plots mark it (default: the one report whose weights measure dense, if any)",
    )

    p = _command(sub, cmd_audit, _json("audit"))
    p.add_argument(
        "path",
        type=Path,
        nargs="?",
        metavar="PATH_OR_ID",
        help=f"checkpoint folder, {HUB_ID_HELP} (or the card with --no-weights; optional "
        "with --card)",
    )
    p.add_argument(
        "--card",
        type=Path,
        metavar="FILE",
        help="the card (default: PATH/README.md; for a Hub id, its published README.md)",
    )
    p.add_argument(
        "--eval",
        type=Path,
        metavar="FILE",
        help="an Evaluation, Perplexity or Benchmarks (eval --tasks) record, a report.json or "
        "the official script's eval_metrics.json",
    )
    p.add_argument(
        "--bench",
        type=Path,
        metavar="FILE",
        help="the Bench record (or report.json) the card was rendered from: figures must "
        "equal it as printed",
    )
    p.add_argument(
        "--rebench",
        action="store_true",
        help="time the checkpoint again now (at --bench's shapes): speedups within 10%%",
    )
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report here")
    p.add_argument(
        "--no-weights",
        action="store_true",
        help="do not read weights: check the card's internal consistency only",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 on warnings too (missing or ambiguous metadata), not only on mismatches",
    )

    p = _command(
        sub,
        cmd_eval,
        _checkpoint(),
        _output("SQuAD v2: folder to write (required)", required=False),
        _eval_data(),
        _device(),
        _text(),
        _json("perplexity"),
    )
    p.add_argument("--no-pack", action="store_true", help="SQuAD v2: evaluate the model as stored")
    p.add_argument("--batch-size", type=int, metavar="B", help="SQuAD v2: windows per batch (32)")
    p.add_argument(
        "--no-graphs",
        action="store_true",
        help="SQuAD v2: on a GPU, run eagerly instead of CUDA graphs",
    )
    p.add_argument(
        "--packed",
        action="store_true",
        help="perplexity and --tasks: evaluate the packed model (default: as stored)",
    )
    # lm-evaluation-harness (docs/evaluation.md); --limit, --batch-size, --json apply too
    _task_options(p)
    p.add_argument("--backend", choices=("hf", "vllm"), default="hf", help="--tasks: engine")
    p.add_argument("--model-args", metavar="ARGS", help="--tasks: passed to the backend")

    p = _command(sub, cmd_score)
    p.add_argument("data", type=Path, help="SQuAD v2 JSON, official format")
    p.add_argument("predictions", type=Path, help='JSON object: id -> answer text ("" = none)')
    p.add_argument(
        "--na-probs", type=Path, metavar="FILE", help="JSON object: id -> no-answer probability"
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="write the evaluation record here")
    p.add_argument(
        "--squad-version",
        choices=("2.0", "1.1"),
        default="2.0",
        help="score SQuAD v1.1 data (no unanswerable questions) with the same metric; "
        "v1.1 data is refused otherwise (default: 2.0)",
    )

    p = _command(sub, cmd_collection)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="the collection's folder (a rerun resumes it)",
    )
    p.add_argument(
        "list",
        type=Path,
        nargs="?",
        metavar="LIST",
        help="text file: one Hub id or local path a line, # comments (paths from its folder)",
    )
    p.add_argument("--author", metavar="ORG", help="instead of LIST: the Hub author's models")
    p.add_argument("--audit", action="store_true", help="audit each model's own card")
    p.add_argument("--report", action="store_true", help="bench and eval each model too")
    p.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: cores)")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="one Ray task per model on the cluster at ADDRESS (auto: this machine's)",
    )

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    from analyzer.runtime.timing import ImplausibleTiming

    try:
        with _signals_interrupt():
            code = args.func(args)
            # a buffered stdout meets a closed pipe here, not at exit (exit 120 there)
            sys.stdout.flush()
            return code
    except ImplausibleTiming as exc:
        print(f"prunecard: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    except PrunecardError as exc:
        if args.debug:
            raise
        print(f"prunecard: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `prunecard analyze | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # a path the system refuses (too long, a symlink loop, ...)
        if args.debug or exc.filename is None:
            raise
        from analyzer.inputs import os_problem

        line = printable(f"{exc.filename}: {os_problem(exc)}")
        print(f"prunecard: error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _Signalled as exc:
        print(f"prunecard: error: stopped by {exc}; no partial output was kept", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("prunecard: interrupted; no partial output was kept", file=sys.stderr)
        return EXIT_BAD_INPUT


class _Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP (timeout, CI cancellation, docker stop, a closed terminal): unwinds
    like Ctrl-C, so staged outputs are removed and old outputs stay as they were."""


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise _Signalled(signal.Signals(signum).name)

    caught = (signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, stop) for s in caught}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
