"""Hostile input, round three: interruptions, races, the user's files, resource guards, closed
and narrow streams, messages, noise, late failures; each tested for its class of cases.

In-process tests send real signals to this process at chosen points of a command's writes;
the subprocess tests run `python -m fmtool` where what matters is the process itself (SIGTERM
from outside, a closed stdout, an ASCII-only stdout, two processes at once).
"""

from __future__ import annotations

import codecs
import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.data.faces import decode_faces
from fmtool.data.images import open_image
from fmtool.engine import io as fio
from fmtool.engine.runs import LAST_CHECKPOINT, run_lock, training_run_dir
from fmtool.errors import UserError
from fmtool.report.document import Item, to_html, to_markdown
from fmtool.report.tables import Table
from tests.helpers.faces import face_image, make_vae_checkpoint
from tests.helpers.fashion import synthetic_fashion
from tests.helpers.output import (
    COMMANDS,
    OUT_IS_FOLDER,
    cnn_checkpoint,
    cnn_run,
    files_under,
    one_error_line,
    png,
)
from tests.helpers.report import report_args

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")
SIGNALS = {"Ctrl-C": signal.SIGINT, "SIGTERM": signal.SIGTERM}


def error_line(result: Any) -> str:
    """The one error line, beside the note that says which model fmtool chose."""
    lines = [line for line in result.stderr.splitlines() if not line.startswith("using ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def staging_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*.tmp")] if root.exists() else []


def _env(home: Path, **more: str) -> dict[str, str]:
    return {**os.environ, "FMTOOL_HOME": str(home), "OMP_NUM_THREADS": "1", **more}


def _fmtool(home: Path, *args: object, **options: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmtool", *map(str, args)], env=_env(home),
                          capture_output=True, timeout=300, **options)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tiny")
    return {"vae": make_vae_checkpoint(root / "vae.pt"),
            "fashion": synthetic_fashion(root / "fashion", train=20, test=100)}


@pytest.fixture
def ctx(tmp_path: Path, tiny_models: dict, fmtool_home: Path) -> dict:
    """What test_hostile_output's commands take: faces, a VAE, Fashion-MNIST, a CNN run."""
    faces = tmp_path / "faces"
    faces.mkdir()
    for index in range(6):
        face_image(index, 0, size=64).save(faces / f"face {index}.jpg")
    return {**tiny_models, "faces": faces, "run": cnn_run(fmtool_home), "tmp": tmp_path}


@pytest.fixture
def cli_signals() -> Iterator[None]:
    """What `fmtool` sets up before a command (SIGTERM raises like Ctrl-C), undone afterwards."""
    from fmtool.engine.interrupt import terminate_like_interrupt

    previous = signal.getsignal(signal.SIGTERM)
    terminate_like_interrupt()
    yield
    signal.signal(signal.SIGTERM, previous)


# -- 1. interruptions leave nothing behind ----------------------------------------------------

