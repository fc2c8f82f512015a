"""Hostile input, round two: values that load or parse but must not be trusted.

- checkpoints whose metadata or weights are wrong (schema per model family, finite float weights),
  damaged run.json, last.pt training state and metrics.jsonl on --resume and eval, and a training
  run whose weights turn NaN (best.pt must keep a finite model);
- option values out of range, NaN or infinite, refused at the command line with their range and
  before any work; run names that are not usable folder names;
- data sets with a zero dimension, images of the wrong size, face folders that give one image;
- SIGTERM during training (saves like Ctrl-C, exit 143), Ctrl-C and SIGTERM during `reconstruct`
  (the rerun needs no --force), and Ctrl-C during face decoding (queued decodes are dropped).

Every refusal is one `error:` line on stderr that names the file or the flag, exit status 2.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.cnn.recipes import PAPER as CNN_PAPER
from fmtool.data.fashion import load_from_dir
from fmtool.engine.bundled import bundled_checkpoint
from fmtool.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from fmtool.engine.interrupt import Interrupted
from fmtool.engine.recipe import MAX_SEED
from fmtool.engine.runs import check_run_name, read_metrics
from fmtool.engine.trainer import Trainer, _StopFlag
from fmtool.errors import UserError
from fmtool.models.cnn import FashionCNN
from fmtool.vae.recipes import PAPER as VAE_PAPER
from tests.conftest import REPO, synthetic_fashion, write_idx
from tests.helpers.checkpoints import cnn_meta
from tests.vae_helpers import make_vae_checkpoint, write_faces

runner = CliRunner()
WIDTH = 0.0625
TINY_CNN = ["--recipe", "paper", "--width", str(WIDTH), "--batch-size", "16", "--precision", "fp32", "--device", "cpu",
            "--val-size", "0"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _final_error(result: Any) -> str:
    """The one error line, which ends stderr (train commands log their set-up before it)."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return lines[-1]


# == 4. checkpoint metadata and weights =========================================================

def _cnn_meta() -> dict[str, Any]:
    """The text network's metadata as training writes it (its config table)."""
    return cnn_meta(CNN_PAPER.with_overrides(variant="text"), WIDTH)


def _cnn_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return FashionCNN(width=WIDTH).state_dict()


def _legacy_cnn() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A checkpoint in the layout fmtool wrote before configs (architecture, class_names,
    normalization and tta_flip at the top): the bundled model is one."""
    shipped = load_checkpoint(bundled_checkpoint("cnn"))
    return copy.deepcopy(shipped.meta), dict(shipped.model)


def _key(part: str) -> Any:
    return int(part) if part.isdigit() else part


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A change to the metadata: the value at dotted `path` ("class_names.1") becomes `value`."""
    def change(meta: dict) -> None:
        *parents, last = path.split(".")
        target = meta
        for part in parents:
            target = target[_key(part)]
        target[_key(last)] = value
    return change


def _drop(path: str) -> Callable[[dict], None]:
    def change(meta: dict) -> None:
        *parents, last = path.split(".")
        target = meta
        for part in parents:
            target = target[_key(part)]
        del target[_key(last)]
    return change


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# Damage to the config table that training writes, and what the one-line refusal says.
CNN_META_CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "nine class names": (lambda m: m["config"]["class_names"].pop(), "shape"),
    "class names are numbers": (_set("config.class_names", list(range(10))), "class_names"),
    "a class name repeats": (_set("config.class_names.1", "T-shirt/top"), "repeat"),
    "an empty class name": (_set("config.class_names.3", ""), "class names"),
    "one class name": (_set("config.class_names", ["Hat"]), "1 classes"),
    "no config": (_drop("config"), "lacks config"),
    "config is a list": (_set("config", [1, 2]), "config is not a table"),
    "an unknown key": (_set("config.depth", 3), "unknown key 'depth'"),
    "no image size": (_drop("config.image_size"), "lacks image_size"),
    "image size zero": (_set("config.image_size", 0), "image_size"),
    "image size not a multiple of 8": (_set("config.image_size", 30), "image_size"),
    "image size huge": (_set("config.image_size", 1 << 20), "image_size"),
    "image size is true": (_set("config.image_size", True), "image_size"),
    "width NaN": (_set("config.width", float("nan")), "width"),
    "width negative": (_set("config.width", -1.0), "width"),
    "width huge": (_set("config.width", 500.0), "width"),
    "width is text": (_set("config.width", "wide"), "width"),
    "dropout 1.5": (_set("config.dropout", 1.5), "dropout"),
    "an unknown variant": (_set("config.variant", "paper"), "variant"),
    "tta_flip is text": (_set("config.tta_flip", "yes"), "tta_flip"),
    "epoch is text": (_set("epoch", "seven"), "epoch"),
    "epoch negative": (_set("epoch", -4), "epoch"),
    "metrics is a list": (_set("metrics", [0.9]), "metrics"),
    "recipe's lr negative": (_set("recipe.lr", -1.0), "recipe.lr"),
    "nested 40 deep": (_set("data", _nested(40)), "nested"),
    "nested past the JSON parser's limit": (_set("data", _nested(50_000)), "unreadable metadata"),
}

