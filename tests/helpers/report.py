"""`fmtool report`'s tiny world: checkpoints, metrics, look-alike data and faces, and the
command line that makes a study of them; and, as the fixtures `world` and `study`
(tests/conftest.py loads this module as a plugin), one world and one study for every test that
only reads them, made once per session (per xdist worker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmtool.cnn.recipes import PAPER
from fmtool.data.faces import load_face_splits
from fmtool.engine.runs import write_metrics
from tests.helpers.checkpoints import save_cnn
from tests.helpers.faces import make_vae_checkpoint, write_faces
from tests.helpers.fashion import synthetic_fashion


def tiny_cnn(path: Path) -> Path:
    """An untrained CNN of the paper recipe at width 1/16, saved as a training run saves one."""
    return save_cnn(path, PAPER, 0.0625, epoch=3)


def make_world(root: Path) -> dict:
    """A tiny CNN run (checkpoint and metrics), a tiny VAE, Fashion-MNIST look-alikes, and faces
    in LFW's layout with its gender lists beside them and a young/old pairs file."""
    run_dir = root / "cnn-run"
    cnn = tiny_cnn(run_dir / "best.pt")
    write_metrics(run_dir, [{"epoch": e, "train_loss": 2.0 / e, "test_loss": 2.1 / e,
                             "train_acc": 0.3 * e, "test_acc": 0.28 * e} for e in (1, 2, 3)])
    faces = root / "lfw" / "faces"
    write_faces(faces, people=8, per_person=5, size=64)
    (root / "lfw" / "female_names.txt").write_text(
        "".join(f"Person_{p}_000{i}.jpg\n" for p in (0, 1, 2) for i in (1, 2)))
    (root / "lfw" / "male_names.txt").write_text(
        "".join(f"Person_{p}_000{i}.jpg\n" for p in (5, 6, 7) for i in (1, 2)))
    pairs = root / "young_old.txt"
    pairs.write_text("# young old\nPerson_3_0001.jpg Person_4_0002.jpg\n"
                     "Person_0_0003.jpg Person_7_0004.jpg\n")
    trained_on = load_face_splits(faces, 32).info(0.1)  # as `train vae` records its split
    return {"root": root, "cnn": cnn, "vae": make_vae_checkpoint(root / "vae.pt", data=trained_on),
            "data": synthetic_fashion(root / "fashion"), "faces": faces, "pairs": pairs}


def report_args(world: dict, out: Path, *more: object) -> list[object]:
    return ["report", "--cnn", world["cnn"], "--vae", world["vae"], "--data-dir", world["data"],
            "--faces-dir", world["faces"], "--pairs", world["pairs"], "--out", out,
            "--device", "cpu", *more]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """make_world's files; tests only read them (and write beside them, under "root")."""
    return make_world(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="session")
def study(world: dict) -> dict:
    """What `fmtool report --json` of `world` prints; the study is in its "out" folder, which
    tests only read (one that changes a study changes a copy)."""
    from typer.testing import CliRunner

    from fmtool.cli.app import app

    out = world["root"] / "study"
    result = CliRunner().invoke(app, [str(a) for a in report_args(world, out, "--json")])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
