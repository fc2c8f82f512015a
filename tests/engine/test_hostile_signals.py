"""Signals: SIGTERM during training (saves like Ctrl-C, exit 143), Ctrl-C and SIGTERM during
`reconstruct` (the rerun needs no --force), and Ctrl-C during face decoding (queued decodes are
dropped).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from fmtool.cli.app import app
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.interrupt import Interrupted
from fmtool.engine.runs import read_metrics
from fmtool.engine.trainer import _StopFlag
from tests.helpers.faces import make_vae_checkpoint, write_faces
from tests.helpers.fashion import synthetic_fashion
from tests.helpers.paths import REPO
from tests.helpers.refusals import TINY_CNN, runner

pytestmark = pytest.mark.usefixtures("one_thread")


# == 9. signals ===================================================================================

def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "FMTOOL_HOME": str(home), "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO)}


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen, log: Path,
              timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"ended early:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"timed out:\n{log.read_text()}"
        time.sleep(0.02)


def _epochs_on_disk(run: Path) -> int:
    path = run / "metrics.jsonl"
    return path.read_text().count("\n") if path.is_file() else 0


def test_sigterm_saves_a_resumable_checkpoint_like_ctrl_c(tmp_path: Path):
    """SIGTERM stops a run (exit 143), its resume is stopped by Ctrl-C (exit 130); each time a
    resumable last.pt is saved, and the run then finishes with every epoch recorded once."""
    data = synthetic_fashion(tmp_path / "fashion", train=160, test=20)
    home, run = tmp_path / "home", tmp_path / "home/data/runs/cnn/r"
    args = ["train", "cnn", "--data-dir", str(data), "--name", "r", *TINY_CNN, "--epochs", "200"]
    saved = 0
    for attempt, (signum, status) in enumerate([(signal.SIGTERM, 143), (signal.SIGINT, 130)]):
        log = tmp_path / f"attempt{attempt}.log"
        resume = ["--resume"] if attempt else []
        with open(log, "w") as sink:
            process = subprocess.Popen([sys.executable, "-m", "fmtool", *args, *resume],
                                       env=_env(home), stdout=sink, stderr=subprocess.STDOUT)
        try:
            _wait_for(lambda before=saved: _epochs_on_disk(run) > before, process, log)
            process.send_signal(signum)
            assert process.wait(60) == status, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
        output = log.read_text()
        assert "stopped; continue with: fmtool train cnn --name r --resume" in output, output
        assert "Traceback" not in output
        state = load_checkpoint(run / "last.pt").train_state
        assert state is not None and saved < state["epoch"] < 200
        saved = state["epoch"]
    done = saved + (1 if state["step"] else 0) + 1
    finish = runner.invoke(app, [*args, "--resume", "--epochs", str(done)],
                           env={"FMTOOL_HOME": str(home)})
    assert finish.exit_code == 0, finish.output
    assert [r["epoch"] for r in read_metrics(run)] == list(range(1, done + 1))


def test_a_second_stop_signal_aborts_without_saving():
    notes: list[str] = []

    class Notes:
        def note(self, text: str) -> None:
            notes.append(text)

    flag = _StopFlag(Notes())  # type: ignore[arg-type]
    flag._handle(signal.SIGTERM, None)
    assert flag.requested and flag.signal == signal.SIGTERM and "SIGTERM" in notes[0]
    with pytest.raises(Interrupted) as stopped:
        flag._handle(signal.SIGTERM, None)
    assert stopped.value.exit_code == 143
    other = _StopFlag(Notes())  # type: ignore[arg-type]
    other._handle(signal.SIGINT, None)
    assert other.signal == signal.SIGINT and notes[-1].startswith("Ctrl-C")
    with pytest.raises(Interrupted) as stopped:
        other._handle(signal.SIGINT, None)
    assert stopped.value.exit_code == 130


def test_stop_signals_are_restored_after_training():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with _StopFlag(None):  # type: ignore[arg-type]
        assert signal.getsignal(signal.SIGTERM) != before[signal.SIGTERM]
    assert {s: signal.getsignal(s) for s in before} == before


_SLOW_RECONSTRUCT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the test runner ignores it
from pathlib import Path
import fmtool.vae.reconstruct as r
marker = Path(sys.argv[1])
original = r.save_png
def slow(*args, **kwargs):
    marker.touch()
    time.sleep(0.02)
    return original(*args, **kwargs)
r.save_png = slow
from fmtool.cli.app import app
app(sys.argv[2:])
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_reconstruct_can_be_run_again_without_force(signum: int, tmp_path: Path):
    folder = tmp_path / "faces"
    write_faces(folder, people=10, per_person=15, size=40)  # 150 faces: three grids
    checkpoint = make_vae_checkpoint(tmp_path / "vae.pt")
    out, marker, log = tmp_path / "out", tmp_path / "started", tmp_path / "log"
    args = ["reconstruct", str(folder), "-r", "--out", str(out), "--checkpoint", str(checkpoint),
            "--device", "cpu"]
    with open(log, "w") as sink:
        process = subprocess.Popen([sys.executable, "-c", _SLOW_RECONSTRUCT, str(marker), *args],
                                   env=_env(tmp_path / "home"), stdout=sink,
                                   stderr=subprocess.STDOUT)
    try:
        _wait_for(marker.exists, process, log)
        time.sleep(0.3)
        process.send_signal(signum)
        assert process.wait(60) != 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in log.read_text()
    rerun = runner.invoke(app, args, env={"FMTOOL_HOME": str(tmp_path / "home")})
    assert rerun.exit_code == 0, rerun.output
    assert len(list((out / "images").rglob("*.png"))) == 150
    assert (out / "metrics.csv").read_text().count("\n") == 151


_SLOW_DECODE = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the test runner ignores it
import numpy as np
from pathlib import Path
import fmtool.data.faces as faces
def slow(path, size, crop=faces.CROP):
    time.sleep(0.25)
    return np.zeros((size, size, 3), np.uint8)
faces.load_face = slow
print("decoding", flush=True)
faces.decode_faces([Path(f"face{i}.jpg") for i in range(2000)], 32)
print("finished", flush=True)
"""


