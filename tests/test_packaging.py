"""pyproject.toml's package data: every glob ships at least one file (a glob that matches
nothing is a file someone meant to ship and does not, or dead configuration)."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).parent.parent


def test_every_package_data_glob_matches_a_file():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    folders = setuptools.get("package-dir", {})
    for package, globs in setuptools["package-data"].items():
        folder = ROOT / folders.get(package, package.replace(".", "/"))
        for glob in globs:
            assert any(p.is_file() for p in folder.glob(glob)), f"{package}: {glob}"
