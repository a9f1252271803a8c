"""Plain-text tables for the terminal (the CLI prints what these return)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzer.records import (
    Analysis,
    Bench,
    Benchmarks,
    BenchShape,
    Evaluation,
    Perplexity,
    TokenizerInfo,
)
from analyzer.text import count, fixed, megabytes, percent, ratio, table

if TYPE_CHECKING:
    from analyzer.runtime.packing import PackResult

__all__ = [
    "format_analysis",
    "format_bench",
    "format_benchmarks",
    "format_evaluation",
    "format_pack",
    "format_patterns",
    "format_perplexity",
    "format_recipe",
]


def format_analysis(a: Analysis) -> str:
    """Totals, then one row per layer (heads and FFN units; for decoders query heads, K/V
    groups and MLP channels), then the comparison with a `--base-config`."""
    decoder = a.kind == "decoder"
    model = f"{a.model_type} ({'decoder' if decoder else a.family}), {a.dtype}"
    if decoder:
        model += (
            f", {a.num_layers} layers x {a.num_heads} query heads ({a.num_kv_heads} KV heads), "
            f"hidden {a.hidden_size}, MLP {a.intermediate_size}"
        )
    elif a.num_layers:  # generic mode reads no geometry from config.json: it says nothing
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
    if a.heads.total and decoder:
        lines += [
            f"query heads     {a.heads.removed} of {a.heads.total} removed "
            f"({percent(a.heads.removed / a.heads.total)})"
            + (f", {a.heads.dead_kept} dead (kept by packing)" if a.heads.dead_kept else ""),
            f"KV groups       {a.heads.kv_removed} of {a.heads.kv_total} removed "
            f"({percent(a.heads.kv_removed / a.heads.kv_total)})",
            f"MLP channels    {a.ffn.units_kept:,} of {a.ffn.units_total:,} kept "
            f"({percent(a.ffn.units_kept / a.ffn.units_total)})",
        ]
    elif a.heads.total:
        lines.append(
            f"heads removed   {a.heads.removed} of {a.heads.total} "
            f"({percent(a.heads.removed / a.heads.total)})"
        )
        lines.append(
            f"FFN units kept  {a.ffn.units_kept:,} of {a.ffn.units_total:,} "
            f"({percent(a.ffn.units_kept / a.ffn.units_total)})"
        )
    size = sum(f.bytes for f in a.files)
    lines.append(f"files           {megabytes(size)} in {', '.join(f.path for f in a.files)}")
    if a.buffers:
        lines.append(f"buffers         {', '.join(a.buffers)} (not parameters, not counted)")
    if a.tied:
        lines.append(f"tied            {', '.join(f'{k} = {v}' for k, v in a.tied.items())}")
    lines.extend(f"note            {note}" for note in a.notes)
    if a.compression is not None:
        lines += _compression_lines(a)
    if a.base is not None:
        lines += _base_lines(a)
    if a.layers and decoder:
        heads = {h.layer: h for h in a.heads.layers}
        rows: list[tuple[object, ...]] = [
            (
                s.layer,
                percent(s.density),
                f"{heads[s.layer].kept}/{a.num_heads}",
                f"{heads[s.layer].kv_kept}/{a.num_kv_heads}",
                ",".join(map(str, heads[s.layer].removed)) or "-",
                ",".join(map(str, heads[s.layer].dead_kept)) or "-",
                f"{s.ffn_units_kept}/{s.ffn_units_total}",
                f"{s.linear_packed:,}",
            )
            for s in a.layers
        ]
        header = ("layer", "density", "query heads", "KV groups", "removed", "dead, kept")
        lines += ["", table((*header, "MLP channels", "packed"), rows)]
    elif a.layers:
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
    if a.patterns:
        lines += ["", format_patterns(a)]
    if a.recipe:
        lines += ["", format_recipe(a)]
    return "\n".join(lines)


def format_recipe(a: Analysis) -> str:
    """llm-compressor's recipe.yaml: its modifiers, then each claim's verdict."""
    from analyzer.publish.card import recipe_claims

    assert a.recipe is not None
    lines = [f"{a.recipe.source}: " + ", ".join(m.type for m in a.recipe.modifiers)]
    rows = recipe_claims(a.recipe)
    if rows:
        lines.append(table(("recipe claim", "verdict", "measured"), rows))
    return "\n".join(lines)


def _compression_lines(a: Analysis) -> list[str]:
    """A compressed-tensors checkpoint: its scheme, what it saves, config.json's claims."""
    from analyzer.publish.card import compression_scheme

    c = a.compression
    assert c is not None
    share = percent(c.saved_bytes / c.decompressed_bytes) if c.decompressed_bytes else "-"
    lines = [
        f"stored as       {c.method}: {compression_scheme(c)}",
        f"compression     {megabytes(c.stored_bytes)} stored, "
        f"{megabytes(c.decompressed_bytes)} decompressed ({a.dtype}): "
        f"saves {megabytes(c.saved_bytes)} ({share}); figures are of the decompressed weights",
    ]
    lines += [f"config claim    {k.field} {k.stated}: {k.verdict} ({k.measured})" for k in c.claims]
    return lines