# The same for checkpoints in the layout from before configs (the bundled model's).
LEGACY_CNN_META_CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "nine class names": (lambda m: m["class_names"].pop(), "names 9 classes"),
    "eleven class names": (lambda m: m["class_names"].append("Hat"), "names 11 classes"),
    "class names are numbers": (_set("class_names", list(range(10))), "class_names"),
    "a class name repeats": (_set("class_names.1", "T-shirt/top"), "repeat"),
    "no architecture": (_drop("architecture"), "lacks config"),
    "architecture is a list": (_set("architecture", [1, 2]), "architecture"),
    "an unknown architecture key": (_set("architecture.depth", 3), "unknown key 'depth'"),
    "no num_classes": (_drop("architecture.num_classes"), "num_classes"),
    "num_classes is text": (_set("architecture.num_classes", "10"), "num_classes"),
    "one class": (_set("architecture.num_classes", 1), "num_classes"),
    "image size not a multiple of 8": (_set("architecture.image_size", 30), "image_size"),
    "width NaN": (_set("architecture.width", float("nan")), "width"),
    "dropout 1.5": (_set("architecture.dropout", 1.5), "dropout"),
    "three input channels": (_set("architecture.in_channels", 3), "channel"),
    "another architecture": (_set("architecture.name", "ResNet"), "not FashionCNN"),
    "an unknown variant": (_set("architecture.variant", "paper"), "variant"),
    "code network read standardised": (_set("architecture.variant", "code"), "scaled 'standard'"),
    "std zero": (_set("normalization.std", 0.0), "std"),
    "other normalisation": (_set("normalization.mean", 0.5), "normalised"),
    "source size 64": (_set("normalization.source_size", 64), "64 px"),
    "tta_flip is text": (_set("tta_flip", "yes"), "tta_flip"),
}

CNN_WEIGHT_CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "integer weights": (lambda w: w.update({"conv1.0.weight": w["conv1.0.weight"].round().long()}),
                        "not floating point"),
    "boolean weights": (lambda w: w.update({"output.weight": w["output.weight"] > 0}),
                        "not floating point"),
    "NaN weights": (lambda w: w["conv9.0.weight"].view(-1)[3:7].fill_(float("nan")), "NaN"),
    "infinite weights": (lambda w: w["linear1.0.bias"].fill_(float("inf")), "infinite"),
    "NaN BatchNorm statistics": (lambda w: w["conv2.1.running_var"].fill_(float("nan")), "NaN"),
    "a missing weight": (lambda w: w.pop("conv5.0.weight"), "no weight conv5.0.weight"),
    "an extra weight": (lambda w: w.update({"conv10.weight": torch.zeros(3)}), "unknown weight"),
    "a weight of the wrong shape": (lambda w: w.update({"output.bias": torch.zeros(7)}), "shape"),
    "a weight that is a list": (lambda w: w.update({"output.bias": [0.0] * 10}), "not a tensor"),
}


def _write_cnn(path: Path, meta_change=None, weight_change=None, raw_meta: str | None = None,
               legacy: bool = False) -> Path:
    meta, weights = _legacy_cnn() if legacy else (_cnn_meta(), _cnn_weights())
    if meta_change is not None:
        meta_change(meta)
    if weight_change is not None:
        weight_change(weights)
    if raw_meta is None:
        save_checkpoint(path, Checkpoint(meta, weights))
    else:  # metadata text the JSON writer would not produce (too deep to write back)
        torch.save({"format_version": 1, "meta": raw_meta, "model": weights}, path)
    return path


