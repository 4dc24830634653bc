"""Learnable image sets generated on the spot (nothing downloads), for the tests, the examples
and ``benchmarks/user_data.py``: shapes drawn at random positions and sizes on noisy
backgrounds, grey or colour, and writers for the formats a user brings (``.npz``, a folder of
PNGs in class sub-folders, a CSV of digits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: the classes of :func:`shapes`, in label order
SHAPES = ("square", "disc", "cross", "bars")


def shapes(n: int, size: int = 28, *, channels: int = 1, seed: int = 0, noise: float = 40.0,
           channel_last: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: ``n`` uint8 images ``size``×``size`` (N×H×W for ``channels=1``; N×H×W×C, or
    N×C×H×W with ``channel_last=False``, for 3) of one of :data:`SHAPES` each, and the shape
    names as labels. A shape covers 30-60 % of the side at a random place; colour images draw
    each shape in a random colour on a random background, so colour alone tells nothing."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    X = np.empty((n, size, size, channels), np.uint8)
    labels = rng.integers(0, len(SHAPES), n)
    for i, label in enumerate(labels):
        side = rng.uniform(0.3, 0.6) * size
        cy, cx = rng.uniform(side / 2, size - side / 2, 2)
        dy, dx = np.abs(yy - cy), np.abs(xx - cx)
        half = side / 2
        name = SHAPES[label]
        if name == "square":
            mask = (dy <= half) & (dx <= half)
        elif name == "disc":
            mask = dy ** 2 + dx ** 2 <= half ** 2
        elif name == "cross":
            arm = max(1.0, side / 6)
            mask = ((dy <= arm) & (dx <= half)) | ((dx <= arm) & (dy <= half))
        else:  # three horizontal bars
            mask = (dx <= half) & (dy <= half) & (((yy - (cy - half)) // max(1.0, side / 5)) % 2 == 0)
        back = rng.uniform(0, 110, channels)
        front = rng.uniform(150, 255, channels)
        img = np.where(mask[..., None], front, back) + rng.normal(0, noise, (size, size, channels))
        X[i] = np.clip(img, 0, 255).astype(np.uint8)
    if channels == 1:
        X = X[..., 0]
    elif not channel_last:
        X = X.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(X), np.asarray(SHAPES, dtype=object)[labels].astype(str)


def write_image_folder(X: np.ndarray, y, folder: str | Path, *, suffix: str = ".png") -> Path:
    """Write images (N×H×W or N×H×W×C, uint8) as ``folder/<label>/<i>.png``."""
    from PIL import Image

    folder = Path(folder)
    for i, (img, label) in enumerate(zip(X, y)):
        sub = folder / str(label)
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(img, np.uint8)).save(sub / f"{i:05d}{suffix}")
    return folder


def digits_npz(path: str | Path) -> Path:
    """scikit-learn's 8×8 digits as an ``.npz``: ``X`` N×8×8 integers 0..16, ``y`` the digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(path, X=d.images.astype(np.int64), y=d.target)
    return Path(path)


def digits_csv(path: str | Path) -> Path:
    """scikit-learn's digits as a CSV: 64 columns ``pixel_0_0`` .. ``pixel_7_7`` and ``target``."""
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame
    frame.to_csv(path, index=False)
    return Path(path)
