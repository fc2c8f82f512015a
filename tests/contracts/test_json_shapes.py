"""docs/json.md, the JSON output page, is a contract: every example there is run, and the real
output must have the documented shape (same keys, same kinds of values).

In the page's examples, "..." stands for "more of the same": a "..." string matches any
string, a "..." list item means more items shaped like the others, and a "..." key means any
keys with values shaped like the others. null matches null or a number.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmtool.cli.app import app
from fmtool.data.faces import load_face_splits
from tests.helpers.faces import make_vae_checkpoint, write_faces
from tests.helpers.fashion import synthetic_fashion
from tools import docs_gen

PAGE = Path(__file__).resolve().parents[2] / "docs" / "json.md"
MORE = "..."
runner = CliRunner()


def documented_examples() -> dict[str, Any]:
    """`fmtool ... --json` -> the JSON shown under it, from the JSON output page."""
    text = PAGE.read_text()
    assert text.startswith("# JSON output\n"), "docs/json.md is the JSON output page"
    section = text.split("\n## ", 1)[0]
    examples, command, block = {}, None, None
    for line in section.splitlines():
        header = re.match(r"`(fmtool [^`]*--json[^`]*)`", line)
        if block is not None and line == "```":
            examples[command] = json.loads("\n".join(block))
            command, block = None, None
        elif block is not None:
            block.append(line)
        elif header:
            command = header.group(1)
        elif line == "```json" and command:
            block = []
    return examples


def shape_errors(doc: Any, real: Any, where: str = "$") -> list[str]:
    """Where `real` does not have the shape `doc` shows (empty when it does)."""
    if doc is None:
        return [] if real is None or _is_number(real) else [f"{where}: {real!r} is not null/number"]
    if isinstance(doc, bool) or _is_number(doc):
        same = isinstance(real, bool) if isinstance(doc, bool) else _is_number(real)
        return [] if same else [f"{where}: {real!r} is not a {type(doc).__name__}"]
    if isinstance(doc, str):
        return [] if isinstance(real, str) else [f"{where}: {real!r} is not a string"]
    if isinstance(doc, list):
        if not isinstance(real, list):
            return [f"{where}: {type(real).__name__} is not a list"]
        kinds = [item for item in doc if item != MORE] or [MORE]
        errors = []
        for index, item in enumerate(real):
            tries = [shape_errors(kind, item, f"{where}[{index}]") for kind in kinds]
            errors += [] if any(not t for t in tries) else min(tries, key=len)
        return errors
    if not isinstance(real, dict):
        return [f"{where}: {type(real).__name__} is not an object"]
    if MORE in doc:
        kind = next((v for k, v in doc.items() if k != MORE), doc[MORE])
        return [e for key, value in real.items() for e in shape_errors(kind, value, f"{where}.{key}")]
    if doc.keys() != real.keys():
        return [f"{where}: keys {sorted(real)} instead of the documented {sorted(doc)}"]
    return [e for key in doc for e in shape_errors(doc[key], real[key], f"{where}.{key}")]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_the_shape_check_can_fail():
    doc = {"a": 1, "b": ["...", {"c": "..."}], "d": {"...": 0.5}}
    assert not shape_errors(doc, {"a": 2.5, "b": [{"c": "x"}], "d": {"p": 1, "q": 0}})
    assert shape_errors(doc, {"a": 2.5, "b": [{"c": "x"}], "d": {}, "new": 1})
    assert shape_errors(doc, {"a": "2", "b": [], "d": {}})
    assert shape_errors(doc, {"a": 1, "b": [{"c": 3}], "d": {"p": "x"}})


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A tiny trained CNN, a VAE checkpoint, images and faces: enough to run every example."""
    root = tmp_path_factory.mktemp("json")
    env = {"FMTOOL_HOME": str(root / "home")}
    data = synthetic_fashion(root / "fashion", train=120, test=100)  # every class 4+ for 5-NN
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on shared cores: no OpenMP spin-waiting
    result = runner.invoke(app, ["train", "cnn", "--data-dir", str(data), "--epochs", "1",
                                 "--width", "0.125", "--batch-size", "16", "--precision", "fp32",
                                 "--device", "cpu", "--name", "tiny"], env=env)
    assert result.exit_code == 0, result.output
    Image.new("L", (40, 30), 200).save(root / "boot.png")
    (root / "broken.png").write_bytes(b"")
    write_faces(root / "faces", people=2, per_person=2, size=64)
    (root / "pairs.txt").write_text("Person_0_0001.jpg Person_1_0002.jpg\n")
    # The faces split as `train vae` would record it, so `report` checks its split as it does for
    # a trained model (split_matches is then true or false, as the documented example shows).
    split = load_face_splits(root / "faces", 32, 0.1).info(0.1)
    vae = make_vae_checkpoint(root / "vae.pt", data=split)
    yield {"root": root, "env": env, "data": str(data), "vae": str(vae)}
    torch.set_num_threads(threads)