@pytest.fixture(scope="module")
def shoe(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("shoe") / "shoe.png"
    image = Image.new("L", (40, 30))
    image.paste(255, (5, 10, 35, 20))
    image.save(path)
    return path


@pytest.mark.parametrize("case", list(LEGACY_CNN_META_CASES))
def test_classify_refuses_an_older_cnn_checkpoint_with_wrong_metadata(case: str, tmp_path: Path,
                                                                      shoe: Path):
    path = _write_cnn(tmp_path / "model.pt", meta_change=LEGACY_CNN_META_CASES[case][0],
                      legacy=True)
    result = runner.invoke(app, ["classify", str(shoe), "--checkpoint", str(path)])
    line = _final_error(result)
    assert line.startswith(f"error: {path} ") and LEGACY_CNN_META_CASES[case][1] in line, (case, line)


@pytest.mark.parametrize("case", list(CNN_META_CASES) + list(CNN_WEIGHT_CASES))
def test_classify_refuses_a_cnn_checkpoint_with_wrong_metadata_or_weights(
        case: str, tmp_path: Path, shoe: Path):
    path = tmp_path / "model.pt"
    if case in CNN_META_CASES:
        change, reason = CNN_META_CASES[case]
        if case == "nested past the JSON parser's limit":
            _write_cnn(path, raw_meta="[" * 50_000 + "]" * 50_000)
        else:
            _write_cnn(path, meta_change=change)
    else:
        change, reason = CNN_WEIGHT_CASES[case]
        _write_cnn(path, weight_change=change)
    result = runner.invoke(app, ["classify", str(shoe), "--checkpoint", str(path)])
    line = _final_error(result)
    assert line.startswith(f"error: {path} ") and reason in line, (case, line)


def test_the_schema_accepts_what_training_writes_and_older_optional_keys(tmp_path: Path,
                                                                          shoe: Path):
    """A checkpoint as training writes it loads; so does one from before configs, also from
    before width, dropout, variant, flip TTA and normalization were recorded (the network is
    then the text network at full width, as those versions trained it)."""
    def older(meta: dict) -> None:
        for key in ("width", "dropout", "variant"):
            meta["architecture"].pop(key)
        meta.pop("tta_flip"), meta.pop("normalization")

    written = _write_cnn(tmp_path / "new.pt")
    bundled = _write_cnn(tmp_path / "legacy.pt", legacy=True)
    oldest = _write_cnn(tmp_path / "oldest.pt", meta_change=older, legacy=True,
                        weight_change=lambda w: w.update(FashionCNN().state_dict()))
    for path in (written, bundled, oldest):
        result = runner.invoke(app, ["classify", str(shoe), "--checkpoint", str(path)])
        assert result.exit_code == 0, (path.name, result.output)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory) -> dict:
    """A tiny CNN trained for one epoch through the command line (run folder and data)."""
    root = tmp_path_factory.mktemp("cnn-run")
    data = synthetic_fashion(root / "fashion", train=96, test=40)
    env = {"FMTOOL_HOME": str(root / "home")}
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(data), "--epochs", "1",
                                 "--name", "r", *TINY_CNN], env=env)
    assert result.exit_code == 0, result.output
    return {"data": data, "home": root / "home", "run": root / "home/data/runs/cnn/r"}


@pytest.mark.parametrize("case", ["NaN weights", "integer weights", "nine class names",
                                  "image size not a multiple of 8"])
def test_eval_refuses_instead_of_printing_an_accuracy(case: str, cnn_run: dict, tmp_path: Path):
    """A NaN model once printed an 'accuracy' (its all-NaN logits pick class 0)."""
    path = tmp_path / "model.pt"
    if case in CNN_META_CASES:
        _write_cnn(path, meta_change=CNN_META_CASES[case][0])
    else:
        _write_cnn(path, weight_change=CNN_WEIGHT_CASES[case][0])
    result = runner.invoke(app, ["eval", str(path), "--data-dir", str(cnn_run["data"]),
                                 "--device", "cpu"])
    line = _final_error(result)
    assert line.startswith(f"error: {path} ") and "accuracy" not in result.stdout


VAE_META_CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "zero crop": (_set("config.crop", [0, 250]), "crop"),
    "crop of zero": (_set("config.crop", [224, 0]), "crop"),
    "crop bigger than the image": (_set("config.crop", [300, 250]), "crop"),
    "crop of three numbers": (_set("config.crop", [1, 2, 3]), "crop"),
    "crop is text": (_set("config.crop", "centre"), "crop"),
    "no config": (_drop("config"), "lacks config"),
    "an unknown key": (_set("config.channels", 3), "unknown key 'channels'"),
    "no latent size": (_drop("config.latent_dim"), "lacks latent_dim"),
    "latent size zero": (_set("config.latent_dim", 0), "latent_dim"),
    "latent size huge": (_set("config.latent_dim", 10**7), "latent_dim"),
    "latent size fractional": (_set("config.latent_dim", 8.5), "latent_dim"),
    "image size 48": (_set("config.image_size", 48), "image_size"),
    "image size 4096": (_set("config.image_size", 4096), "image_size"),
    "epoch is a list": (_set("epoch", [1]), "epoch"),
    # report --vae splits the faces again with the recipe's share: text there was a TypeError
    "recipe's val_fraction is text": (_set("recipe.val_fraction", "lots"), "recipe.val_fraction"),
    "recipe's val_fraction 1.5": (_set("recipe.val_fraction", 1.5), "recipe.val_fraction"),
    "recipe's batch size fractional": (_set("recipe.batch_size", 6.5), "recipe.batch_size"),
    "held-out faces negative": (_set("data.val_images", -3), "data.val_images"),
}

# The same for checkpoints in the layout from before configs (the bundled model's).
LEGACY_VAE_META_CASES: dict[str, tuple[Callable[[dict], None], str]] = {
    "preprocessing size disagrees": (_set("preprocessing.image_size", 128), "128 px faces"),
    "crop of three numbers": (_set("preprocessing.crop", [1, 2, 3]), "crop"),
    "no preprocessing": (_drop("preprocessing"), "lacks preprocessing"),
    "no architecture": (_drop("architecture"), "lacks config"),
    "no latent size": (_drop("architecture.latent_dim"), "lacks latent_dim"),
    "another resampling": (_set("preprocessing.resample", "nearest"), "nearest"),
    "another pixel range": (_set("preprocessing.range", [0, 255]), "range"),
    "latent size zero": (_set("architecture.latent_dim", 0), "latent_dim"),
}


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("faces")
    write_faces(folder, people=1, per_person=3, size=64)
    return folder


