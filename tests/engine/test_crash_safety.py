"""Nothing lost: SIGKILL and resume, a second process on the same run, a full or unwritable disk.

These run `python -m fmtool train cnn` as real processes (one thread each, fp32 on the CPU) on
the tiny synthetic data set, because what they test is what survives a process's death.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import torch
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.engine.checkpoint import load_checkpoint
from tests.helpers.fashion import synthetic_fashion

EPOCHS = 6
TINY = ["--recipe", "paper", "--epochs", str(EPOCHS), "--batch-size", "16", "--width", "0.125", "--precision", "fp32",
        "--device", "cpu"]
TIMING = {"seconds", "images_per_s"}  # the only fields of an epoch record that may differ
KILL_SEED = int(os.environ.get("FMTOOL_KILL_SEED", "7"))
# how long a process may take before it counts as hung: a few seconds on a quiet machine, but
# over 180 s where the cores are lent to other work
PROCESS_TIMEOUT = 600


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "FMTOOL_HOME": str(home), "OMP_NUM_THREADS": "1"}


def _run_dir(home: Path, name: str) -> Path:
    return home / "data" / "runs" / "cnn" / name


class Training:
    """One `fmtool train cnn` process, its stderr kept in a file (no pipe to fill up)."""

    def __init__(self, home: Path, data: Path, name: str, *extra: str) -> None:
        self.log = home.parent / f"{name}-{time.monotonic_ns()}.log"
        self.run = _run_dir(home, name)
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fmtool", "train", "cnn", "--data-dir", str(data),
                 "--name", name, *TINY, *extra],
                env=_env(home), stdout=log, stderr=subprocess.STDOUT)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def holds_lock(self) -> bool:
        """Whether this process holds the run folder's lock, as the kernel lists it (taking the
        lock to test it could make the process's own attempt fail)."""
        if not self.run.is_dir():
            return False
        inode = self.run.stat().st_ino
        return any(fields[1] == "FLOCK" and fields[4] == str(self.process.pid)
                   and fields[5].endswith(f":{inode}")
                   for fields in map(str.split, Path("/proc/locks").read_text().splitlines()))

    def wait_until(self, condition, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"training ended early:\n{self.output}"
            assert time.monotonic() < deadline, f"timed out:\n{self.output}"
            time.sleep(0.01)

    def finish(self, timeout: float = PROCESS_TIMEOUT) -> int:
        return self.process.wait(timeout)


def _run_fmtool(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmtool", *args], env=_env(home),
                          capture_output=True, text=True, timeout=PROCESS_TIMEOUT)


def _epochs(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synthetic_fashion(tmp_path_factory.mktemp("data") / "fashion", train=300, test=60)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data: Path) -> Iterator[Training]:
    """An uninterrupted run, started now and left to finish while other tests run."""
    home = tmp_path_factory.mktemp("reference") / "home"
    run = Training(home, data, "reference")
    yield run
    if run.process.poll() is None:  # a failed test left it behind
        run.process.kill()
        run.process.wait()


def test_a_second_run_on_the_same_name_refuses_and_damages_nothing(reference: Training,
                                                                    data: Path):
    """While the reference trains, two more processes try its run; it is later compared with
    an independent run bit for bit (below), so any damage would show there too."""
    home = reference.run.parents[3]
    first = reference
    first.wait_until(first.holds_lock)
    first.process.send_signal(signal.SIGSTOP)  # hold it still, lock held, before any epoch ends
    try:
        fresh = _run_fmtool(home, "train", "cnn", "--data-dir", str(data), "--name", "reference",
                            *TINY)
    finally:
        first.process.send_signal(signal.SIGCONT)
    first.wait_until(lambda: (first.run / "last.pt").is_file())
    first.process.send_signal(signal.SIGSTOP)
    try:
        resumed = _run_fmtool(home, "train", "cnn", "--name", "reference", "--resume",
                              "--data-dir", str(data))
    finally:
        first.process.send_signal(signal.SIGCONT)
    busy = ("error: run reference is being trained by another process; "
            "wait for it or choose another --name")
    exists = ("error: run reference already exists; add --resume to continue it, "
              "or choose another --name")  # if its first epoch ended before it was stopped
    assert fresh.returncode == 2 and fresh.stderr.strip().splitlines()[-1] in (busy, exists)
    assert resumed.returncode == 2 and resumed.stderr.strip().splitlines()[-1] == busy
    assert first.finish() == 0, first.output
    assert [r["epoch"] for r in _epochs(first.run)] == list(range(1, EPOCHS + 1))
    assert load_checkpoint(first.run / "last.pt").meta["epoch"] == EPOCHS


def test_sigkill_at_random_points_then_resume_ends_as_an_uninterrupted_run(
        reference: Training, data: Path, tmp_path: Path):
    """Three SIGKILLs at seeded random times (the first after epoch 1, each less than an epoch's
    time into its attempt, so the run is unfinished at every kill), then a resume to the end."""
    home = tmp_path / "home"
    rng = random.Random(KILL_SEED)
    kills: list[str] = []
    epoch_seconds = 0.0
    while True:
        resume = ["--resume"] if (_run_dir(home, "killed") / "last.pt").is_file() else []
        attempt = Training(home, data, "killed", *resume)
        if len(kills) == 3:
            break
        attempt.wait_until(attempt.holds_lock)  # training has started (data loaded, model built)
        if not epoch_seconds:  # the first attempt measures an epoch (with its checkpoint)
            started = time.monotonic()
            attempt.wait_until(lambda run=attempt.run: (run / "metrics.jsonl").is_file())
            epoch_seconds = time.monotonic() - started
        delay = rng.uniform(0.0, 0.9 * epoch_seconds)
        try:
            attempt.finish(timeout=delay)
            break  # it finished before its kill time
        except subprocess.TimeoutExpired:
            attempt.process.send_signal(signal.SIGKILL)
            attempt.finish()
            done = len(_epochs(attempt.run)) if (attempt.run / "metrics.jsonl").is_file() else 0
            kills.append(f"{delay:.2f}s into an attempt ({done} epochs on disk)")
    assert attempt.finish() == 0, f"kills: {kills}\n{attempt.output}"
    assert len(kills) == 3, f"the run finished before its third kill: {kills}"

    assert reference.finish() == 0, reference.output
    killed, uninterrupted = _epochs(attempt.run), _epochs(reference.run)
    assert [r["epoch"] for r in killed] == list(range(1, EPOCHS + 1)), kills
    assert _without_timing(killed) == _without_timing(uninterrupted), kills
    mine = load_checkpoint(attempt.run / "last.pt").model
    theirs = load_checkpoint(reference.run / "last.pt").model
    assert mine.keys() == theirs.keys()
    different = [k for k in mine if not torch.equal(mine[k], theirs[k])]
    assert not different, f"weights differ after kills {kills}: {different[:5]}"


# -- a full or unwritable disk ---------------------------------------------------------------

def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    tmp_path.mkdir()
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            f"mount -t tmpfs -o size=64k tmpfs '{tmp_path}'"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.parametrize("disk", ["full tmpfs", "file size limit"])
def test_a_full_disk_gives_one_clear_line_and_keeps_the_earlier_checkpoint(
        disk: str, data: Path, tmp_path: Path):
    home, run = tmp_path / "home", _run_dir(tmp_path / "home", "r")
    args = ["train", "cnn", "--data-dir", str(data), "--name", "r", *TINY]
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        first = CliRunner().invoke(app, [*args, "--epochs", "1"], env={"FMTOOL_HOME": str(home)})
    finally:
        torch.set_num_threads(torch_threads)
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.suffix == ".pt"}
    room = 200_000  # enough for metrics.jsonl and run.json, not for a checkpoint
    assert min(len(b) for b in before.values()) > room
    resume = [sys.executable, "-m", "fmtool", *args, "--resume", "--epochs", "2"]
    shown = run  # the run folder as the failing process saw it
    if disk == "full tmpfs":
        if not _can_mount_tmpfs(tmp_path / "probe"):
            pytest.skip("cannot mount a tmpfs in a user namespace here")
        mount = tmp_path / "small-disk"
        mount.mkdir()
        shown = _run_dir(mount, "r")
        size_kb = (sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) + room) // 1024
        script = (f"mount -t tmpfs -o size={size_kb}k tmpfs '{mount}' && cp -a '{home}/.' '{mount}/'"
                  f" && FMTOOL_HOME='{mount}' \"$@\"; status=$?; rm -rf '{home}'"
                  f" && cp -a '{mount}/.' '{home}/'; exit $status")
        result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                                 script, "sh", *resume], env=_env(home), capture_output=True,
                                text=True, timeout=PROCESS_TIMEOUT)
        reason = "No space left on device"
    else:
        limit = max(p.stat().st_size for p in run.iterdir() if p.suffix != ".pt") + room
        result = subprocess.run(resume, env=_env(home), capture_output=True, text=True,
                                timeout=PROCESS_TIMEOUT, preexec_fn=lambda: resource.setrlimit(
                                    resource.RLIMIT_FSIZE, (limit, limit)))
        reason = "File too large"
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: could not write checkpoint {shown}/") and reason in last_line
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.suffix == ".pt"} == before
    assert load_checkpoint(run / "last.pt").meta["epoch"] == 1
    assert [r["epoch"] for r in _epochs(run)] == [1]
    assert not [p.name for p in run.iterdir() if p.name.endswith(".tmp")]


def test_an_unwritable_location_gives_one_clear_line(data: Path, tmp_path: Path):
    blocker = tmp_path / "a file"
    blocker.write_text("FMTOOL_HOME points below a file, so nothing can be created there")
    result = CliRunner().invoke(app, ["train", "cnn", "--data-dir", str(data), "--name", "r",
                                      *TINY], env={"FMTOOL_HOME": str(blocker / "home")})
    assert result.exit_code == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (f"error: cannot write to the run folder {blocker}/home/data/runs/cnn/r: "
                         "Not a directory; choose a writable FMTOOL_HOME")
