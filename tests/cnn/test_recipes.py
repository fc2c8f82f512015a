"""Recipes beyond the report's: augmentation, schedules, EMA, validation-based selection, width."""

from pathlib import Path

import pytest
import torch

from fmtool.cnn.recipes import RECIPES as CNN_RECIPES
from fmtool.cnn.task import CNNTask
from fmtool.data import augment
from fmtool.data.fashion import load_from_dir
from fmtool.engine.checkpoint import load_checkpoint
from fmtool.engine.device import seed_everything
from fmtool.engine.schedules import WeightEMA, make_optimizer, make_schedule
from fmtool.engine.trainer import Trainer

CPU = torch.device("cpu")


def test_the_paper_recipe_is_table_1():
    paper = CNN_RECIPES["paper"]
    assert (paper.optimizer, paper.lr, paper.weight_decay, paper.schedule) == ("adam", 5e-4, 1e-3, "step")
    assert (paper.step_size, paper.gamma, paper.epochs, paper.batch_size, paper.seed) == (10, 0.5, 100, 64, 6)
    assert (paper.label_smoothing, paper.ema_decay, paper.crop_padding, paper.flip, paper.erase,
            paper.tta_flip, paper.width) == (0.0, 0.0, 0, False, 0.0, False, 1.0)
    # The report's protocol: all 60,000 training images, and the network its numbers came from.
    assert (paper.val_size, paper.variant, paper.dropout) == (0, "code", 0.7)


def test_our_recipes_keep_the_texts_network_and_select_on_held_out_images():
    for name in ("strong", "cpu", "bundled"):
        assert (CNN_RECIPES[name].variant, CNN_RECIPES[name].val_size) == ("text", 5000), name


def test_random_crop_shifts_content_and_fills_with_background():
    images = torch.zeros(64, 28, 28, dtype=torch.uint8)
    images[:, 10:18, 10:18] = 255
    shifted = augment.random_crop(images, 2)
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    assert (shifted.sum((1, 2)) == images[0].sum()).all()  # the square never leaves the frame
    assert len({tuple(s.nonzero()[0].tolist()) for s in shifted}) > 5  # many different shifts


def test_flip_and_erase_act_on_whole_batches():
    images = torch.arange(28, dtype=torch.uint8).repeat(200, 28, 1)
    flipped = augment.random_flip(images)
    mirrored = (flipped[:, 0, 0] == 27).float().mean()
    assert 0.3 < mirrored < 0.7
    x = torch.ones(200, 1, 32, 32)
    erased = augment.random_erase(x, probability=0.5)
    fraction = (erased == 0).flatten(1).any(1).float().mean()
    assert 0.3 < fraction < 0.7
    assert torch.equal(augment.random_erase(x, 0.0), x)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_per_batch_schedules_warm_up_then_decay(schedule: str):
    recipe = CNN_RECIPES["cpu"].with_overrides(schedule=schedule, epochs=2, warmup=0.25, lr=1e-2)
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_schedule(optimizer, recipe, steps_per_epoch=10)
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = rates.index(max(rates))
    assert 3 <= peak <= 6 and max(rates) == pytest.approx(1e-2, rel=0.05)
    assert rates[-1] < rates[0] and rates[-1] < 1e-3


def test_weight_ema_ramps_up_then_trails_the_weights():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = WeightEMA(model, decay=0.9)
    start = float(ema.model.weight)
    with torch.no_grad():
        model.weight.fill_(start + 1.0)
    ema.update(model)
    first_decay = 2 / 11  # (1 + t) / (10 + t) at t = 1, below 0.9
    assert float(ema.model.weight) == pytest.approx(start + (1 - first_decay), rel=1e-5)
    for _ in range(60):
        ema.update(model)
    assert float(ema.model.weight) == pytest.approx(start + 1.0, abs=1e-2)


def test_best_epoch_is_picked_on_validation_and_ema_weights_are_kept(tiny_fashion: Path, tmp_path: Path):
    recipe = CNN_RECIPES["strong"].with_overrides(epochs=2, batch_size=16, width=0.125, val_size=40)
    seed_everything(recipe.seed)
    task = CNNTask(load_from_dir(tiny_fashion), recipe, CPU)
    assert task.val_size == 20  # a tenth of the 200 training images at most
    assert len(task.train_x) == 180
    trainer = Trainer(task, recipe, tmp_path / "run", CPU)
    # The weights of every epoch, as they stand once that epoch's best.pt has been written.
    ema_at: dict[int, dict[str, torch.Tensor]] = {}
    raw_at: dict[int, dict[str, torch.Tensor]] = {}
    task.after_epoch = lambda run_dir, epoch: (
        ema_at.__setitem__(epoch, clone_state(trainer.ema.model)),
        raw_at.__setitem__(epoch, clone_state(trainer.model)))
    history = trainer.fit()
    assert {"val_acc", "test_acc"} <= set(history[0])
    assert sorted(ema_at) == [1, 2]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    picked = max(history, key=lambda r: r["val_acc"])  # the first of equals, as the Trainer keeps
    assert best.meta["epoch"] == picked["epoch"] and best.meta["config"]["tta_flip"] is True
    kept, raw = ema_at[picked["epoch"]], raw_at[picked["epoch"]]
    assert best.model.keys() == kept.keys()
    for key, value in kept.items():
        assert torch.equal(best.model[key], value), key
    # The EMA differs from the trained weights, so the comparison above can tell them apart.
    assert any(not torch.equal(kept[key], raw[key]) for key in kept
               if kept[key].is_floating_point())