@pytest.mark.parametrize("command", ["reconstruct", "fuse"])
def test_vae_commands_refuse_wrong_metadata_and_weights(command: str, tmp_path: Path,
                                                        faces: Path):
    good = make_vae_checkpoint(tmp_path / "good.pt")
    face = sorted(faces.rglob("*.jpg"))[0]
    args = {"reconstruct": ["reconstruct", str(faces), "-r", "--out", str(tmp_path / "out")],
            "fuse": ["fuse", str(face), str(face), "--out", str(tmp_path / "fused.png")]}[command]
    weight_cases = {
        "NaN weights": (lambda w: w["fc_mu.weight"].fill_(float("nan")), "NaN"),
        "integer weights": (lambda w: w.update({"output.weight": w["output.weight"].long()}),
                            "not floating point"),
    }
    legacy = load_checkpoint(bundled_checkpoint("vae"))
    cases = {**VAE_META_CASES, **weight_cases,
             **{f"older layout, {k}": v for k, v in LEGACY_VAE_META_CASES.items()}}
    for name, (change, reason) in cases.items():
        ckpt = legacy if name.startswith("older layout") else load_checkpoint(good)
        meta, weights = copy.deepcopy(ckpt.meta), dict(ckpt.model)
        (change(weights) if name in weight_cases else change(meta))
        path = tmp_path / "bad.pt"
        save_checkpoint(path, Checkpoint(meta, weights))
        result = runner.invoke(app, [*args, "--checkpoint", str(path), "--device", "cpu"])
        line = _final_error(result)
        assert line.startswith(f"error: {path} ") and reason in line, (name, line)
        assert not (tmp_path / "out").exists() and not (tmp_path / "fused.png").exists()


# -- the training loop: NaN never becomes best.pt --------------------------------------------

class _DivergingTask:
    """A linear model whose loss turns NaN from the second epoch while its score keeps rising,
    as a CNN's accuracy can when NaN logits all pick one class."""

    kind, best_metric, best_mode, precision = "cnn", "score", "max", None

    def __init__(self, diverge_at: int = 1) -> None:
        self.model: nn.Module = nn.Linear(2, 1)
        self.epoch, self.diverge_at = 0, diverge_at

    def batches(self, epoch: int) -> list[torch.Tensor]:
        self.epoch = epoch
        return [torch.ones(4, 2), torch.ones(4, 2)]

    def step(self, model: nn.Module, batch: torch.Tensor):
        out = model(batch).sum()
        loss = out * (float("nan") if self.epoch >= self.diverge_at else 1.0)
        return loss, {"count": torch.tensor(float(len(batch)))}

    def summarize(self, sums):
        return {"train_loss": 0.0}

    def evaluate(self, model):
        return {"score": 0.5 + self.epoch / 10}

    def meta(self):
        return {"kind": "cnn", "recipe": {}}

    def after_epoch(self, run_dir, epoch):
        return None

    def status(self, sums):
        return ""


