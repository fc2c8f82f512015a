"""Faces: finding them, splitting them by person, the report's crop, the decode cache, downloads."""

import re
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

from fmtool.cli.options import flag
from fmtool.cli.output import TERMINAL
from fmtool.data import faces
from fmtool.data.faces import face_array, list_images, load_face, load_face_splits, person_of, split_by_person
from fmtool.errors import UserError
from tests.helpers.faces import face_image, write_faces


def test_images_are_found_recursively_by_extension(tmp_path: Path):
    write_faces(tmp_path, people=2, per_person=2)
    (tmp_path / "notes.txt").write_text("not a face")
    (tmp_path / ".hidden").mkdir()
    face_image(0, 0).save(tmp_path / ".hidden" / "x.jpg")
    face_image(0, 0).save(tmp_path / "top.PNG")
    found = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "Person_0/Person_0_0001.jpg", "Person_0/Person_0_0002.jpg",
        "Person_1/Person_1_0001.jpg", "Person_1/Person_1_0002.jpg", "top.PNG"]
    assert list_images(tmp_path, recursive=False) == [tmp_path / "top.PNG"]


def test_a_person_is_the_folder_or_the_lfw_file_name(tmp_path: Path):
    assert person_of(tmp_path / "Ann_Lee" / "Ann_Lee_0003.jpg", tmp_path) == "Ann_Lee"
    assert person_of(tmp_path / "Ann_Lee_0003.jpg", tmp_path) == "Ann_Lee"
    assert person_of(tmp_path / "portrait.png", tmp_path) == "portrait"


def test_validation_split_holds_out_whole_people():
    persons = [f"p{i % 13}" for i in range(200)]
    train, val = split_by_person(persons, 0.2)
    assert sorted(train + val) == list(range(200))
    assert not {persons[i] for i in train} & {persons[i] for i in val}
    assert 0.2 <= len(val) / 200 < 0.3
    assert split_by_person(persons, 0.2) == (train, val)  # fixed seed: same people every run
    with pytest.raises(UserError, match="at least two"):
        split_by_person(["only"] * 5, 0.2)


def test_centre_crop_keeps_224_of_250_then_resizes():
    image = np.zeros((250, 250, 3), np.uint8)
    image[:, :, 0] = 255  # red border ...
    image[13:237, 13:237] = (0, 0, 255)  # ... around the central 224x224, blue
    at_224 = face_array(Image.fromarray(image), 224)
    assert at_224.shape == (224, 224, 3) and (at_224 == (0, 0, 255)).all()
    at_64 = face_array(Image.fromarray(image), 64)
    assert at_64.shape == (64, 64, 3) and at_64[..., 0].max() == 0  # no red came back
    wide = Image.new("RGB", (400, 200), (255, 0, 0))
    wide.paste((0, 255, 0), (110, 10, 289, 189))  # the 179x179 centre square (224/250 of 200)
    assert (face_array(wide, 32)[..., 0] == 0).all()


def test_grey_and_transparent_images_become_rgb(tmp_path: Path):
    Image.new("L", (50, 50), 128).save(tmp_path / "grey.png")
    Image.new("RGBA", (50, 50), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert (load_face(tmp_path / "grey.png", 32) == 128).all()
    assert (load_face(tmp_path / "clear.png", 32) == 255).all()  # transparent -> white


def test_splits_are_decoded_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "faces"
    write_faces(folder, people=6, per_person=4)
    first = load_face_splits(folder, 32, val_fraction=0.25)
    assert first.train.dtype == torch.uint8 and first.train.shape[1:] == (3, 32, 32)
    assert len(first.train) + len(first.val) == 24 and first.train_people + first.val_people == 6
    assert list((faces.cache_dir() / "faces").glob("faces-32px-*.pt"))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    with monkeypatch.context() as patch:
        patch.setattr(faces, "load_face", no_decoding)
        again = load_face_splits(folder, 32, val_fraction=0.25)
    assert torch.equal(again.train, first.train) and torch.equal(again.val, first.val)

    face_image(9, 9).save(folder / "Person_0" / "Person_0_0001.jpg")  # a changed file ...
    changed = load_face_splits(folder, 32, val_fraction=0.25)  # ... is decoded again
    assert not torch.equal(torch.cat([changed.train, changed.val]), torch.cat([first.train, first.val]))


def test_limits_take_seeded_subsets_of_each_side(tmp_path: Path):
    write_faces(tmp_path, people=6, per_person=4)
    small = load_face_splits(tmp_path, 32, val_fraction=0.25, seed=3, limit=5, val_limit=2)
    assert (len(small.train), len(small.val)) == (5, 2)
    same = load_face_splits(tmp_path, 32, val_fraction=0.25, seed=3, limit=5, val_limit=2)
    assert torch.equal(small.train, same.train)


def test_unreadable_images_are_skipped_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture):
    write_faces(tmp_path, people=3, per_person=3)
    (tmp_path / "Person_1" / "Person_1_0009.jpg").write_bytes(b"not a jpeg")
    splits = load_face_splits(tmp_path, 32, val_fraction=0.3, feedback=TERMINAL)
    assert len(splits.train) + len(splits.val) == 9 and len(splits.skipped) == 1
    assert "Person_1_0009.jpg" in capsys.readouterr().err


