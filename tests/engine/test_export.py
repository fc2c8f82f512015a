"""Exported models run without fmtool and agree with it: the CNN as ONNX and TorchScript on real
and synthetic Fashion-MNIST pictures, the VAE's encoder and decoder, the files' metadata, and
`fmtool export` from the command line, refusals included.

The ONNX tests need the export extra (pip install -e '.[test,export]', as CI installs it); without
it they fail with the message that says so.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fmtool import CNN, VAE
from fmtool.cli.app import app
from fmtool.cnn.export import export_classifier
from fmtool.cnn.inference import predict_logits
from fmtool.data import fashion
from fmtool.engine import export as engine_export
from fmtool.engine.bundled import bundled_checkpoint
from fmtool.engine.io import FileSink
from fmtool.errors import UserError
from fmtool.models.cnn import FashionCNN
from fmtool.vae.inference import decode, encode
from tests.helpers.fashion import synthetic_fashion

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
CPU = torch.device("cpu")
IMAGES = 200
LOGIT_TOLERANCE = 1e-3  # the bound; measured: 5e-6 (ONNX), 0 (TorchScript) on logits up to 4.4
# The VAE's files against fmtool's encode/decode on the same float32 CPU, 200 LFW faces: at most
# 2.4e-6 (ONNX; TorchScript: 0) for mu and logvar up to about 7 in size and images in [0, 1].
# 1e-4 leaves room for other CPUs' kernels and is still 1/40 of a grey level (1/255) in a face.
VAE_TOLERANCE = 1e-4

# What a user without fmtool writes: load the file, feed pixel/255 pictures, read the logits.
# Run in a fresh Python that must not import fmtool at all.
RUN_WITHOUT_FMTOOL = {
    "onnx": """
import onnxruntime
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
(logits,) = session.run(["logits"], {"images": np.load(sys.argv[2])})
""",
    "torchscript": """
import torch
model = torch.jit.load(sys.argv[1])
with torch.no_grad():
    logits = model(torch.from_numpy(np.load(sys.argv[2]))).numpy()
