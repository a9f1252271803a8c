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
