"""Small synthetic faces and VAE checkpoints for the VAE tests (no real data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tests.helpers.checkpoints import save_vae


def face_image(person: int, index: int, size: int = 250) -> Image.Image:
    """A 'face': a person-specific skin tone and background, the oval moving a little per image."""
    rng = np.random.default_rng(1000 * person + index)
    background = tuple(int(v) for v in (40 + 50 * (person % 4), 90, 160 - 30 * (person % 3)))
    skin = tuple(int(v) for v in (150 + 25 * (person % 4), 110 + 20 * (person % 3), 90))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    dx, dy = rng.integers(-12, 13, size=2)
    c = size // 2
    draw.ellipse((c - 60 + dx, c - 80 + dy, c + 60 + dx, c + 80 + dy), fill=skin)
    for eye in (-25, 25):
        draw.ellipse((c + eye - 8 + dx, c - 25 + dy, c + eye + 8 + dx, c - 12 + dy), fill=(20, 20, 20))
    draw.rectangle((c - 25 + dx, c + 35 + dy, c + 25 + dx, c + 42 + dy), fill=(120, 30, 40))
    return image


def write_faces(folder: Path, people: int = 8, per_person: int = 5, size: int = 250) -> list[Path]:
    """LFW's layout: folder/Person_K/Person_K_000N.jpg."""
    written = []
    for person in range(people):
        name = f"Person_{person}"
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_person):
            path = folder / name / f"{name}_{index + 1:04d}.jpg"
            face_image(person, index, size).save(path, quality=92)
            written.append(path)
    return written


def make_vae_checkpoint(path: Path, image_size: int = 32, latent_dim: int = 8, seed: int = 0,
                        data: dict | None = None) -> Path:
    """An untrained VAE saved as `train vae` saves one (enough for reconstruct and fuse)."""
    return save_vae(path, image_size, latent_dim, seed, data)