def test_ctrl_c_during_face_decoding_does_not_wait_for_the_queue(tmp_path: Path):
    """2,000 queued decodes of 0.25 s each take 62 s or more on 8 threads; Ctrl-C must not. The
    bound leaves the child, starved of CPU on a loaded machine, seconds to exit, and is still
    far below what waiting for the queue takes."""
    process = subprocess.Popen([sys.executable, "-c", _SLOW_DECODE], env=_env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "decoding"
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        start = time.monotonic()
        output, errors = process.communicate(timeout=120)
        waited = time.monotonic() - start
    finally:
        if process.poll() is None:
            process.kill()
    assert "KeyboardInterrupt" in errors and "finished" not in output  # the child prints to stdout
    assert waited < 15.0, f"Ctrl-C waited {waited:.1f} s for the queued decodes"


def test_decode_faces_still_returns_every_face_in_order(tmp_path: Path):
    from fmtool.data.faces import decode_faces

    files = write_faces(tmp_path, people=2, per_person=3, size=40)
    (tmp_path / "empty.jpg").write_bytes(b"")
    images, ok, failed = decode_faces([*files[:3], tmp_path / "empty.jpg", *files[3:]], 32)
    assert images.shape == (6, 3, 32, 32) and ok == [True] * 3 + [False] + [True] * 3
    assert [p.name for p, _ in failed] == ["empty.jpg"]


def test_a_man_page_and_the_help_say_what_sigterm_does():
    page = (REPO / "man" / "fmtool.1").read_text()
    assert "143" in page and "SIGTERM" in page
    for command in (["train", "cnn", "--help"], ["train", "vae", "--help"]):
        text = runner.invoke(app, command, env={"COLUMNS": "200"}).stdout
        assert "SIGTERM" in " ".join(text.split()), command
