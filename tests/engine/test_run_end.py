"""How a training run ends under torchrun: every rank waits for rank 0's checkpoints before the
process group closes, so no rank reads a run folder rank 0 is still writing."""

from pathlib import Path

import pytest

from fmtool import CNN
from fmtool.engine import distributed
from fmtool.engine.trainer import Trainer


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(distributed, "barrier", lambda: seen.append("barrier"))
    monkeypatch.setattr(distributed, "shutdown", lambda: seen.append("shutdown"))
    return seen


def test_a_finished_run_waits_for_every_rank_then_closes(tiny_fashion: Path, calls: list[str]):
    CNN.train("cpu", data_dir=tiny_fashion, epochs=1, width=0.0625, limit=100, test_limit=50)
    assert calls == ["barrier", "shutdown"]


def test_a_run_that_fails_while_training_closes_without_waiting_for_ranks_that_may_be_gone(
        tiny_fashion: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch):
    def crash(self: Trainer) -> None:
        raise RuntimeError("a rank died")

    monkeypatch.setattr(Trainer, "fit", crash)
    with pytest.raises(RuntimeError, match="a rank died"):
        CNN.train("cpu", data_dir=tiny_fashion, epochs=1, width=0.0625, limit=100, test_limit=50)
    assert calls == ["shutdown"]
