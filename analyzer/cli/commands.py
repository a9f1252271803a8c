"""What each `prunecard` command does: its arguments into an options record, one call
into the library, the result printed; the exit code returned (`analyzer.cli.main` turns
errors into one line). Arguments are declared apart (`analyzer.cli.parser`).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analyzer.errors import InputError, printable
from analyzer.outputs import check_apart, check_file, check_output

if TYPE_CHECKING:
    from analyzer.pipeline import EvalOptions, PerplexityOptions

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT = 0, 1, 2


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
    from analyzer.pipeline import EvalOptions, ReportOptions, run_report
    from analyzer.publish.card import resolve_publication
    from analyzer.weights.hub import fetch

    source = _source(args.path)
    out = args.out or Path(f"{_model_name(source).rpartition('/')[2]}-report")
    inputs = [args.data, args.text, args.base_config, args.results, args.base_results]
    check_output(out, [_guarded(source), *inputs], force=args.force)
    options = ReportOptions(
        data=args.data,
        perplexity=_perplexity_options(args, args.text_dataset),
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
        tasks=EvalOptions(limit=args.limit, **_task_options(args)).task_sources(),
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
    check_file(args.json, [_guarded(source), args.base_config])
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
    from analyzer.pipeline import BenchOptions, run_bench
    from analyzer.runtime.timing import require_plausible
    from analyzer.weights.hub import fetch

    options = BenchOptions(
        device=args.device,
        dtype=args.dtype,
        align=args.align,
        quick=args.quick,
        batches=_tuple(args.batch),
        seqs=_tuple(args.seq),
        decode_batches=_tuple(args.decode_batch),
        prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens,
        repeats=args.repeats,
        threshold=args.threshold,
        budget=args.budget,
        profile=not args.no_profile,
        threads=args.threads,
        graphs=args.graphs,
        fuse=args.fuse,
        accept_unstable=args.accept_unstable,
    )
    source = _source(args.path)
    check_file(args.json, [_guarded(source)])
    result = run_bench(fetch(source, tokenizer=True).path, options)  # opened once, there
    code = _show(result, format_bench(result), args.json, "bench")
    if not options.accept_unstable:
        require_plausible(result)
    return code


def _tuple(values: list[int] | None) -> tuple[int, ...] | None:
    return None if values is None else tuple(values)


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
        check_file(written, [source and _guarded(source), card, args.eval, args.bench])
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
    from analyzer.cli.tables import format_benchmarks, format_evaluation, format_perplexity
    from analyzer.pipeline import run_eval
    from analyzer.records import Evaluation, Perplexity
    from analyzer.weights.hub import fetch

    options = _eval_options(args)  # incompatible options fail before anything is fetched
    source = _source(args.path)
    guarded = _guarded(source)
    if not isinstance(source, Path):  # a Hub id: outputs stay out of its cache folder
        for written in (options.out, options.json):
            if written is not None:
                check_apart(written, [guarded])
    fetched = fetch(source, tokenizer=True)
    record = run_eval(fetched.path, options, name=fetched.name, guarded=guarded, hub=fetched.hub)
    if isinstance(record, Evaluation):
        print(format_evaluation(record))
        print(f"\nresults written to {options.out}")
        return EXIT_OK
    if isinstance(record, Perplexity):
        return _show(record, format_perplexity(record), options.json, "perplexity")
    return _show(record, format_benchmarks(record), options.json, "benchmarks")


def _eval_options(args: argparse.Namespace) -> EvalOptions:
    from analyzer.pipeline import EvalOptions

    return EvalOptions(
        device=args.device,
        dtype=args.dtype,
        align=args.align,
        data=args.data,
        limit=args.limit,
        seed=args.seed,
        out=args.out,
        force=args.force,
        no_pack=args.no_pack,
        batch_size=args.batch_size,
        no_graphs=args.no_graphs,
        perplexity=_perplexity_options(args, args.dataset),
        packed=args.packed,
        json=args.json,
        backend=args.backend,
        model_args=args.model_args,
        **_task_options(args),
    )


def _perplexity_options(args: argparse.Namespace, dataset: str | None) -> PerplexityOptions:
    """The perplexity options `eval` and `report` share (`shared.text`); `dataset` is
    `eval`'s --dataset or `report`'s --text-dataset."""
    from analyzer.pipeline import PerplexityOptions

    return PerplexityOptions(
        text=args.text,
        dataset=dataset,
        protocol=args.protocol,
        window=args.window,
        stride=args.stride,
        seqlen=args.seqlen,
        limit_tokens=args.limit_tokens,
    )


def _task_options(args: argparse.Namespace) -> dict[str, Any]:
    """The lm-eval options `eval` and `report` share (`shared.task_options`)."""
    names = ("tasks", "num_fewshot", "include_path", "results", "dense_base", "base_results")
    return {name: getattr(args, name) for name in names}


def cmd_score(args: argparse.Namespace) -> int:
    """Score SQuAD v2 predictions made anywhere with prunecard's metric (official keys, CIs, per
    question type).

    Example: prunecard score dev-v2.0.json predictions.json --na-probs na_probs.json --out
        evaluation.json
    """
    from analyzer.cli.tables import format_evaluation
    from analyzer.records import write_record
    from analyzer.squad.evaluate import score_files

    check_file(args.out, [args.data, args.predictions, args.na_probs])
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
