"""Options that several commands share are declared once (argparse parents), so they read
the same in every command's --help."""

from __future__ import annotations

import argparse

import pytest

from analyzer.cli.main import build_parser

SHARED = ("--data", "--limit", "--device", "--dtype", "--align", "--base", "--name", "--license")


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _option(command: argparse.ArgumentParser, name: str) -> argparse.Action | None:
    return next((a for a in command._actions if name in a.option_strings), None)


@pytest.mark.parametrize("name", SHARED)
def test_a_shared_option_reads_the_same_everywhere(name):
    actions = {
        command: action
        for command, parser in _commands().items()
        if (action := _option(parser, name)) is not None
        # pack's --align pads for no device (default 1): not the device option
        and not (name == "--align" and _option(parser, "--device") is None)
    }
    assert len(actions) >= 2, f"{name} is not shared"
    described = {(a.help, a.default, a.choices, a.metavar, a.type) for a in actions.values()}
    assert len(described) == 1, {c: a.help for c, a in actions.items()}


def test_the_bundled_sample_is_named_without_a_typed_count():
    helps = [
        _option(parser, "--data").help
        for parser in _commands().values()
        if _option(parser, "--data") is not None
    ]
    assert len(helps) >= 2
    assert all(h.endswith("(default: the bundled SQuAD v2 sample)") for h in helps), helps


def test_report_takes_the_device_options_of_bench_and_eval():
    commands = _commands()
    for name in ("--device", "--dtype", "--align"):
        assert all(_option(commands[c], name) for c in ("report", "bench", "eval")), name


def test_every_command_has_a_help_line_and_an_example_from_its_docstring():
    from analyzer.cli.main import COMMANDS

    commands = _commands()
    assert set(COMMANDS) == set(commands)
    for name, (_, help_text, example) in COMMANDS.items():
        assert help_text and "Example" not in help_text, name
        assert example.startswith(f"prunecard {name}"), (name, example)
        assert commands[name].epilog == f"Example:\n  {example}"


@pytest.mark.parametrize(
    "option",
    [
        ["--protocol", "papers"],
        ["--seqlen", "64"],
        ["--stride", "8"],
        ["--window", "16"],
        ["--dataset", "wikitext2"],
        ["--text", "t.txt"],
        ["--limit-tokens", "100"],
        ["--data", "dev.json"],
        ["--no-pack"],
    ],
)
@pytest.mark.parametrize("tasks", [["--tasks", "arc_easy"], ["--results", "results.json"]])
def test_eval_refuses_options_that_lm_eval_tasks_would_ignore(option, tasks, tmp_path, capsys):
    """`eval --tasks` (or --results) measures lm-eval's tasks only: a perplexity or SQuAD v2
    option beside it was silently ignored; it is refused in one line before anything is
    read (the checkpoint named does not even exist)."""
    from badio import one_line_error

    from analyzer.cli.main import main

    code = main(["eval", str(tmp_path / "none"), *tasks, *option])
    line = one_line_error(code, capsys.readouterr())
    assert f"{option[0]} does not apply to {tasks[0]}" in line
    assert list(tmp_path.iterdir()) == []


def test_the_bench_options_replace_the_default_plan_only_where_given():
    from analyzer.pipeline import BenchOptions
    from analyzer.runtime.plan import FULL, QUICK_LM_PLAN, QUICK_PLAN

    assert BenchOptions().plan(causal=True) == BenchOptions().plan(causal=False) == FULL
    assert BenchOptions(quick=True).plan(causal=False) == QUICK_PLAN
    assert BenchOptions(quick=True).plan(causal=True) == QUICK_LM_PLAN
    plan = BenchOptions(seqs=(64, 96), repeats=3, profile=False).plan(causal=False)
    assert plan.shapes == tuple((b, s) for s in (64, 96) for b in FULL.batches)
    assert plan.protocol.min_repeats == 3 and plan.profile_runs == 0
    assert plan.protocol.threshold == FULL.protocol.threshold
    assert plan.protocol.budget_s == FULL.protocol.budget_s
    assert (plan.decode_batches, plan.new_tokens) == (FULL.decode_batches, FULL.new_tokens)
