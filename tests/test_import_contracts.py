"""pyproject.toml's import contracts cover every module of `analyzer`: a module left out of
them is one whose imports `lint-imports` never checks (a new module must be placed)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).parent.parent


def _code_modules() -> set[str]:
    """`analyzer`'s top-level modules and subpackages that hold code (not data packages,
    whose only Python file is an empty __init__.py)."""
    package = ROOT / "analyzer"
    names = {f"analyzer.{p.stem}" for p in package.glob("*.py") if p.name != "__init__.py"}
    for folder in package.iterdir():
        sources = list(folder.glob("**/*.py")) if (folder / "__init__.py").is_file() else []
        if any(p.stat().st_size for p in sources):
            names.add(f"analyzer.{folder.name}")
    return names


def _contract(name: str) -> dict:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]["contracts"]
    (found,) = [c for c in contracts if c["name"].startswith(name)]
    return found


def test_the_module_list_sees_modules_and_packages():
    modules = _code_modules()
    assert {"analyzer.inputs", "analyzer.api", "analyzer.weights", "analyzer.cli"} <= modules
    assert not {"analyzer.data", "analyzer.__init__"} & modules


def test_every_module_but_the_cli_is_forbidden_to_import_the_cli():
    sources = set(_contract("nothing imports the CLI")["source_modules"])
    assert sources == _code_modules() - {"analyzer.cli"}


def test_every_module_has_a_layer():
    layers = _contract("stages, highest first")["layers"]
    placed = [m.strip() for layer in layers for m in layer.split("|")]
    assert len(placed) == len(set(placed))
    assert set(placed) == _code_modules()
