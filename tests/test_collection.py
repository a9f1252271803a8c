"""`prunecard collection`: twenty tiny checkpoints (cards, a tampered card, a corrupt and a
missing checkpoint) run serially, by a pool of two workers and as Ray tasks on a local
instance give the same records; a worker killed mid-run is retried; an interrupted run
resumes where it stopped."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from collection_models import CORRUPT, MISSING, build_collection

from analyzer.cli.main import main
from analyzer.collection import executors
from analyzer.collection.listing import read_list
from analyzer.collection.records import (
    DONE,
    FAILED,
    KEPT,
    NOT_RUN,
    Collection,
    CollectionOptions,
)
from analyzer.collection.run import run_collection
from analyzer.collection.work import Task, TaskResult, run_task
from analyzer.errors import InputError
from analyzer.records import load_record

TESTS = Path(__file__).resolve().parent
FIXED_TIME = "1700000000"  # SOURCE_DATE_EPOCH: records made at different times compare equal


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_collection(tmp_path_factory.mktemp("collection") / "models")


@pytest.fixture(scope="module")
def fixed_time():
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = FIXED_TIME
    yield
    if old is None:
        del os.environ["SOURCE_DATE_EPOCH"]
    else:
        os.environ["SOURCE_DATE_EPOCH"] = old


@pytest.fixture(scope="module")
def serial_run(models, fixed_time, tmp_path_factory):
    """The reference: the CLI, one model after the other."""
    out = tmp_path_factory.mktemp("serial") / "out"
    code = main(["collection", str(models.list), "--out", str(out), "--audit", "--jobs", "1"])
    return code, out


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module: two CPUs, no dashboard, no usage report;
    its workers import this folder's helpers (the killing runner)."""
    import ray

    saved = {k: os.environ.get(k) for k in ("RAY_USAGE_STATS_ENABLED", "PYTHONPATH")}
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), saved["PYTHONPATH"]]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def model_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted((out / "models").rglob("*"))
        if p.is_file()
    }


def summary(out: Path) -> Collection:
    return load_record(Collection, out / "collection.json")


def outcomes(out: Path) -> list[tuple[str, str, str, object]]:
    """What the summary says of each model, without timings or attempts."""
    return [(m.listed, m.status, m.error, m.record) for m in summary(out).models]


def dies_once(task: Task) -> TaskResult:
    """The runner, except that the worker running decoder-03 kills itself the first time
    (SIGKILL: no cleanup, as the OOM killer does)."""
    died = Path(task.source).parent / f".{task.folder}.died"
    if task.folder == "decoder-03" and not died.exists():
        died.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return run_task(task)


# --------------------------------------------------------------------------- the records


@pytest.mark.slow
def test_serial_run_records_each_model_as_built(models, serial_run):
    code, out = serial_run
    assert code == 1  # two models failed and a card is contradicted
    result = summary(out)
    assert [m.listed for m in result.models] == list(models.names)
    for m in result.models:
        if m.listed in (CORRUPT, MISSING):
            assert m.status == FAILED and m.folder == "" and m.error
            assert not (out / "models" / m.listed).exists()
            continue
        assert m.status == DONE and m.attempts == 1, m
        folder = out / "models" / m.folder
        expected = {"analysis.json", "report.json", "assets", "collection-model.json"}
        if m.listed in models.cards or m.listed == models.names[len(models.cards)]:
            expected |= {"audit.json", "audit.md"}
            assert m.record.card == "README.md"
        else:
            assert m.record.card == "" and m.record.verdicts == {}
        assert {p.name for p in folder.iterdir()} == expected | {".prunecard-output"}
    assert "no such file or folder" in result.models[-1].error
    assert "corrupt" in result.models[-2].error
    by_name = {m.listed: m for m in result.models}
    for name in models.cards:  # prunecard's own card holds against its weights
        assert by_name[name].record.verdicts["mismatch"] == 0
        assert by_name[name].record.verdicts["ok"] > 0
    tampered = by_name[models.names[len(models.cards)]].record
    assert tampered.verdicts["mismatch"] >= 1
    assert tampered.worst[0].line == models.tampered_line
    assert tampered.worst[0].claimed.startswith("2")
    verdicts = (out / "site" / "site" / "verdicts.html").read_text(encoding="utf-8")
    for name in models.names:
        assert name in verdicts
    assert f"line {models.tampered_line}" in verdicts


