"""Timing the dense model against the packed one, in one process, on the same inputs.

For causal LMs the (batch, seq) shapes time prefill; decoding speed (greedy, KV cache,
`analyzer.runtime.decode`) is timed per batch size as well, and on a CUDA device in fp16 or
bf16 the 2:4 matrices also run as semi-structured sparse tensors
(`analyzer.runtime.semi_structured`), timed against the dense model at the same shapes.

Method: both models are built from the same checkpoint (dense: every head and unit present,
values do not change speed; packed: `analyzer.runtime.packing`), their logits compared on real
tokenized text, then for each (batch, seq) shape both are timed by the protocol of
`analyzer.runtime.timing` (warm-up, interleaved repeats until the spread is small, a
verdict) and profiled a few times (`analyzer.runtime.profile`). Inputs are full-length
random token ids, so no attention mask is needed and SDPA may use its fused kernels in
both models. On CUDA the clock is read only after `torch.cuda.synchronize()`; optionally
each forward pass is captured once in a CUDA graph and replayed, which removes the
kernel-launch cost that bounds small batches.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from analyzer.errors import CheckpointError, InputError
from analyzer.records import Bench, BenchShape, DecodeRate, Equivalence, TokenizerInfo
from analyzer.runtime.environment import pick_device
from analyzer.runtime.plan import FULL, bench_plan
from analyzer.runtime.profile import elementwise_traffic, memory_bound, profile_shares
from analyzer.runtime.timing import (
    DEFAULT,
    Clock,
    Protocol,
    Samples,
    iqr,
    speedup_spread,
    time_interleaved,
    verdict,
)
from analyzer.weights.architecture import usable_positions
from analyzer.weights.checkpoint import Checkpoint, checkpoint_folder
from analyzer.weights.families import is_decoder
from analyzer.weights.flops import decode_flops, forward_flops, model_layer_shapes
from analyzer.weights.liveness import PackPlan

__all__ = [
    "DTYPES",
    "EQUIVALENCE_TEXT",
    "TOLERANCE",
    "bench",
    "dtype_option",
    "measure",
    "resolve_options",
    "torch_dtype",
]

DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}  # option: torch name
# max |packed - dense| allowed, as a fraction of the largest |logit| (at least 1):
# fp32 is the exactness guarantee; half precisions round each product differently once
# zeros are gone, so their bound is a few units in the last place of the logits.
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}
EQUIVALENCE_TEXT = (
    (
        "When did Beyonce start becoming popular?",
        "Beyoncé Giselle Knowles-Carter is an American singer, songwriter, record producer "
        "and actress. Born and raised in Houston, Texas, she performed in various singing and "
        "dancing competitions as a child, and rose to fame in the late 1990s as lead singer "
        "of R&B girl-group Destiny's Child.",
    ),
    (
        "In what country is Normandy located?",
        "The Normans were the people who in the 10th and 11th centuries gave their name to "
        "Normandy, a region in France. They were descended from Norse raiders and pirates "
        "from Denmark, Iceland and Norway.",
    ),
)


def resolve_options(
    device: str | None, dtype: str | None, align: int | None
) -> tuple[str, str, int]:
    """Defaults per device: CUDA if present, fp16 and 64-wide alignment there, fp32 and 1
    on the CPU."""
    device = pick_device(device)
    gpu = device.startswith("cuda")
    dtype = dtype or ("fp16" if gpu else "fp32")
    if dtype not in DTYPES:
        raise InputError(None, f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    align = align if align is not None else (64 if gpu else 1)
    if align < 1:
        raise InputError(None, f"--align must be a positive integer, got {align}")
    return device, dtype, align


def torch_dtype(option: str) -> Any:
    """The torch dtype of a `--dtype` option ("fp16" -> torch.float16)."""
    import torch

    return getattr(torch, DTYPES[option])


def dtype_option(dtype: Any) -> str:
    """The `--dtype` option of a torch dtype (torch.float16 -> "fp16")."""
    name = str(dtype).removeprefix("torch.")
    return next((option for option, torch_name in DTYPES.items() if torch_name == name), name)


def bench(
    path: str | Path | Checkpoint,
    *,
    device: str | None = None,
    dtype: str | None = None,
    align: int | None = None,
    shapes: Sequence[tuple[int, int]] | None = None,
    threads: int | None = None,
    protocol: Protocol | None = None,
    graphs: bool = False,
    fuse: str | None = None,
    profile_runs: int | None = None,
    quick: bool = False,
    clock: Clock | None = None,
    progress: bool = True,
    decode_batches: Sequence[int] | None = None,
    prompt_tokens: int | None = None,
    new_tokens: int | None = None,
    pack_plan: PackPlan | None = None,
    packed: Any = None,
) -> Bench:
    """Build dense and packed models from `path` (a folder, or a `Checkpoint` already
    opened), check they agree, time them per (batch, seq) shape; `fuse` ("both" or
    "packed") runs those through `analyzer.runtime.fusion`. Causal LMs are also timed
    decoding `new_tokens` tokens after `prompt_tokens` per batch size in `decode_batches`.
    What is None comes from `bench_plan` (by `quick` and the kind of model). `packed`: the
    packed model to time, built by the caller (`report` times the model it writes, built at
    `align` in `dtype` on `device`); else it is packed here by `pack_plan` (None: decided
    now)."""
    import torch

    from analyzer.runtime.packing import load
    from analyzer.weights.checkpoint import open_checkpoint

    device, dtype, align = resolve_options(device, dtype, align)
    if graphs and device != "cuda":
        raise InputError(None, "--graphs needs --device cuda (CUDA graphs replay GPU kernels)")
    if protocol is not None:  # what the caller gave fails before any weight is read
        _check_protocol(protocol)
    if shapes is not None and (not shapes or min(min(s) for s in shapes) < 1):
        raise InputError(None, "need shapes of positive sizes")
    if fuse not in (None, "both", "packed"):
        raise InputError(None, f"--fuse must be both or packed, got {fuse!r}")
    if threads is not None:
        torch.set_num_threads(threads)
    checkpoint = open_checkpoint(path)
    dense = load(checkpoint, dtype=torch_dtype(dtype), device=device, layout="dense")
    causal = is_decoder(dense.config.model_type)
    plan = bench_plan(quick=quick, causal=causal)
    shapes = plan.shapes if shapes is None else tuple(shapes)
    protocol = plan.protocol if protocol is None else protocol
    profile_runs = plan.profile_runs if profile_runs is None else profile_runs
    decode_batches = plan.decode_batches if decode_batches is None else tuple(decode_batches)
    prompt_tokens = plan.prompt_tokens if prompt_tokens is None else prompt_tokens
    new_tokens = plan.new_tokens if new_tokens is None else new_tokens
    if causal and fuse:
        raise InputError(None, "--fuse is for BERT-family encoders, not causal LMs")
    if causal and (min(decode_batches, default=1) < 1 or min(prompt_tokens, new_tokens) < 1):
        raise InputError(None, "decode batch sizes, prompt and new tokens must be positive")
    longest = max(max(seq for _, seq in shapes), prompt_tokens + new_tokens if causal else 0)
    if longest > usable_positions(dense.config):
        raise CheckpointError(
            checkpoint.root / "config.json",
            f"max_position_embeddings {dense.config.max_position_embeddings} leaves "
            f"{usable_positions(dense.config)} positions, fewer than the {longest} tokens to run",
        )
    if packed is None:
        packed = load(
            checkpoint,
            dtype=torch_dtype(dtype),
            device=device,
            layout="packed",
            align=align,
            plan=pack_plan,
        )
    if fuse:
        from analyzer.runtime.fusion import fuse as fuse_model

        fuse_model(packed)
        if fuse == "both":
            fuse_model(dense)
    return measure(
        dense,
        packed,
        path=checkpoint.root,
        dtype=dtype,
        align=align,
        shapes=shapes,
        protocol=protocol,
        graphs=graphs,
        profile_runs=profile_runs,
        quick=quick,
        clock=clock,
        progress=progress,
        decode_batches=decode_batches if causal else (),
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
    )


def _check_protocol(p: Protocol) -> None:
    if not 1 <= p.min_repeats <= p.max_repeats or p.warmup < 0:
        raise InputError(
            None, f"--repeats must lie between 1 and {p.max_repeats}, got {p.min_repeats}"
        )
    if not 0 < p.threshold < 1:
        raise InputError(None, f"--threshold must lie between 0 and 1, got {p.threshold}")
    if not p.budget_s > 0:
        raise InputError(None, f"--budget must be a positive number of seconds, got {p.budget_s}")


def measure(
    dense: Any,
    packed: Any,
    *,
    path: Path,
    dtype: str,
    align: int,
    shapes: Sequence[tuple[int, int]],
    protocol: Protocol = DEFAULT,
    graphs: bool = False,
    profile_runs: int = 3,
    quick: bool = False,
    clock: Clock | None = None,
    progress: bool = True,
    decode_batches: Sequence[int] = (),
    prompt_tokens: int = FULL.prompt_tokens,
    new_tokens: int = FULL.new_tokens,
) -> Bench:
    """Compare and time two models already built by `analyzer.runtime.packing.load` from `path`
    (on one device, in `dtype`); scripts that time several settings reuse the models.
    `decode_batches` (causal LMs): batch sizes to time greedy decoding at.

    `clock` replaces the wall clock (tests pass a fake one; the CPU-time check is then
    skipped); on CUDA the default clock synchronises the device before each reading."""
    import os

    import torch

    from analyzer.runtime.environment import detect_environment
    from analyzer.runtime.fusion import fused
    from analyzer.runtime.progress import progress_bar

    _check_protocol(protocol)
    device = next(dense.parameters()).device.type
    max_positions = dense.config.max_position_embeddings
    longest = max(seq for _, seq in shapes)
    if longest > max_positions:
        raise InputError(path, f"sequence length {longest} exceeds the model's {max_positions}")
    equivalence, tokenizer = _equivalence(dense, packed, path, dtype, device)
    dense_layers, packed_layers = (model_layer_shapes(m.config) for m in (dense, packed))
    threads = torch.get_num_threads()
    clock, cpu_clock = (clock, None) if clock else _clocks(device)
    bar = progress_bar(len(shapes), "bench", "shape", enabled=progress)
    load_before = os.getloadavg()
    # a quick bench of a causal LM times the decoder body: its forwards compute the last
    # position's logits only (as generation does), and the lm_head, the same matrix in both
    # models, is timed once per shape over every position (a bare decoder has no head)
    head = dense.get_output_embeddings() if quick and is_decoder(dense.config.model_type) else None
    last_logits = head is not None
    measured = []
    with torch.inference_mode():
        for batch, seq in shapes:
            inputs = _inputs(dense.config, batch, seq, device)
            if last_logits:
                inputs["logits_to_keep"] = 1
            runs = (_runner(dense, inputs, graphs), _runner(packed, inputs, graphs))
            samples = time_interleaved(*runs, protocol, clock=clock, cpu_clock=cpu_clock)
            dense_profile, packed_profile = (
                profile_shares(run, profile_runs, device) if profile_runs else () for run in runs
            )
            head_ms = _time_lm_head(head, batch, seq, clock) if last_logits else None
            measured.append((batch, seq, samples, head_ms, dense_profile, packed_profile))
            bar.update(1)
    bar.close()
    judge = functools.partial(
        verdict,
        threshold=protocol.threshold,
        load_before=load_before[0],
        cores=os.cpu_count() or 1,
        threads=threads,
    )
    decode = tuple(
        _decode(dense, packed, batch, prompt_tokens, new_tokens, protocol, clock, cpu_clock, judge)
        for batch in decode_batches
    )
    semi_structured = (
        _semi_structured(dense, shapes, protocol, clock, judge)
        if device == "cuda" and dtype in ("fp16", "bf16")
        else ()
    )
    load_after = os.getloadavg()
    results = []
    for batch, seq, samples, head_ms, dense_profile, packed_profile in measured:
        dense_flops = forward_flops(dense_layers, batch, seq)
        packed_flops = forward_flops(packed_layers, batch, seq)
        bound = dense_flops / packed_flops if packed_flops else float("inf")
        traffic = elementwise_traffic(packed_layers, batch * seq) / elementwise_traffic(
            dense_layers, batch * seq
        )
        shape = _shape(batch, seq, samples, dense_flops, packed_flops)
        shape = replace(
            shape,
            dense_profile=dense_profile,
            packed_profile=packed_profile,
            memory_bound=memory_bound(dense_profile, bound, traffic),
            lm_head_ms=head_ms,
        )
        results.append(replace(shape, verdict=judge(shape, cpu_share=samples.cpu_share)))
    return Bench(
        threads=threads,
        device=device,
        dtype=dtype,
        shapes=tuple(results),
        equivalence=equivalence,
        environment=detect_environment(device),
        align=align,
        graphs=graphs,
        packed_bytes=_param_bytes(packed),
        original_bytes=_param_bytes(dense),
        packed_parameters=_param_count(packed),
        dense_parameters=_param_count(dense),
        dense_fused=fused(dense),
        packed_fused=fused(packed),
        load_before=tuple(load_before),
        load_after=tuple(load_after),
        threshold=protocol.threshold,
        budget_s=protocol.budget_s,
        quick=quick,
        decode=decode,
        semi_structured=semi_structured,
        tokenizer=tokenizer,
        last_logits=last_logits,
    )


def _time_lm_head(head: Any, batch: int, seq: int, clock: Clock) -> float:
    """Milliseconds of one run of the lm_head over batch x seq positions (random hidden
    states): the vocabulary projection a full forward pass would add, timed once."""
    import torch

    hidden = torch.randn(
        batch, seq, head.in_features, generator=torch.Generator().manual_seed(seq)
    ).to(device=head.weight.device, dtype=head.weight.dtype)
    start = clock()
    head(hidden)
    return 1000 * (clock() - start)


def _decode(
    dense: Any,
    packed: Any,
    batch: int,
    prompt: int,
    new_tokens: int,
    protocol: Protocol,
    clock: Clock,
    cpu_clock: Clock | None,
    judge: Callable[..., str],
) -> DecodeRate:
    """Greedy decoding of both models from the same random prompts, timed interleaved."""
    import torch

    from analyzer.runtime.decode import decode_rate

    device = next(dense.parameters()).device
    generator = torch.Generator().manual_seed(batch * 100_003 + prompt)
    inputs = {"input_ids": _random_ids(dense.config, (batch, prompt), generator).to(device)}
    with torch.inference_mode():
        dense_run, packed_run = (
            _runner(m, inputs, False, new_tokens=new_tokens) for m in (dense, packed)
        )
        samples = time_interleaved(
            dense_run, packed_run, protocol, clock=clock, cpu_clock=cpu_clock
        )
    flops = [
        decode_flops(model_layer_shapes(m.config), batch, prompt, new_tokens)
        for m in (dense, packed)
    ]
    shape = _shape(batch, prompt, samples, *flops)
    return decode_rate(
        batch,
        prompt,
        new_tokens,
        shape.dense_ms,
        shape.packed_ms,
        shape.repeats,
        judge(shape, cpu_share=samples.cpu_share),
    )


def _semi_structured(
    dense: Any,
    shapes: Sequence[tuple[int, int]],
    protocol: Protocol,
    clock: Clock,
    judge: Callable[..., str],
) -> tuple[BenchShape, ...]:
    """The dense model against a copy whose 2:4 matrices are semi-structured sparse, per
    prefill shape; () when no matrix is 2:4 (or the kernels take none of them). The FLOP
    bound halves the products of the converted matrices only."""
    import torch

    from analyzer.runtime.semi_structured import semi_structured_copy

    sparse, converted = semi_structured_copy(dense)
    if not converted:
        return ()
    results = []
    with torch.inference_mode():
        for batch, seq in shapes:
            inputs = _inputs(dense.config, batch, seq, "cuda")
            dense_run, sparse_run = (_runner(m, inputs, False) for m in (dense, sparse))
            samples = time_interleaved(dense_run, sparse_run, protocol, clock=clock, cpu_clock=None)
            dense_flops = forward_flops(model_layer_shapes(dense.config), batch, seq)
            saved = sum(batch * seq * rows * cols for rows, cols in converted.values())
            shape = _shape(batch, seq, samples, dense_flops, dense_flops - saved)
            results.append(replace(shape, verdict=judge(shape, cpu_share=None)))
    del sparse
    return tuple(results)


def _param_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _param_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _shape(
    batch: int, seq: int, samples: Samples, dense_flops: int, packed_flops: int
) -> BenchShape:
    dense_ms, packed_ms = (statistics.median(t) for t in (samples.dense_ms, samples.packed_ms))
    speedup = dense_ms / packed_ms
    bound = dense_flops / packed_flops if packed_flops else float("inf")
    return BenchShape(
        batch=batch,
        seq=seq,
        dense_ms=dense_ms,
        packed_ms=packed_ms,
        dense_spread_ms=iqr(samples.dense_ms),
        packed_spread_ms=iqr(samples.packed_ms),
        speedup=speedup,
        flop_bound=bound,
        fraction_of_bound=speedup / bound,
        repeats=len(samples.dense_ms),
        dense_gflop=dense_flops / 1e9,
        packed_gflop=packed_flops / 1e9,
        speedup_spread=speedup_spread(samples.dense_ms, samples.packed_ms),
        dense_samples_ms=samples.dense_ms,
        packed_samples_ms=samples.packed_ms,
        cpu_share=samples.cpu_share,
    )


# --------------------------------------------------------------------------- inputs


def _inputs(config: Any, batch: int, seq: int, device: str) -> dict[str, Any]:
    """Full-length random token ids (fixed seed) as a question + context pair."""
    import torch

    generator = torch.Generator().manual_seed(batch * 100_003 + seq)
    inputs = {"input_ids": _random_ids(config, (batch, seq), generator)}
    if getattr(config, "type_vocab_size", 0) > 1:
        types = torch.zeros(batch, seq, dtype=torch.long)
        types[:, seq // 4 :] = 1
        inputs["token_type_ids"] = types
    return {k: v.to(device) for k, v in inputs.items()}


def _random_ids(config: Any, shape: tuple[int, int], generator: Any) -> Any:
    """Token ids drawn inside the vocabulary, past its first 1000 entries (special and
    unused tokens in BERT's) when the vocabulary is large enough to leave them out."""
    import torch

    return torch.randint(
        min(1000, config.vocab_size // 2), config.vocab_size, shape, generator=generator
    )


def _equivalence(
    dense: Any, packed: Any, root: Path, dtype: str, device: str
) -> tuple[Equivalence, TokenizerInfo | None]:
    """Max |packed - dense| over start and end logits (or LM logits) on tokenized real text,
    and the tokenizer that made the inputs."""
    import torch

    inputs, what, tokenizer = _real_inputs(root, dense)
    inputs = {k: v.to(device) for k, v in inputs.items()}
    with torch.inference_mode():
        a, b = dense(**inputs), packed(**inputs)
    diffs, scale = [], 1.0
    for key in ("start_logits", "end_logits", "logits", "last_hidden_state"):
        x, y = getattr(a, key, None), getattr(b, key, None)
        if x is not None and y is not None:
            diffs.append(float((x.float() - y.float()).abs().max()))
            scale = max(scale, float(x.float().abs().max()))
    equivalence = Equivalence(
        max_abs_diff=max(diffs), tolerance=TOLERANCE[dtype] * scale, inputs=f"{what}, {dtype}"
    )
    return equivalence, tokenizer


def _real_inputs(root: Path, model: Any) -> tuple[dict[str, Any], str, TokenizerInfo | None]:
    """The equivalence check's inputs to `model`, what they are, and the tokenizer that made
    them: several texts in one batch, padded with the tokenizer's pad token, else its EOS
    under the attention mask, else cut to the shortest text (analyzer/runtime/tokenizer.py)."""
    import torch

    from analyzer.runtime.tokenizer import (
        check_vocabulary,
        load_tokenizer,
        pad_token,
        tokenizer_info,
    )

    config = model.config
    tokenizer = load_tokenizer(root)
    if tokenizer is None:
        ids = _random_ids(config, (2, 128), torch.Generator().manual_seed(0))
        return {"input_ids": ids}, "2 x 128 random token ids (no tokenizer in the checkpoint)", None
    check_vocabulary(tokenizer, model, checkpoint_folder(root) / "config.json")
    pad_id, pad = pad_token(tokenizer)
    if is_decoder(config.model_type):
        texts: tuple[list[str], ...] = ([context for _, context in EQUIVALENCE_TEXT],)
        limit = min(256, usable_positions(config))
        what = f"{len(texts[0])} Wikipedia paragraphs (SQuAD v2 contexts), up to {limit} tokens"
    else:
        texts = tuple(list(t) for t in zip(*EQUIVALENCE_TEXT, strict=True))
        limit = min(tokenizer.model_max_length, usable_positions(config))
        what = f"{len(texts[0])} SQuAD question/context pairs"
    encoded = tokenizer(*texts, truncation=True, max_length=limit, verbose=False)
    if pad_id is None:  # nothing to pad with: every text cut to the shortest one's length
        limit = min(len(ids) for ids in encoded["input_ids"])
        encoded = {k: [row[:limit] for row in rows] for k, rows in encoded.items()}
    keep = ["input_ids", "attention_mask"]
    if getattr(config, "type_vocab_size", 0) > 1:
        keep.append("token_type_ids")
    inputs = {
        k: _padded(encoded[k], pad_id if k == "input_ids" else 0) for k in keep if k in encoded
    }
    padding = {"own": "padded", "eos": "padded with EOS", "none": "cut to one length"}[pad]
    return inputs, f"{what}, {padding}", tokenizer_info(tokenizer, pad)


def _padded(rows: Sequence[Sequence[int]], pad: int | None) -> Any:
    """Rows of token ids (or masks) right-padded with `pad` into one tensor."""
    import torch

    length = max(len(row) for row in rows)
    return torch.tensor([list(row) + [pad] * (length - len(row)) for row in rows])


# --------------------------------------------------------------------------- timing


def _runner(
    model: Any, inputs: dict[str, Any], graphs: bool, *, new_tokens: int = 0
) -> Callable[[], Any]:
    """A no-argument forward pass; with `graphs`, a replay of its captured CUDA graph
    (the inputs are static: the same tensors every time); with `new_tokens`, greedy
    generation of that many tokens after the prompt `inputs["input_ids"]`."""
    if new_tokens:
        from analyzer.runtime.decode import greedy_runner

        return greedy_runner(model, inputs["input_ids"], new_tokens)
    if not graphs:
        return lambda: model(**inputs)
    from analyzer.runtime.graphs import capture

    graph, _ = capture(model, inputs)
    return graph.replay


def _clocks(device: str) -> tuple[Clock, Clock | None]:
    """The wall clock (read after the device has finished its queued work) and, on the
    CPU, this thread's CPU-time clock: a thread that computes or spin-waits is on a CPU
    all the time unless other processes take it (idle torch workers would not count)."""
    if device != "cuda":
        return time.perf_counter, time.thread_time
    import torch

    def clock() -> float:
        torch.cuda.synchronize()
        return time.perf_counter()

    return clock, None
