"""Synthetic photographs of known Fashion-MNIST-like items, for the photo pipeline's tests."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _drawn(polygon: list[tuple[int, int]], line: tuple[int, ...] | None = None) -> np.ndarray:
    picture = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(picture)
    draw.polygon(polygon, fill=255)
    if line:
        draw.line(line, fill=150, width=1)
    return np.asarray(picture, np.float32)


ITEMS = {  # light on black, centred, the longest side filling 28 pixels, as in Fashion-MNIST
    "t-shirt": _drawn([(8, 1), (20, 1), (27, 7), (23, 11), (21, 9), (21, 26), (7, 26), (7, 9),
                       (5, 11), (0, 7)], line=(14, 3, 14, 25)),
    "trouser": _drawn([(6, 0), (21, 0), (21, 27), (16, 27), (14, 8), (12, 27), (6, 27)]),
    "dress": _drawn([(10, 0), (17, 0), (19, 8), (24, 27), (3, 27), (8, 8)]),
}


def photograph(item: np.ndarray, *, dark_item: bool = True, offset: tuple[int, int] = (60, 20),
               light: float = 0.85, size: int = 9, seed: int = 0) -> Image.Image:
    """`item` printed `size` times larger onto a 480x360 background lit from one side, with a
    soft shadow in one corner and a little texture; dark on light, or light on a dark cloth."""
    rng = np.random.default_rng(seed)
    side = 28 * size
    big = np.asarray(Image.fromarray(item).resize((side, side), Image.Resampling.BILINEAR),
                     np.float32) / 255
    height, width = 360, 480
    rows, cols = np.mgrid[0:height, 0:width] / width
    background = (light + 0.12 * cols - 0.05 * rows) if dark_item else (0.2 + 0.1 * cols)
    shadow = Image.new("L", (width, height), 0)
    ImageDraw.Draw(shadow).ellipse((width * 0.6, height * 0.55, width * 1.1, height * 1.2), fill=255)
    background = background - 0.12 * np.asarray(shadow.filter(ImageFilter.GaussianBlur(30))) / 255
    background = background + rng.normal(0, 0.01, background.shape)
    top, left = (height - side) // 2 + offset[1], (width - side) // 2 + offset[0]
    region = background[top:top + side, left:left + side]
    if dark_item:
        background[top:top + side, left:left + side] = region * (1 - 0.9 * big)
    else:
        background[top:top + side, left:left + side] = region + (0.95 - region) * big
    rgb = np.clip(np.stack([background, background * 0.95, background * 0.9], axis=-1), 0, 1)
    return Image.fromarray((rgb * 255).astype(np.uint8))
