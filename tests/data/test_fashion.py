"""Reading Fashion-MNIST: IDX decoding, local copies, damaged files, preprocessing as tensor ops."""

import gzip
import re
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from fmtool.cli.options import flag
from fmtool.data import fashion
from fmtool.errors import UserError
from tests.helpers.fashion import write_idx


def test_reads_gzipped_and_plain_idx(tmp_path: Path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array, gzipped=True)
    write_idx(tmp_path / "b", array, gzipped=False)
    for name in ("a.gz", "b"):
        assert torch.equal(fashion.read_idx(tmp_path / name), torch.from_numpy(array))


def test_truncated_idx_says_to_download_again(tmp_path: Path):
    write_idx(tmp_path / "x", np.zeros((10, 28, 28), np.uint8), gzipped=False)
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(data[:-100])
    with pytest.raises(UserError, match="truncated or damaged"):
        fashion.read_idx(tmp_path / "x")


def test_corrupt_gzip_and_non_idx_are_refused(tmp_path: Path):
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"hello world")[:-6])
    with pytest.raises(UserError):
        fashion.read_idx(tmp_path / "bad.gz")
    (tmp_path / "text").write_bytes(b"not an idx file at all")
    with pytest.raises(UserError, match="not an IDX"):
        fashion.read_idx(tmp_path / "text")


def test_local_copy_loads_and_missing_files_are_named(tiny_fashion: Path):
    data = fashion.load_from_dir(tiny_fashion)  # conftest writes 200 training, 100 test items
    assert data.train_images.shape == (200, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.train_labels.shape == (200,) and data.train_labels.dtype == torch.int64
    assert data.test_images.shape == (100, 28, 28) and data.test_images.dtype == torch.uint8
    assert data.test_labels.shape == (100,) and data.test_labels.dtype == torch.int64
    (tiny_fashion / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        fashion.load_from_dir(tiny_fashion)


def test_environment_variable_points_at_a_local_copy(tiny_fashion: Path, monkeypatch):
    monkeypatch.setenv(fashion.ENV_DIR, str(tiny_fashion))
    assert fashion.load_fashion_mnist().source == tiny_fashion


def test_offline_download_gives_one_clear_error(monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(UserError) as refused:
        fashion.load_fashion_mnist()
    assert re.search("could not download Fashion-MNIST.*--data-dir", refused.value.render(flag))


def test_model_input_is_resized_and_normalised_as_one_batch():
    images = torch.full((5, 28, 28), 255, dtype=torch.uint8)
    x = fashion.to_model_input(images, 32)
    assert x.shape == (5, 1, 32, 32) and x.dtype == torch.float32
    assert torch.allclose(x, torch.full_like(x, (1 - fashion.MEAN) / fashion.STD))


def test_minmax_scaling_maps_each_image_to_the_full_zero_to_one_range():
    """The author's code feeds [0, 1] by min-max, not standardised input: per image, its
    darkest pixel 0 and its brightest 1, also for a faint image that never reaches 255."""
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    images[0, 5:20, 5:20] = 255
    images[1] = 40
    images[1, 10:14, :] = 120  # faint: 40..120
    images[2] = 77  # one grey level
    x = fashion.to_model_input(images, 32, "minmax")
    assert x.shape == (3, 1, 32, 32)
    assert x[:2].amin((1, 2, 3)).tolist() == [0.0, 0.0] and x[:2].amax((1, 2, 3)).tolist() == [1.0, 1.0]
    assert torch.equal(x[2], torch.zeros_like(x[2]))
    unit = fashion.to_model_input(images[:1], 32, "standard") * fashion.STD + fashion.MEAN
    assert torch.allclose(x[:1], unit, atol=1e-6)  # an image spanning 0..255: the same as /255
    with pytest.raises(ValueError, match="scaling"):
        fashion.to_model_input(images, 32, "zscore")


def test_subset_is_seeded_and_shuffled():
    images = torch.arange(100, dtype=torch.uint8).reshape(100, 1, 1)
    labels = torch.arange(100)
    first, _ = fashion.subset(images, labels, 10, seed=1)
    again, _ = fashion.subset(images, labels, 10, seed=1)
    assert torch.equal(first, again)
    assert not torch.equal(first.flatten(), torch.arange(10, dtype=torch.uint8))


OFFICIAL_SHAPES = {
    "train-images-idx3-ubyte.gz": (60000, 28, 28),
    "train-labels-idx1-ubyte.gz": (60000,),
    "t10k-images-idx3-ubyte.gz": (10000, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (10000,),
}


@pytest.mark.parametrize("name", list(OFFICIAL_SHAPES))
def test_shared_copy_has_the_official_shapes(shared_data: Path, name: str):
    tensor = fashion.read_idx(shared_data / "fashion-mnist" / name)
    assert tuple(tensor.shape) == OFFICIAL_SHAPES[name] and tensor.dtype == torch.uint8


@pytest.mark.parametrize("name, shape", [
    ("train-images-idx3-ubyte.gz", (200, 28, 28)), ("train-labels-idx1-ubyte.gz", (200,)),
    ("t10k-images-idx3-ubyte.gz", (100, 28, 28)), ("t10k-labels-idx1-ubyte.gz", (100,)),
])
def test_synthetic_copy_has_the_sizes_it_was_written_with(tiny_fashion: Path, name: str, shape):
    assert tuple(fashion.read_idx(tiny_fashion / name).shape) == shape