def test_a_diverged_epoch_never_replaces_best_pt_and_cannot_be_resumed(tmp_path: Path):
    recipe = CNN_PAPER.with_overrides(epochs=3, batch_size=4)
    run = tmp_path / "run"
    history = Trainer(_DivergingTask(), recipe, run, torch.device("cpu")).fit()
    assert [r["score"] for r in history] == [0.5, 0.6, 0.7]  # the score kept rising
    assert [r.get("diverged", False) for r in history] == [False, True, True]
    best = load_checkpoint(run / "best.pt")
    assert best.meta["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in best.model.values())
    assert [r.get("diverged", False) for r in read_metrics(run)] == [False, True, True]

    again = Trainer(_DivergingTask(), recipe.with_overrides(epochs=4), run, torch.device("cpu"))
    with pytest.raises(UserError, match=r"last\.pt cannot be resumed \(weight \S+ holds NaN or "
                                        r"infinite values"):
        again.resume()


@pytest.mark.parametrize("mode,best,value,improved", [
    ("max", None, float("nan"), False), ("max", None, float("inf"), False),
    ("max", 0.5, float("inf"), False), ("max", 0.5, float("nan"), False),
    ("min", None, float("-inf"), False), ("min", 3.0, float("-inf"), False),
    ("min", 3.0, float("nan"), False), ("min", float("nan"), 2.0, True),
    ("max", float("inf"), 0.7, True), ("max", 0.5, 0.7, True), ("min", 3.0, 2.0, True),
    ("min", None, 5.0, True),
])
def test_only_finite_scores_improve(mode: str, best, value: float, improved: bool, tmp_path):
    task = _DivergingTask()
    task.best_mode = mode
    trainer = Trainer(task, CNN_PAPER.with_overrides(epochs=1, batch_size=4), tmp_path,
                      torch.device("cpu"))
    trainer.state.best = best
    assert trainer._improved(value) is improved


def test_the_summary_skips_diverged_epochs():
    from fmtool.engine.training import selection_summary

    history = [{"epoch": 1, "val_acc": 0.4}, {"epoch": 2, "val_acc": 0.9, "diverged": True},
               {"epoch": 3, "val_acc": float("inf")}]
    assert "epoch 1 " in selection_summary(history, "val_acc", "max")


# -- damaged run.json, last.pt and metrics.jsonl ------------------------------------------------

def _copy_run(cnn_run: dict, tmp_path: Path) -> tuple[dict[str, str], Path]:
    home = tmp_path / "home"
    shutil.copytree(cnn_run["home"], home)
    return {"FMTOOL_HOME": str(home)}, home / "data/runs/cnn/r"


def _edit_json(key: str, value: Any) -> Callable[[Path], None]:
    def change(run: Path) -> None:
        info = json.loads((run / "run.json").read_text())
        target = info
        *parents, last = key.split(".")
        for part in parents:
            target = target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
        (run / "run.json").write_text(json.dumps(info))
    return change


_DELETE = object()
RUN_JSON_CASES: dict[str, Callable[[Path], None]] = {
    "not JSON": lambda run: (run / "run.json").write_text('{"recipe": {"lr": 0.1,'),
    "a JSON list": lambda run: (run / "run.json").write_text("[1, 2, 3]"),
    "nested too deep": lambda run: (run / "run.json").write_text("[" * 100_000 + "]" * 100_000),
    "no recipe": _edit_json("recipe", _DELETE),
    "recipe is text": _edit_json("recipe", "paper"),
    "learning rate is text": _edit_json("recipe.lr", "fast"),
    "learning rate NaN": _edit_json("recipe.lr", float("nan")),
    "learning rate negative": _edit_json("recipe.lr", -0.1),
    "no batch size": _edit_json("recipe.batch_size", _DELETE),
    "batch size fractional": _edit_json("recipe.batch_size", 16.5),
    "warm-up 1": _edit_json("recipe.warmup", 1.0),
    "seed beyond 64 bits": _edit_json("recipe.seed", 2**70),
    "width huge": _edit_json("recipe.width", 1e6),
    "unknown optimizer": _edit_json("recipe.optimizer", "sgd"),
    "flip is a number": _edit_json("recipe.flip", 3),
    "options are a list": _edit_json("options", [1]),
    "limit negative": _edit_json("options.limit", -3),
    "limit is text": _edit_json("options.limit", "all"),
    "another kind": _edit_json("kind", "vae"),
}


@pytest.mark.parametrize("case", list(RUN_JSON_CASES))
def test_resume_refuses_a_damaged_run_json(case: str, cnn_run: dict, tmp_path: Path):
    env, run = _copy_run(cnn_run, tmp_path)
    RUN_JSON_CASES[case](run)
    result = runner.invoke(app, ["train", "cnn", "--name", "r", "--resume", "--epochs", "2",
                                 "--data-dir", str(cnn_run["data"])], env=env)
    line = _final_error(result)
    assert f"{run / 'run.json'}" in line, (case, line)
    assert load_checkpoint(run / "last.pt").meta["epoch"] == 1


def _edit_state(change: Callable[[Checkpoint], None]) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        ckpt = load_checkpoint(run / "last.pt")
        change(ckpt)
        save_checkpoint(run / "last.pt", ckpt)
    return edit


LAST_PT_CASES: dict[str, Callable[[Path], None]] = {
    "history is not JSON": _edit_state(lambda c: c.train_state.update(history="[{")),
    "history of another length": _edit_state(lambda c: c.train_state.update(history="[]")),
    "history nested too deep": _edit_state(lambda c: c.train_state.update(
        history="[" * 100_000 + "]" * 100_000)),
    "epoch negative": _edit_state(lambda c: c.train_state.update(epoch=-1)),
    "epoch is text": _edit_state(lambda c: c.train_state.update(epoch="1")),
    "step beyond the epoch": _edit_state(lambda c: c.train_state.update(step=10**6)),
    "no optimizer": _edit_state(lambda c: c.train_state.pop("optimizer")),
    "optimizer is damaged": _edit_state(lambda c: c.train_state.update(optimizer={"x": 1})),
    "no random state": _edit_state(lambda c: c.train_state.pop("rng")),
    "best score is text": _edit_state(lambda c: c.train_state.update(best="high")),
    "training state is a list": _edit_state(lambda c: setattr(c, "train_state", [1])),
    "NaN weights": _edit_state(lambda c: c.model["output.weight"].fill_(float("nan"))),
    "integer weights": _edit_state(lambda c: c.model.update(
        {"output.weight": c.model["output.weight"].long()})),
}


@pytest.mark.parametrize("case", list(LAST_PT_CASES))
def test_resume_refuses_damaged_training_state(case: str, cnn_run: dict, tmp_path: Path):
    env, run = _copy_run(cnn_run, tmp_path)
    LAST_PT_CASES[case](run)
    result = runner.invoke(app, ["train", "cnn", "--name", "r", "--resume", "--epochs", "2",
                                 "--data-dir", str(cnn_run["data"])], env=env)
    line = _final_error(result)
    assert line.startswith(f"error: {run / 'last.pt'} "), (case, line)


METRICS_CASES = {
    "not JSON": '{"epoch": 1, "test_acc": 0.5',
    "a list": "[1, 2, 3]",
    "a number": "42",
    "epoch is text": '{"epoch": "one", "test_acc": 0.5}',
    "no epoch": '{"test_acc": 0.5}',
    "epoch zero": '{"epoch": 0, "test_acc": 0.5}',
    "a value is a table": '{"epoch": 1, "test_acc": {"a": 1}}',
    "a value is text": '{"epoch": 1, "test_acc": "high"}',
    "nested too deep": "[" * 100_000 + "]" * 100_000,
    "binary garbage": "\x00\x01\x02\xff",
}


@pytest.mark.parametrize("case", list(METRICS_CASES))
def test_eval_refuses_a_damaged_metrics_file_in_one_line(case: str, cnn_run: dict,
                                                         tmp_path: Path):
    env, run = _copy_run(cnn_run, tmp_path)
    good = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(good + METRICS_CASES[case] + "\n")
    result = runner.invoke(app, ["eval", str(run), "--data-dir", str(cnn_run["data"]),
                                 "--device", "cpu"], env=env)
    line = _final_error(result)
    assert f"{run / 'metrics.jsonl'}" in line and "line 2" in line, (case, line)


# == 6. option values ============================================================================

CNN_OPTION_CASES = [
    (["--lr", "0"], "--lr must be a number in (0, 10]"),
    (["--lr", "nan"], "--lr must be a number in (0, 10], got nan"),
    (["--lr", "inf"], "--lr must be"),
    (["--lr", "-1e-3"], "--lr must be"),
    (["--lr", "11"], "--lr must be"),
    (["--lr", "fast"], "--lr must be a number in (0, 10], got 'fast'"),
    (["--weight-decay", "nan"], "--weight-decay must be a number in [0, 1]"),
    (["--weight-decay", "-inf"], "--weight-decay must be"),
    (["--weight-decay", "5"], "--weight-decay must be"),
    (["--warmup", "1.0", "--schedule", "onecycle"], "--warmup must be a number in [0, 1)"),
    (["--warmup", "nan"], "--warmup must be"),
    (["--warmup", "-0.1"], "--warmup must be"),
    (["--ema-decay", "1"], "--ema-decay must be a number in [0, 1)"),
    (["--ema-decay", "nan"], "--ema-decay must be"),
    (["--gamma", "0"], "--gamma must be a number in (0, 1]"),
    (["--gamma", "inf"], "--gamma must be"),
    (["--seed", "-1"], f"--seed must be an integer from 0 to {MAX_SEED}"),
    (["--seed", str(2**63)], "--seed must be"),
    (["--seed", str(2**64)], "--seed must be"),
    (["--seed", "1.5"], "--seed must be"),
    (["--epochs", "0"], "--epochs must be an integer from 1"),
    (["--epochs", str(10**20)], "--epochs must be"),
    (["--batch-size", str(10**20)], "--batch-size must be"),
    (["--step-size", "0"], "--step-size must be"),
    (["--width", "0"], "--width must be a number in [0.05, 4]"),
    (["--width", "100"], "--width must be"),
    (["--width", "nan"], "--width must be"),
    (["--label-smoothing", "nan"], "--label-smoothing must be"),
    (["--dropout", "0.99"], "--dropout must be"),
    (["--erase", "inf"], "--erase must be"),
    (["--crop-padding", "1000"], "--crop-padding must be an integer from 0 to 16"),
    (["--val-size", "-1"], "--val-size must be"),
    (["--name", "run\n"], "--name 'run\\n' is not usable as a folder name"),
    (["--name", ""], "--name '' is not usable"),
    (["--name", "x" * 256], "(256 characters) is not usable"),
    (["--name", "a/b"], "--name 'a/b' is not usable"),
    (["--name", "_r"], "is not usable"),
    (["--name", ".hidden"], "is not usable"),
    (["--name", "with space"], "is not usable"),
]


@pytest.mark.parametrize("args,message", CNN_OPTION_CASES,
                         ids=[" ".join(a)[:40] for a, _ in CNN_OPTION_CASES])
def test_train_cnn_refuses_out_of_range_values_before_any_work(args: list[str], message: str,
                                                               tmp_path: Path,
                                                               fmtool_home: Path):
    # The data folder does not exist: any work before the check would fail differently.
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(tmp_path / "none"), *args])
    line = _final_error(result)
    assert line.startswith("error: ") and message in line, line
    assert not fmtool_home.exists() or not list(fmtool_home.rglob("*.pt"))


