"""Hostile output, part two: how names are shown, through the real commands. Output names and
paths (TSV lines, names that are not UTF-8, symbolic links), rich markup and emoji codes in
printed text, non-finite numbers in --json, and messages that name what they are about.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fmtool.cli import output
from fmtool.cli.app import app
from tests.helpers import output as shared
from tests.helpers.faces import face_image, make_vae_checkpoint
from tests.helpers.output import (
    COMMANDS,
    WIDTH,
    _eval,
    _fuse,
    _project,
    _reconstruct,
    cnn_checkpoint,
    files_under,
    fs_name,
    one_error_line,
    png,
    unescape,
)

# fixtures, asked for by name (ctx asks for the other three)
ctx, faces, fashion, vae = shared.ctx, shared.faces, shared.fashion, shared.vae
runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


# -- 2. output names and paths ----------------------------------------------------------------

ODD_NAMES = {
    "tab": b"tab\there.png",
    "newline": b"new\nline.png",
    "carriage return": b"carriage\rreturn.png",
    "backslash": b"back\\slash.png",
    "backslash and n": b"not\\na newline.png",
    "escape sequence": b"esc\x1b[31mred\x1b[0m.png",
    "bell and backspace": b"bell\x07back\x08.png",
    "vertical tab and form feed": b"vt\x0bff\x0c.png",
    "DEL": b"del\x7f.png",
    "C1 CSI": "c1 \u009b2J.png".encode(),
    "line separator": "line\u2028sep.png".encode(),
    "right-to-left override": "evil\u202egnp.exe.png".encode(),
    "not UTF-8 (Latin-1)": b"caf\xe9 cr\xe8me.png",
    "not UTF-8 (lone continuation bytes)": b"\x80\xbf\xfe\xff.png",
    "truncated UTF-8 sequence": b"cut \xe2\x82.png",
    "rich markup": b"[bold red]x [dim]y [link=z].png",
    "emoji code": b":smile: :thumbs_up:.png",
    "accents and CJK (printed as they are)": "chaussure été 靴 😀.png".encode(),
}


@pytest.fixture(scope="module")
def odd_classify(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("classify")
    files = {name: png(root / fs_name(raw), seed) for seed, (name, raw) in
             enumerate(ODD_NAMES.items())}
    return {"files": files, "checkpoint": cnn_checkpoint(root / "tiny.pt")}


@pytest.mark.parametrize("name", list(ODD_NAMES))
def test_classify_tsv_keeps_one_line_per_image_and_the_name_recoverable(name: str,
                                                                        odd_classify: dict):
    path = odd_classify["files"][name]
    other = odd_classify["files"]["tab" if name != "tab" else "newline"]
    args = ["classify", str(path), str(other), "--checkpoint", str(odd_classify["checkpoint"]),
            "--top-k", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert lines[-1] == "" and len(lines) == 3, result.stdout  # two lines, each ended by \n
    rows = [line.split("\t") for line in lines[:2]]
    assert all(len(row) == 5 for row in rows), rows
    assert [unescape(row[0]) for row in rows] == [str(path), str(other)]
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u202e"
                   for cell in rows[0] for c in cell)
    if name.startswith("accents"):
        assert rows[0][0] == str(path)  # printable text is not escaped
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    answers = json.loads(as_json.stdout)
    assert answers[0]["path"] == str(path)  # exact, surrogates and all
    assert os.fsencode(answers[0]["path"]) == os.fsencode(path)
    as_json.stdout.encode("ascii")  # and the document is plain ASCII


def _strict_utf8(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FMTOOL_HOME": str(home), "PYTHONIOENCODING": "utf-8:strict",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "fmtool", *args], env=env, capture_output=True,
                          timeout=180)


STRICT_RUNS = {
    "classify a name that is not UTF-8": (lambda c: ["classify", c["file"], "--checkpoint",
                                                      c["checkpoint"]], 0),
    "classify --json of it": (lambda c: ["classify", c["file"], "--checkpoint", c["checkpoint"],
                                         "--json"], 0),
    "classify an unreadable file with such a name": (lambda c: [
        "classify", c["broken"], "--checkpoint", c["checkpoint"]], 1),
    "info with such a FMTOOL_HOME": (lambda c: ["info"], 0),
    "an error naming such a checkpoint": (lambda c: ["eval", c["missing"]], 2),
}


@pytest.mark.parametrize("case", list(STRICT_RUNS))
def test_names_that_are_not_utf8_under_a_strict_utf8_stdout(case: str, tmp_path: Path):
    home = tmp_path / fs_name(b"home \xff")
    folder = tmp_path / fs_name(b"pictures \xe9\x1b[2J")
    folder.mkdir()
    made = {"file": str(png(folder / fs_name(b"caf\xe9.png"))),
            "checkpoint": str(cnn_checkpoint(tmp_path / "tiny.pt")),
            "missing": str(folder / fs_name(b"gone \xfe.pt"))}
    broken = folder / fs_name(b"broken \xfe\n.png")
    broken.write_bytes(b"not a picture")
    made["broken"] = str(broken)
    args, code = STRICT_RUNS[case]
    result = _strict_utf8([os.fsencode(a) for a in args(made)], home)
    assert result.returncode == code, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr and b"\x1b" not in result.stdout + result.stderr
    result.stdout.decode("utf-8")
    result.stderr.decode("utf-8")
    if "--json" in args(made):
        assert os.fsencode(json.loads(result.stdout)[0]["path"]) == os.fsencode(made["file"])
    elif case.startswith("info"):
        assert b"home \\xff" in result.stdout
    elif code == 0:
        assert unescape(result.stdout.decode().split("\t")[0]) == made["file"]
    else:
        assert result.stderr.decode().count("\n") == 1 and b"\\xfe" in result.stderr


OUTPUT_NAME_SETS = {
    "a.jpg and a.png": ["a.jpg", "a.png"],
    "a fallback name taken by a third file": ["a.jpg", "a.png", "a.png.png"],
    "names that differ in case only": ["Face.jpg", "face.jpg", "FACE.png"],
    "three extensions of one name": ["p.jpg", "p.jpeg", "p.JPG", "p.png"],
    "a numbered name already taken": ["q.jpg", "q.png", "q.jpg.png", "q.jpg~2.png"],
    "a file's output named like a folder": ["sub.jpg", "sub.png/inner.jpg"],
    "the same names in sub-folders": ["sub/a.jpg", "sub/a.png", "a.jpg", "sub.png"],
    "names that are not UTF-8": [b"caf\xe9.jpg", b"caf\xe9.png", b"\xff.png"],
    "control characters": ["tab\t.jpg", "tab\t.png", "new\nline.jpg"],
}


@pytest.mark.parametrize("case", list(OUTPUT_NAME_SETS))
def test_reconstruct_gives_every_input_its_own_output(case: str, ctx: dict):
    folder = ctx["tmp"] / "inputs"
    names = OUTPUT_NAME_SETS[case]
    for index, name in enumerate(names):
        path = folder / (fs_name(name) if isinstance(name, bytes) else name)
        path.parent.mkdir(parents=True, exist_ok=True)
        face_image(index, index, size=48).save(path, format="PNG")
    out = ctx["tmp"] / "out"
    result = runner.invoke(app, ["reconstruct", str(folder), "-r", "--checkpoint", str(ctx["vae"]),
                                 "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["images"] == len(names)
    written = files_under(out / "images")
    assert len(written) == len(names), written
    with open(out / "metrics.csv", encoding="utf-8", newline="") as handle:  # strict UTF-8
        rows = list(csv.DictReader(handle))
    assert len({row["output"] for row in rows}) == len(names)
    for row in rows:
        assert (out / unescape(row["output"])).is_file(), row
        assert (folder / unescape(row["file"])).is_file(), row
    keys = {p.relative_to(out).as_posix().casefold() for p in written}
    assert len(keys) == len(names)  # distinct on a file system that ignores case too


OUT_INSIDE = {
    "--out is the input folder": (".", False),
    "--out is a folder inside it": ("recon", False),
    "--out is deeper inside, with -r": ("a/b/recon", True),
    "--out is the input folder, with -r": (".", True),
}


@pytest.mark.parametrize("case", list(OUT_INSIDE))
def test_reconstruct_into_its_own_input_folder(case: str, ctx: dict):
    relative, recursive = OUT_INSIDE[case]
    folder = ctx["faces"]
    out = folder / relative
    flags = ["-r"] if recursive else []
    for attempt in range(2):  # the second run must not read the first one's outputs
        result = runner.invoke(app, ["reconstruct", str(folder), *flags, "--out", str(out),
                                     "--checkpoint", str(ctx["vae"]), "--device", "cpu",
                                     "--json", *(["--force"] if attempt else [])])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["images"] == 6, attempt
    assert len(files_under(out / "images")) == 6


def test_reconstruct_of_only_earlier_outputs_says_so(ctx: dict):
    out = ctx["tmp"] / "out"
    first = runner.invoke(app, _reconstruct(ctx, out))
    assert first.exit_code == 0, first.output
    result = runner.invoke(app, ["reconstruct", str(out / "images"), "--out", str(out),
                                 "--checkpoint", str(ctx["vae"]), "--device", "cpu"])
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "earlier outputs" in line and str(out) in line, line


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


SYMLINK_CASES = {
    # name: (command, --out relative to tmp, link relative to tmp, target kind, refused even
    #        with --force)
    "reconstruct: images/ links to a folder outside": ("reconstruct", "out", "out/images", "dir", True),
    "reconstruct: images/ is a dangling link": ("reconstruct", "out", "out/images", "missing", True),
    "reconstruct: metrics.csv is a dangling link": ("reconstruct", "out", "out/metrics.csv", "missing", False),
    "reconstruct: a grid links to a file outside": ("reconstruct", "out", "out/side_by_side_001.png", "file", False),
    "fuse: the frames folder links outside": ("fuse", "blend.png", "blend_frames", "dir", True),
    "fuse: --out is a dangling link": ("fuse", "blend.png", "blend.png", "missing", False),
    "fuse: a frame is a dangling link": ("fuse", "walk", "walk/frame_01.png", "missing", False),
    "eval: a figure in --out is a dangling link": ("eval", "figs", "figs/loss_curve.png", "missing", False),
    "project: the CSV is a link to a file outside": ("project", "p.png", "p.csv", "file", False),
}


@pytest.mark.parametrize("case", list(SYMLINK_CASES))
def test_nothing_is_written_through_a_symbolic_link(case: str, ctx: dict):
    command, out_name, link_name, kind, always = SYMLINK_CASES[case]
    tmp = ctx["tmp"]
    outside = tmp / "outside"
    outside.mkdir()
    target = {"dir": outside, "missing": outside / "target.png", "file": outside / "kept.png"}[kind]
    if kind == "file":
        target.write_bytes(b"the user's file elsewhere")
    _link(tmp / link_name, target)
    args = COMMANDS[command](ctx, tmp / out_name)
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2, refused.output
    line = one_error_line(refused)
    assert str(tmp / link_name) in line, line
    forced = runner.invoke(app, [*args, "--force"])
    if always:
        assert forced.exit_code == 2 and "symbolic link" in one_error_line(forced)
        assert (tmp / link_name).is_symlink()
    else:
        assert forced.exit_code == 0, forced.output
        assert not (tmp / link_name).is_symlink() and (tmp / link_name).is_file()
    assert [p for p in outside.rglob("*")] == ([target] if kind == "file" else [])
    if kind == "file":
        assert target.read_bytes() == b"the user's file elsewhere"


# -- 3. rich markup and emoji in printed text -------------------------------------------------

HOMES = ["home [/]", "[bold]home[/bold]", "home :smile:", "[link=https://example.com]x[/link]",
         "\\[not markup]", "home [red"]


@pytest.mark.parametrize("name", HOMES)
def test_paths_with_markup_or_emoji_codes_print_verbatim(name: str, tmp_path: Path):
    home = tmp_path / name
    result = runner.invoke(app, ["info"], env={"FMTOOL_HOME": str(home)})
    assert result.exit_code == 0, result.output
    shown = output.escape(home / "data" / "runs")
    assert any(line.split(None, 1)[1] == shown for line in result.stdout.splitlines()
               if line.startswith("runs_dir")), result.stdout


def test_train_with_markup_in_fmtool_home_finishes_with_exit_0(tmp_path: Path, fashion: Path):
    home = tmp_path / "runs [/] :smile: [bold]x"
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(fashion), "--epochs", "1",
                                 "--width", str(WIDTH), "--batch-size", "16", "--val-size", "4",
                                 "--precision", "fp32", "--device", "cpu", "--name", "m"],
                           env={"FMTOOL_HOME": str(home)})
    assert result.exit_code == 0, result.output
    assert f"run folder {home / 'data/runs/cnn/m'}" in result.stderr


ODD_CLASSES = ["[/]", "[bold]Bold[/bold]", ":smile:", "tab\tclass", "esc\x1b[2Jclear",
               "new\nline", "back\\slash", "[link=x]l", "Bag", "Ankle boot"]


def test_class_names_from_a_checkpoint_print_verbatim_and_escaped(tmp_path: Path, fashion: Path):
    checkpoint = cnn_checkpoint(tmp_path / "odd.pt", ODD_CLASSES)
    result = runner.invoke(app, ["eval", str(checkpoint), "--data-dir", str(fashion),
                                 "--device", "cpu", "--out", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout
    for index, name in enumerate(ODD_CLASSES):
        assert f"{index} {output.escape(name)}" in result.stdout, name
    image = png(tmp_path / "item.png")
    classified = runner.invoke(app, ["classify", str(image), "--checkpoint", str(checkpoint),
                                     "--top-k", "10"])
    assert classified.exit_code == 0, classified.output
    (line,) = classified.stdout.splitlines()
    cells = line.split("\t")
    assert len(cells) == 21 and sorted(map(unescape, cells[1::2])) == sorted(ODD_CLASSES)


VERBATIM = {
    "classify's path": lambda c, d: (["classify", str(png(d / "shirt.png")), "--checkpoint",
                                      str(c["run"])], d / "shirt.png"),
    "reconstruct's --out": lambda c, d: (_reconstruct(c, d / "rec"), d / "rec"),
    "fuse's strip": lambda c, d: (_fuse(c, d / "blend.png"), d / "blend.png"),
    "eval's figures": lambda c, d: (_eval(c, d / "figs"), d / "figs" / "confusion_matrix.png"),
    "project's figure and CSV": lambda c, d: (_project(c, d / "p.png"), d / "p.csv"),
}


@pytest.mark.parametrize("case", list(VERBATIM))
def test_printed_paths_keep_brackets_and_colons(case: str, ctx: dict):
    folder = ctx["tmp"] / "[bold]results[/] :sparkles: [/"  # "[/]" across two folders
    folder.mkdir(parents=True)
    args, shown = VERBATIM[case](ctx, folder)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert str(shown) in result.stdout, result.stdout


# -- 7. non-finite numbers in --json ----------------------------------------------------------

NON_FINITE = {
    "one NaN in a nested object": ({"mean": {"psnr": float("nan"), "ssim": 0.5}},
                                   {"/mean/psnr": "NaN"}),
    "plus and minus infinity": ({"a": float("inf"), "b": [1.0, float("-inf")]},
                                {"/a": "Infinity", "/b/1": "-Infinity"}),
    "keys that need JSON-pointer escapes": ({"T-shirt/top": float("nan"), "a~b": float("inf")},
                                            {"/T-shirt~1top": "NaN", "/a~0b": "Infinity"}),
    "deep in a list of objects": ({"layers": [{"x": 1.0}, {"silhouette": float("nan")}]},
                                  {"/layers/1/silhouette": "NaN"}),
    "nothing to report": ({"a": 1.0, "b": None, "c": "NaN"}, None),
}


def _strict_loads(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("case", list(NON_FINITE))
def test_json_turns_non_finite_numbers_into_null_and_says_which(case: str, capsys):
    data, expected = NON_FINITE[case]
    output.print_json(data)
    parsed = _strict_loads(capsys.readouterr().out)
    assert parsed.get("non_finite") == expected
    for pointer in expected or {}:
        node = parsed
        for part in pointer.split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert node is None


def test_json_lists_report_non_finite_numbers_per_object(capsys):
    output.print_json([{"path": "a", "p": float("nan")}, {"path": "b", "p": 0.5}])
    first, second = _strict_loads(capsys.readouterr().out)
    assert first == {"path": "a", "p": None, "non_finite": {"/p": "NaN"}}
    assert second == {"path": "b", "p": 0.5}


def test_reconstruct_of_only_unreadable_images_writes_nothing_and_says_why(ctx: dict):
    folder = ctx["tmp"] / "broken"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8 not really")
    (folder / "b.png").write_bytes(b"")
    out = ctx["tmp"] / "out"
    result = runner.invoke(app, ["reconstruct", str(folder), "--checkpoint", str(ctx["vae"]),
                                 "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "none of the 2 images" in line and "a.jpg" in line, line
    assert result.stdout == "" and not out.exists()


# -- 10. messages ---------------------------------------------------------------------------

def _not_a_file(tmp: Path, kind: str) -> tuple[Path, str]:
    path = tmp / f"odd {kind}.pt"
    if kind == "FIFO":
        os.mkfifo(path)
        return path, "named pipe (FIFO)"
    if kind == "character device":
        path.symlink_to("/dev/null")
        return path, "character device"
    if kind == "socket":
        path = tmp / "s.pt"  # AF_UNIX paths must be short
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
        return path, "socket"
    if kind == "dangling link":
        path.symlink_to(tmp / "moved away.pt")
        return path, "broken symbolic link"
    if kind == "missing":
        return path, "does not exist"
    raise AssertionError(kind)


@pytest.mark.parametrize("command", ["eval", "classify", "project", "reconstruct", "fuse"])
@pytest.mark.parametrize("kind", ["FIFO", "character device", "socket", "dangling link",
                                  "missing"])
def test_a_checkpoint_that_is_not_a_regular_file_is_named_for_what_it_is(
        command: str, kind: str, tmp_path: Path):
    path, reason = _not_a_file(tmp_path, kind)
    image = png(tmp_path / "item.png")
    args = {"eval": ["eval", str(path)],
            "classify": ["classify", str(image), "--checkpoint", str(path)],
            "project": ["project", "--checkpoint", str(path), "--method", "pca"],
            "reconstruct": ["reconstruct", str(tmp_path), "--checkpoint", str(path),
                            "--out", str(tmp_path / "out")],
            "fuse": ["fuse", str(image), str(image), "--checkpoint", str(path),
                     "--out", str(tmp_path / "x.png")]}[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line.startswith(f"error: checkpoint {path} ") and reason in line, line


CONTROL_MESSAGES = {
    "classify: unreadable file": lambda d: (
        ["classify", str(_write(d / "esc\x1b]0;pwned\x07.png", b"x")), "--checkpoint",
         str(cnn_checkpoint(d / "c.pt"))], "esc\\x1b]0;pwned\\x07.png", 1),
    "reconstruct: missing folder with a newline": lambda d: (
        ["reconstruct", str(d / "two\nlines"), "--checkpoint", str(make_vae_checkpoint(d / "v.pt"))],
        "two\\nlines", 2),
    "eval: missing checkpoint with a carriage return": lambda d: (
        ["eval", str(d / "over\rwrite.pt")], "over\\rwrite.pt", 2),
    "fuse: unreadable face with a C1 control": lambda d: (
        ["fuse", str(_write(d / "c1\u009b31m.jpg", b"no")), str(png(d / "ok.png")),
         "--checkpoint", str(make_vae_checkpoint(d / "v.pt")), "--out", str(d / "f.png")],
        "c1\\xc2\\x9b31m.jpg", 2),
    "fuse: a group list file with braces and a tab": lambda d: (
        ["fuse", "--group-a", str(d / "{0}\tmissing"), "--group-b", str(d), "--checkpoint",
         str(make_vae_checkpoint(d / "v.pt")), "--out", str(d / "f.png")], "{0}\\tmissing", 2),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(CONTROL_MESSAGES))
def test_control_characters_in_names_are_escaped_in_messages(case: str, tmp_path: Path):
    args, shown, code = CONTROL_MESSAGES[case](tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    line = one_error_line(result) if code == 2 else result.stderr.strip()
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x9b" not in line
    assert shown in line, line


def test_a_note_is_one_line_whatever_it_names(capsys):
    output.TERMINAL.note("skipped 2 images: a\nb.png (bad), \x1b[2Jc.png (bad)")
    assert capsys.readouterr().err == "skipped 2 images: a\\nb.png (bad), \\x1b[2Jc.png (bad)\n"


ESCAPE_ROUND_TRIPS = ["plain.png", "a\\b", "\\x41 is not A", "\t\n\r\x00\x1f\x7f", "\x85\x9b",
                      "\u2028\u2029\u202a\u202e\u2066\u2069", "caf\udce9", "\udcff\udc80",
                      "été 靴 😀", "[/] :smile:", "\\\\\\"]


@pytest.mark.parametrize("text", ESCAPE_ROUND_TRIPS)
def test_the_escape_rule_is_printable_utf8_and_undone_exactly(text: str):
    shown = output.escape(text)
    shown.encode("utf-8")  # no surrogates left
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in shown)
    assert unescape(shown) == text
