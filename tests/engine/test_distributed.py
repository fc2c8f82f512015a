"""`torchrun --nproc-per-node 2 -m fmtool train cnn` on the CPU (gloo): one run folder, written by
rank 0 alone, and the weights of one process with the same global batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.fashion import synthetic_fashion
from tests.helpers.paths import REPO

# The report's recipe without its randomness: no augmentation (paper), no dropout, the text's
# network (the code one keeps a fixed 0.5 dropout). 200 images in batches of 16 split evenly.
COMMON = ["train", "cnn", "--recipe", "paper", "--variant", "text", "--dropout", "0",
          "--epochs", "2", "--width", "0.125", "--lr", "2e-3", "--precision", "fp32",
          "--device", "cpu"]

# Runs `fmtool` and saves the weights each process ends with (rank 0 alone writes checkpoints).
# GHOST_BATCHES=2 makes one process normalise each half of a batch on its own, as two processes'
# BatchNorm does with their shards, so the two runs compute the same gradients.
DRIVER = """
import os, sys
import torch
from fmtool.engine.trainer import Trainer

fit = Trainer.fit
def save(model, name):
    weights = {k: v.detach().cpu().clone() for k, v in model.named_parameters()}
    torch.save(weights, os.path.join(os.environ["WEIGHTS_OUT"], f"{name}{os.environ.get('RANK', '0')}.pt"))
def fit_and_save(self):
    save(self.model, "start")
    history = fit(self)
    save(self.model, "rank")
    return history
Trainer.fit = fit_and_save

if os.environ.get("GHOST_BATCHES"):
    norm = torch.nn.BatchNorm2d.forward
    def halves(self, x):
        if not self.training:
            return norm(self, x)
        return torch.cat([norm(self, part) for part in x.tensor_split(int(os.environ["GHOST_BATCHES"]))])
    torch.nn.BatchNorm2d.forward = halves

from fmtool.cli.app import main
sys.argv = ["fmtool", *sys.argv[1:]]
main()
"""


def run(args: list[str], home: Path, data: Path, **env: str) -> subprocess.CompletedProcess:
    home.mkdir(parents=True)
    # the driver is a script outside the checkout: it must import this checkout's fmtool
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "FMTOOL_HOME": str(home), "FMTOOL_FASHION_DIR": str(data),
           "OMP_NUM_THREADS": "1", "WEIGHTS_OUT": str(home), "PYTHONPATH": path, **env}
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_two_processes_end_with_the_weights_of_one_with_the_same_global_batch(tmp_path: Path):
    data = synthetic_fashion(tmp_path / "data")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    two = run([sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(driver), *COMMON, "--batch-size", "8"],
              tmp_path / "two", data)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "x 2 processes (global batch 16)" in two.stderr
    assert two.stderr.count("epoch 2/2") == 1  # only rank 0 reports

    runs = list((tmp_path / "two" / "data" / "runs" / "cnn").iterdir())
    assert len(runs) == 1
    assert sorted(p.name for p in runs[0].iterdir() if p.suffix == ".pt") == ["best.pt", "last.pt"]

    one = run([sys.executable, str(driver), *COMMON, "--batch-size", "16"], tmp_path / "one", data,
              GHOST_BATCHES="2")
    assert one.returncode == 0, one.stderr[-2000:]

    rank0, rank1 = (torch.load(tmp_path / "two" / f"rank{r}.pt") for r in (0, 1))
    single = torch.load(tmp_path / "one" / "rank0.pt")
    start = torch.load(tmp_path / "one" / "start0.pt")
    assert rank0.keys() == rank1.keys() == single.keys()
    for name in single:
        # the gradients were averaged: both processes took the same steps ...
        assert torch.equal(rank0[name], rank1[name]), name
        # ... and those of one process on the whole batch, up to float rounding. Adam's first
        # steps move a weight by about lr whatever its gradient's size, so a rounding that flips
        # the sign of a near-zero gradient moves that one weight by 2 x lr: compare the mean
        # difference with how far training moved the weights (measured: at most 1%; other
        # shards or unaveraged gradients move them in other directions altogether).
        moved = (single[name] - start[name]).abs().mean()
        assert (rank0[name] - single[name]).abs().mean() <= 0.03 * moved, name
    # and the weights did move, so the comparison says something
    assert any(not torch.allclose(single[name], start[name]) for name in single)