VAE_OPTION_CASES = [
    (["--image-size", "48"], "--image-size must be a multiple of 32 from 32 to 512, got 48"),
    (["--image-size", "1024"], "--image-size must be"),
    (["--image-size", "0"], "--image-size must be"),
    (["--latent-dim", "0"], "--latent-dim must be an integer from 1 to 2048"),
    (["--latent-dim", "100000"], "--latent-dim must be"),
    (["--image-size", "512", "--latent-dim", "1024"], "lower --image-size or --latent-dim"),
    (["--image-size", "256", "--latent-dim", "2048"], "lower --image-size or --latent-dim"),
    (["--val-fraction", "nan"], "--val-fraction must be"),
    (["--val-fraction", "1"], "--val-fraction must be"),
    (["--batch-size", "1"], "--batch-size must be an integer from 2"),
    (["--lr", "inf"], "--lr must be"),
]


@pytest.mark.parametrize("args,message", VAE_OPTION_CASES,
                         ids=[" ".join(a) for a, _ in VAE_OPTION_CASES])
def test_train_vae_refuses_out_of_range_values_before_decoding_any_face(
        args: list[str], message: str, faces: Path, fmtool_home: Path):
    result = runner.invoke(app, ["train", "vae", "--data-dir", str(faces), "--device", "cpu",
                                 *args])
    line = _final_error(result)
    assert message in line, line
    assert not (fmtool_home / "cache").exists()  # no face was decoded into the cache


