"""`fmtool.CNN`: the report's Fashion-MNIST classifier as one Python object that loads, trains,
classifies, evaluates, projects and exports, as the `fmtool` commands do (they call it).

    from fmtool import CNN
    cnn = CNN.load()                         # the latest run, else the bundled model
    cnn.classify(["shoe.jpg"])[0].label      # 'Sneaker'
    cnn.evaluate().accuracy                  # on the 10,000 test images
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, overload

from fmtool.api.common import (
    Picture,
    Progress,
    TrainedModel,
    as_device,
    as_list,
    as_source,
    feedback_or_default,
)
from fmtool.api.results import Classification, Evaluation, LayerProjection
from fmtool.cnn.config import KIND, CNNConfig

if TYPE_CHECKING:
    import torch

    from fmtool.models.cnn import FashionCNN


@dataclass
class CNN(TrainedModel):
    """A trained (or freshly built) CNN on one device, with its config and checkpoint metadata.

    Make one with `CNN.load`, `CNN.train` or `CNN.from_config`. `feedback` receives the notes
    and progress of long calls; the default logs notes to the `fmtool` logger and shows no
    progress (see docs/python-api.md)."""

    model: FashionCNN
    config: CNNConfig
    kind = KIND

    @staticmethod
    def _read(path: Path, device: torch.device) -> tuple[FashionCNN, CNNConfig, dict[str, Any]]:
        from fmtool.cnn.inference import load_classifier

        return load_classifier(path, device)

    # -- making one ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: CNNConfig | None = None, *, device: str | torch.device = "cpu",
                    feedback: Progress = None) -> "CNN":
        """An untrained CNN (by default the report's network as its code trains it)."""
        from fmtool.cnn.recipes import PAPER

        config = CNNConfig.from_recipe(PAPER) if config is None else config
        return cls(config.build(), config, {}, None, as_device(device), feedback)

    @classmethod
    def train(cls, recipe: str | None = None, *, device: str | torch.device = "auto",
              precision: str = "auto", compile: str = "auto", cuda_graph: str = "auto",
              data_dir: str | os.PathLike | None = None, name: str | None = None,
              resume: bool = False, limit: int | None = None, test_limit: int | None = None,
              time_limit: float | None = None, feedback: Progress = None,
              **overrides: Any) -> "CNN":
        """Trains a CNN as `fmtool train cnn` does and returns it (its best.pt; last.pt when no
        epoch had a usable score). `recipe`: paper, strong, cpu or bundled (default: paper on a
        CUDA GPU, cpu elsewhere); any recipe value as a keyword (`epochs=3`, `lr=1e-3`, ...);
        `limit` / `test_limit`: train / evaluate on seeded subsets. The run folder (run.json,
        metrics.jsonl, last.pt, best.pt) is runs/cnn/`name` under fmtool's data folder; `resume`
        continues the named (or latest) run. `time_limit` (seconds from this call) ends the run
        early, at an epoch's end when one more epoch would not fit, as a finished, resumable run.
        Ctrl-C raises `TrainingInterrupted` once a resumable checkpoint is saved."""
        from fmtool.cnn import recipes
        from fmtool.engine.run_options import CNNRunOptions
        from fmtool.engine.training import plan_run, run_training

        deadline = None if time_limit is None else time.monotonic() + time_limit
        feedback = feedback_or_default(feedback)
        options = CNNRunOptions(limit=limit, test_limit=test_limit, precision=str(precision),
                                compile=str(compile), cuda_graph=str(cuda_graph))
        plan = plan_run(KIND, recipes.RECIPES, recipe, name, resume, overrides, options,
                        str(device), feedback)
        folder = None if data_dir is None else Path(data_dir)

        def build_task(chosen: torch.device) -> Any:
            from fmtool.cnn.task import CNNTask
            from fmtool.data.fashion import load_fashion_mnist
            from fmtool.engine.device import choose_precision

            run = plan.options
            task = CNNTask(load_fashion_mnist(folder), plan.recipe, chosen, limit=run.limit,
                           test_limit=run.test_limit,  # type: ignore[attr-defined]
                           precision=choose_precision(run.precision, chosen))
            if task.val_size != plan.recipe.val_size:  # a substitution is said, never silent
                feedback.note(f"val_size {plan.recipe.val_size} is more than a tenth of the "
                              f"{len(task.train_x) + task.val_size:,} training images: "
                              f"{task.val_size:,} are held out to pick the best epoch")
            return task

        run_training(plan, str(device), build_task, feedback, deadline)
        return cls.load(plan.folder, device=device, feedback=feedback)

    # -- using one -------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(self.config.class_names)

    def classify(self, images: Picture | Sequence[Picture], top_k: int = 1, *,
                 invert: str = "auto", single_view: bool = False,
                 save_input: str | os.PathLike | None = None,
                 force: bool = False) -> list[Classification]:
        """One result per picture, in order (see `Classification`). Files and pictures are
        prepared as Fashion-MNIST's items were: a photo's background removed, the item found,
        trimmed, centred and scaled to 28 pixels, light on black; where that rests on a guess,
        it is made nine ways and the answers averaged (`single_view`: one way, about three times
        faster). `invert`: auto, always or never (is the item darker than its background?).
        `save_input`: a folder to write the 28x28 picture the model sees for each one (a file
        of the same name there is refused before any work, unless `force`)."""
        from fmtool.cnn.classify import classify_pictures
        from fmtool.engine.bounds import Bounds

        Bounds(int, 1, None).check("top_k", top_k)
        sources = [as_source(picture) for picture in as_list(images)]
        folder = None if save_input is None else Path(save_input)
        results = classify_pictures(self.model, self.config, self.device, sources, top_k,
                                    invert, single_view, folder, force)
        return [Classification.from_dict(result) for result in results]

    def evaluate(self, limit: int | None = None, *, data_dir: str | os.PathLike | None = None,
                 precision: str = "fp32") -> Evaluation:
        """Accuracy, loss, per-class accuracy and the confusion matrix on Fashion-MNIST's test
        set (`limit`: a seeded subset of it), as `fmtool eval` measures them."""
        from fmtool.cnn.evaluate import evaluate_model
        from fmtool.engine.device import choose_precision

        report = evaluate_model(self.model, self.config, self.device,
                                None if data_dir is None else Path(data_dir), limit,
                                choose_precision(precision, self.device))
        return Evaluation(checkpoint=self.checkpoint, epoch=self.meta.get("epoch"),
                          precision=report["precision"], images=report["images"],
                          accuracy=report["accuracy"], loss=report["loss"],
                          per_class=report["per_class_accuracy"],
                          confusion=report["confusion_matrix"], class_names=report["class_names"])

    @overload
    def project(self, layer: str = ..., *, method: str = ..., per_class: int = ...,
                seed: int = ..., data_dir: str | os.PathLike | None = ...,
                save: str | os.PathLike | None = ..., thumbnails: bool = ...,
                force: bool = ...) -> LayerProjection: ...

    @overload
    def project(self, layer: Sequence[str], *, method: str = ..., per_class: int = ...,
                seed: int = ..., data_dir: str | os.PathLike | None = ...,
                save: str | os.PathLike | None = ..., thumbnails: bool = ...,
                force: bool = ...) -> list[LayerProjection]: ...

    def project(self, layer: str | Sequence[str] = "conv9", *, method: str = "tsne",
                per_class: int = 50, seed: int = 0, data_dir: str | os.PathLike | None = None,
                save: str | os.PathLike | None = None, thumbnails: bool = False,
                force: bool = False) -> LayerProjection | list[LayerProjection]:
        """What a layer (conv1..conv9, linear1, output; "all" or a list for several) makes of
        `per_class` test images of each class (seeded), projected to 2-D with t-SNE or PCA, and
        how well the classes separate there. One layer name gives one result, a list (or "all")
        a list. `save`: a figure file (.png, .svg, .pdf; one panel per layer, the CSV of the
        points beside it), refused where a file exists unless `force`."""
        from fmtool.cnn.activations import parse_layers

        layers = parse_layers(layer if isinstance(layer, str) else ",".join(layer))
        many = not isinstance(layer, str) or len(layers) > 1
        results = self._project(layers, method, per_class, seed, data_dir,
                                None if save is None else Path(save), thumbnails, force)
        return results if many else results[0]

    def _project(self, layers: list[str], method: str, per_class: int, seed: int,
                 data_dir: str | os.PathLike | None, save: Path | None, thumbnails: bool,
                 force: bool) -> list[LayerProjection]:
        from fmtool.cnn.projection import check_method, project_test_images
        from fmtool.engine.bounds import Bounds
        from fmtool.engine.io import check_outputs

        method = check_method(method)
        Bounds(int, 1, None).check("per_class", per_class)
        Bounds(int, 0, 2**32 - 1).check("seed", seed)  # scikit-learn takes 32-bit seeds
        if save is not None:  # before any work
            from fmtool.cnn.projection_plots import check_format

            check_outputs([check_format(save), save.with_suffix(".csv")], save.parent, force,
                          option="save")
        sample = project_test_images(self.model, self.config, layers, method, per_class, seed,
                                     self.device, None if data_dir is None else Path(data_dir),
                                     self.feedback)
        figure = table = None
        if save is not None:
            from fmtool.cnn.projection_plots import save_projection

            figure, table = save_projection(sample, self.class_names, method, save, thumbnails)
        return [LayerProjection(layer=item.layer, method=method, features=item.features,
                                points=item.coords, labels=sample.labels, indices=sample.indices,
                                knn_accuracy=item.knn_accuracy, silhouette=item.silhouette,
                                explained_variance=item.explained_variance, seconds=item.seconds,
                                figure=figure, csv=table)
                for item in sample.layers]

    def layers(self) -> dict[str, tuple[int, ...]]:
        """Each layer's output shape for one image (what `project` can show)."""
        from fmtool.cnn.activations import layer_shapes

        return layer_shapes(self.model, self.config.image_size)

    def export(self, path: str | os.PathLike, format: str = "onnx", *,
               force: bool = False) -> Path:
        """The network with its preprocessing as a file that runs without fmtool: ONNX (needs
        `pip install 'fmtool[export]'`) or TorchScript. It takes float32 [N, 1, 28, 28]
        pictures in [0, 1] (light item on black, as Fashion-MNIST) and gives logits; its
        metadata names the classes and the preprocessing. An existing file is refused before
        any work, unless `force`; the file appears whole or not at all."""
        from fmtool.cnn.export import export_classifier

        return export_classifier(self.model, class_names=self.class_names,
                                 image_size=self.config.image_size, tta_flip=self.config.tta_flip,
                                 path=Path(path), format=format, force=force)
