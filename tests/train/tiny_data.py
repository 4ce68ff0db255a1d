"""Tiny image trees that the training tests write themselves (no third-party images)."""
from pathlib import Path

import cv2
import numpy as np

from face.expressions import EXPRESSIONS


def face_like(rng: np.random.Generator, size: int, brightness: int) -> np.ndarray:
    """A grey ellipse 'face' with two eyes and a mouth, placed and shaded at random."""
    image = np.full((size, size, 3), 20, np.uint8)
    cx, cy = size // 2 + int(rng.integers(-3, 4)), size // 2 + int(rng.integers(-3, 4))
    cv2.ellipse(image, (cx, cy), (size // 3, size * 2 // 5), 0, 0, 360, (brightness,) * 3, -1)
    for dx in (-size // 8, size // 8):
        cv2.circle(image, (cx + dx, cy - size // 10), max(1, size // 20), (30, 30, 30), -1)
    cv2.line(image, (cx - size // 8, cy + size // 6), (cx + size // 8, cy + size // 6), (40, 40, 40), max(1, size // 32))
    return image


def side_map_of(image: np.ndarray) -> np.ndarray:
    """A stand-in landmark heatmap: the dark feature pixels, blurred (what matters is that it exists)."""
    dark = (image[:, :, 0] < 60).astype(np.float32) * 255
    blurred = cv2.GaussianBlur(dark, (5, 5), 0).astype(np.uint8)
    return np.dstack([blurred, blurred // 2, 255 - blurred])


def write_images(folder: Path, count: int, size: int, seed: int, brightness: int = 180, side: bool = True) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        image = face_like(rng, size, brightness)
        path = folder / f"img_{i:03d}.png"
        cv2.imwrite(str(path), image)
        if side:
            cv2.imwrite(str(folder / f"img_{i:03d}.side.png"), side_map_of(image))
        paths.append(path)
    return paths


def write_labelled(root: Path, per_class: int, size: int, classes=EXPRESSIONS, seed: int = 0, side: bool = True) -> Path:
    for k, name in enumerate(classes):
        write_images(root / name, per_class, size, seed * 100 + k, brightness=140 + 12 * k, side=side)
    return root