# How each documented example is run here: its header on the page -> the arguments.
RUNS: dict[str, Callable[[dict], list[str]]] = {
    "fmtool info --json": lambda w: ["info"],
    "fmtool eval --json": lambda w: ["eval", "--data-dir", w["data"], "--device", "cpu"],
    "fmtool classify boot.jpg broken.png --json": lambda w: [
        "classify", str(w["root"] / "boot.png"), str(w["root"] / "broken.png")],
    "fmtool project --method pca --json": lambda w: [
        "project", "--method", "pca", "--per-class", "4", "--data-dir", w["data"], "--device", "cpu"],
    "fmtool project --list-layers --json": lambda w: ["project", "--list-layers"],
    "fmtool reconstruct faces/ --json": lambda w: [
        "reconstruct", str(w["root"] / "faces"), "-r", "--checkpoint", w["vae"],
        "--out", str(w["root"] / "recon"), "--force", "--device", "cpu"],
    "fmtool fuse a.jpg b.jpg --json": lambda w: [
        "fuse", *map(str, sorted((w["root"] / "faces").rglob("*.jpg"))[:2]),
        "--checkpoint", w["vae"], "--steps", "3", "--out", str(w["root"] / "pair.png"), "--force",
        "--device", "cpu"],
    "fmtool fuse --group-a women.txt --group-b men.txt --json": lambda w: [
        "fuse", "--group-a", str(w["root"] / "faces" / "Person_0"), "--group-b",
        str(w["root"] / "faces" / "Person_1"), "--checkpoint", w["vae"], "--steps", "3",
        "--out", str(w["root"] / "walk.png"), "--force", "--device", "cpu"],
    "fmtool fuse face.jpg --group-a women.txt --group-b men.txt --strength 1.5 --json": lambda w: [
        "fuse", str(sorted((w["root"] / "faces").rglob("*.jpg"))[0]), "--group-a",
        str(w["root"] / "faces" / "Person_0"), "--group-b", str(w["root"] / "faces" / "Person_1"),
        "--strength", "1.5", "--checkpoint", w["vae"], "--steps", "3",
        "--out", str(w["root"] / "attribute.png"), "--force", "--device", "cpu"],
    "fmtool fuse --pairs young_old.txt --json": lambda w: [
        "fuse", "--pairs", str(w["root"] / "pairs.txt"), "--data-dir", str(w["root"] / "faces"),
        "--checkpoint", w["vae"], "--steps", "3", "--out", str(w["root"] / "pairs.png"), "--force",
        "--device", "cpu"],
    "fmtool export --json": lambda w: [  # TorchScript: this test needs no export extra
        "export", "--format", "torchscript", "--out", str(w["root"] / "cnn.pt"), "--force"],
    "fmtool report --json": lambda w: [
        "report", "--vae", w["vae"], "--data-dir", w["data"], "--faces-dir", str(w["root"] / "faces"),
        "--out", str(w["root"] / "study"), "--force", "--device", "cpu"],
}


def test_every_command_with_json_output_is_documented():
    documented = documented_examples()
    assert set(documented) == set(RUNS), "docs/json.md's JSON examples and this test's runs differ"
    with_json = {" ".join(c.path) for c in docs_gen.command_tree().walk()
                 if any("--json" in o.names for o in c.options)}
    shown = {example.split()[1] for example in documented}
    assert with_json == shown, f"commands with --json but no example in docs/json.md: {with_json - shown}"


@pytest.mark.parametrize("example", list(RUNS))
def test_json_output_has_the_documented_shape(example: str, world: dict):
    result = runner.invoke(app, [*RUNS[example](world), "--json"], env=world["env"])
    # classify exits 1 when some of its files fail, and its example includes broken.png;
    # every other example must succeed.
    expected = 1 if example.startswith("fmtool classify ") else 0
    assert result.exit_code == expected, result.output
    real = json.loads(result.stdout)  # nothing but JSON on stdout
    errors = shape_errors(documented_examples()[example], real)
    assert not errors, f"{example}: " + "; ".join(errors[:5])