class SignalAtWrite:
    """Sends `signum` to this process during the k-th write of an output file's bytes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, signum: int, at: int) -> None:
        self.writes = 0
        self.sent = False
        real_write = os.write

        def write(fd: int, data: Any) -> int:
            self.writes += 1
            if self.writes == at:
                self.sent = True
                os.kill(os.getpid(), signum)
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", write)


@pytest.mark.parametrize("at", [1, 2])  # each command writes two files at least
@pytest.mark.parametrize("name", list(SIGNALS))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_signal_at_any_write_leaves_the_output_as_it_was(command: str, name: str, at: int,
                                                           ctx: dict, cli_signals: None,
                                                           monkeypatch: pytest.MonkeyPatch):
    place = ctx["tmp"] / "outputs"
    out = place / ("result" if OUT_IS_FOLDER[command] else "result.png")
    signalled = SignalAtWrite(monkeypatch, SIGNALS[name], at)
    result = runner.invoke(app, COMMANDS[command](ctx, out))
    assert signalled.sent
    assert result.exit_code == 128 + SIGNALS[name], result.output
    assert result.stderr.splitlines()[-1] == f"stopped by {name}", result.stderr
    assert "Traceback" not in result.output
    assert not place.exists(), files_under(place)
    assert not staging_files(ctx["tmp"])


@pytest.mark.parametrize("name", list(SIGNALS))
def test_a_signal_while_report_writes_leaves_no_study(name: str, world: dict,
                                                      tmp_path: Path, cli_signals: None,
                                                      monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "study"
    signalled = SignalAtWrite(monkeypatch, SIGNALS[name], 3)
    result = runner.invoke(app, [str(a) for a in report_args(world, out)])
    assert signalled.sent and result.exit_code == 128 + SIGNALS[name], result.output
    assert not out.exists(), files_under(out)
    assert not staging_files(tmp_path)


def _many_faces(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        face_image(index % 7, index, size=96).save(folder / f"face_{index:04d}.jpg", quality=80)
    return folder


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("crowd")
    return {"faces": _many_faces(root / "faces", 1500),
            "vae": make_vae_checkpoint(root / "vae.pt", image_size=64)}


def _reconstruct_process(crowd: dict, home: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fmtool", "reconstruct", str(crowd["faces"]),
                             "--checkpoint", str(crowd["vae"]), "--out", str(out), "--device",
                             "cpu"], env=_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _wait_for_staging(out: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not staging_files(out):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "reconstruct wrote nothing in two minutes"
        time.sleep(0.01)


@pytest.mark.parametrize("signals", ["Ctrl-C", "SIGTERM", "SIGTERM twice"])
def test_a_signal_from_outside_stops_reconstruct_promptly_and_leaves_no_file(
        signals: str, crowd: dict, tmp_path: Path):
    out = tmp_path / "out"
    process = _reconstruct_process(crowd, tmp_path / "home", out)
    _wait_for_staging(out, process)
    signum = SIGNALS[signals.split()[0]]
    sent = time.monotonic()
    process.send_signal(signum)
    if signals.endswith("twice"):
        process.send_signal(signum)  # the second aborts at once, still cleaning up
    _, stderr = process.communicate(timeout=60)
    took = time.monotonic() - sent
    assert process.returncode == 128 + signum, stderr.decode()
    assert b"Traceback" not in stderr
    assert not out.exists(), files_under(out)
    assert took < 5, f"stopping took {took:.1f} s"


def test_leftovers_of_a_killed_run_are_removed_by_the_next(crowd: dict, tmp_path: Path):
    out = tmp_path / "out"
    process = _reconstruct_process(crowd, tmp_path / "home", out)
    _wait_for_staging(out, process)
    process.kill()  # SIGKILL: no clean-up can run
    process.communicate()
    assert staging_files(out), "the kill came too late to test anything"
    small = _many_faces(tmp_path / "few", 3)
    result = runner.invoke(app, ["reconstruct", str(small), "--checkpoint", str(crowd["vae"]),
                                 "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert not staging_files(out)
    assert (out / "metrics.csv").is_file()


def test_a_leftover_of_a_live_process_is_not_touched(tmp_path: Path):
    live = tmp_path / f".fmtool-{os.getppid()}-abc.tmp"  # the test runner's parent is alive
    live.write_text("being written")
    fio.write_text(tmp_path / "result.txt", "done")
    assert live.exists() and (tmp_path / "result.txt").read_text() == "done"


# -- 2. check, then act, with nothing in between -----------------------------------------------

def test_a_run_name_taken_between_the_check_and_the_lock_is_refused(fmtool_home: Path):
    folder = training_run_dir("cnn", "same", resume=False)  # free when checked
    folder.mkdir(parents=True)
    (folder / LAST_CHECKPOINT).write_bytes(b"the other run's checkpoint")  # then taken
    with pytest.raises(UserError, match="already exists"):
        with run_lock(folder, new=True):
            pass
    assert (folder / LAST_CHECKPOINT).read_bytes() == b"the other run's checkpoint"


def test_two_trainings_of_one_name_started_together_give_one_run_and_one_refusal(tmp_path: Path):
    data = synthetic_fashion(tmp_path / "fashion", train=64, test=32)
    home = tmp_path / "home"
    args = [sys.executable, "-m", "fmtool", "train", "cnn", "--data-dir", str(data), "--name",
            "same", "--recipe", "paper", "--epochs", "1", "--batch-size", "16", "--width",
            "0.125", "--precision", "fp32", "--device", "cpu"]
    processes = [subprocess.Popen(args, env=_env(home), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for _ in range(2)]
    results = [(p.wait(timeout=300), p.communicate()[1].decode()) for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refusal = next(err for code, err in results if code == 2).strip().splitlines()
    assert refusal[-1].startswith("error: run same ") and "Traceback" not in refusal[-1]


def test_a_second_reconstruct_into_a_held_folder_refuses_at_once(ctx: dict):
    out = ctx["tmp"] / "shared-out"
    out.mkdir()
    held = os.open(out, os.O_RDONLY)  # what another reconstruct, still working, holds
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        result = runner.invoke(app, COMMANDS["reconstruct"](ctx, out))
    finally:
        os.close(held)
    assert result.exit_code == 2, result.output
    assert "being written by another fmtool command" in one_error_line(result)
    assert not list(out.iterdir())


def test_a_file_made_meanwhile_is_never_replaced_without_force(tmp_path: Path):
    target = tmp_path / "out" / "a.png"
    with pytest.raises(UserError, match="appeared while fmtool worked"):
        with fio.all_or_nothing(tmp_path / "out", overwrite=False):
            fio.write_text(target, "mine")
            fio.write_text(tmp_path / "out" / "b.png", "mine too")
            target.write_text("another process's")  # after check_outputs, before the end
    assert target.read_text() == "another process's"
    assert not (tmp_path / "out" / "b.png").exists() and not staging_files(tmp_path)


# -- 3. the user's files -------------------------------------------------------------------------

def test_classify_save_input_keeps_the_users_files_without_force(tmp_path: Path):
    checkpoint = cnn_checkpoint(tmp_path / "tiny.pt")
    picture = png(tmp_path / "shirt.png")
    seen = tmp_path / "seen"
    seen.mkdir()
    (seen / "0001_shirt.png").write_bytes(b"the user's own picture")
    args = ["classify", str(picture), "--checkpoint", str(checkpoint), "--save-input", str(seen)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--force" in one_error_line(refused)
    assert (seen / "0001_shirt.png").read_bytes() == b"the user's own picture"
    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert Image.open(seen / "0001_shirt.png").size == (28, 28)


@pytest.mark.parametrize("name,magic", [("x.jpg", b"\xff\xd8"), ("x.JPEG", b"\xff\xd8"),
                                        ("x.webp", b"RIFF"), ("x.png", b"\x89PNG")])
def test_fuse_writes_the_format_its_name_says(name: str, magic: bytes, ctx: dict):
    out = ctx["tmp"] / name
    result = runner.invoke(app, COMMANDS["fuse"](ctx, out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(magic)


def test_fuse_refuses_a_name_whose_format_it_cannot_write(ctx: dict):
    result = runner.invoke(app, COMMANDS["fuse"](ctx, ctx["tmp"] / "x.pgm"))
    assert result.exit_code == 2 and ".pgm" in one_error_line(result)
    assert not (ctx["tmp"] / "x.pgm").exists()


# -- 4. resource guards ----------------------------------------------------------------------------

def _tall_tiff(path: Path) -> Path:
    """A small file that declares 20 x 2,949,144 16-bit pixels (118 MB once decoded)."""
    Image.new("I;16", (20, 2_949_144)).save(path, "TIFF", compression="tiff_adobe_deflate")
    return path


PEAK = """
import resource, sys
from pathlib import Path
from fmtool.data.faces import load_face
from fmtool.photo.views import load_fashion_views
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{call}
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("call", ["load_face(Path(sys.argv[1]), 64)",
                                  "load_fashion_views(Path(sys.argv[1]), single=True)"])
