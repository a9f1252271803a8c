"""pyproject.toml's packages and package data: every package of the source tree ships (a
package left off the list is missing from the wheel, found only when an installed command
imports it), and every data glob ships at least one file (a glob that matches nothing is a
file someone meant to ship and does not, or dead configuration)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).parent.parent


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]


def test_every_package_of_the_source_tree_is_listed():
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "analyzer").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert in_tree - set(_setuptools()["packages"]) == set()


def test_every_package_data_glob_matches_a_file():
    setuptools = _setuptools()
    folders = setuptools.get("package-dir", {})
    for package, globs in setuptools["package-data"].items():
        folder = ROOT / folders.get(package, package.replace(".", "/"))
        for glob in globs:
            assert any(p.is_file() for p in folder.glob(glob)), f"{package}: {glob}"
