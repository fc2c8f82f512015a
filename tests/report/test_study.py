"""`fmtool report` on tiny checkpoints and synthetic data: every figure, links that resolve,
numbers equal to those the other commands print, determinism, --force, errors, `fuse --pairs`."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmtool.api import VAE
from fmtool.cli.app import app
from fmtool.data.faces import HeldOutFaces, load_face_splits
from fmtool.engine.checkpoint import load_checkpoint, save_checkpoint
from fmtool.errors import UserError
from fmtool.models.cnn import FashionCNN
from fmtool.models.vae import FaceVAE
from fmtool.report.architecture import trace
from fmtool.report.vae_figures import _pick
from fmtool.vae.evaluate import split_check
from fmtool.vae.fuse import group_files
from tests.helpers.faces import make_vae_checkpoint
from tests.helpers.report import report_args

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
FIGURES = [f"Figure {n}" for n in range(1, 13)] + ["Table 2"]


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def links(page: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]+)"', page)


def test_every_figure_is_drawn_and_every_file_written(study: dict):
    out = Path(study["out"])
    by_label = {figure["label"]: figure for figure in study["figures"]}
    assert set(FIGURES) <= set(by_label)
    for label in FIGURES:
        assert by_label[label]["files"] and by_label[label]["missing"] == "", label
    assert {Path(p).name for p in study["files"]} >= {"index.html", "report.md", "table2.csv",
                                                      "figure03_loss.png", "figure10_pairs.png"}
    for path in study["files"]:
        assert Path(path).is_file() and Path(path).parent == out, path


def test_table_2_names_the_run_and_the_recipes_show_only_what_the_report_lists(study: dict):
    out = Path(study["out"])
    rows = list(csv.reader((out / "table2.csv").read_text().splitlines()))
    assert rows[1] == ["VGG16", "93.50%", "the report's Table 2, as quoted in fmtool's issue "
                       "tracker (issue 6)"]
    assert rows[-1][0] == "fmtool: cnn-run"  # the run folder, not best.pt
    assert rows[-1][2].endswith("test images, recipe paper")
    page = (out / "index.html").read_text()
    assert "<td>lr</td><td>0.0005</td><td>0.0005 (same)</td>" in page
    assert "<td>latent_dim</td><td>256</td><td>8</td>" in page
    for fmtool_only in ("variant", "val_size", "photo_jitter", "tta_flip"):  # not the report's
        assert f"<td>{fmtool_only}</td><td>-</td>" in page, fmtool_only


def test_the_html_links_only_files_in_the_folder_and_runs_no_script(study: dict):
    out = Path(study["out"])
    page = (out / "index.html").read_text()
    targets = [t for t in links(page) if not t.startswith("#")]
    assert len(set(targets)) >= 15
    for target in targets:
        assert "/" not in target and ":" not in target, target  # relative, in the folder
        assert (out / target).is_file(), target
    for anchor in (t[1:] for t in links(page) if t.startswith("#")):
        assert f'id="{anchor}"' in page
    assert "<script" not in page.lower()
    markdown = (out / "report.md").read_text()
    for target in re.findall(r"\]\(<([^>]+)>\)", markdown):
        assert (out / target).is_file(), target


def test_the_numbers_are_those_the_other_commands_print(study: dict, world: dict, tmp_path: Path):
    page = (Path(study["out"]) / "index.html").read_text()
    evaluated = run("eval", world["cnn"], "--data-dir", world["data"], "--out", tmp_path / "eval",
                    "--device", "cpu", "--json")
    assert evaluated.exit_code == 0, evaluated.output
    evaluation = json.loads(evaluated.stdout)
    assert study["cnn"]["accuracy"] == evaluation["accuracy"]
    assert study["cnn"]["per_class_accuracy"] == evaluation["per_class_accuracy"]
    assert f"({evaluation['accuracy']:.4f}:" in page
    for name, value in evaluation["per_class_accuracy"].items():
        assert f"<td>{name}</td><td>none recorded</td><td class=\"num\">{value:.3f}</td>" in page

    projection = study["cnn"]["projection"]
    projected = run("project", "--checkpoint", world["cnn"], "--method", "tsne", "--per-class",
                    projection["per_class"], "--data-dir", world["data"], "--out",
                    tmp_path / "tsne.png", "--device", "cpu", "--json")
    assert projected.exit_code == 0, projected.output
    layers = json.loads(projected.stdout)["layers"]
    assert len(projection["tsne"]) == len(layers) >= 1
    for mine, theirs in zip(projection["tsne"], layers):
        assert (mine["layer"], mine["knn_accuracy"], mine["silhouette"]) == \
               (theirs["layer"], theirs["knn_accuracy"], theirs["silhouette"])
        assert f"<td>{mine['layer']}</td><td>tsne</td><td class=\"num\">" \
               f"{mine['knn_accuracy']:.3f}</td>" in page

    faces = tmp_path / "faces"  # Figure 10's faces, for reconstruct to measure
    faces.mkdir()
    for path in study["vae"]["figure10"]["faces"]:
        shutil.copy(path, faces)
    rebuilt = run("reconstruct", faces, "--checkpoint", world["vae"], "--out", tmp_path / "recon",
                  "--device", "cpu", "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    mean = json.loads(rebuilt.stdout)["mean"]
    assert study["vae"]["figure10"]["mean"] == pytest.approx(mean, rel=1e-5)
    assert f"PSNR {mean['psnr']:.2f} dB, SSIM {mean['ssim']:.4f}, as fmtool reconstruct" in page


def test_the_headline_psnr_and_ssim_are_the_vaes_own_over_all_held_out_faces(study: dict,
                                                                             world: dict):
    """The numbers a model card states (tools/bundle.py measures them with VAE.evaluate)."""
    measured = VAE.load(world["vae"], device="cpu").evaluate(world["faces"])
    vae = study["vae"]
    assert (vae["faces"], vae["people"]) == (measured["faces"], measured["people"])
    assert (vae["psnr"], vae["ssim"]) == (measured["psnr"], measured["ssim"])
    assert vae["split_matches"] is measured["split_matches"] is True
    page = (Path(study["out"]) / "index.html").read_text()
    people = "person" if measured["people"] == 1 else "people"
    held = f"all {measured['faces']:,} faces of the {measured['people']:,} held-out {people}"
    assert (f"<td>PSNR of reconstructions</td><td>none recorded</td><td>"
            f"{measured['psnr']:.2f} dB (mean over {held})</td>") in page
    assert f"<td>{measured['ssim']:.4f} (the same faces)</td>" in page
    assert "not the split" not in page


def test_the_held_out_faces_are_many_people_never_a_training_one(study: dict, world: dict):
    splits = load_face_splits(world["faces"], 32)
    shown = study["vae"]["figure10"]["faces"]
    assert study["vae"]["faces"] == len(splits.val) == len(shown)  # fewer than 96 here: all
    assert study["vae"]["people"] == splits.val_people == len({Path(p).parent.name for p in shown})


def test_the_split_is_checked_against_what_the_checkpoint_recorded():
    held = HeldOutFaces(Path("faces"), [Path("a.jpg"), Path("b.jpg"), Path("c.jpg")],
                        ["A", "A", "B"], torch.zeros(3, 3, 32, 32, dtype=torch.uint8))

    def check(data: dict, options: dict | None = None) -> dict:
        return split_check({"data": data, "options": options or {}}, held)

    assert check({"val_images": 3, "val_people": 2, "source": "/lfw"})["split_matches"] is True
    assert check({"val_images": 3})["split_matches"] is True  # what is recorded agrees
    assert check({})["split_matches"] is None  # nothing recorded: nothing to check
    assert "does not record" in check({})["split_note"]
    assert check({"val_images": 2, "val_people": 2},
                 {"val_limit": 2})["split_matches"] is None  # validated on a subset
    wrong = check({"val_images": 3, "val_people": 1, "source": "/lfw"})
    assert wrong["split_matches"] is False
    assert "3 faces of 2 people held out, but its training held out 3 faces of 1 person of " \
           "/lfw" in wrong["split_note"]


def test_another_faces_folder_is_said_plainly_and_unreadable_fusion_faces_are_left_out(
        world: dict, tmp_path: Path):
    """A VAE trained on another folder (its recorded split differs: e.g. LFW's full 13,233
    images against the 12,445 it trained on) is measured, and every document says so; a face
    of Figure 11 or 12 that cannot be read leaves its pair out, and the caption names it."""
    lfw = tmp_path / "lfw"
    shutil.copytree(world["faces"].parent, lfw)
    faces = lfw / "faces"
    women = group_files(lfw / "female_names.txt", faces, None)
    broken = [_pick(women, 0)[0], faces / "Person_7" / "Person_7_0004.jpg"]  # Figures 11, 12
    for path in broken:
        path.write_bytes(b"not a jpeg")
    elsewhere = make_vae_checkpoint(tmp_path / "vae.pt", data={"source": "/data/lfw-full",
                                                               "val_images": 1323,
                                                               "val_people": 575})
    result = run("report", "--cnn", world["cnn"], "--vae", elsewhere, "--data-dir", world["data"],
                 "--faces-dir", faces, "--pairs", world["pairs"], "--out", tmp_path / "study",
                 "--device", "cpu", "--json")
    assert result.exit_code == 0, result.output
    study = json.loads(result.stdout)
    assert study["vae"]["split_matches"] is False
    note = study["vae"]["split_note"]
    assert "not the split the VAE was trained with" in note and "1,323 faces of 575 people" in note
    assert "/data/lfw-full" in note
    page = (tmp_path / "study" / "index.html").read_text()
    assert page.count("not the split the VAE was trained with") >= 2  # the table and Figure 10
    assert "not the split the VAE was trained with" in (tmp_path / "study" / "report.md").read_text()
    by_label = {figure["label"]: figure for figure in study["figures"]}
    for label, path in zip(("Figure 11", "Figure 12"), broken):
        assert by_label[label]["files"] and not by_label[label]["missing"], label
        caption = page.split(f'<figure id="{label.lower().replace(" ", "-")}">')[1]
        caption = caption.split("</figure>")[0]
        assert re.search(r"Left out, a face could not be read: [^<]*" + re.escape(path.name),
                         caption), (label, caption)
    plain = run("report", "--cnn", world["cnn"], "--vae", elsewhere, "--data-dir", world["data"],
                "--faces-dir", faces, "--pairs", world["pairs"], "--out", tmp_path / "again",
                "--device", "cpu")
    assert plain.exit_code == 0, plain.output
    assert "warning: not the split the VAE was trained with" in plain.stdout


def test_same_seed_same_study_and_force_to_write_it_again(study: dict, world: dict):
    again = world["root"] / "again"
    result = run(*report_args(world, again, "--json"))
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    for part in ("cnn", "vae"):
        assert _without_seconds(second[part]) == _without_seconds(study[part])
    first = Path(study["out"])
    for name in ("index.html", "report.md", "figure06_tsne.csv", "figure10_pairs.png",
                 "figure02_cnn.png", "table2.csv"):
        assert (again / name).read_bytes() == (first / name).read_bytes(), name

    refused = run(*report_args(world, again))
    assert refused.exit_code == 2
    (line,) = refused.stderr.splitlines()
    assert line.startswith("error: ") and "already exist" in line
    assert "--force" in line and "--out" in line
    assert run(*report_args(world, again, "--force")).exit_code == 0


def _without_seconds(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


def test_broken_and_mismatched_checkpoints_fail_as_in_the_other_commands(world: dict,
                                                                         tmp_path: Path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    damaged = load_checkpoint(world["vae"])  # its split is made again from the recipe's share
    damaged.meta["recipe"]["val_fraction"] = "lots"
    save_checkpoint(tmp_path / "damaged.pt", damaged)
    for flag, bad, command in (
            ("--cnn", broken, ["eval", broken]),
            ("--vae", broken, ["reconstruct", world["faces"], "--checkpoint", broken]),
            ("--vae", tmp_path / "damaged.pt", ["reconstruct", world["faces"], "--checkpoint",
                                                tmp_path / "damaged.pt"])):
        mine = run(*report_args(world, tmp_path / "out", flag, bad))
        theirs = run(*command)
        assert mine.exit_code == theirs.exit_code == 2
        assert mine.stderr.splitlines()[-1] == theirs.stderr.splitlines()[-1]
        assert mine.stderr.splitlines()[-1].startswith("error: ")
    swapped = run(*report_args(world, tmp_path / "out", "--vae", world["cnn"]))
    assert swapped.exit_code == 2 and "CNN checkpoint" in swapped.stderr.splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_a_failure_part_way_leaves_no_file(world: dict, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch):
    """The CNN's half is done when the VAE's fails: none of it appears."""
    import fmtool.report.study

    def fails(*args: object) -> None:
        raise UserError("the VAE's half failed")

    monkeypatch.setattr(fmtool.report.study, "reconstructions", fails)
    result = run(*report_args(world, tmp_path / "study"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == "error: the VAE's half failed"
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize("case", ["no faces folder", "an empty faces folder",
                                  "no Fashion-MNIST files", "an unwritable --out"])
def test_unusable_data_or_out_is_refused_before_the_first_stage(
        case: str, world: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import fmtool.report.study

    empty = tmp_path / "empty"
    empty.mkdir()
    args, expected = {
        "no faces folder": (["--faces-dir", tmp_path / "none"],
                            f"error: faces folder {tmp_path / 'none'} does not exist"),
        "an empty faces folder": (["--faces-dir", empty], f"error: no face images found in "
                                                          f"{empty}; give a folder of faces with "
                                                          "--faces-dir"),
        "no Fashion-MNIST files": (["--data-dir", empty], f"error: {empty} lacks "),
        "an unwritable --out": ([], f"error: could not write into {tmp_path}: Permission "
                                    "denied; choose another --out"),
    }[case]
    if case == "an unwritable --out":
        real_open = os.open  # as root no permission bit stops a write: the call fails instead
        monkeypatch.setattr(os, "open", lambda path, flags, *a, **k: (
            _refuse(path) if flags & os.O_CREAT and Path(path).parent == tmp_path
            else real_open(path, flags, *a, **k)))
    started: list[str] = []
    monkeypatch.setattr(fmtool.report.study, "cnn_figures",
                        lambda *a: started.append("cnn") or pytest.fail("a stage started"))
    result = run(*report_args(world, tmp_path / "study", *args))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith(expected), result.stderr
    assert not started and not (tmp_path / "study").exists()


def _refuse(path: object) -> int:
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


def test_without_the_gender_lists_figure_11_is_left_out_and_says_why(world: dict,
                                                                     tmp_path: Path):
    faces = tmp_path / "faces"
    shutil.copytree(world["faces"], faces)
    result = run("report", "--cnn", world["cnn"], "--vae", world["vae"], "--data-dir",
                 world["data"], "--faces-dir", faces, "--out", tmp_path / "study",
                 "--format", "svg", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "Figure 11: not drawn: LFW's female_names.txt and male_names.txt" in result.stdout
    assert "Figure 12: not drawn: no pair of" in result.stdout  # the shipped LFW names
    page = (tmp_path / "study" / "index.html").read_text()
    assert 'img src="figure02_cnn.svg"' in page
    assert "Not drawn:" in page


def test_fuse_pairs_stacks_a_strip_per_pair_as_the_report_does(study: dict, world: dict,
                                                             tmp_path: Path):
    result = run("fuse", "--pairs", world["pairs"], "--data-dir", world["faces"], "--steps", 8,
                 "--checkpoint", world["vae"], "--out", tmp_path / "pairs.png", "--device",
                 "cpu", "--json")
    assert result.exit_code == 0, result.output
    fused = json.loads(result.stdout)
    assert fused["mode"] == "pairs" and len(fused["pairs"]) == 2 and len(fused["alphas"]) == 8
    with Image.open(fused["strip"]) as strip:
        assert strip.size == (10 * 34 + 2, 2 * 34 + 2)  # 32 px faces, 2 px gaps: 10 x 2
    figure = Path(study["out"]) / "figure12_young_old.png"
    assert Path(fused["strip"]).read_bytes() == figure.read_bytes()
    again = run("fuse", "a.jpg", "--pairs", world["pairs"], "--checkpoint", world["vae"])
    assert again.exit_code == 2 and "--pairs names every face itself" in again.stderr


def test_diagrams_are_traced_from_the_models_branches_included():
    units = trace(FashionCNN(width=0.0625), torch.zeros(1, 1, 32, 32))
    by_name = {unit.name: unit for unit in units}
    assert by_name["conv3"].level == by_name["conv5"].level
    joined = by_name["concatenate"]
    assert {units[i].name for i in joined.inputs} == {"conv4", "conv6"}
    assert joined.shape == (16, 16, 16) and by_name["output"].shape == (10,)
    assert by_name["conv6"].parts[0] == "Conv 5×5, 8→8"
    assert by_name["drop1"].parts[0] == "Dropout 0.7"
    without = {unit.name: unit for unit in trace(FashionCNN(width=0.0625, dropout=0.0),
                                                 torch.zeros(1, 1, 32, 32))}
    assert without["drop1"].parts[0] == "Dropout 0 (off)"
    vae = {unit.name: unit for unit in trace(FaceVAE(32, 8), torch.zeros(1, 3, 32, 32))}
    assert vae["sample"].parts[0] == "z = fc_mu + exp(0.5 · fc_logvar) · ε"
    assert vae["output"].shape == (3, 32, 32)