def test_a_picture_that_declares_a_huge_strip_costs_about_its_own_size(call: str, tmp_path: Path):
    tiff = _tall_tiff(tmp_path / "tall.tif")
    result = subprocess.run([sys.executable, "-c", PEAK.format(call=call), str(tiff)],
                            capture_output=True, timeout=120, env=_env(tmp_path))
    assert result.returncode == 0, result.stderr.decode()
    assert int(result.stdout) < 300, f"{int(result.stdout)} MB for a 118 MB picture"


def test_memory_running_out_while_preparing_a_face_is_that_files_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import fmtool.data.faces

    good, bad = png(tmp_path / "good.png"), tmp_path / "bad.png"
    face_image(1, 1, size=50).save(bad)
    real = fmtool.data.faces.face_array

    def face_array(image: Any, *args: Any) -> Any:
        if image.size == (50, 50):
            raise MemoryError
        return real(image, *args)

    monkeypatch.setattr(fmtool.data.faces, "face_array", face_array)
    images, ok, failed = decode_faces([good, bad], 32)
    assert ok == [True, False] and len(images) == 1
    assert failed == [(bad, "too large to prepare in the memory available")]


def test_a_long_legal_input_name_does_not_break_the_staging_name(ctx: dict):
    folder = ctx["tmp"] / "long"
    folder.mkdir()
    name = "f" * 242 + ".jpg"  # 246 characters: legal, and so is its .png output
    face_image(1, 1, size=64).save(folder / name)
    out = ctx["tmp"] / "out"
    result = runner.invoke(app, ["reconstruct", str(folder), "--checkpoint", str(ctx["vae"]),
                                 "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (out / "images" / ("f" * 242 + ".png")).is_file()


# -- 5. stdout and encodings ---------------------------------------------------------------------

@pytest.mark.parametrize("args", [["info"], ["classify", "{picture}", "--checkpoint", "{ckpt}"],
                                  ["classify", "{picture}", "--checkpoint", "{ckpt}", "--json"]])
def test_a_closed_stdout_is_one_line_of_error(args: list[str], tmp_path: Path):
    made = {"picture": png(tmp_path / "p.png"), "ckpt": cnn_checkpoint(tmp_path / "c.pt")}
    result = subprocess.run([sys.executable, "-m", "fmtool", *[a.format(**made) for a in args]],
                            env=_env(tmp_path / "home"), stderr=subprocess.PIPE, timeout=120,
                            preexec_fn=lambda: os.close(1))
    assert result.returncode == 2
    lines = [line for line in result.stderr.decode().splitlines() if not line.startswith("using")]
    assert len(lines) == 1 and lines[0].startswith("error: standard output is closed"), lines


def test_classify_save_input_files_survive_a_closed_stdout(tmp_path: Path):
    seen = tmp_path / "seen"
    result = subprocess.run([sys.executable, "-m", "fmtool", "classify", png(tmp_path / "p.png"),
                             "--checkpoint", cnn_checkpoint(tmp_path / "c.pt"), "--save-input",
                             seen], env=_env(tmp_path / "home"), stderr=subprocess.PIPE,
                            timeout=120, preexec_fn=lambda: os.close(1))
    assert result.returncode == 2
    assert [p.name for p in seen.iterdir()] == ["0001_p.png"]


def test_a_broken_pipe_is_silent(tmp_path: Path):
    pictures = [png(tmp_path / f"p{i}.png", seed=i) for i in range(40)]
    process = subprocess.Popen([sys.executable, "-m", "fmtool", "classify", *pictures,
                                "--single-view", "--checkpoint", cnn_checkpoint(tmp_path / "c.pt")],
                               env=_env(tmp_path / "home"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # the reader went away (`| head -0`)
    stderr = process.stderr.read().decode()
    process.wait(timeout=120)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


@pytest.mark.parametrize("encoding", ["ascii:strict", "latin-1:strict"])
def test_names_print_under_any_stdout_encoding_by_the_same_escapes(encoding: str, tmp_path: Path):
    picture = png(tmp_path / "café ✓ 衬衫.png")
    result = subprocess.run([sys.executable, "-m", "fmtool", "classify", picture, "--checkpoint",
                             cnn_checkpoint(tmp_path / "c.pt")], capture_output=True, timeout=120,
                            env=_env(tmp_path / "home", PYTHONIOENCODING=encoding))
    assert result.returncode == 0, result.stderr
    column = result.stdout.decode(encoding.split(":")[0]).split("\t")[0]
    assert os.fsdecode(codecs.escape_decode(column.encode())[0]) == str(picture)


# -- 6. messages name the right thing ------------------------------------------------------------

def test_fmtool_home_that_is_a_file_is_blamed_on_fmtool_home(tmp_path: Path):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    result = _fmtool(home, "info")
    assert result.returncode == 2
    line = result.stderr.decode().strip()
    assert "FMTOOL_HOME" in line and "is a file" in line and "--out" not in line, line


def test_a_relative_fmtool_home_is_refused(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "fmtool", "info"], capture_output=True,
                            env={**_env(tmp_path), "FMTOOL_HOME": "relative/home"}, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert "FMTOOL_HOME=relative/home is a relative path" in result.stderr.decode()


@pytest.mark.parametrize("variable,args", [
    ("FMTOOL_FASHION_DIR", ["eval", "builtin", "--device", "cpu"]),
    ("FMTOOL_FACES_DIR", ["fuse", "--group-a", "{list}", "--group-b", "{list}", "--device", "cpu"])])
def test_a_data_folder_that_is_a_file_says_so(variable: str, args: list[str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch):
    data, listing = tmp_path / "data.txt", tmp_path / "names.txt"
    data.write_text("a file")
    listing.write_text("a.jpg\n")
    monkeypatch.setenv(variable, str(data))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [a.format(list=listing) for a in args])
    line = error_line(result)
    assert "is a file, not a folder" in line and "does not exist" not in line, line


def test_pairs_from_a_pipe_are_not_called_missing(ctx: dict):
    fifo = ctx["tmp"] / "pairs"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["fuse", "--pairs", str(fifo), "--checkpoint", str(ctx["vae"]),
                                 "--out", str(ctx["tmp"] / "s.png"), "--device", "cpu"])
    line = one_error_line(result)
    assert "named pipe" in line and "does not exist" not in line, line


def test_names_not_found_are_counted_once_each(ctx: dict):
    listing = ctx["tmp"] / "group.txt"
    present = sorted(ctx["faces"].glob("*.jpg"))[0].name
    listing.write_text(f"{present}\nsub/{present}\nmissing.jpg\nother/missing.jpg\n")
    result = runner.invoke(app, ["fuse", "--group-a", str(listing), "--group-b", str(listing),
                                 "--data-dir", str(ctx["faces"]), "--checkpoint", str(ctx["vae"]),
                                 "--steps", "2", "--out", str(ctx["tmp"] / "g.png"),
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "group.txt: 1 of 2 names not found" in result.stderr


def test_builtin_beside_a_local_builtin_folder_is_refused_as_ambiguous(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "builtin").mkdir()
    cnn_checkpoint(tmp_path / "builtin" / "best.pt")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["classify", str(png(tmp_path / "p.png")), "--checkpoint",
                                 "./builtin"])
    assert "./builtin/best.pt" in one_error_line(result)


# -- 7. noise and files outside fmtool's home -----------------------------------------------------

def test_matplotlib_keeps_its_files_under_fmtool_home(tmp_path: Path):
    home, user = tmp_path / "fmtool-home", tmp_path / "user"
    user.mkdir()
    code = ("import fmtool.metrics.plots, matplotlib; "
            "print(matplotlib.get_configdir()); print(matplotlib.get_cachedir())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                            env={**_env(home), "HOME": str(user), "XDG_CACHE_HOME": "",
                                 "XDG_CONFIG_HOME": "", "MPLCONFIGDIR": ""})
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.decode().split()) == {str(home / "cache" / "matplotlib")}
    assert not list(user.iterdir()) and b"Warning" not in result.stderr


def test_a_png_with_a_large_text_chunk_decodes(tmp_path: Path):
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * 4_000_000, zip=True)
    Image.new("RGB", (32, 24), (200, 10, 10)).save(tmp_path / "t.png", pnginfo=info)
    image = open_image(tmp_path / "t.png")
    assert image.size == (32, 24) and image.getpixel((0, 0)) == (200, 10, 10)


@pytest.mark.parametrize("command", ["classify", "reconstruct"])
def test_odd_pictures_leave_no_numpy_warning_on_stderr(command: str, tmp_path: Path):
    folder = tmp_path / "odd"
    folder.mkdir()
    nan = np.full((40, 40), np.nan, np.float32)  # a float TIFF with undefined pixels
    nan[10:30, 10:30] = 0.8
    Image.fromarray(nan, mode="F").save(folder / "nan.tif")
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(folder / "flat.png")
    Image.fromarray(np.full((1, 300), 255, np.uint8)).save(folder / "line.png")
    if command == "classify":
        args = ["classify", *sorted(folder.iterdir()), "--checkpoint",
                cnn_checkpoint(tmp_path / "c.pt")]
    else:
        args = ["reconstruct", folder, "--out", tmp_path / "out", "--checkpoint",
                make_vae_checkpoint(tmp_path / "v.pt")]
    result = _fmtool(tmp_path / "home", *args)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Warning" not in result.stderr, result.stderr.decode()


CONTROLS = "evil\x1b[2J\u202eexe.png"


def test_report_documents_escape_control_characters():
    table = Table(title=CONTROLS, header=["class"], rows=[[CONTROLS]])
    items = [Item("Figure 1", CONTROLS, CONTROLS, [])]
    page = to_html(CONTROLS, [CONTROLS], [table], items)
    document = to_markdown(CONTROLS, [CONTROLS], [table], items)
    for text, backslash in ((page, "\\"), (document, "\\\\")):  # Markdown escapes its own
        assert "\x1b" not in text and "\u202e" not in text
        assert f"{backslash}x1b" in text and f"{backslash}xe2{backslash}x80{backslash}xae" in text


# -- 8. every input checked before the work -----------------------------------------------------

def test_report_refuses_an_unusable_pairs_file_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import fmtool.report.study

    monkeypatch.setattr(fmtool.report.study, "load_classifier",
                        lambda *a, **k: pytest.fail("the work started"))
    faces_dir = _many_faces(tmp_path / "faces", 2)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("nobody_0001.jpg nobody_0002.jpg\n")
    for given, expected in ((pairs, "has both its faces"), (tmp_path / "gone.txt", "does not exist")):
        result = runner.invoke(app, ["report", "--pairs", str(given), "--faces-dir", str(faces_dir),
                                     "--out", str(tmp_path / "study"), "--device", "cpu"])
        assert expected in error_line(result)


# -- classify's inputs: folders, lists on standard input ------------------------------------------

def test_image_paths_keep_the_order_given_and_expand_folders_sorted(tmp_path: Path):
    from fmtool.data.inputs import image_paths

    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.png", "a.JPG", "notes.txt", ".hidden.png", "sub/c.png"):
        (folder / name).write_bytes(b"")
    odd = tmp_path / "z.data"
    assert image_paths([odd, folder], recursive=False) == [odd, folder / "a.JPG", folder / "b.png"]
    assert image_paths([folder], recursive=True) == [folder / "a.JPG", folder / "b.png",
                                                      folder / "sub" / "c.png"]
    only_deeper = tmp_path / "only-deeper"
    (only_deeper / "sub").mkdir(parents=True)
    (only_deeper / "sub" / "d.png").write_bytes(b"")
    with pytest.raises(UserError, match="add -r"):
        image_paths([only_deeper], recursive=False)


@pytest.mark.parametrize("null_separated,data", [(False, b"a.png\nsub/new\\nline.png\n\xff.png\n"),
                                                 (True, b"a.png\0sub/new\nline.png\0\xff.png\0")])
def test_read_path_list_keeps_names_exactly(null_separated: bool, data: bytes):
    from fmtool.data.inputs import read_path_list

    paths = read_path_list(io.BytesIO(data), null_separated)
    second = "sub/new\nline.png" if null_separated else "sub/new\\nline.png"
    assert paths == [Path("a.png"), Path(second), Path(os.fsdecode(b"\xff.png"))]


def test_read_path_list_of_nothing_is_refused():
    from fmtool.data.inputs import read_path_list

    with pytest.raises(UserError, match="no paths"):
        read_path_list(io.BytesIO(b"\n\n"), null_separated=False)



def test_a_warm_up_of_zero_is_no_warm_up():
    import torch

    from fmtool.cnn.recipes import RECIPES
    from fmtool.engine.schedules import make_schedule

    recipe = RECIPES["cpu"].with_overrides(schedule="onecycle", warmup=0.0, epochs=1, lr=0.1)
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    schedule = make_schedule(optimizer, recipe, 10)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == sorted(rates, reverse=True) and rates[0] > 0.09  # from the peak, down


def test_a_class_without_test_images_has_no_accuracy(tmp_path: Path, fmtool_home: Path):
    data = synthetic_fashion(tmp_path / "fashion", train=20, test=4)  # four images: classes missing
    args = ["eval", str(cnn_run(fmtool_home)), "--data-dir", str(data), "--device", "cpu",
            "--out", str(tmp_path / "eval")]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "n/a" in shown.stdout
    report = json.loads(runner.invoke(app, [*args, "--force", "--json"]).stdout)
    empty = [name for name, value in report["per_class_accuracy"].items() if value is None]
    pointers = [f"/per_class_accuracy/{name.replace('/', '~1')}" for name in empty]
    assert len(empty) >= 6 and all(pointer in report["non_finite"] for pointer in pointers)


@pytest.mark.parametrize("text", ["all,output", "conv1, all"])
def test_all_beside_other_layers_is_refused_with_a_message_that_fits(text: str):
    from fmtool.cnn.activations import parse_layers

    with pytest.raises(UserError) as refused:
        parse_layers(text)
    message = str(refused.value)
    assert "all stands alone" in message and "or all" not in message


def test_a_limit_too_small_for_the_validation_split_is_refused_not_moved_to_the_test_set(
        tiny_fashion: Path):
    import torch

    from fmtool.cnn.recipes import RECIPES
    from fmtool.cnn.task import CNNTask
    from fmtool.data.fashion import load_from_dir

    recipe = RECIPES["cpu"].with_overrides(val_size=5000)
    with pytest.raises(UserError, match="val_size 0"):
        CNNTask(load_from_dir(tiny_fashion), recipe, torch.device("cpu"), limit=9)
    assert CNNTask(load_from_dir(tiny_fashion), recipe, torch.device("cpu"), limit=40).val_size == 4
