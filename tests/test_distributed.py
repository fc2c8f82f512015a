"""`torchrun --nproc-per-node 2 -m fmtool train cnn` on the CPU (gloo): one run folder, written by
rank 0 alone, and a result close to one process with the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import synthetic_fashion

COMMON = ["train", "cnn", "--epochs", "2", "--width", "0.125", "--lr", "2e-3",
          "--precision", "fp32", "--device", "cpu"]


def run(args: list[str], home: Path, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FMTOOL_HOME": str(home), "FMTOOL_FASHION_DIR": str(data),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def losses(home: Path) -> list[float]:
    (run_dir,) = (home / "data" / "runs" / "cnn").iterdir()
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["train_loss"] for line in lines]


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path: Path):
    data = synthetic_fashion(tmp_path / "data")
    two = run([sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "fmtool", *COMMON, "--batch-size", "8"],
              tmp_path / "two", data)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "x 2 processes (global batch 16)" in two.stderr
    assert two.stderr.count("epoch 2/2") == 1  # only rank 0 reports

    runs = list((tmp_path / "two" / "data" / "runs" / "cnn").iterdir())
    assert len(runs) == 1
    assert sorted(p.name for p in runs[0].iterdir() if p.suffix == ".pt") == ["best.pt", "last.pt"]

    one = run([sys.executable, "-m", "fmtool", *COMMON, "--batch-size", "16"], tmp_path / "one", data)
    assert one.returncode == 0, one.stderr[-2000:]
    distributed, single = losses(tmp_path / "two"), losses(tmp_path / "one")
    assert distributed[1] < distributed[0]
    for a, b in zip(distributed, single):
        assert a == pytest.approx(b, rel=0.1)
