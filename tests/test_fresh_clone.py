"""The suite passes on a fresh clone: no ../shared beside it, nothing but committed files.

The clone's fast tests run with this virtualenv's Python (nothing is installed). The venv
holds an editable install of the working tree, so the run drops that install's import hook
and maps the packages pyproject.toml places elsewhere (`analyzer.templates`) into the clone,
then checks that `analyzer` and its templates come from the clone. Commands the clone's
tests start in their own processes (`prunecard ...`) may still import the working tree's
package: what this test guards is what the suite itself reads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Run in the clone (cwd, first on sys.path): import from the clone, not the editable install.
BOOTSTRAP = """
import importlib.util, sys, tomllib
from pathlib import Path

clone = Path.cwd()
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in repr(f)]
package_dir = tomllib.loads((clone / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-dir"
]


class CloneLayout:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in package_dir:
            folder = clone / package_dir[name]
            return importlib.util.spec_from_file_location(
                name, folder / "__init__.py", submodule_search_locations=[str(folder)]
            )
        return None


sys.meta_path.insert(0, CloneLayout)
import analyzer
import analyzer.templates

for module in (analyzer, analyzer.templates):
    assert Path(module.__file__).is_relative_to(clone), module.__file__
folders = [Path(m.__file__).parent for m in (analyzer, analyzer.templates)]
print("imported from", folders[0], "and", folders[1])
import pytest

sys.exit(pytest.main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_fast_suite_passes_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "prunecard"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=60
    ).stdout.strip()
    subprocess.run(
        ["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=300
    )
    subprocess.run(["git", "checkout", "-q", head], cwd=clone, check=True, timeout=60)
    assert not (clone.parent / "shared").exists()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BOOTSTRAP,
            "-q",
            "-x",
            "-m",
            "not slow",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'tmp'}",  # not the outer run's numbered folders
            "tests",
        ],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=1700,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"imported from {clone / 'analyzer'} and {clone / 'templates'}" in done.stdout
    assert " passed" in done.stdout
    # passed tests' folders are deleted as they end (pyproject's tmp_path_retention_policy);
    # what stays is the module- and session-scoped fixtures' models. Kept, every test's
    # checkpoints came to 8 GB here and filled a CI machine's disk.
    left = sum(f.stat().st_size for f in (tmp_path / "tmp").rglob("*") if f.is_file())
    assert left < LEFT_BEHIND, f"the fast suite left {left / 2**30:.1f} GiB of temporary files"


LEFT_BEHIND = 4 * 2**30  # bytes: the module- and session-scoped fixtures took 2.6 GiB (2026-12-07)
