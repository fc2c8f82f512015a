"""The command line as a user meets it: train, eval, classify, info, and the errors in between."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.engine.checkpoint import Checkpoint, save_checkpoint
from tests.helpers.fashion import synthetic_fashion

runner = CliRunner()
TINY = ["--recipe", "paper", "--variant", "text", "--width", "0.125", "--batch-size", "16",
        "--lr", "2e-3", "--step-size", "3"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """One small CNN run shared by the tests below: its home, data and run folder."""
    root = tmp_path_factory.mktemp("trained")
    data = synthetic_fashion(root / "fashion")
    env = {"FMTOOL_HOME": str(root / "home")}
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(data), "--epochs", "4",
                                 "--name", "tiny", "--device", "cpu", *TINY], env=env)
    assert result.exit_code == 0, result.output
    return {"env": env, "data": data, "run": root / "home" / "data" / "runs" / "cnn" / "tiny"}


HEAVY = ("torch", "torchvision", "sklearn", "matplotlib")
LIGHT_CHECK = f"""
import sys
from fmtool.cli.app import main
sys.argv = ["fmtool", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("heavy:", sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("args, env, shown", [
    ([], {}, "Usage: fmtool"),  # no arguments: the top-level help
    (["--help"], {}, "Usage: fmtool"),
    (["train", "cnn", "--help"], {}, "--recipe"),  # runs the root callback on the way
    # Tab completion through typer's entry (`--show-completion` scripts call back like this)
    ([], {"_FMTOOL_COMPLETE": "complete_bash", "COMP_WORDS": "fmtool train cnn --re",
          "COMP_CWORD": "3"}, "--recipe"),
], ids=["bare", "help", "subcommand-help", "tab-completion"])
def test_help_and_completion_do_not_import_torch(args, env, shown):
    import os

    out = subprocess.run([sys.executable, "-c", LIGHT_CHECK, *args], capture_output=True,
                         text=True, env={**os.environ, **env}, timeout=120)
    assert shown in out.stdout, out.stdout + out.stderr  # the path really ran ...
    assert "heavy: []" in out.stderr.splitlines(), out.stderr  # ... and imported nothing heavy


def test_version_through_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "fmtool", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("fmtool ")


def expected_device() -> str:
    """What `--device auto` must pick on this machine."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def test_info_reports_device_and_directories(fmtool_home: Path):
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["device"].split(" ")[0] == expected_device()
    assert info["runs_dir"].startswith(str(fmtool_home))


def test_info_names_the_cpu_when_no_gpu_is_seen(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    info = json.loads(runner.invoke(app, ["info", "--json"]).stdout)
    assert info["device"].startswith("cpu (")


def test_train_writes_a_complete_run_folder(trained: dict):
    run = trained["run"]
    assert {"run.json", "metrics.jsonl", "last.pt", "best.pt"} <= {p.name for p in run.iterdir()}
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]


def test_eval_json_and_figures(trained: dict):
    result = runner.invoke(app, ["eval", "--json", "--data-dir", str(trained["data"])],
                           env=trained["env"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["images"] == 100 and report["accuracy"] > 0.3
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 100
    assert abs(np.trace(matrix) / 100 - report["accuracy"]) < 1e-6
    for figure in ("loss_curve", "accuracy_curve", "confusion_matrix"):
        assert Path(report["figures"][figure]).is_file()


def test_eval_prints_a_table(trained: dict):
    result = runner.invoke(app, ["eval", str(trained["run"]), "--data-dir", str(trained["data"])],
                           env=trained["env"])
    assert result.exit_code == 0
    assert "test accuracy" in result.stdout and "Ankle boot" in result.stdout


def test_classify_prints_one_line_per_image_and_reports_bad_files(trained: dict, tmp_path: Path):
    from fmtool.data.fashion import load_from_dir

    images = load_from_dir(trained["data"]).test_images[:3].numpy()
    paths = []
    for index, image in enumerate(images):
        paths.append(tmp_path / f"item {index}.png")
        Image.fromarray(image).save(paths[-1])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    args = ["classify", str(paths[0]), str(tmp_path / "broken.png"), str(paths[1]), str(paths[2]),
            "--top-k", "2"]
    result = runner.invoke(app, args, env=trained["env"])
    assert result.exit_code == 1
    lines = result.stdout.strip().split("\n")
    assert [line.split("\t")[0] for line in lines] == [str(p) for p in paths]
    assert all(len(line.split("\t")) == 5 for line in lines)
    assert "broken.png" in result.stderr and "Traceback" not in result.output

    as_json = runner.invoke(app, ["classify", str(paths[0]), "--json"], env=trained["env"])
    assert as_json.exit_code == 0
    (answer,) = json.loads(as_json.stdout)
    assert answer["predictions"][0]["label"] in lines[0]


def test_classify_refuses_a_vae_checkpoint(tmp_path: Path):
    path = tmp_path / "vae.pt"
    save_checkpoint(path, Checkpoint({"kind": "vae"}, {"w": torch.zeros(1)}))
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    result = runner.invoke(app, ["classify", str(tmp_path / "x.png"), "--checkpoint", str(path)])
    assert result.exit_code == 2
    assert "VAE checkpoint" in result.stderr and "Traceback" not in result.output


def test_commands_without_a_checkpoint_say_to_train_first(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    """No run and no bundled model (a build without fmtool/weights): one line says what to do."""
    from fmtool.engine import runs

    monkeypatch.setattr(runs, "bundled_checkpoint", lambda kind: None)
    Image.new("L", (28, 28)).save(tmp_path / "x.png")
    for args in (["eval"], ["classify", str(tmp_path / "x.png")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert result.stderr.strip() == "error: no CNN checkpoint yet; run `fmtool train cnn` first"
    result = runner.invoke(app, ["reconstruct", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: no VAE checkpoint yet; run `fmtool train vae` first"


def test_existing_run_needs_resume_and_resume_extends_it(trained: dict, tmp_path: Path):
    env = {"FMTOOL_HOME": str(tmp_path / "home")}
    base = ["train", "cnn", "--data-dir", str(trained["data"]), "--name", "r", "--limit", "64", *TINY]
    assert runner.invoke(app, [*base, "--epochs", "1"], env=env).exit_code == 0
    again = runner.invoke(app, [*base, "--epochs", "1"], env=env)
    assert again.exit_code == 2 and "--resume" in again.stderr
    more = runner.invoke(app, ["train", "cnn", "--name", "r", "--resume", "--epochs", "2",
                               "--data-dir", str(trained["data"])], env=env)
    assert more.exit_code == 0, more.output
    metrics = (tmp_path / "home" / "data" / "runs" / "cnn" / "r" / "metrics.jsonl").read_text()
    assert [json.loads(line)["epoch"] for line in metrics.splitlines()] == [1, 2]


def test_without_recipe_a_cpu_machine_trains_the_cpu_recipe_and_says_so(tiny_fashion: Path,
                                                                        fmtool_home: Path):
    result = runner.invoke(app, ["train", "cnn", "--device", "cpu", "--epochs", "1", "--limit", "32",
                                 "--test-limit", "16", "--name", "plain", "--data-dir",
                                 str(tiny_fashion)])
    assert result.exit_code == 0, result.output
    assert "recipe cpu (no CUDA GPU in use); --recipe paper gives the report's recipe" in result.stderr
    run = json.loads((fmtool_home / "data" / "runs" / "cnn" / "plain" / "run.json").read_text())
    assert run["recipe"]["name"] == "cpu" and run["recipe"]["width"] == 0.25


@pytest.mark.parametrize("cuda, device, expected", [
    (True, "auto", "paper"), (True, "cuda", "paper"), (True, "cpu", "cpu"), (False, "auto", "cpu"),
])
def test_the_default_recipe_is_the_reports_on_a_cuda_gpu_only(cuda: bool, device: str, expected: str,
                                                              monkeypatch: pytest.MonkeyPatch):
    from fmtool.engine.training import default_recipe_name

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert default_recipe_name("vae", device) == expected


def test_bad_options_fail_with_one_line(tiny_fashion: Path):
    result = runner.invoke(app, ["train", "cnn", "--recipe", "nope", "--data-dir", str(tiny_fashion)])
    assert result.exit_code == 2 and "unknown recipe 'nope'" in result.stderr


def test_device_cuda_is_refused_without_a_cuda_gpu(tiny_fashion: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["train", "cnn", "--device", "cuda", "--data-dir", str(tiny_fashion)])
    assert result.exit_code == 2 and "no CUDA GPU" in result.stderr


def test_device_cuda_trains_where_there_is_a_gpu_and_is_refused_where_not(
        tiny_fashion: Path, fmtool_home: Path):
    result = runner.invoke(app, ["train", "cnn", "--device", "cuda", "--epochs", "1",
                                 "--limit", "32", "--test-limit", "16", "--name", "gpu", *TINY,
                                 "--data-dir", str(tiny_fashion)])
    if torch.cuda.is_available():
        assert result.exit_code == 0, result.output
        assert "run gpu on cuda (" in result.stderr
        assert (fmtool_home / "data" / "runs" / "cnn" / "gpu" / "best.pt").is_file()
    else:
        assert result.exit_code == 2 and "no CUDA GPU" in result.stderr


def test_off_a_terminal_training_logs_its_epochs_without_progress_bars(tiny_fashion: Path):
    """CliRunner's stderr is no terminal, as a log file or CI's is: the line per epoch stays,
    the bars (whose last state rich would print) go."""
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(tiny_fashion), "--epochs", "1",
                                 "--device", "cpu", *TINY])
    assert result.exit_code == 0, result.output
    assert "epoch 1/1" in result.stderr
    assert "━" not in result.stderr and "\x1b" not in result.stderr