def test_report_adds_the_bench_and_perplexity_and_prints_a_line_a_model(tmp_path, capfd):
    """`--report` is `report --quick` per model: bench and perplexity records beside the
    analysis, the card over all three, and one line a model on the terminal (not each
    model's steps and progress)."""
    from decoders import build_decoder

    from analyzer.records import Bench, Perplexity

    names = ["tiny-0", "tiny-1"]
    for seed, name in enumerate(names):
        sizes = dict(layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64)
        build_decoder(tmp_path / name, "llama", seed=seed, **sizes)
    listing = tmp_path / "models.txt"
    listing.write_text("\n".join(names) + "\n")
    out = tmp_path / "out"
    capfd.readouterr()  # transformers' own lines while saving the models
    assert main(["collection", str(listing), "--out", str(out), "--report", "--jobs", "1"]) == 0
    printed = capfd.readouterr()
    lines = (printed.out + printed.err).splitlines()
    assert sorted(lines) == sorted(
        [f"[{i}/2] {name}: done" for i, name in enumerate(names, 1)]
        + [f"2 of 2 models finished, 0 failed: {out / 'collection.json'}"]
    )
    for name in names:
        folder = out / "models" / name
        assert {"bench.json", "perplexity.json", "README.md"} <= {p.name for p in folder.iterdir()}
        assert not (folder / "packed").exists()  # weights stay out of a collection
        timing = load_record(Bench, folder / "bench.json")
        assert timing.quick and timing.equivalence.max_abs_diff <= timing.equivalence.tolerance
        # random initialisation predicts nearly uniformly: perplexity near the vocabulary
        ppl = load_record(Perplexity, folder / "perplexity.json")
        assert 0.9 * 30522 < ppl.perplexity < 1.1 * 30522
        assert f"**{ppl.perplexity:.2f}**" in (folder / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_site_shows_the_figures_prunecard_site_draws_over_its_folders(serial_run, tmp_path):
    """The workers draw each model's figures and the collection's site copies them; `site`
    over the same folders draws them itself, byte for byte the same."""
    _, out = serial_run
    folders = sorted(str(p) for p in (out / "models").iterdir() if p.is_dir())
    assert main(["site", *folders, "--out", str(tmp_path / "site")]) == 0

    def figures(site: Path) -> dict[str, bytes]:
        pages = site / "docs" / "models"
        return {str(p.relative_to(pages)): p.read_bytes() for p in pages.glob("*/assets/*")}

    copied = figures(out / "site")
    assert copied == figures(tmp_path / "site")
    assert len({Path(name).parent for name in copied}) == len(folders)
    assert {Path(name).name for name in copied} == {
        f"{stem}.{ext}" for stem in ("density", "heads", "blocks") for ext in ("png", "svg")
    }


@pytest.mark.slow
def test_a_pool_of_two_and_ray_write_the_same_records(
    models, serial_run, ray_instance, tmp_path, capsys
):
    _, reference = serial_run
    for how in (["--jobs", "2"], ["--ray", "auto"]):
        out = tmp_path / how[0].strip("-")
        args = ["collection", str(models.list), "--out", str(out), "--audit", *how]
        assert main(args) == 1
        assert model_files(out) == model_files(reference), how
        assert outcomes(out) == outcomes(reference), how
    assert "ray at auto" in summary(out).executor


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_and_nothing_is_lost(
    models, serial_run, ray_instance, tmp_path
):
    _, reference = serial_run
    out = tmp_path / "ray"
    run(models, out, lambda tasks, runner: executors.ray_tasks(tasks, runner, "auto"), dies_once)
    assert model_files(out) == model_files(reference)
    assert outcomes(out) == outcomes(reference)
    attempts = {m.listed: m.attempts for m in summary(out).models}
    assert attempts.pop("decoder-03") == 2
    assert set(attempts.values()) == {1}


@pytest.mark.slow
def test_a_killed_pool_worker_is_retried_and_nothing_is_lost(models, serial_run, tmp_path):
    _, reference = serial_run
    (models.list.parent / ".decoder-03.died").unlink(missing_ok=True)
    out = tmp_path / "pool"
    run(models, out, lambda tasks, runner: executors.pool(tasks, runner, 2), dies_once)
    assert model_files(out) == model_files(reference)
    assert outcomes(out) == outcomes(reference)
    assert {m.listed: m.attempts for m in summary(out).models}["decoder-03"] == 2


def finishes_then_its_worker_dies(task: Task) -> TaskResult:
    """A runner whose worker, after its first model finished, is killed (as the OOM killer
    may do between two models); its process id is left in the model's source file."""
    if task.listed == "first":
        Path(task.source).write_text(str(os.getpid()))
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return TaskResult(task.folder, (), None)


def test_a_pool_that_broke_between_two_models_starts_the_next_in_a_new_one(tmp_path):
    tasks = [
        Task(name, str(tmp_path / name), name, CollectionOptions(audit=True), "test")
        for name in ("first", "second")
    ]
    finished = executors.pool(tasks, finishes_then_its_worker_dies, 1)
    first = next(finished)
    gone(int(Path(tasks[0].source).read_text()))
    time.sleep(0.5)  # the pool notices its dead worker; the next model's submit then fails
    second = next(finished)
    assert [(f.task.listed, f.result.error, f.attempts) for f in (first, second)] == [
        ("first", "", 1),
        ("second", "", 1),  # never started in the broken pool, so one start
    ]
    assert next(finished, None) is None


def gone(pid: int) -> None:
    """Wait (at most 10 s) until process `pid` has exited (no longer runs, or is a zombie)."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return
        except (FileNotFoundError, ProcessLookupError):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs")


def run(models, out, executor, runner):
    """The run the CLI makes for `collection LIST --audit`, with another runner."""
    entries = read_list(models.list)
    command = shlex.join(["prunecard", "collection", str(models.list), "--audit"])
    return run_collection(
        entries,
        out,
        CollectionOptions(audit=True),
        executor,
        list_name=str(models.list),
        executor_name="test",
        command=command,
        runner=runner,
    )


# --------------------------------------------------------------------------- interruption


@pytest.mark.slow
def test_an_interrupted_run_keeps_what_finished_and_resumes(models, serial_run, tmp_path):
    _, reference = serial_run
    started: list[str] = []

    def interrupted_at_the_sixth(task: Task) -> TaskResult:
        started.append(task.listed)
        if len(started) == 6:
            raise KeyboardInterrupt  # Ctrl-C while a model runs
        return run_task(task)

    out = tmp_path / "out"
    first = run(models, out, executors.serial, interrupted_at_the_sixth)
    assert first.interrupted
    assert [m.status for m in first.models] == [DONE] * 5 + [NOT_RUN] * 15
    assert sorted(p.name for p in (out / "models").iterdir()) == sorted(models.names[:5])
    assert summary(out) == first

    started.clear()
    second = run(
        models, out, executors.serial, lambda task: started.append(task.listed) or run_task(task)
    )
    assert not second.interrupted
    assert started == list(models.names[5:])  # the finished five are not run again
    assert [m.status for m in second.models[:5]] == [KEPT] * 5
    assert model_files(out) == model_files(reference)
    assert [(m.listed, m.record) for m in second.models] == [
        (m.listed, m.record) for m in summary(reference).models
    ]


def stalls_after_two(task: Task) -> TaskResult:
    """The runner, except that every model after the first two waits for the end of the run
    (the SIGTERM test's models then are certain to be in flight when the signal comes)."""
    if task.folder not in ("decoder-00", "decoder-01"):
        time.sleep(600)
    return run_task(task)


# the CLI in a process of its own, with the stalling runner (its workers import it by name)
STALLED_CLI = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import test_collection
from analyzer.cli.main import main
from analyzer.collection.run import run_collection
run_collection.__kwdefaults__["runner"] = test_collection.stalls_after_two
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigterm_leaves_the_collection_consistent(models, fixed_time, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-c", STALLED_CLI, "collection", str(models.list)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(TESTS)}
    process = subprocess.Popen(
        [*command, "--out", str(out), "--audit", "--jobs", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    said = [process.stderr.readline() for _ in range(2)]  # the two models that finish
    finished = sorted(line.split("] ", 1)[-1].split(":")[0] for line in said)
    assert finished == ["decoder-00", "decoder-01"], said
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)  # the stalled workers are stopped, not awaited
    assert process.returncode == 2, stderr
    assert "interrupted" in stderr and "rerun to resume" in stderr
    result = summary(out)
    assert result.interrupted
    assert [m.status for m in result.models] == [DONE] * 2 + [NOT_RUN] * 18
    assert {p.name for p in (out / "models").iterdir()} == {"decoder-00", "decoder-01"}


# --------------------------------------------------------------------------- the list


def test_a_list_reads_ids_and_paths_from_its_folder(tmp_path):
    (tmp_path / "here").mkdir()
    listing = tmp_path / "models.txt"
    listing.write_text("# a comment\n\n  here  \norg/model@v1\n/abs/missing\nelsewhere\n")
    entries = read_list(listing)
    assert [e.listed for e in entries] == ["here", "org/model@v1", "/abs/missing", "elsewhere"]
    assert entries[0].source == str(tmp_path / "here") and not entries[0].hub
    assert entries[1].hub and entries[1].source == "org/model@v1"
    assert entries[3].source == str(tmp_path / "elsewhere")  # missing: fails when run
    assert [e.line for e in entries] == [3, 4, 5, 6]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a\nb\na\n", "models.txt:3: a is listed twice (first on line 1)"),
        ("# only comments\n\n", "models.txt: lists no model"),
        ("x" * 1001 + "\n", "models.txt:1: a line of over 1000 characters"),
        ("ok\nbad\x07name\n", "models.txt:2: holds a control character"),
        ("org/na--me\n", "models.txt:1: no such file or folder, and not a Hub id"),
    ],
)
def test_a_bad_list_is_one_line_naming_the_line(tmp_path, capsys, text, problem):
    listing = tmp_path / "models.txt"
    listing.write_text(text)
    assert main(["collection", str(listing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err
    assert not (tmp_path / "out").exists()


def test_a_list_over_the_size_limit_is_refused(tmp_path):
    listing = tmp_path / "models.txt"
    listing.write_bytes(b"# \n" * 400_000)
    with pytest.raises(InputError, match="over the 1 MB limit"):
        read_list(listing)


def test_author_offline_and_ray_missing_say_so_in_one_line(tmp_path, capsys, monkeypatch):
    import importlib.util

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["collection", "--author", "someorg", "--out", str(tmp_path / "a")]) == 2
    assert "--author someorg: the Hub cannot be reached" in capsys.readouterr().err
    listing = tmp_path / "models.txt"
    listing.write_text("model\n")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "ray" else real(n, *a)
    )
    assert main(["collection", str(listing), "--out", str(tmp_path / "b"), "--ray", "auto"]) == 2
    assert "pip install 'prunecard[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_folder_prunecard_did_not_write_is_never_resumed(tmp_path, capsys):
    listing = tmp_path / "models.txt"
    listing.write_text("model\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert main(["collection", str(listing), "--out", str(tmp_path / "out")]) == 2
    assert "is not a collection prunecard wrote" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]
