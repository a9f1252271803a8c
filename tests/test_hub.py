"""Checkpoints named by Hub id (`org/name`, `org/name@revision`), never over the network: the
tests lay out a Hugging Face cache on disk exactly as huggingface_hub writes one (blobs named
by their Hub etag, snapshots/<commit>/ files as relative links into blobs/, refs/<branch>
holding a commit; `scan_cache_dir` reads it back) and point huggingface_hub at it offline.

Every figure a command prints for an id is compared with the same command on the local
folder the repository was laid out from; the records name `org/name@<commit>`, never the
cache path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from decoders import build_decoder
from huggingface_hub import constants, scan_cache_dir
from huggingface_hub.file_download import repo_folder_name
from safetensors.torch import load_file

from analyzer.cli.main import main
from analyzer.errors import InputError
from analyzer.publish.report import read_report
from analyzer.records import (
    Analysis,
    HubSource,
    Perplexity,
    Provenance,
    Report,
    from_dict,
    load_record,
    to_dict,
)
from analyzer.weights.hub import HubRef, needed_files, parse_source

REPO = "org/tiny-llama"
SIZES = dict(layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64)
OFFLINE_LINE = (
    "not in the Hugging Face cache and the Hub cannot be reached (HF_HUB_OFFLINE=1); "
    "download it once with network or pass a local folder"
)


def _two_of_four(state: dict[str, torch.Tensor]) -> None:
    """2:4 by magnitude in every decoder linear weight."""
    for name, weight in state.items():
        if ".layers." in name and weight.ndim == 2:
            groups = weight.view(-1, 4)
            groups.scatter_(1, groups.abs().argsort(dim=1)[:, :2], 0)


# --------------------------------------------------------------------------- the cache


def _etag(path: Path) -> str:
    """The Hub's etag, which names the blob: sha256 for LFS files (weights), git's blob sha1
    for the others."""
    data = path.read_bytes()
    if path.suffix in (".safetensors", ".bin") or len(data) > 10 << 20:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _commit(folder: Path) -> str:
    """A 40-hex commit id that depends on the folder's files (as a git commit would)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    text = "".join(f"{p.relative_to(folder)}:{_etag(p)}\n" for p in files)
    return hashlib.sha1(text.encode()).hexdigest()


def lay_out(
    cache: Path, repo_id: str, commits: list[Path], refs: dict[str, int], *, tree: bool = False
) -> list[str]:
    """The cache folder of `repo_id` holding each folder of `commits` as one snapshot, and
    refs/<name> naming the commit of `commits[i]`; the commit ids. With `tree`, also the
    commit's tree listing (trees/<commit>.json), which `snapshot_download` keeps."""
    repo = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    ids = []
    for folder in commits:
        commit = _commit(folder)
        ids.append(commit)
        if tree:
            (repo / "trees").mkdir(exist_ok=True)
            listing = {"format_version": 1, "files": _listing(folder)}
            (repo / "trees" / f"{commit}.json").write_text(json.dumps(listing))
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            blob = repo / "blobs" / _etag(file)
            if not blob.exists():
                shutil.copyfile(file, blob)
            pointer = repo / "snapshots" / commit / file.relative_to(folder)
            pointer.parent.mkdir(parents=True, exist_ok=True)
            pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    for name, index in refs.items():
        (repo / "refs" / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / name).write_text(ids[index])  # no newline, as huggingface_hub writes
    return ids


def _listing(folder: Path) -> dict[str, dict]:
    """What the Hub's tree endpoint says of each file (huggingface_hub's tree cache format):
    size and git blob id, and for LFS files (the weights) their sha256."""
    files = {}
    for p in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = p.read_bytes()
        entry = {
            "size": len(data),
            "blob_id": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
        }
        if p.suffix in (".safetensors", ".bin"):
            entry |= {"lfs_sha256": hashlib.sha256(data).hexdigest(), "lfs_size": len(data)}
        files[p.relative_to(folder).as_posix()] = entry
    return files