def format_patterns(a: Analysis) -> str:
    """The linear matrices per sparsity pattern, and the runtime that turns it into speed;
    a pattern naming matrices it explains only partly says so."""
    rows = [
        (
            t.kind,
            t.matrices,
            f"{t.weights:,}",
            f"{t.zeros:,}",
            percent(t.zeros / t.weights) if t.weights else "-",
            t.runtime,
        )
        for t in a.patterns
    ]
    lines = [table(("pattern", "matrices", "weights", "zeros", "sparsity", "runtime"), rows)]
    for t in a.patterns:
        shares = [m.pattern.explained for m in a.matrices if m.pattern and m.pattern.kind == t.kind]
        if t.kind != "unstructured" and min(shares) < 1:
            partly = sum(share < 1 for share in shares)
            lines.append(
                f"{t.kind} explains only part of the zeros of {partly} of its matrices (as "
                f"little as {percent(min(shares))}); their other zeros are unstructured"
            )
    return "\n".join(lines)


def _base_lines(a: Analysis) -> list[str]:
    """The dense base's parameters, then one line per changed dimension ("32 -> 24 layers"),
    then the unchanged ones."""
    assert a.base is not None
    base = a.base
    share = f", {percent(a.overall.dense / base.base_parameters)}" if base.base_parameters else ""
    lines = [
        f"base            {base.source}: {base.base_parameters:,} parameters (this checkpoint "
        f"{a.overall.dense:,}{share})"
    ]
    for c in base.changes:
        if c.base != c.model:
            change = f"{c.base} -> {c.model}"
            lines.append(
                " " * 16 + (f"{change} layers" if c.what == "layers" else f"{c.what} {change}")
            )
    same = [f"{c.what} {c.model}" for c in base.changes if c.base == c.model]
    if same:
        lines.append(" " * 16 + "unchanged: " + ", ".join(same))
    return lines


