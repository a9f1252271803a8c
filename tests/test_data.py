"""tests/data holds every file the suite reads, as obtained: each is listed in its README
with a sha256, and none has changed."""

from __future__ import annotations

import re

from conftest import DATA

from analyzer.hashing import sha256_file


def test_every_data_file_is_listed_with_its_unchanged_sha256():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    listed = dict(
        (path, digest) for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, re.M)
    )
    present = {
        str(p.relative_to(DATA)) for p in DATA.rglob("*") if p.is_file() and p.name != "README.md"
    }
    assert present and set(listed) == present
    for path, digest in listed.items():
        assert sha256_file(DATA / path) == digest, f"tests/data/{path} changed"