def _tree(folder: Path) -> dict[str, str]:
    """Every file and link under `folder` with its content's hash: to show nothing changed."""
    return {
        str(p.relative_to(folder)): os.readlink(p) if p.is_symlink() else _etag(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The published repository's two commits: the 2:4 model with its card (main, tag v1),
    and the dense model it came from (branch `dense`); plus files no command needs. No tree
    listing: the cache as `hf_hub_download` and `from_pretrained` leave it."""
    root = tmp_path_factory.mktemp("hub-models")
    pruned = build_decoder(root / "tiny-llama", prune=_two_of_four, **SIZES)
    assert main(["card", str(pruned), "--out", str(pruned), "--name", REPO]) == 0
    dense = build_decoder(root / "tiny-llama-dense", **SIZES)
    # what published repositories also hold: a .bin twin, an ONNX export, a notebook
    published = root / "published"
    shutil.copytree(pruned, published)
    torch.save(load_file(pruned / "model.safetensors"), published / "pytorch_model.bin")
    (published / "onnx").mkdir()
    (published / "onnx" / "model.onnx").write_bytes(b"\0" * 4096)
    (published / "train.ipynb").write_text("{}")
    cache = root / "cache"
    main_commit, dense_commit = lay_out(
        cache, REPO, [published, dense], {"main": 0, "v1": 0, "dense": 1}
    )
    return {
        "pruned": pruned,
        "dense": dense,
        "cache": cache,
        "main": main_commit,
        "dense_commit": dense_commit,
    }


@pytest.fixture
def offline(models, monkeypatch):
    """huggingface_hub offline with the laid-out cache: the environment, and the constants
    huggingface_hub read from it when it was imported. Every snapshot_download call is
    recorded (repo, revision, allow_patterns, local_files_only)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(models["cache"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(models["cache"]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    calls = _spy(monkeypatch)
    before = _tree(models["cache"])
    yield calls
    assert _tree(models["cache"]) == before  # inputs are never modified


def _asked(calls: list[dict]) -> set[str]:
    """Every file name any snapshot_download call allowed."""
    return {p for c in calls for p in c["allow_patterns"]}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("prunecard: error: ")
    return lines[0].removeprefix("prunecard: error: ")


def _without_checkpoint(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "checkpoint"}


# --------------------------------------------------------------------------- layout


def test_the_cache_is_laid_out_as_huggingface_hub_lays_it_out(models):
    info = scan_cache_dir(models["cache"])
    assert not info.warnings
    (repo,) = info.repos
    assert repo.repo_id == REPO and repo.repo_type == "model"
    revisions = {r.commit_hash: r for r in repo.revisions}
    assert set(revisions) == {models["main"], models["dense_commit"]}
    assert revisions[models["main"]].refs == frozenset({"main", "v1"})
    assert revisions[models["dense_commit"]].refs == frozenset({"dense"})
    names = {f.file_name for f in revisions[models["main"]].files}
    assert {"config.json", "model.safetensors", "README.md", "pytorch_model.bin"} <= names
    # and the library's own lookup finds a file of the snapshot through refs/main
    found = huggingface_hub.try_to_load_from_cache(REPO, "config.json", cache_dir=models["cache"])
    assert Path(found).parent.name == models["main"]


# --------------------------------------------------------------------------- every command


@pytest.mark.parametrize("revision", ["", "@main", "@v1", "@COMMIT"])
def test_analyze_by_id_gives_the_local_folders_figures(models, offline, tmp_path, revision):
    revision = revision.replace("COMMIT", models["main"])
    assert main(["analyze", str(models["pruned"]), "--json", str(tmp_path / "local.json")]) == 0
    assert main(["analyze", REPO + revision, "--json", str(tmp_path / "hub.json")]) == 0
    local = json.loads((tmp_path / "local.json").read_text())
    hub = json.loads((tmp_path / "hub.json").read_text())
    assert _without_checkpoint(hub) == _without_checkpoint(local)
    assert hub["checkpoint"] == f"{REPO}@{models['main']}"
    assert str(models["cache"]) not in (tmp_path / "hub.json").read_text()
    # config, weights (the safetensors the reader opens, not the .bin twin), nothing else
    assert _asked(offline) == {"config.json", "model.safetensors"}
    assert all(c["local_files_only"] for c in offline)


def test_a_branch_names_its_own_commit(models, offline, tmp_path):
    assert main(["analyze", str(models["dense"]), "--json", str(tmp_path / "local.json")]) == 0
    assert main(["analyze", f"{REPO}@dense", "--json", str(tmp_path / "hub.json")]) == 0
    local = load_record(Analysis, tmp_path / "local.json")
    hub = load_record(Analysis, tmp_path / "hub.json")
    assert hub.checkpoint == f"{REPO}@{models['dense_commit']}"
    assert to_dict(hub) == to_dict(local) | {"checkpoint": hub.checkpoint}
    assert hub.linear.nnz == hub.linear.dense  # the dense model, not main's 2:4 one


def test_pack_by_id_writes_the_local_folders_packed_model(models, offline, tmp_path):
    assert main(["pack", str(models["pruned"]), str(tmp_path / "local")]) == 0
    assert main(["pack", REPO, str(tmp_path / "hub")]) == 0
    local, hub = (load_file(tmp_path / n / "model.safetensors") for n in ("local", "hub"))
    assert local.keys() == hub.keys()
    assert all(torch.equal(local[k], hub[k]) for k in local)
    for name in ("tokenizer.json", "vocab.txt", "config.json"):
        assert (tmp_path / "hub" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    tokenizer = {"tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"}
    present = {
        n for n in (*tokenizer, "generation_config.json") if (models["pruned"] / n).is_file()
    }
    assert {"tokenizer.json", "generation_config.json"} <= present
    assert _asked(offline) == {"config.json", "model.safetensors", *present}


def test_eval_by_id_measures_the_local_folders_perplexity(models, offline, tmp_path):
    args = ["--limit-tokens", "64", "--device", "cpu"]
    assert main(["eval", str(models["pruned"]), *args, "--json", str(tmp_path / "l.json")]) == 0
    assert (
        main(["eval", f"{REPO}@{models['main']}", *args, "--json", str(tmp_path / "h.json")]) == 0
    )
    local = load_record(Perplexity, tmp_path / "l.json")
    hub = load_record(Perplexity, tmp_path / "h.json")
    assert hub.checkpoint == f"{REPO}@{models['main']}"
    assert hub.perplexity == local.perplexity and hub.tokens == local.tokens == 64


def test_bench_by_id_times_the_same_models(models, offline, tmp_path):
    args = [
        *("--device", "cpu", "--batch", "1", "--seq", "16", "--decode-batch", "1"),
        *("--prompt-tokens", "4", "--new-tokens", "2", "--repeats", "1", "--budget", "0.1"),
        *("--no-profile", "--accept-unstable"),
    ]
    assert main(["bench", str(models["pruned"]), *args, "--json", str(tmp_path / "l.json")]) == 0
    assert main(["bench", REPO, *args, "--json", str(tmp_path / "h.json")]) == 0
    local, hub = (json.loads((tmp_path / n).read_text()) for n in ("l.json", "h.json"))
    for key in ("dense_parameters", "packed_parameters", "packed_bytes", "dtype", "align"):
        assert hub[key] == local[key]
    assert [(s["batch"], s["seq"]) for s in hub["shapes"]] == [(1, 16)]
    assert hub["equivalence"] == local["equivalence"]


def test_report_by_id_names_the_id_and_commit(models, offline, tmp_path, monkeypatch):
    args = ["--quick", "--no-bench", "--limit-tokens", "64", "--device", "cpu"]
    assert main(["report", str(models["pruned"]), *args, "--out", str(tmp_path / "l")]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["report", f"{REPO}@v1", *args]) == 0
    out = tmp_path / "tiny-llama-report"  # named after the model, not the commit folder
    local, hub = read_report(tmp_path / "l"), read_report(out)
    label = f"{REPO}@{models['main']}"
    assert hub.provenance.hub == HubSource(REPO, "v1", models["main"])
    assert hub.provenance.checkpoint == hub.analysis.checkpoint == label
    assert hub.perplexity.checkpoint == label
    assert hub.provenance.file_sha256 == local.provenance.file_sha256
    assert hub.perplexity.perplexity == local.perplexity.perplexity
    assert to_dict(hub.analysis) == to_dict(local.analysis) | {"checkpoint": label}
    assert hub.publication.model_id == REPO  # the card's default name is the id
    card = (out / "README.md").read_text()
    assert f"model_id = {json.dumps(REPO)}" in card  # the usage blocks load it by id
    assert f"- Read from the Hub: `{label}` (revision `v1`)\n" in card
    assert "- Machine:" in card.split("- Read from the Hub:")[1]  # the list goes on
    for written in (card, (out / "report.json").read_text()):
        assert str(models["cache"]) not in written and "snapshots" not in written


def test_card_by_id(models, offline, tmp_path):
    out = tmp_path / "card"
    assert main(["card", REPO, "--out", str(out), "--base", "org/tiny-llama-dense"]) == 0
    report = read_report(out)
    assert report.provenance.checkpoint == f"{REPO}@{models['main']}"
    assert report.publication.model_id == REPO
    assert report.publication.base_model == "org/tiny-llama-dense"  # --base keeps its meaning
    assert str(models["cache"]) not in (out / "README.md").read_text()
    assert _asked(offline) == {"config.json", "model.safetensors"}


def test_audit_by_id_audits_the_published_card_against_the_published_weights(
    models, offline, tmp_path
):
    out = tmp_path / "audit.json"
    assert main(["audit", REPO, "--json", str(out)]) == 0
    audit = json.loads(out.read_text())
    assert audit["checkpoint"] == f"{REPO}@{models['main']}"
    assert _asked(offline) == {"config.json", "model.safetensors", "README.md"}
    # the same card audited from the local folder finds the same
    assert main(["audit", str(models["pruned"]), "--json", str(tmp_path / "local.json")]) == 0
    local = json.loads((tmp_path / "local.json").read_text())
    assert audit["findings"] == local["findings"]


def test_audit_by_id_without_weights_fetches_the_card_alone(models, offline, capsys):
    assert main(["audit", REPO, "--no-weights"]) == 0
    assert "weights    not read (--no-weights)" in capsys.readouterr().out
    assert _asked(offline) == {"README.md"}


def test_audit_by_id_fails_a_card_the_weights_contradict(models, offline, tmp_path, capsys):
    state = load_file(models["pruned"] / "model.safetensors")
    linear = [t for n, t in state.items() if ".layers." in n and t.ndim == 2]
    nnz, dense = sum(int(t.count_nonzero()) for t in linear), sum(t.numel() for t in linear)
    claim = f"**{100 * nnz / dense:.1f}%** ({nnz:,} of {dense:,})"
    card = (models["pruned"] / "README.md").read_text()
    assert claim in card
    edited = tmp_path / "edited.md"
    edited.write_text(card.replace(claim, f"**40.0%** ({dense * 2 // 5:,} of {dense:,})"))
    assert main(["audit", REPO, "--card", str(edited)]) == 1
    assert "README.md" not in _asked(offline)  # --card given: the published card is not read


# --------------------------------------------------------------------------- what is fetched


def test_only_the_files_a_command_reads_are_named():
    listing = [
        "config.json",
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "consolidated.safetensors",  # Mistral's own format beside the transformers shards
        "pytorch_model.bin",
        "onnx/model.onnx",
        "onnx/model.safetensors",
        "original/consolidated.00.pth",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
        "recipe.yaml",
        "README.md",
        ".gitattributes",
    ]
    shards = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}

    def index(name: str) -> set[str]:
        assert name == "model.safetensors.index.json"
        return shards

    weights = ["config.json", "model.safetensors.index.json", "recipe.yaml", *sorted(shards)]
    assert needed_files(listing, index) == weights
    tokenizer = needed_files(listing, index, tokenizer=True)
    assert tokenizer[: len(weights)] == weights
    assert set(tokenizer[len(weights) :]) == {
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "chat_template.jinja",
        "generation_config.json",
    }
    assert needed_files(listing, index, card=True) == [*weights, "README.md"]
    assert needed_files(listing, index, weights=False, card=True) == ["README.md"]
    # .bin only where there is no safetensors; nothing in sub-folders
    old = ["config.json", "pytorch_model.bin", "onnx/model.safetensors", "vocab.txt"]
    assert needed_files(old, index) == ["config.json", "pytorch_model.bin"]
    assert needed_files(["config.json", "onnx/model.safetensors"], index) == []


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """A 2:4 model saved in shards, in a cache with its tree listing (as `snapshot_download`
    leaves it); and `org/partial`, the same commit with tokenizer.json never fetched."""
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("hub-sharded")
    local = build_decoder(root / "sharded", prune=_two_of_four, **SIZES)
    model = AutoModelForCausalLM.from_pretrained(local)
    (local / "model.safetensors").unlink()
    model.save_pretrained(local, max_shard_size="200KB")
    shards = sorted(p.name for p in local.glob("model-*.safetensors"))
    assert len(shards) > 1 and (local / "model.safetensors.index.json").is_file()
    cache = root / "cache"
    (commit,) = lay_out(cache, "org/sharded", [local], {"main": 0}, tree=True)
    lay_out(cache, "org/partial", [local], {"main": 0}, tree=True)
    partial = cache / repo_folder_name(repo_id="org/partial", repo_type="model")
    (partial / "snapshots" / commit / "tokenizer.json").unlink()
    return {"local": local, "cache": cache, "commit": commit, "shards": shards}


def _spy(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    real = huggingface_hub.snapshot_download

    def spy(repo_id, **kwargs):
        calls.append({"repo_id": repo_id, **kwargs})
        return real(repo_id, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    return calls


def test_a_sharded_checkpoint_is_read_through_the_caches_links(sharded, tmp_path, monkeypatch):
    """Shards in a snapshot are links into blobs/, outside the snapshot folder: named inside
    it, they are the checkpoint's own files."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(sharded["cache"]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    calls = _spy(monkeypatch)
    assert main(["analyze", str(sharded["local"]), "--json", str(tmp_path / "l.json")]) == 0
    assert main(["analyze", "org/sharded", "--json", str(tmp_path / "h.json")]) == 0
    local_json, hub_json = (json.loads((tmp_path / n).read_text()) for n in ("l.json", "h.json"))
    assert _without_checkpoint(hub_json) == _without_checkpoint(local_json)
    index = "model.safetensors.index.json"
    assert _asked(calls) == {"config.json", index, *sharded["shards"]}


def test_online_the_hubs_listing_picks_the_files(sharded, tmp_path, monkeypatch):
    """With the network on, the Hub's listing of the commit (its `model_info` answer, given
    here as the Hub's API would) picks the files; everything else is asked of a closed local
    port, so a file the cache lacked would fail the command."""
    from huggingface_hub.hf_api import HfApi, ModelInfo

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(sharded["cache"]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    listing = [*_listing(sharded["local"]), "onnx/model.onnx", "pytorch_model.bin"]
    asked = []

    def model_info(self, repo_id, *, revision=None, **kwargs):
        asked.append((repo_id, revision))
        siblings = [{"rfilename": name} for name in listing]
        return ModelInfo(id=repo_id, sha=sharded["commit"], siblings=siblings)

    monkeypatch.setattr(HfApi, "model_info", model_info)
    calls = _spy(monkeypatch)
    assert main(["analyze", "org/sharded@main", "--json", str(tmp_path / "a.json")]) == 0
    assert asked == [("org/sharded", "main")]
    (call,) = calls
    assert call["revision"] == sharded["commit"] and not call["local_files_only"]
    index = "model.safetensors.index.json"
    assert call["allow_patterns"] == ["config.json", index, *sharded["shards"]]
    analysis = load_record(Analysis, tmp_path / "a.json")
    assert analysis.checkpoint == f"org/sharded@{sharded['commit']}"


def test_a_needed_file_never_fetched_is_one_line_offline(sharded, tmp_path, monkeypatch, capsys):
    """The tree listing says the commit has tokenizer.json; the cache never fetched it: what
    needs no tokenizer runs, what needs it says so in one line."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(sharded["cache"]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert main(["analyze", "org/partial"]) == 0
    capsys.readouterr()
    assert main(["pack", "org/partial", str(tmp_path / "packed")]) == 2
    assert _error_line(capsys) == (
        f"org/partial: the cached snapshot {sharded['commit']} is incomplete and "
        + OFFLINE_LINE.removeprefix("not in the Hugging Face cache and ")
    )
    assert not (tmp_path / "packed").exists()


# --------------------------------------------------------------------------- refusals


def test_an_id_not_in_the_cache_offline_is_one_line(offline, capsys, tmp_path):
    assert main(["analyze", "org/not-cached"]) == 2
    assert _error_line(capsys) == f"org/not-cached: {OFFLINE_LINE}"
    out = tmp_path / "report"
    assert main(["report", f"{REPO}@no-such-branch", "--out", str(out)]) == 2
    assert _error_line(capsys) == f"{REPO}@no-such-branch: {OFFLINE_LINE}"
    assert not out.exists()


def test_an_unreachable_hub_falls_back_to_the_cache(models, monkeypatch, tmp_path, capsys):
    """With the network on but the Hub refusing connections (a closed local port), the
    cached snapshot is used; an id it lacks is one line saying the Hub cannot be reached."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(models["cache"]))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    assert main(["analyze", REPO, "--json", str(tmp_path / "a.json")]) == 0
    analysis = load_record(Analysis, tmp_path / "a.json")
    assert analysis.checkpoint == f"{REPO}@{models['main']}"
    assert main(["analyze", "org/not-cached"]) == 2
    line = _error_line(capsys)
    assert line.startswith("org/not-cached: not in the Hugging Face cache and the Hub cannot ")
    assert "ConnectError" in line and line.endswith("or pass a local folder")


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("org/na me", "not a Hub id"),
        ("org--x/name", "not a Hub id"),
        ("org/name.", "not a Hub id"),
        (f"org/{'n' * 97}", "not a Hub id"),
        ("org/name@", "not a Hub revision"),
        ("org/name@a..b", "not a Hub revision"),
        ("org/name@-x", "not a Hub revision"),
        ("org/name@a b", "not a Hub revision"),
    ],
)
def test_an_invalid_id_is_one_line(offline, capsys, given, problem):
    assert main(["analyze", given]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"{given}: no such file or folder, and {problem}")
    assert offline == []  # refused before huggingface_hub is asked


def test_what_counts_as_an_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commit = "a" * 40
    assert parse_source("org/name") == HubRef("org/name")
    assert parse_source(f"org/name@{commit}") == HubRef("org/name", commit)
    assert parse_source("org/name@refs/pr/1") == HubRef("org/name", "refs/pr/1")
    # a bare name, a path from / . or ~, or one with more folders is a path, never an id
    for path in ("name", "/org/name", "./org/name", "~/org/name", "a/b/c", "../x"):
        assert parse_source(path) == Path(path)
    with pytest.raises(InputError):
        parse_source("org/name@v1..2")


def test_a_local_folder_named_like_an_id_wins(models, offline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(models["dense"], tmp_path / REPO)  # ./org/tiny-llama: the dense model
    assert main(["analyze", REPO, "--json", str(tmp_path / "a.json")]) == 0
    analysis = load_record(Analysis, tmp_path / "a.json")
    assert analysis.checkpoint == REPO
    assert analysis.linear.nnz == analysis.linear.dense  # not the cached 2:4 model
    assert offline == []  # the cache was never asked


def test_outputs_inside_the_cache_are_refused(models, offline, tmp_path, capsys):
    snapshot = models["cache"] / repo_folder_name(repo_id=REPO, repo_type="model")
    snapshot = snapshot / "snapshots" / models["main"]
    assert main(["analyze", REPO, "--json", str(snapshot / "analysis.json")]) == 2
    assert "lies inside the input" in _error_line(capsys)
    assert main(["card", REPO, "--out", str(snapshot)]) == 2
    assert "lies inside the input" in _error_line(capsys)
    assert main(["pack", REPO, str(snapshot.parent.parent / "blobs" / "packed")]) == 2
    assert "lies inside the input" in _error_line(capsys)
    assert main(["eval", REPO, "--json", str(snapshot / "ppl.json")]) == 2
    assert "lies inside the input" in _error_line(capsys)
    assert main(["audit", REPO, "--json", str(snapshot / "audit.json")]) == 2
    assert "lies inside the input" in _error_line(capsys)
    assert offline == []  # refused before anything was looked up
    # the fixture checks that no file of the cache changed


def test_provenance_with_a_hub_source_round_trips():
    hub = HubSource("org/name", "v1", "b" * 40)
    provenance = Provenance("1", "prunecard analyze org/name@v1", hub.label, {}, "now", hub=hub)
    report = Report(provenance=provenance)
    assert from_dict(Report, to_dict(report)) == report
    old = to_dict(report)
    del old["provenance"]["hub"]  # a report.json written before Hub ids
    assert from_dict(Report, old).provenance.hub is None


def test_eval_squad_by_id_scores_the_local_folders_answers(pruned_minilm, tmp_path, monkeypatch):
    """An encoder QA model by id: the same answers, scores and sample as from its folder."""
    cache = tmp_path / "cache"
    (commit,) = lay_out(cache, "org/minilm-pruned", [pruned_minilm], {"main": 0})
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    calls = _spy(monkeypatch)
    args = ["--limit", "4", "--device", "cpu"]
    assert main(["eval", str(pruned_minilm), *args, "--out", str(tmp_path / "local")]) == 0
    assert main(["eval", "org/minilm-pruned", *args, "--out", str(tmp_path / "hub")]) == 0
    local, hub = (
        json.loads((tmp_path / n / "evaluation.json").read_text()) for n in ("local", "hub")
    )
    assert hub["checkpoint"] == f"org/minilm-pruned@{commit}"
    for key in ("scores", "ci", "n", "groups", "data_sha256"):
        assert hub[key] == local[key]
    assert "vocab.txt" in _asked(calls) and "README.md" not in _asked(calls)