OTHER_OPTION_CASES = [
    (["fuse", "a.jpg", "--group-a", "A", "--group-b", "B", "--strength", "nan"],
     "--strength must be a number in [-100, 100], got nan"),
    (["fuse", "a.jpg", "--group-a", "A", "--group-b", "B", "--strength", "inf"], "--strength"),
    (["fuse", "a.jpg", "--group-a", "A", "--group-b", "B", "--strength", "-inf"], "--strength"),
    (["fuse", "a.jpg", "--group-a", "A", "--group-b", "B", "--strength", "1e9"], "--strength"),
    (["fuse", "a.jpg", "b.jpg", "--steps", "1"], "--steps must be an integer from 2 to 1000"),
    (["fuse", "a.jpg", "b.jpg", "--steps", "100000"], "--steps must be"),
    (["reconstruct", "faces", "--seed", "-1"], "--seed must be an integer from 0 to"),
    (["reconstruct", "faces", "--seed", str(2**64)], "--seed must be"),
    (["project", "--seed", str(2**32)], "--seed must be an integer from 0 to 4294967295"),
    (["project", "--per-class", "0"], "--per-class must be an integer from 1 to 1000"),
    (["project", "--per-class", "5000"], "--per-class must be"),
]


@pytest.mark.parametrize("args,message", OTHER_OPTION_CASES,
                         ids=[" ".join(a[:1] + a[-2:]) for a, _ in OTHER_OPTION_CASES])
def test_other_commands_refuse_out_of_range_values(args: list[str], message: str):
    line = _final_error(runner.invoke(app, args))
    assert message in line, line


def test_project_refuses_more_per_class_than_the_test_set_has(cnn_run: dict):
    labels = load_from_dir(cnn_run["data"]).test_labels
    most = int(torch.bincount(labels, minlength=10).max())
    result = runner.invoke(app, ["project", "--checkpoint", str(cnn_run["run"]), "--data-dir",
                                 str(cnn_run["data"]), "--method", "pca", "--per-class",
                                 str(most + 1), "--device", "cpu"],
                           env={"FMTOOL_HOME": str(cnn_run["home"])})
    line = _final_error(result)
    assert f"--per-class must be at most {most} for this test set" in line, line
    fits = runner.invoke(app, ["project", "--checkpoint", str(cnn_run["run"]), "--data-dir",
                               str(cnn_run["data"]), "--method", "pca", "--per-class", str(most),
                               "--device", "cpu", "--json"],
                         env={"FMTOOL_HOME": str(cnn_run["home"])})
    assert fits.exit_code == 0, fits.output
    assert json.loads(fits.stdout)["points"] == len(labels)  # every class gave all it has


@pytest.mark.parametrize("args", [
    ["--warmup", "0.999", "--schedule", "onecycle"],  # just below the bound
    ["--warmup", "0.5", "--schedule", "onecycle"],  # a warm-up of exactly one batch of two
    ["--warmup", "0.5", "--schedule", "cosine"],
    ["--seed", str(MAX_SEED)],  # the largest seed, through every derived generator
    ["--lr", "10", "--weight-decay", "1"],  # the upper ends (the model may diverge; no crash)
])
def test_values_at_the_edges_of_their_ranges_train(args: list[str], tmp_path: Path):
    data = synthetic_fashion(tmp_path / "fashion", train=32, test=16)
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(data), "--epochs", "1",
                                 "--limit", "32", *TINY_CNN, *args])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name,usable", [
    ("r", True), ("a" * 255, True), ("2026-01-01_run.v2", True), ("a" * 256, False),
    ("", False), ("run\n", False), ("\nrun", False), ("run\r", False), ("ru n", False),
    ("..", False), ("-x", False), ("x/y", False), ("été", False), ("x\x00", False),
])
def test_run_names_must_be_whole_usable_folder_names(name: str, usable: bool):
    if usable:
        assert check_run_name(name) == name
    else:
        with pytest.raises(UserError, match="not usable as a folder name"):
            check_run_name(name)


