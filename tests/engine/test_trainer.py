"""The shared training loop: learning, metrics, best/last checkpoints, Ctrl-C and exact resume."""

import errno
import fcntl
import os
import select
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fmtool.cnn.recipes import RECIPES as CNN_RECIPES
from fmtool.cnn.task import CNNTask
from fmtool.data.fashion import load_from_dir
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.device import seed_everything
from fmtool.engine.runs import read_metrics, run_lock
from fmtool.engine.trainer import Trainer, TrainingInterrupted
from fmtool.errors import UserError

CPU = torch.device("cpu")
RECIPE = CNN_RECIPES["paper"].with_overrides(epochs=4, batch_size=16, lr=2e-3, step_size=3, val_size=0)


def trainer(data_dir: Path, run_dir: Path, **kwargs) -> Trainer:
    seed_everything(RECIPE.seed)
    task = CNNTask(load_from_dir(data_dir), RECIPE, CPU, width=0.125)
    return Trainer(task, RECIPE, run_dir, CPU, **kwargs)


def test_learns_and_records_each_epoch_once(tiny_fashion: Path, tmp_path: Path):
    run = tmp_path / "run"
    history = trainer(tiny_fashion, run).fit()
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert [r["epoch"] for r in read_metrics(run)] == [1, 2, 3, 4]
    assert history[-1]["test_acc"] > 0.3  # ten classes: chance is 0.1
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert [r["lr"] for r in history] == [2e-3, 2e-3, 2e-3, 1e-3]  # StepLR(3, 0.5)
    best = load_checkpoint(run / "best.pt", expect_kind="cnn")
    assert best.meta["metrics"]["test_acc"] == max(r["test_acc"] for r in history)
    assert best.meta["recipe"]["batch_size"] == 16 and best.meta["config"]["class_names"][0] == "T-shirt/top"
    assert sorted(p.name for p in run.iterdir()) == ["best.pt", "last.pt", "metrics.jsonl",
                                                     "run.json"]  # no lock file left behind


def test_interrupted_run_resumes_to_the_same_weights(tiny_fashion: Path, tmp_path: Path):
    straight = trainer(tiny_fashion, tmp_path / "straight")
    straight.fit()

    stopped = trainer(tiny_fashion, tmp_path / "stopped")
    stopped.should_stop = lambda: (stopped.state.epoch, stopped.state.step) == (1, 5)  # Ctrl-C
    with pytest.raises(TrainingInterrupted):
        stopped.fit()  # 13 batches per epoch: stops after batch 5 of epoch 2
    assert load_checkpoint(tmp_path / "stopped" / "last.pt").train_state["step"] == 5

    resumed = trainer(tiny_fashion, tmp_path / "stopped")
    resumed.resume()
    assert (resumed.state.epoch, resumed.state.step) == (1, 5)
    resumed.fit()

    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    timing = ("seconds", "images_per_s")
    untimed = [{k: v for k, v in r.items() if k not in timing} for r in read_metrics(tmp_path / "stopped")]
    expected = [{k: v for k, v in r.items() if k not in timing} for r in read_metrics(tmp_path / "straight")]
    assert untimed == [pytest.approx(r, rel=1e-6) for r in expected]


def test_a_second_process_on_the_same_run_is_refused(tmp_path: Path):
    with run_lock(tmp_path / "run"):
        with pytest.raises(UserError, match="another process"):
            with run_lock(tmp_path / "run"):
                pass


def test_the_lock_of_a_killed_training_is_free_at_once(tmp_path: Path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from fmtool.engine.runs import run_lock\n"
         f"with run_lock(Path({str(folder)!r})):\n print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([holder.stdout], [], [], 120)  # a stalled child fails, not hangs
        assert ready and holder.stdout.readline() == "held\n"
        with pytest.raises(UserError, match="another process"):
            with run_lock(folder):
                pass
    finally:
        holder.kill()
        holder.wait()
    with run_lock(folder):  # no stale lock to clear by hand
        pass
    assert list(folder.iterdir()) == []


def test_the_lock_file_an_older_fmtool_left_in_a_run_is_removed(tmp_path: Path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".lock").write_text("4242")  # fmtool 0.2 locked this file and left it behind
    with run_lock(folder):
        pass
    assert list(folder.iterdir()) == []


def test_a_lock_file_an_older_fmtool_still_holds_keeps_the_run_refused(tmp_path: Path):
    folder = tmp_path / "run"
    folder.mkdir()
    old = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fmtool 0.2 training this run
    try:
        with pytest.raises(UserError, match="being trained by another process"):
            with run_lock(folder):
                pass
        assert (folder / ".lock").exists()
    finally:
        os.close(old)


def test_where_a_folder_cannot_be_locked_a_lock_file_is(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    """NFS and CIFS emulate flock with byte-range locks, which a folder opened for reading
    cannot take (EBADF): the run is locked through a .lock file in it instead."""
    real_flock = fcntl.flock

    def nfs_flock(fd: int, operation: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, "Bad file descriptor")
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", nfs_flock)
    folder = tmp_path / "run"
    with run_lock(folder):
        assert (folder / ".lock").exists()
        with pytest.raises(UserError, match="being trained by another process"):
            with run_lock(folder):
                pass
    with run_lock(folder):  # released with its descriptor
        pass


def test_a_file_system_without_any_lock_is_one_line(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(UserError, match="cannot lock the run folder .*No locks available; choose "
                                        "an FMTOOL_HOME on a local disk"):
        with run_lock(tmp_path / "run"):
            pass
