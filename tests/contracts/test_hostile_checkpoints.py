"""Hostile checkpoints, round two: files that load but whose metadata or weights must not be
trusted (schema per model family, finite float weights), for classify, eval, reconstruct and fuse.

Refusals are checked by `final_error` (tests/helpers/refusals.py).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from fmtool.cli.app import app
from fmtool.cnn.recipes import PAPER as CNN_PAPER
from fmtool.engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from fmtool.models.cnn import FashionCNN
from tests.helpers.checkpoints import cnn_meta, legacy_checkpoint
from tests.helpers.faces import make_vae_checkpoint, write_faces
from tests.helpers.refusals import WIDTH, final_error, runner

pytestmark = pytest.mark.usefixtures("one_thread")


# == 4. checkpoint metadata and weights =========================================================

def _cnn_meta() -> dict[str, Any]:
    """The text network's metadata as training writes it (its config table)."""
    return cnn_meta(CNN_PAPER.with_overrides(variant="text"), WIDTH)


def _cnn_weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return FashionCNN(width=WIDTH).state_dict()


def _legacy_cnn() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A checkpoint in the layout fmtool wrote before configs (architecture, class_names,
    normalization and tta_flip at the top), as the model fmtool 0.1 shipped."""
    shipped = legacy_checkpoint("cnn")
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
    line = final_error(result)
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
    line = final_error(result)
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
    line = final_error(result)
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
    legacy = legacy_checkpoint("vae")
    cases = {**VAE_META_CASES, **weight_cases,
             **{f"older layout, {k}": v for k, v in LEGACY_VAE_META_CASES.items()}}
    for name, (change, reason) in cases.items():
        ckpt = legacy if name.startswith("older layout") else load_checkpoint(good)
        meta, weights = copy.deepcopy(ckpt.meta), dict(ckpt.model)
        (change(weights) if name in weight_cases else change(meta))
        path = tmp_path / "bad.pt"
        save_checkpoint(path, Checkpoint(meta, weights))
        result = runner.invoke(app, [*args, "--checkpoint", str(path), "--device", "cpu"])
        line = final_error(result)
        assert line.startswith(f"error: {path} ") and reason in line, (name, line)
        assert not (tmp_path / "out").exists() and not (tmp_path / "fused.png").exists()


