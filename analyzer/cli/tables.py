"""Plain-text tables for the terminal (the CLI prints what these return)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzer.records import Analysis, Bench, Evaluation, Perplexity
from analyzer.text import percent, table

if TYPE_CHECKING:
    from analyzer.runtime.packing import PackResult

__all__ = [
    "format_analysis",
    "format_bench",
    "format_evaluation",
    "format_pack",
    "format_perplexity",
]


def format_analysis(a: Analysis) -> str:
    """Totals, then one row per encoder layer."""
    model = f"{a.model_type} ({a.family}), {a.dtype}"
    if a.num_layers:  # generic mode reads no geometry from config.json: it says nothing
        model += (
            f", {a.num_layers} layers x {a.num_heads} heads, hidden {a.hidden_size}, "
            f"FFN {a.intermediate_size}"
        )
    linear = "not measured (no linear layers recognised; see the notes)"
    if a.linear.dense:
        linear = (
            f"{percent(a.linear.density)}  ({a.linear.nnz:,} of {a.linear.dense:,} weights "
            f"non-zero; {a.linear.packed:,} after packing)"
        )
    lines = [
        f"checkpoint      {a.checkpoint}",
        f"model           {model}",
        f"linear density  {linear}",
        f"overall density {percent(a.overall.density)}  ({a.overall.nnz:,} of "
        f"{a.overall.dense:,} parameters; {a.overall.stored:,} stored, "
        f"{a.overall.packed:,} packed)",
    ]
    if a.heads.total:
        lines.append(
            f"heads removed   {a.heads.removed} of {a.heads.total} "
            f"({percent(a.heads.removed / a.heads.total)})"
        )
        lines.append(
            f"FFN units kept  {a.ffn.units_kept:,} of {a.ffn.units_total:,} "
            f"({percent(a.ffn.units_kept / a.ffn.units_total)})"
        )
    size = sum(f.bytes for f in a.files)
    lines.append(f"files           {size / 1e6:.1f} MB in {', '.join(f.path for f in a.files)}")
    if a.buffers:
        lines.append(f"buffers         {', '.join(a.buffers)} (not parameters, not counted)")
    if a.tied:
        lines.append(f"tied            {', '.join(f'{k} = {v}' for k, v in a.tied.items())}")
    lines.extend(f"note            {note}" for note in a.notes)
    if a.layers:
        heads = {h.layer: h for h in a.heads.layers}
        rows = [
            (
                s.layer,
                percent(s.density),
                f"{heads[s.layer].kept}/{a.num_heads}",
                ",".join(map(str, heads[s.layer].removed)) or "-",
                f"{s.ffn_units_kept}/{s.ffn_units_total}",
                f"{s.linear_packed:,}",
            )
            for s in a.layers
        ]
        lines += ["", table(("layer", "density", "heads", "removed", "ffn units", "packed"), rows)]
    return "\n".join(lines)


def format_pack(result: PackResult) -> str:
    """What `pack` kept: totals, file sizes, then heads and FFN width per layer."""
    r = result
    total = r.num_heads * len(r.layers)
    units = sum(p.units for p in r.layers)
    stored = sum(p.width for p in r.layers)
    lines = [
        f"packed          {r.out}",
        f"heads kept      {r.heads_kept} of {total} ({r.heads_removed} removed)",
        f"FFN units kept  {units:,} of {r.intermediate_size * len(r.layers):,}"
        + (f" (stored {stored:,}: padded to multiples of {r.align})" if stored != units else ""),
        f"weights file    {r.packed_bytes / 1e6:.1f} MB packed vs {r.original_bytes / 1e6:.1f} MB "
        f"original ({percent(r.packed_bytes / r.original_bytes)})",
        "",
        table(
            ("layer", "heads", "ffn units", "ffn stored"),
            [(p.layer, f"{len(p.heads)}/{r.num_heads}", p.units, p.width) for p in r.layers],
        ),
    ]
    return "\n".join(lines)


def _fused(b: Bench) -> str:
    """Which models ran through `analyzer.runtime.fusion`."""
    return {(True, True): "both", (False, True): "packed only", (True, False): "dense only"}.get(
        (b.dense_fused, b.packed_fused), "off"
    )


def format_bench(b: Bench) -> str:
    """Environment and settings, equivalence, then one row per (batch, seq) shape."""
    env = b.environment
    device = env.device if b.device == "cpu" else f"{env.device} (driver {env.gpu_driver})"
    ok = "ok" if b.equivalence.max_abs_diff <= b.equivalence.tolerance else "EXCEEDS tolerance"
    lines = [
        f"device          {b.device}: {device}; CPU {env.cpu}, {env.cores} cores",
        f"software        torch {env.torch}, transformers {env.transformers}",
        f"settings        {b.dtype}, {b.threads} threads, align {b.align}, "
        f"CUDA graphs {'on' if b.graphs else 'off'}, fused runtime {_fused(b)}",
        f"equivalence     max |packed - dense| = {b.equivalence.max_abs_diff:.2e} "
        f"(tolerance {b.equivalence.tolerance:.1e}, {ok}; {b.equivalence.inputs})",
        f"parameters      {b.packed_bytes / 1e6:.1f} MB packed vs {b.original_bytes / 1e6:.1f} MB "
        "dense",
        "",
        table(
            ("batch", "seq", "dense ms", "packed ms", "speedup", "FLOP bound", "of bound"),
            [
                (
                    s.batch,
                    s.seq,
                    f"{s.dense_ms:.2f} ±{s.dense_spread_ms / 2:.2f}",
                    f"{s.packed_ms:.2f} ±{s.packed_spread_ms / 2:.2f}",
                    f"{s.speedup:.2f}x",
                    f"{s.flop_bound:.2f}x",
                    percent(s.fraction_of_bound, 0),
                )
                for s in b.shapes
            ],
        ),
        "(median over interleaved repeats; ± half the interquartile range)",
    ]
    if b.load_before and b.load_after:
        lines.append(
            f"load average    {b.load_before[0]:.2f} before, {b.load_after[0]:.2f} after "
            f"(1 min, {env.cores} cores){'; --quick: for trying things' if b.quick else ''}"
        )
    for s in b.shapes:
        if s.verdict:
            bound = f"memory bound {s.memory_bound:.2f}x; " if s.memory_bound else ""
            lines.append(f"{s.batch} x {s.seq}: {bound}{s.repeats} runs, {s.verdict}")
    return "\n".join(lines)


def format_evaluation(ev: Evaluation) -> str:
    """SQuAD v2 figures with their CIs, then per question type and answer length."""
    s, ci = ev.scores, ev.ci
    level = f"{100 * ci.level:.0f}%"
    rows = [
        ("all", s.total, f"{s.exact:.2f}", f"{s.f1:.2f}"),
        *(
            (name, total, f"{exact:.2f}", f"{f1:.2f}")
            for name, total, exact, f1 in (
                ("has answer", s.HasAns_total, s.HasAns_exact, s.HasAns_f1),
                ("no answer", s.NoAns_total, s.NoAns_exact, s.NoAns_f1),
            )
            if total
        ),
    ]
    lines = [
        f"data            {ev.data} ({ev.n} questions"
        + (f", {ev.limit} drawn with seed {ev.seed}" if ev.limit is not None else "")
        + ")",
        f"EM              {s.exact:.2f}  ({level} CI {ci.exact_low:.2f} to {ci.exact_high:.2f})",
        f"F1              {s.f1:.2f}  ({level} CI {ci.f1_low:.2f} to {ci.f1_high:.2f}; "
        f"bootstrap, {ci.resamples} resamples, seed {ci.seed})",
    ]
    if s.best_f1 is not None:
        lines.append(
            f"best EM / F1    {s.best_exact:.2f} (threshold {s.best_exact_thresh:.4f}) / "
            f"{s.best_f1:.2f} (threshold {s.best_f1_thresh:.4f})"
        )
    if ev.checkpoint:
        lines.append(
            f"model           {ev.checkpoint} ({'packed' if ev.packed else 'as stored'}) on "
            f"{ev.device}{', ' + ev.dtype if ev.dtype else ''}, "
            f"{ev.questions_per_second:.1f} questions/s"
        )
    if ev.predictions:
        lines.append(
            f"predictions     {ev.predictions}: {ev.missing_predictions} missing (counted "
            f"wrong), {ev.extra_predictions} not in the data (ignored)"
        )
    lines += ["", table(("questions", "n", "EM", "F1"), rows)]
    for kind, title in (("question_type", "question type"), ("answer_length", "answer tokens")):
        groups = [
            (g.label, g.n, f"{g.exact:.2f}", f"{g.f1:.2f}") for g in ev.groups if g.kind == kind
        ]
        if groups:
            lines += ["", table((title, "n", "EM", "F1"), groups)]
    return "\n".join(lines)


def format_perplexity(p: Perplexity) -> str:
    """Perplexity with its CI, then what it rests on: tokens, windows, the model's run."""
    cut = " (--limit-tokens)" if p.limit_tokens is not None else ""
    return "\n".join(
        [
            f"text            {p.text}, sha256 {p.text_sha256[:12]}: {p.tokens:,} tokens{cut}",
            f"perplexity      {p.perplexity:,.3f}  ({100 * p.level:.0f}% CI {p.ci_low:,.3f} to "
            f"{p.ci_high:,.3f}; bootstrap over windows, {p.resamples} resamples, seed {p.seed})",
            f"tokens scored   {p.scored:,} in {p.windows:,} windows of up to {p.window:,} "
            f"tokens, stride {p.stride:,}",
            f"model           {p.checkpoint} ({'packed' if p.packed else 'as stored'}) on "
            f"{p.device}{', ' + p.dtype if p.dtype else ''}, {p.tokens_per_second:,.0f} tokens/s",
        ]
    )
