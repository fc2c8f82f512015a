"""Checkpoints load without running code, carry metadata, and refuse what they should."""

import os
import pickle
from pathlib import Path

import pytest
import torch

from fmtool.engine.checkpoint import FORMAT_VERSION, Checkpoint, load_checkpoint, save_checkpoint
from fmtool.errors import UserError


def make(tmp_path: Path, kind: str = "cnn") -> Path:
    path = tmp_path / "run" / "last.pt"
    save_checkpoint(path, Checkpoint({"kind": kind, "epoch": 3}, {"w": torch.ones(2)},
                                     {"step": 5}))
    return path


def test_round_trip_keeps_metadata_weights_and_state(tmp_path: Path):
    path = make(tmp_path)
    ckpt = load_checkpoint(path, expect_kind="cnn")
    assert ckpt.meta["epoch"] == 3 and ckpt.meta["fmtool_version"]
    assert torch.equal(ckpt.model["w"], torch.ones(2))
    assert ckpt.train_state == {"step": 5}
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left behind


def test_another_kind_is_refused_with_the_fix(tmp_path: Path):
    with pytest.raises(UserError, match="VAE checkpoint.*fmtool train cnn"):
        load_checkpoint(make(tmp_path, kind="vae"), expect_kind="cnn")


def test_truncated_and_random_files_are_refused(tmp_path: Path):
    path = make(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable fmtool checkpoint"):
        load_checkpoint(path)
    path.write_bytes(os.urandom(4096))
    with pytest.raises(UserError, match="not a readable fmtool checkpoint"):
        load_checkpoint(path)


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_pickled_code_never_runs(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "meta": "{}", "model": Payload()}, path,
               pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(UserError, match="could run code"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_newer_format_asks_for_an_upgrade(tmp_path: Path):
    path = tmp_path / "new.pt"
    torch.save({"format_version": FORMAT_VERSION + 1, "meta": "{}", "model": {}}, path)
    with pytest.raises(UserError, match="newer fmtool"):
        load_checkpoint(path)


def test_failed_write_keeps_the_earlier_checkpoint(tmp_path: Path, monkeypatch):
    path = make(tmp_path)
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(UserError, match="No space left"):
        save_checkpoint(path, Checkpoint({"kind": "cnn"}, {}))
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
