"""`fmtool project`: layer capture, PCA / t-SNE, separation scores, figures, CSV and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.cnn import projection_plots
from fmtool.cnn.activations import capture, layer_groups, layer_shapes, parse_layers, sample_per_class
from fmtool.cnn.inference import predict_logits
from fmtool.cnn.projection import Projection, analyse_layer, knn_accuracy, project, silhouette, write_csv
from fmtool.cnn.recipes import RECIPES as CNN_RECIPES
from fmtool.data import fashion
from fmtool.engine.paths import runs_dir
from fmtool.errors import UserError
from fmtool.models.cnn import LAYER_NAMES, FashionCNN
from tests.helpers.checkpoints import save_cnn

WIDTH = 0.0625  # channels 2, 4, 8, 32: the report's topology at a size tests run in milliseconds


def tiny_model(seed: int = 0) -> FashionCNN:
    torch.manual_seed(seed)
    return FashionCNN(num_classes=10, width=WIDTH, image_size=32).eval()


def save_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """`tiny_model(seed)` saved as a `train cnn` run saves its checkpoint."""
    recipe = CNN_RECIPES["paper"].with_overrides(variant="text")  # tiny_model's network
    data = {"train_images": 0, "val_images": 0, "test_images": 0, "source": "none (untrained)"}
    return save_cnn(path, recipe, WIDTH, seed, data=data)


def random_images(count: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


# -- capturing layers ------------------------------------------------------------------------

def test_layer_shapes_name_every_layer_in_forward_order():
    shapes = layer_shapes(tiny_model(), image_size=32)
    assert list(shapes) == list(LAYER_NAMES)
    assert shapes["conv1"] == (2, 32, 32)
    assert shapes["conv2"] == (4, 32, 32)
    assert shapes["conv6"] == (8, 16, 16)
    assert shapes["conv9"] == (32, 8, 8)
    assert shapes["linear1"] == (32,)
    assert shapes["output"] == (10,)


def test_capture_flattens_each_layer_and_matches_the_model_output():
    model, images = tiny_model(), random_images(7)
    captured = capture(model, images, ["conv2", "output"], 32, torch.device("cpu"), batch_size=3)
    assert captured["conv2"].shape == (7, 4 * 32 * 32)
    assert captured["output"].dtype == torch.float32
    logits = predict_logits(model, images, 32, torch.device("cpu"))
    torch.testing.assert_close(captured["output"], logits)
    assert all(not model.named_layer(name)._forward_hooks for name in LAYER_NAMES)


def test_capture_of_an_early_layer_stops_there_and_agrees_with_a_full_pass():
    model, images = tiny_model(), random_images(5)
    later_calls: list[int] = []
    model.conv2.register_forward_hook(lambda *_: later_calls.append(1))
    early = capture(model, images, ["conv1"], 32, torch.device("cpu"))
    assert later_calls == []
    full = capture(model, images, ["conv1", "output"], 32, torch.device("cpu"))
    assert later_calls == [1]
    torch.testing.assert_close(early["conv1"], full["conv1"])


def test_capture_reports_progress_per_batch():
    seen: list[int] = []
    capture(tiny_model(), random_images(7), ["linear1"], 32, torch.device("cpu"), batch_size=3,
            on_batch=seen.append)
    assert seen == [3, 3, 1]


def test_parse_layers_keeps_order_drops_repeats_and_knows_all():
    assert parse_layers("conv9, linear1,conv9,output") == ["conv9", "linear1", "output"]
    assert parse_layers("all") == list(LAYER_NAMES)
    with pytest.raises(UserError, match="unknown layer 'conv10'.*choose from conv1"):
        parse_layers("conv9,conv10")
    with pytest.raises(UserError, match="no layer given"):
        parse_layers(" , ")


def test_sample_per_class_draws_every_class_from_a_sorted_set_reproducibly():
    labels = torch.arange(10).repeat_interleave(30)  # sorted by label, like the shared copy
    labels = torch.cat([labels, torch.tensor([3])])
    picked = sample_per_class(labels, 5, seed=1, num_classes=10)
    assert len(picked) == 50 and len(set(picked.tolist())) == 50
    assert torch.bincount(labels[picked], minlength=10).tolist() == [5] * 10
    assert torch.equal(picked, sample_per_class(labels, 5, seed=1, num_classes=10))
    assert not torch.equal(picked, sample_per_class(labels, 5, seed=2, num_classes=10))
    assert labels[picked[:10]].unique().numel() > 1  # shuffled across classes, not in blocks
    few = sample_per_class(labels, 100, seed=1, num_classes=10)
    assert len(few) == len(labels)  # a class with fewer images gives all it has


def test_layer_groups_fit_the_memory_budget():
    features = {"conv2": 1000, "conv9": 500, "linear1": 10, "output": 1}
    budget = 4 * 100 * 1000  # float32 bytes of 100 images x 1000 features
    assert layer_groups(["conv2", "conv9", "linear1", "output"], features, 100, budget) == [
        ["conv2"], ["conv9", "linear1", "output"]]
    assert layer_groups(["conv9", "output"], features, 10, budget) == [["conv9", "output"]]


# -- projections and scores ------------------------------------------------------------------

def test_pca_of_a_tiny_models_layer_is_its_top_two_principal_components():
    features = capture(tiny_model(), random_images(40), ["conv9"], 32,
                       torch.device("cpu"))["conv9"].numpy()
    coords, share = project(features, "pca", seed=0)
    assert coords.shape == (40, 2)
    centred = features - features.mean(0)
    u, s, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(np.abs(coords), np.abs(u[:, :2] * s[:2]), rtol=1e-3, atol=1e-3)
    assert share == pytest.approx(float((s[:2] ** 2).sum() / (s ** 2).sum()), rel=1e-3)


def test_tsne_gives_finite_reproducible_points_for_wide_layers():
    features = np.random.default_rng(0).normal(size=(60, 300)).astype(np.float32)
    coords, share = project(features, "tsne", seed=3)
    assert coords.shape == (60, 2) and np.isfinite(coords).all() and share is None
    np.testing.assert_allclose(coords, project(features, "tsne", seed=3)[0])


def test_project_refuses_unknown_methods_and_too_few_points():
    with pytest.raises(UserError, match="choose tsne or pca"):
        project(np.zeros((10, 4)), "umap", seed=0)
    with pytest.raises(UserError, match="at least 3 images"):
        project(np.zeros((2, 4)), "pca", seed=0)


def test_separation_scores_tell_clusters_from_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 25)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]])
    clustered = centres[labels] + rng.normal(scale=0.3, size=(100, 2))
    assert knn_accuracy(clustered, labels) == 1.0
    assert silhouette(clustered, labels) > 0.9
    noise = rng.normal(size=(100, 2))
    assert knn_accuracy(noise, labels) < 0.5
    assert abs(silhouette(noise, labels)) < 0.1
    assert silhouette(clustered, np.zeros(100, dtype=int)) is None


@pytest.mark.parametrize("per_class, score", [(1, None), (2, None), (3, None), (4, 1.0)])
def test_knn_accuracy_needs_enough_points_of_each_class(per_class: int, score: float | None):
    """Ten classes far apart: with 2 a class, a point's 5 neighbours hold one of its class and
    a pair of another, so the score would be 0; it is left out until it can mean something."""
    labels = np.repeat(np.arange(10), per_class)
    apart = np.stack([labels * 100.0, np.arange(len(labels)) % per_class], axis=1)
    assert knn_accuracy(apart, labels) == score


def test_analyse_layer_bundles_points_scores_and_time():
    features = np.random.default_rng(1).normal(size=(30, 8)).astype(np.float32)
    labels = np.arange(30) % 3
    result = analyse_layer("linear1", features, labels, "pca", seed=0)
    assert result.layer == "linear1" and result.features == 8 and result.coords.shape == (30, 2)
    assert 0 <= result.knn_accuracy <= 1 and result.explained_variance is not None
    assert set(result.scores()) >= {"layer", "features", "knn_accuracy", "silhouette"}


# -- figure and CSV --------------------------------------------------------------------------

def _projections(count: int) -> list[Projection]:
    rng = np.random.default_rng(0)
    return [Projection(layer, 16, rng.normal(size=(count, 2)).astype(np.float32), 0.5, 0.1,
                       None, 0.0) for layer in ("conv9", "output")]


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"),
                                          (".pdf", b"%PDF")])
def test_figure_format_follows_the_file_name(tmp_path, suffix, magic):
    labels = np.arange(20) % 10
    path = projection_plots.draw(_projections(20), labels, fashion.CLASSES, "tsne",
                                 tmp_path / f"fig{suffix}")
    assert path.read_bytes().startswith(magic)
    if suffix == ".svg":
        text = path.read_text()
        assert "Ankle boot" in text and "conv9" in text  # legend with class names, panel titles


def test_figure_with_thumbnails_and_bad_format(tmp_path):
    labels = np.arange(20) % 10
    images = random_images(20).numpy()
    path = projection_plots.draw(_projections(20), labels, fashion.CLASSES, "pca",
                                 tmp_path / "thumbs.png", images=images)
    assert path.stat().st_size > 10_000
    with pytest.raises(UserError, match="must end in .png, .svg, .pdf"):
        projection_plots.check_format(tmp_path / "fig.jpg")


def test_thumbnail_canvas_tints_each_image_with_its_class_colour_at_its_point():
    coords = np.array([[0.0, 0.0], [1.0, 1.0]])
    images = np.full((2, 28, 28), 255, dtype=np.uint8)
    colours = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    canvas, extent = projection_plots.thumbnail_canvas(coords, images, colours, side=100)
    inside = projection_plots.THUMB_MARGIN
    np.testing.assert_allclose(canvas[-1 - inside, inside], [1, 0, 0])  # (0, 0): bottom left, red
    np.testing.assert_allclose(canvas[inside, -1 - inside], [0, 0, 1])  # (1, 1): top right, blue
    np.testing.assert_allclose(canvas[50, 50], [1, 1, 1])  # white between them
    for edge in (canvas[:inside], canvas[-inside:], canvas[:, :inside], canvas[:, -inside:]):
        np.testing.assert_allclose(edge, 1.0)  # no thumbnail touches the frame
    assert extent[0] < 0 and extent[1] > 1  # room for the thumbnails' halves beyond the points


def test_csv_has_one_row_per_point_and_layer(tmp_path):
    labels = np.arange(20) % 10
    path = write_csv(tmp_path / "points.csv", _projections(20), np.arange(100, 120), labels,
                     fashion.CLASSES)
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert len(rows) == 40
    assert rows[0].keys() == {"layer", "index", "label", "class", "x", "y"}
    assert rows[-1]["layer"] == "output" and rows[-1]["index"] == "119"
    assert rows[9]["class"] == "Ankle boot" and rows[9]["label"] == "9"


# -- the command line ------------------------------------------------------------------------

def run_cli(*args: str):
    return CliRunner().invoke(app, ["project", *args])


def test_cli_end_to_end_on_a_tiny_checkpoint(tiny_fashion, tmp_path):
    run = runs_dir("cnn") / "tiny"
    save_tiny_checkpoint(run / "last.pt")
    result = run_cli("--layer", "conv9,output", "--method", "pca", "--per-class", "4",
                     "--json", "--data-dir", str(tiny_fashion))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["points"] == 40 and report["checkpoint"] == str(run / "last.pt")
    assert [row["layer"] for row in report["layers"]] == ["conv9", "output"]
    assert report["layers"][0]["features"] == 32 * 8 * 8
    assert Path(report["figure"]) == run / "projection-pca-conv9+output.png"
    rows = list(csv.DictReader(Path(report["csv"]).read_text().splitlines()))
    assert len(rows) == 80 and {row["layer"] for row in rows} == {"conv9", "output"}

    out = tmp_path / "figures" / "tsne.svg"
    result = run_cli("--layer", "linear1", "--per-class", "3", "--thumbnails", "--out", str(out),
                     "--checkpoint", str(run), "--data-dir", str(tiny_fashion))
    assert result.exit_code == 0, result.output
    assert "5-NN accuracy" in result.stdout and "linear1" in result.stdout
    assert out.is_file() and out.with_suffix(".csv").is_file()


def test_cli_lists_layers_of_the_checkpoint(tmp_path):
    checkpoint = save_tiny_checkpoint(tmp_path / "tiny.pt")
    result = run_cli("--list-layers", "--json", "--checkpoint", str(checkpoint))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["layer"] for row in rows] == list(LAYER_NAMES)
    assert rows[8] == {"layer": "conv9", "shape": [32, 8, 8], "features": 2048}


@pytest.mark.parametrize("args,message", [
    (["--layer", "conv10"], "error: unknown layer 'conv10'; choose from conv1"),
    (["--method", "umap"], "error: unknown method 'umap'; choose tsne or pca"),
    (["--out", "fig.jpg"], "error: --out fig.jpg: the figure's name must end in"),
    ([], "error: no CNN checkpoint yet; run `fmtool train cnn` first"),
])
def test_cli_mistakes_give_one_line_errors(args, message, monkeypatch):
    from fmtool.engine import runs

    monkeypatch.setattr(runs, "bundled_checkpoint", lambda kind: None)  # a build without weights
    result = run_cli(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output