def format_pack(result: PackResult) -> str:
    """What `pack` kept: totals, file sizes, then heads and FFN width per layer."""
    r = result
    total = r.num_heads * len(r.layers)
    units = sum(p.units for p in r.layers)
    groups = sum(len(p.kv_groups) for p in r.layers)
    stored = sum(p.width for p in r.layers)
    lines = [
        f"packed          {r.out}",
        f"heads kept      {r.heads_kept} of {total} ({r.heads_removed} removed)",
        *(
            [f"KV groups kept  {groups} of {r.num_kv_heads * len(r.layers)} (removed whole)"]
            if r.num_kv_heads
            else []
        ),
        f"FFN units kept  {units:,} of {r.intermediate_size * len(r.layers):,}"
        + (f" (stored {stored:,}: padded to multiples of {r.align})" if stored != units else ""),
        f"weights file    {megabytes(r.packed_bytes)} packed vs {megabytes(r.original_bytes)} "
        f"original ({percent(r.packed_bytes / r.original_bytes)})",
        "",
        table(
            (
                "layer",
                "heads",
                *(("KV groups",) if r.num_kv_heads else ()),
                "ffn units",
                "ffn stored",
            ),
            [
                (
                    p.layer,
                    f"{len(p.heads)}/{r.num_heads}",
                    *((f"{len(p.kv_groups)}/{r.num_kv_heads}",) if r.num_kv_heads else ()),
                    p.units,
                    p.width,
                )
                for p in r.layers
            ],
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
        f"parameters      {megabytes(b.packed_bytes)} packed vs {megabytes(b.original_bytes)} "
        "dense",
        "",
        _shape_table(b.shapes, "packed ms"),
        "(median over interleaved repeats; ± half the interquartile range)",
    ]
    if b.last_logits:
        heads = ", ".join(
            f"{fixed(s.lm_head_ms, 1)} ms at {s.batch} x {s.seq}" for s in b.shapes if s.lm_head_ms
        )
        lines.append(
            "prefill timed without the lm_head but for the last position (logits_to_keep=1); "
            f"lm_head over every position timed once: {heads}"
        )
    if b.decode:
        first = b.decode[0]
        lines += [
            "",
            f"decoding        greedy with a KV cache, {first.new_tokens} new tokens after "
            f"{first.prompt} prompt tokens (prefill included), tokens/s per model",
            table(
                ("batch", "dense tok/s", "packed tok/s", "speedup", "runs"),
                [
                    (
                        d.batch,
                        fixed(d.dense_tokens_per_s, 1),
                        fixed(d.packed_tokens_per_s, 1),
                        ratio(d.speedup),
                        d.repeats,
                    )
                    for d in b.decode
                ],
            ),
        ]
    if b.semi_structured:
        lines += [
            "",
            "2:4 sparse      dense model vs its 2:4 matrices as semi-structured sparse tensors",
            _shape_table(b.semi_structured, "sparse ms"),
        ]
    elif b.decode:
        why = (
            "no matrix is 2:4"
            if b.device == "cuda" and b.dtype != "fp32"
            else ("needs a CUDA device and fp16 or bf16")
        )
        lines.append(f"2:4 sparse      not timed: {why}")
    if b.load_before and b.load_after:
        lines.append(
            f"load average    {fixed(b.load_before[0])} before, {fixed(b.load_after[0])} after "
            f"(1 min, {env.cores} cores){'; --quick: for trying things' if b.quick else ''}"
        )
    for s in b.shapes:
        if s.verdict:
            bound = f"memory bound {ratio(s.memory_bound)}; " if s.memory_bound else ""
            lines.append(f"{s.batch} x {s.seq}: {bound}{s.repeats} runs, {s.verdict}")
    lines += [f"decoding at batch {d.batch}: {d.verdict}" for d in b.decode if d.verdict]
    lines += [f"2:4 sparse {s.batch} x {s.seq}: {s.verdict}" for s in b.semi_structured]
    return "\n".join(lines)


def _shape_table(shapes: tuple[BenchShape, ...], other: str) -> str:
    """One row per (batch, seq): both medians, the speedup and the FLOP bound."""
    return table(
        ("batch", "seq", "dense ms", other, "speedup", "FLOP bound", "of bound"),
        [
            (
                s.batch,
                s.seq,
                f"{fixed(s.dense_ms)} ±{fixed(s.dense_spread_ms / 2)}",
                f"{fixed(s.packed_ms)} ±{fixed(s.packed_spread_ms / 2)}",
                ratio(s.speedup),
                ratio(s.flop_bound),
                percent(s.fraction_of_bound, 0),
            )
            for s in shapes
        ],
    )


def _fixed_or_dash(value: float | None, digits: int = 2) -> str:
    """A score the official script may leave out (a split with no question of a kind)."""
    return "-" if value is None else fixed(value, digits)


def format_evaluation(ev: Evaluation) -> str:
    """SQuAD v2 figures with their CIs, then per question type and answer length."""
    s, ci = ev.scores, ev.ci
    level = percent(ci.level, 0)
    rows = [
        ("all", s.total, fixed(s.exact), fixed(s.f1)),
        *(
            (name, total, _fixed_or_dash(exact), _fixed_or_dash(f1))
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
        f"EM              {fixed(s.exact)}  ({level} CI {fixed(ci.exact_low)} to "
        f"{fixed(ci.exact_high)})",
        f"F1              {fixed(s.f1)}  ({level} CI {fixed(ci.f1_low)} to {fixed(ci.f1_high)}; "
        f"bootstrap, {ci.resamples} resamples, seed {ci.seed})",
    ]
    if s.best_f1 is not None:
        lines.append(
            f"best EM / F1    {_fixed_or_dash(s.best_exact)} (threshold "
            f"{_fixed_or_dash(s.best_exact_thresh, 4)}) / {fixed(s.best_f1)} (threshold "
            f"{_fixed_or_dash(s.best_f1_thresh, 4)})"
        )
    if ev.checkpoint:
        lines.append(
            f"model           {ev.checkpoint} ({'packed' if ev.packed else 'as stored'}) on "
            f"{ev.device}{', ' + ev.dtype if ev.dtype else ''}, "
            f"{fixed(ev.questions_per_second, 1)} questions/s"
        )
    if ev.predictions:
        lines.append(
            f"predictions     {ev.predictions}: {ev.missing_predictions} missing (counted "
            f"wrong), {ev.extra_predictions} not in the data (ignored)"
        )
    lines += ["", table(("questions", "n", "EM", "F1"), rows)]
    for kind, title in (("question_type", "question type"), ("answer_length", "answer tokens")):
        groups = [(g.label, g.n, fixed(g.exact), fixed(g.f1)) for g in ev.groups if g.kind == kind]
        if groups:
            lines += ["", table((title, "n", "EM", "F1"), groups)]
    return "\n".join(lines)


def format_benchmarks(record: Benchmarks) -> str:
    """One line per lm-eval task: the model's metrics, then the dense base's."""
    return "\n".join(
        f"{who}{t.task} ({t.num_fewshot}-shot, {t.documents:,} of {t.documents_total:,} "
        "documents): " + ", ".join(f"{m.name} {fixed(m.value, 4)}" for m in t.metrics)
        for who, run in (("", record), ("dense base: ", record.base))
        if run is not None
        for t in run.tasks
    )


def _perplexity_ci(p: Perplexity) -> str:
    """The bootstrap CI, or why there is none."""
    if not p.has_interval:
        return "one window: no confidence interval; give a longer text"
    return (
        f"{percent(p.level, 0)} CI {fixed(p.ci_low, 3)} to {fixed(p.ci_high, 3)}; bootstrap "
        f"over windows, {p.resamples} resamples, seed {p.seed}"
    )


def format_perplexity(p: Perplexity) -> str:
    """Perplexity with its CI, then what it rests on: tokens, windows, the model's run."""
    cut = " (--limit-tokens)" if p.limit_tokens is not None else ""
    dataset = f"Hub dataset {p.dataset}, " if p.dataset else ""
    if p.protocol == "papers":
        windows = (
            f"{p.windows:,} non-overlapping windows of {p.window:,} tokens (protocol papers; "
            f"{p.dropped:,} trailing tokens dropped)"
        )
    else:
        windows = (
            f"{p.windows:,} windows of up to {p.window:,} tokens, stride {p.stride:,} "
            "(protocol sliding)"
        )
    return "\n".join(
        [
            f"text            {p.text}, {dataset}sha256 {p.text_sha256[:12]}: {p.tokens:,} "
            f"tokens{cut}",
            f"perplexity      {fixed(p.perplexity, 3)}  ({_perplexity_ci(p)})",
            f"tokens scored   {p.scored:,} in {windows}",
            f"model           {p.checkpoint} ({'packed' if p.packed else 'as stored'}) on "
            f"{p.device}{', ' + p.dtype if p.dtype else ''}, {count(p.tokens_per_second)} tokens/s",
            *_tokenizer_line(p.tokenizer),
        ]
    )


def _tokenizer_line(t: TokenizerInfo | None) -> list[str]:
    """The tokenizer a perplexity rests on (none in records written before it was kept)."""
    if t is None:
        return []
    return [f"tokenizer       {t.name}, {t.vocab_size:,} tokens, one window at a time: no padding"]