def test_recipes_check_every_value_against_its_range():
    with pytest.raises(UserError, match="must be a number in"):
        CNN_PAPER.with_overrides(lr=float("nan")).check()
    with pytest.raises(UserError, match="latent"):
        VAE_PAPER.with_overrides(image_size=512, latent_dim=2048).check()
    assert VAE_PAPER.check() is VAE_PAPER and CNN_PAPER.check() is CNN_PAPER
    with pytest.raises(UserError, match="lacks epochs"):
        type(CNN_PAPER).from_dict({"lr": 0.1}, "run.json: ")


# == 8. data edge cases ===========================================================================

def _fashion_with(root: Path, name: str, **files) -> Path:
    """Synthetic Fashion-MNIST with some of its files replaced by other arrays."""
    import numpy as np

    folder = synthetic_fashion(root / name, train=20, test=10)
    for stem, array in files.items():
        write_idx(folder / f"{stem.replace('_', '-')}-idx{array.ndim}-ubyte.gz",
                  np.asarray(array, dtype=np.uint8))
    return folder


def _zeros(*shape: int):
    import numpy as np

    return np.zeros(shape, np.uint8)


FASHION_CASES = {
    "no training images": ({"train_images": _zeros(0, 28, 28), "train_labels": _zeros(0)},
                           "holds no data"),
    "no test labels": ({"t10k_labels": _zeros(0)}, "holds no data"),
    "images of zero width": ({"train_images": _zeros(20, 28, 0)}, "holds no data"),
    "images of zero height": ({"t10k_images": _zeros(10, 0, 28)}, "holds no data"),
    "32x32 images": ({"train_images": _zeros(20, 32, 32)}, "are 32x32 pixels"),
    "28x14 images": ({"t10k_images": _zeros(10, 28, 14)}, "are 28x14 pixels"),
    "1x1 images": ({"train_images": _zeros(20, 1, 1)}, "not Fashion-MNIST"),
}


@pytest.mark.parametrize("case", list(FASHION_CASES))
def test_fashion_data_with_no_data_or_other_sizes_is_refused(case: str, tmp_path: Path,
                                                             cnn_run: dict):
    files, reason = FASHION_CASES[case]
    folder = _fashion_with(tmp_path, "fashion", **files)
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(folder), "--epochs", "1",
                                 *TINY_CNN])
    line = _final_error(result)
    assert reason in line and str(folder) in line, line
    evaluated = runner.invoke(app, ["eval", str(cnn_run["run"]), "--data-dir", str(folder),
                                    "--device", "cpu"])
    assert reason in _final_error(evaluated)


def _face_folder(root: Path, layout: dict[str, list[str]]) -> Path:
    """{person: ["good", "empty", ...]}: good faces and unreadable files."""
    from tests.vae_helpers import face_image

    for p, (person, kinds) in enumerate(layout.items()):
        (root / person).mkdir(parents=True)
        for i, kind in enumerate(kinds):
            path = root / person / f"{person}_{i + 1:04d}.jpg"
            if kind == "good":
                face_image(p, i, 64).save(path)
            else:
                path.write_bytes(b"")
    return root


@pytest.mark.parametrize("layout", [
    {"A": ["good"], "B": ["good"]},
    {"A": ["good", "empty"], "B": ["good"]},
    {"A": ["good", "empty", "empty"], "B": ["good"], "C": ["empty"]},
], ids=["two people, one face each", "one readable training face", "one of five readable"])
def test_train_vae_needs_two_training_faces(layout: dict, tmp_path: Path):
    folder = _face_folder(tmp_path / "faces", layout)
    result = runner.invoke(app, ["train", "vae", "--data-dir", str(folder), "--image-size", "32",
                                 "--latent-dim", "4", "--epochs", "1", "--device", "cpu",
                                 "--precision", "fp32", "--val-fraction", "0.5"])
    line = _final_error(result)
    assert "at least 2" in line and str(folder) in line, line


def test_vae_task_refuses_a_single_training_face():
    from fmtool.data.faces import FaceSplits
    from fmtool.vae.task import VAETask

    faces = FaceSplits(train=torch.zeros(1, 3, 32, 32, dtype=torch.uint8),
                       val=torch.zeros(1, 3, 32, 32, dtype=torch.uint8), train_people=1,
                       val_people=1, source=Path("faces"))
    with pytest.raises(UserError, match="at least 2"):
        VAETask(faces, VAE_PAPER.with_overrides(image_size=32, latent_dim=4), torch.device("cpu"))


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
faces.decode_faces([Path(f"face{i}.jpg") for i in range(400)], 32)
print("finished", flush=True)
"""


def test_ctrl_c_during_face_decoding_does_not_wait_for_the_queue(tmp_path: Path):
    """400 queued decodes of 0.25 s each take 12 s or more on 8 threads; Ctrl-C must not."""
    process = subprocess.Popen([sys.executable, "-c", _SLOW_DECODE], env=_env(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "decoding"
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        start = time.monotonic()
        output, errors = process.communicate(timeout=60)
        waited = time.monotonic() - start
    finally:
        if process.poll() is None:
            process.kill()
    assert "KeyboardInterrupt" in errors and "finished" not in output  # the child prints to stdout
    assert waited < 3.0, f"Ctrl-C waited {waited:.1f} s for the queued decodes"


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
