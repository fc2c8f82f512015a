"""The two CNNs (`--variant text|code`): what each is fed, what a checkpoint remembers, and that
every command rebuilding a model from a checkpoint feeds it what it was trained on."""

from pathlib import Path

import pytest
import torch

from fmtool.cnn.activations import capture
from fmtool.cnn.inference import load_classifier, predict_logits
from fmtool.cnn.recipes import RECIPES
from fmtool.cnn.task import CNNTask
from fmtool.data import fashion
from fmtool.data.fashion import load_from_dir
from fmtool.engine.bundled import bundled_checkpoint
from fmtool.engine.checkpoint import Checkpoint, save_checkpoint
from fmtool.models.cnn import FashionCNN
from tests.helpers.checkpoints import legacy_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def first_layer_inputs(model: FashionCNN) -> tuple[list[torch.Tensor], object]:
    """Records what the network is given (conv1's input) on each forward pass."""
    seen: list[torch.Tensor] = []
    hook = model.conv1.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    return seen, hook


@pytest.mark.parametrize("variant", ["text", "code"])
def test_training_feeds_each_variant_its_own_input_scaling(variant: str, tiny_fashion: Path):
    recipe = RECIPES["paper"].with_overrides(variant=variant, width=0.0625, batch_size=16)
    task = CNNTask(load_from_dir(tiny_fashion), recipe, CPU)
    seen, hook = first_layer_inputs(task.model)
    batch = task.batches(0)[0]
    task.step(task.model, batch)
    hook.remove()
    expected = fashion.to_model_input(task.train_x[batch], 32, task.model.input_scaling)
    assert torch.allclose(seen[0], expected)
    if variant == "code":  # [0, 1], each image from 0 to 1: min-max, not standardised
        assert seen[0].amin((1, 2, 3)).eq(0).all() and seen[0].amax((1, 2, 3)).eq(1).all()
    else:
        assert seen[0].min() < -0.5  # black is below the mean once standardised


def test_a_code_checkpoint_comes_back_as_the_code_network_and_is_fed_min_max(tmp_path: Path,
                                                                             tiny_fashion: Path):
    data = load_from_dir(tiny_fashion)
    recipe = RECIPES["paper"].with_overrides(width=0.0625)
    task = CNNTask(data, recipe, CPU)
    assert task.meta()["config"]["variant"] == "code" and task.config.scaling == "minmax"
    save_checkpoint(tmp_path / "code.pt", Checkpoint(task.meta(), task.model.state_dict()))

    model, _, _ = load_classifier(tmp_path / "code.pt", CPU)
    assert model.variant == "code" and model.conv3[0].bias is not None
    assert model.drop3.p == 0.5 and model.drop1.p == recipe.dropout
    images = data.test_images[:12]
    minmax = fashion.to_model_input(images, 32, "minmax")
    seen, hook = first_layer_inputs(model)
    predict_logits(model, images, 32, CPU)  # `eval` and `classify`
    capture(model, images, ["conv1"], 32, CPU)  # `project`
    hook.remove()
    assert len(seen) == 2 and all(torch.allclose(x, minmax) for x in seen)
    assert not torch.allclose(minmax, fashion.to_model_input(images, 32, "standard"))


def test_checkpoints_from_before_the_variants_are_the_text_network(tmp_path: Path):
    shipped = legacy_checkpoint("cnn")  # fmtool 0.1's layout, before configs
    meta = shipped.meta
    del meta["architecture"]["variant"], meta["normalization"]["scaling"]
    save_checkpoint(tmp_path / "old.pt", Checkpoint(meta, shipped.model))
    model, _, _ = load_classifier(tmp_path / "old.pt", CPU)
    assert model.variant == "text" and model.input_scaling == "standard"


def test_the_bundled_cnn_is_the_text_network():
    shipped = bundled_checkpoint("cnn")
    assert shipped is not None
    model, config, _ = load_classifier(shipped, CPU)
    assert config.variant == "text" == model.variant
    assert model.input_scaling == "standard"