def clone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def test_cpu_recipe_is_a_quarter_width_model():
    task = CNNTask(load_from_dir_stub(), CNN_RECIPES["cpu"], CPU)
    assert task.model.conv9[0].out_channels == 128


def test_dropout_is_a_recipe_value_that_the_checkpoint_remembers(tmp_path: Path):
    from fmtool.cnn.inference import load_classifier
    from fmtool.engine.checkpoint import Checkpoint, save_checkpoint

    recipe = CNN_RECIPES["paper"].with_overrides(dropout=0.2, width=0.125, variant="text")
    task = CNNTask(load_from_dir_stub(), recipe, CPU)
    rates = {m.p for m in task.model.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.2}
    save_checkpoint(tmp_path / "m.pt", Checkpoint(task.meta(),
                                                  task.model.state_dict()))
    model, config, _ = load_classifier(tmp_path / "m.pt", CPU)
    assert config.dropout == 0.2
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.2}
    assert CNN_RECIPES["paper"].dropout == 0.7  # the report's rate stays the paper default


def test_a_compiled_model_only_ever_sees_full_batches(tiny_fashion: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    """The ragged last batch of an epoch steps eagerly rather than forcing a second compile."""
    seen: list[int] = []

    class RecordingCompile(torch.nn.Module):
        def __init__(self, module: torch.nn.Module):
            super().__init__()
            self.module = module

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(len(x))
            return self.module(x)

    monkeypatch.setattr(torch, "compile", RecordingCompile)
    recipe = CNN_RECIPES["paper"].with_overrides(epochs=1, batch_size=32, width=0.125, val_size=0)
    task = CNNTask(load_from_dir(tiny_fashion), recipe, CPU)
    assert len(task.train_x) % 32  # 200 images: six full batches and one of 8
    Trainer(task, recipe, tmp_path / "run", CPU, compile=True).fit()
    assert seen == [32] * (len(task.train_x) // 32)


def load_from_dir_stub():
    from fmtool.data.fashion import FashionMNIST

    images = torch.zeros(20, 28, 28, dtype=torch.uint8)
    labels = torch.arange(20) % 10
    return FashionMNIST(images, labels, images, labels, Path("stub"))


def test_the_closing_summary_names_the_selected_epoch_and_the_reports_measure():
    from fmtool.engine.training import selection_summary

    history = [{"epoch": 1, "val_acc": 0.80, "test_acc": 0.81},
               {"epoch": 2, "val_acc": 0.85, "test_acc": 0.83},
               {"epoch": 3, "val_acc": 0.84, "test_acc": 0.86}]
    picked, final, measure = selection_summary(history, "val_acc", "max").splitlines()
    assert picked.startswith("best.pt: epoch 2 (selected by val_acc): val_acc 0.8500")
    assert final == "final epoch 3: test_acc 0.8600 (no selection)"
    assert measure == ("the report's measure, best test_acc over epochs (chosen on the test set, "
                       "as the report did): 0.8600 (epoch 3)")
    nan = [{"epoch": 1, "val_acc": float("nan"), "test_acc": float("nan")}]
    assert "best.pt was not written" in selection_summary(nan, "val_acc", "max")


def test_without_validation_the_summary_says_best_pt_was_chosen_on_the_test_set():
    from fmtool.engine.training import selection_summary

    history = [{"epoch": 1, "test_acc": 0.80}, {"epoch": 2, "test_acc": 0.86},
               {"epoch": 3, "test_acc": 0.84}]
    picked, final, measure = selection_summary(history, "test_acc", "max").splitlines()
    assert picked.startswith("best.pt: epoch 2 (selected by test_acc on the test set, as the "
                             "report did): test_acc 0.8600")
    assert final == "final epoch 3: test_acc 0.8400 (no selection)"
    assert measure.endswith("0.8600 (epoch 2)")