""",
}


@pytest.fixture(scope="module")
def cnn() -> CNN:
    return CNN.load("builtin", device="cpu")


@pytest.fixture(scope="module")
def exported_cnn(cnn, tmp_path_factory) -> dict[str, Path]:
    """The bundled CNN in both formats, as `CNN.export()` writes them."""
    folder = tmp_path_factory.mktemp("exported")
    files = {"onnx": folder / "cnn.onnx", "torchscript": folder / "cnn.pt"}
    for format, path in files.items():
        written = cnn.export(path, format)
        assert written == path and path.is_file()
    return files


def real_test_images(shared_data: Path) -> torch.Tensor:
    """200 Fashion-MNIST test images, a seeded pick (the shared copy is sorted by label)."""
    data = fashion.load_fashion_mnist(shared_data / "fashion-mnist")
    images, _ = fashion.subset(data.test_images, data.test_labels, IMAGES, seed=0)
    return images


def synthetic_images(folder: Path) -> torch.Tensor:
    """200 pictures of bright bars on dark noise (tests.helpers.fashion's stand-in for Fashion-MNIST)."""
    data = fashion.load_from_dir(synthetic_fashion(folder, train=1, test=IMAGES))
    return data.test_images


def logits_without_fmtool(path: Path, images: torch.Tensor, tmp_path: Path) -> torch.Tensor:
    """The exported file's logits for uint8 images, computed in a Python that never imports fmtool."""
    pictures, logits = tmp_path / "pictures.npy", tmp_path / "logits.npy"
    np.save(pictures, fashion.to_unit(images).numpy())  # float32 [N, 1, 28, 28], pixel / 255
    format = "onnx" if path.suffix == ".onnx" else "torchscript"
    script = ("import sys\nimport numpy as np\n" + RUN_WITHOUT_FMTOOL[format]
              + "\nnp.save(sys.argv[3], logits)\n"
              + "assert not [m for m in sys.modules if m.split('.')[0] == 'fmtool'], 'fmtool was imported'\n")
    done = subprocess.run([sys.executable, "-c", script, str(path), str(pictures), str(logits)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.from_numpy(np.load(logits))


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
@pytest.mark.parametrize("source", ["real", "synthetic"])
def test_exported_cnn_gives_fmtools_logits(format, source, cnn, exported_cnn, request, tmp_path):
    if source == "real":
        images = real_test_images(request.getfixturevalue("shared_data"))
    else:
        images = synthetic_images(tmp_path / "fashion")
    expected = predict_logits(cnn.model, images, cnn.config.image_size, CPU,
                              tta_flip=cnn.config.tta_flip)
    got = logits_without_fmtool(exported_cnn[format], images, tmp_path)
    assert got.shape == expected.shape == (IMAGES, 10)
    assert torch.equal(got.argmax(1), expected.argmax(1))
    assert (got - expected).abs().max().item() <= LOGIT_TOLERANCE


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_the_code_variant_exports_with_its_min_max_scaling(format, tmp_path):
    """The author's network scales each picture to its own darkest and brightest pixel; a picture
    of one grey level (no contrast) becomes all zeros, inside the file as in fmtool."""
    import onnxruntime

    torch.manual_seed(0)
    model = FashionCNN(width=0.125, image_size=24, variant="code").eval()
    images = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    images[0], images[1] = 0, 77  # black, and one grey level
    path = tmp_path / ("code.onnx" if format == "onnx" else "code.pt")
    export_classifier(model, class_names=list(fashion.CLASSES), image_size=24, tta_flip=True,
                      path=path, format=format)
    expected = predict_logits(model, images, 24, CPU, tta_flip=True)
    pictures = fashion.to_unit(images)
    if format == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(["logits"], {"images": pictures.numpy()})[0])
    else:
        with torch.no_grad():
            got = torch.jit.load(str(path))(pictures)
    assert (got - expected).abs().max().item() <= LOGIT_TOLERANCE
    assert torch.equal(got[0], got[1])  # both pictures without contrast read as all zeros
    assert torch.equal(pictures[1], images[1].float().unsqueeze(0) / 255)  # the input is left as it was


def onnx_metadata(path: Path) -> dict:
    """An ONNX file's metadata_props, each JSON value parsed (plain text stays text)."""
    import onnx

    def parsed(value: str):
        try:
            return json.loads(value)
        except ValueError:
            return value

    return {prop.key: parsed(prop.value) for prop in onnx.load(str(path)).metadata_props}


def torchscript_metadata(path: Path) -> dict:
    """A TorchScript file's fmtool.json extra file."""
    extra = {"fmtool.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    return json.loads(extra["fmtool.json"])


def test_exported_cnn_names_its_classes_and_input_contract(exported_cnn, cnn):
    import onnxruntime

    metadata = onnx_metadata(exported_cnn["onnx"])
    assert metadata == torchscript_metadata(exported_cnn["torchscript"])  # the same in both formats
    assert metadata["class_names"] == list(fashion.CLASSES)
    assert metadata["input_name"] == "images" and metadata["output_name"] == "logits"
    assert metadata["input_shape"] == ["N", 1, 28, 28] and metadata["input_range"] == [0, 1]
    assert "light on a black background" in metadata["input_picture"]
    assert metadata["image_size"] == cnn.config.image_size == 28  # the network's own input
    assert metadata["tta_flip"] is True
    assert metadata["scaling"] == {"name": "standard", "mean": fashion.MEAN, "std": fashion.STD}
    assert metadata["fmtool_version"] == "0.2.0"
    # the batch is dynamic: one picture at a time works too
    session = onnxruntime.InferenceSession(str(exported_cnn["onnx"]), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": np.zeros((1, 1, 28, 28), np.float32)})
    assert logits.shape == (1, 10)


@pytest.fixture(scope="module")
def vae() -> VAE:
    return VAE.load("builtin", device="cpu")


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_exported_vae_encodes_and_decodes_as_fmtool(format, vae, tmp_path):
    import onnxruntime

    model = vae.model
    suffix = ".onnx" if format == "onnx" else ".pt"
    written = vae.export(tmp_path / f"face{suffix}", format)
    generator = torch.Generator().manual_seed(0)
    faces = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8, generator=generator)
    mu, logvar = encode(model, faces, CPU)
    codes = torch.cat([mu, torch.randn(8, 256, generator=generator)])  # its own codes, and random ones
    pictures = decode(model, codes, CPU)
    unit = faces.float() / 255  # what the encoder takes: faces prepared as training prepares them
    if format == "onnx":
        assert [p.name for p in written] == ["face.encoder.onnx", "face.decoder.onnx"]
        encoder, decoder = (onnxruntime.InferenceSession(str(p), providers=["CPUExecutionProvider"])
                            for p in written)
        got_mu, got_logvar = (torch.from_numpy(a) for a in encoder.run(["mu", "logvar"], {"images": unit.numpy()}))
        got_pictures = torch.from_numpy(decoder.run(["images"], {"z": codes.numpy()})[0])
        metadata = onnx_metadata(written[0])
        assert metadata["part"] == "encoder" and onnx_metadata(written[1])["part"] == "decoder"
    else:
        assert [p.name for p in written] == ["face.pt"]
        both = torch.jit.load(str(written[0]))
        with torch.no_grad():
            got_mu, got_logvar = both.encode(unit)
            got_pictures = both.decode(codes)
        metadata = torchscript_metadata(written[0])
    for got, want in ((got_mu, mu), (got_logvar, logvar), (got_pictures, pictures)):
        assert got.shape == want.shape
        assert (got - want).abs().max().item() <= VAE_TOLERANCE
    assert metadata["latent_dim"] == 256 and metadata["image_size"] == 64
    assert metadata["preprocessing"] == {"crop": [224, 250], "image_size": 64,
                                         "resample": "bilinear", "range": [0, 1]}


def test_export_refuses_unknown_formats_and_wrong_suffixes(cnn, tmp_path):
    model = cnn.model
    settings = dict(class_names=cnn.class_names, image_size=32, tta_flip=False)
    cases = [("tflite", "m.tflite", "unknown export format 'tflite'; choose onnx or torchscript"),
             ("onnx", "m.pt", "path {}: an ONNX file's name ends in .onnx; rename it, or choose another format"),
             ("torchscript", "m.onnx", "path {}: a TorchScript file's name ends in .pt or .pth; "
                                       "rename it, or choose another format")]
    for format, name, message in cases:
        with pytest.raises(UserError) as refused:
            export_classifier(model, path=tmp_path / name, format=format, **settings)
        assert str(refused.value) == message.format(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_an_existing_file_before_any_work_unless_forced(cnn, vae, tmp_path):
    mine = tmp_path / "fashion.pt"
    mine.write_text("my own file")
    with pytest.raises(UserError) as refused:
        cnn.export(mine, "torchscript")
    assert str(refused.value) == f"{mine} already exists; add force to overwrite it, or choose another path"
    assert mine.read_text() == "my own file"

    assert cnn.export(mine, "torchscript", force=True) == mine
    assert torch.jit.load(str(mine))(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_a_vae_export_refuses_when_either_of_its_files_exists(vae, tmp_path):
    (tmp_path / "face.decoder.onnx").write_text("my own file")
    with pytest.raises(UserError, match="face.decoder.onnx already exists; add force"):
        vae.export(tmp_path / "face.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.decoder.onnx"]


def test_an_onnx_export_logs_nothing_of_the_exporters_own(cnn, tmp_path, caplog):
    caplog.set_level(logging.INFO)  # as a script's logging.basicConfig(level=logging.INFO)
    cnn.export(tmp_path / "m.onnx")
    assert [r.name for r in caplog.records if r.name.startswith(engine_export.EXPORTER_LOGGERS)] == []
    assert [logging.getLogger(name).level for name in engine_export.EXPORTER_LOGGERS] == [0, 0, 0]


def test_onnx_export_without_the_extra_says_how_to_install_it(cnn, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript now fails
    with pytest.raises(UserError, match=r"^ONNX export needs the export extra: pip install 'fmtool\[export\]'$"):
        cnn.export(tmp_path / "m.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []


def test_files_appear_together_or_not_at_all(tmp_path, monkeypatch):
    written = FileSink.write

    def interrupted(self, data):
        if bytes(data) == b"decoder":
            raise KeyboardInterrupt  # Ctrl-C while the second file is written
        return written(self, data)

    monkeypatch.setattr(FileSink, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine_export.write_files({tmp_path / "f.encoder.onnx": b"encoder",
                                   tmp_path / "f.decoder.onnx": b"decoder"})
    assert list(tmp_path.iterdir()) == []


# -- the command line ------------------------------------------------------------------------

def test_cli_exports_the_bundled_cnn_to_onnx_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["export", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["files"] == ["cnn.onnx"] and report["kind"] == "cnn" and report["format"] == "onnx"
    assert report["class_names"] == list(fashion.CLASSES)
    assert onnx_metadata(tmp_path / "cnn.onnx")["class_names"] == list(fashion.CLASSES)
    assert "using the bundled CNN model" in result.stderr

    again = runner.invoke(app, ["export"])  # the file is there now
    assert again.exit_code == 2
    assert again.stderr == "error: cnn.onnx already exists; add --force to overwrite it, or choose another --out\n"


def test_cli_exports_a_vae_checkpoint_by_its_own_kind(tmp_path):
    checkpoint = bundled_checkpoint("vae")
    result = runner.invoke(app, ["export", str(checkpoint), "--format", "torchscript",
                                 "--out", str(tmp_path / "face.pt")])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{tmp_path / 'face.pt'}\n"
    both = torch.jit.load(str(tmp_path / "face.pt"))
    assert both.decode(torch.zeros(2, 256)).shape == (2, 3, 64, 64)

    forced = runner.invoke(app, ["export", "--model", "vae", "-f", "torchscript", "-o",
                                 str(tmp_path / "face.pt"), "--force"])
    assert forced.exit_code == 0, forced.output


@pytest.mark.parametrize("args, message", [
    (["--format", "tflite"],
     "unknown export format 'tflite'; choose onnx or torchscript; see fmtool export -h"),
    (["--format", "torchscript", "--out", "model.onnx"],
     "--out model.onnx: a TorchScript file's name ends in .pt or .pth; rename it, or choose another --format"),
    (["--out", "model.pt"], "--out model.pt: an ONNX file's name ends in .onnx; rename it, or choose another --format"),
    (["--out", "x.txt"], "--out x.txt: an ONNX file's name ends in .onnx; rename it, or choose another --format"),
    (["--model", "gan"], "unknown model 'gan'; choose cnn or vae; see fmtool export -h"),
    (["--out", "."], ". is a folder; fmtool would write a file there; choose another --out"),
])
def test_cli_refusals_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["export", *args])
    assert result.exit_code == 2
    assert result.stderr == f"error: {message}\n"
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