def test_env_var_names_the_faces_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_faces(tmp_path / "mine", people=3, per_person=2)
    monkeypatch.setenv("FMTOOL_FACES_DIR", str(tmp_path / "mine"))
    assert load_face_splits(None, 32, val_fraction=0.3).source == tmp_path / "mine"


def test_without_a_local_copy_lfw_is_downloaded_into_the_cache(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    def fake_fetch(root: Path) -> None:  # what scikit-learn leaves behind
        write_faces(root / "lfw_home" / "lfw_funneled", people=3, per_person=2)

    monkeypatch.setattr(faces, "_fetch_with_sklearn", fake_fetch)
    splits = load_face_splits(None, 32, val_fraction=0.3)
    assert splits.source == faces.datasets_dir() / "lfw_home" / "lfw_funneled"


def test_offline_download_says_what_to_do(monkeypatch: pytest.MonkeyPatch):
    def offline(root: Path) -> None:
        raise URLError("no network")

    monkeypatch.setattr(faces, "_fetch_with_sklearn", offline)
    with pytest.raises(UserError) as refused:
        load_face_splits(None, 32)
    shown = refused.value.render(flag)  # as the command line prints it
    assert re.search("could not download LFW.*--data-dir.*FMTOOL_FACES_DIR", shown)


def test_real_lfw_faces_split_by_person(shared_data: Path):
    root = shared_data / "lfw" / "lfw-deepfunneled"
    if not root.is_dir():
        pytest.skip("no LFW copy")
    people = sorted(p for p in root.iterdir() if p.is_dir())[:12]
    files = [f for person in people for f in sorted(person.glob("*.jpg"))]
    persons = [person_of(f, root) for f in files]
    train, val = split_by_person(persons, 0.25)
    assert not {persons[i] for i in train} & {persons[i] for i in val}
    face = load_face(files[0], 64)
    assert face.shape == (64, 64, 3) and 20 < face.mean() < 235  # a real photo, not a blank


def test_scikit_learn_is_asked_to_fetch_but_not_to_decode(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    """With LFW already unpacked, scikit-learn is asked to download what is missing, downloads
    nothing, decodes nothing, and says so with the error fmtool expects (so offline, this runs
    without a network)."""
    from sklearn.datasets import _lfw

    lfw_home = tmp_path / "lfw_home"
    write_faces(lfw_home / "lfw_funneled", people=2, per_person=1)
    for name in ("pairsDevTrain.txt", "pairsDevTest.txt", "pairs.txt"):
        (lfw_home / name).write_text("1\n")
    checked: list[dict] = []
    real_check = _lfw._check_fetch_lfw

    def check_fetch(*args, **kwargs):
        checked.append(kwargs)
        return real_check(*args, **kwargs)

    def refuse(what: str):
        def refused(*args, **kwargs):
            raise AssertionError(f"scikit-learn was not meant to {what}")
        return refused

    monkeypatch.setattr(_lfw, "_check_fetch_lfw", check_fetch)
    monkeypatch.setattr(_lfw, "_fetch_remote", refuse("download"))
    monkeypatch.setattr(_lfw, "_load_imgs", refuse("decode"))
    faces._fetch_with_sklearn(tmp_path)  # no exception: nobody had 10**9 pictures
    assert len(checked) == 1 and checked[0]["download_if_missing"] is True
    assert checked[0]["funneled"] is True and Path(checked[0]["data_home"]) == tmp_path


def test_download_lfw_fetches_once_then_reuses_the_folder(tmp_path: Path):
    calls: list[Path] = []

    def fetch(root: Path) -> None:  # writes faces where scikit-learn would
        calls.append(root)
        write_faces(root / "lfw_home" / "lfw_funneled", people=2, per_person=1)

    folder = tmp_path / "lfw_home" / "lfw_funneled"
    assert faces.download_lfw(tmp_path, fetch=fetch) == folder
    assert calls == [tmp_path] and len(list_images(folder)) == 2
    assert faces.download_lfw(tmp_path, fetch=fetch) == folder  # already there ...
    assert calls == [tmp_path]  # ... so nothing is fetched again


def test_a_download_that_leaves_no_faces_is_an_error(tmp_path: Path):
    with pytest.raises(UserError, match="did not produce"):
        faces.download_lfw(tmp_path, fetch=lambda root: None)
