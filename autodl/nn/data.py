"""Arrays for the PyTorch trainer and NAS: built-in data sets, the train / validation / test split
(as row indices, saved in the run folder) and the scaling the networks train on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autodl.errors import DataError

#: built-in data sets usable with ``--model`` and ``--nas``: name -> image shape (C, H, W) or
#: None (tabular rows: MLPs only)
NN_DATASETS = {"digits": (1, 8, 8), "iris": None, "wine": None, "breast_cancer": None}
#: digits pixels are 0..16: images are divided by this (exact in float32)
PIXEL_MAX = {"digits": 16.0}


@dataclass
class ArrayData:
    """Float32 features and int64 labels, already split and scaled.

    ``image_shape`` is ``(channels, height, width)`` for image data (CNNs reshape the flat
    rows to it) and None for tabular data (MLPs only). ``mean``/``std`` is the scaling applied
    to the raw rows (the exported graph applies it too).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    n_classes: int
    image_shape: tuple[int, int, int] | None = None
    name: str = "data"
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    classes: list | None = None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])


def raw_dataset(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A built-in set's raw rows (float32, as scikit-learn ships them), labels and column names."""
    if name not in NN_DATASETS:
        raise DataError(f"dataset '{name}' cannot be used with --model or --nas; choose one of: "
                        f"{', '.join(NN_DATASETS)}")
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    return (np.asarray(bunch.data, dtype=np.float32), np.asarray(bunch.target),
            [str(n) for n in bunch.feature_names])


def split_indices(y: np.ndarray, *, seed: int = 0, val_size: float = 0.2, test_size: float = 0.2,
                  rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Row indices ``train``/``val``/``test``: ``test_size`` of the rows held out (stratified,
    seeded), then ``val_size`` of the rest for validation. ``rows``: a subset to split."""
    if not 0 < val_size < 1 or not 0 <= test_size < 1 or val_size + test_size >= 1:
        raise DataError(f"val_size {val_size} and test_size {test_size} must be fractions summing below 1")
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y)) if rows is None else np.asarray(rows)
    test = idx[:0]
    try:
        if test_size > 0:
            idx, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y[idx])
        train, val = train_test_split(idx, test_size=val_size, random_state=seed, stratify=y[idx])
    except ValueError as exc:
        raise DataError(f"cannot split {len(idx)} rows into train/validation/test: {exc}") from None
    return {"train": np.asarray(train), "val": np.asarray(val), "test": np.asarray(test)}


def scaling(name: str, X_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` the network's inputs are scaled with: images divided by their pixel
    maximum, tables standardized with the training rows' statistics."""
    if NN_DATASETS.get(name) is not None:
        n = X_train.shape[1]
        return np.zeros(n, np.float32), np.full(n, PIXEL_MAX[name], np.float32)
    return X_train.mean(axis=0), X_train.std(axis=0) + np.float32(1e-8)


def load_dataset(name: str, *, seed: int = 0, val_size: float = 0.2, test_size: float = 0.2,
                 split: dict[str, np.ndarray] | None = None) -> ArrayData:
    """A built-in classification set, split (``split``: saved row indices; else
    :func:`split_indices`) and scaled (:func:`scaling`); labels are class indices."""
    X, y, _ = raw_dataset(name)
    classes, y = np.unique(y, return_inverse=True)
    y = y.astype(np.int64)
    if split is None:
        split = split_indices(y, seed=seed, val_size=val_size, test_size=test_size)
    mean, std = scaling(name, X[split["train"]])

    def part(key):
        idx = split.get(key)
        if idx is None or len(idx) == 0:
            return None, None
        return ((X[idx] - mean) / std).astype(np.float32), y[idx]

    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = part("train"), part("val"), part("test")
    return ArrayData(X_tr, y_tr, X_va, y_va, X_te, y_te, int(len(classes)), NN_DATASETS[name], name,
                     mean, std, [c.item() for c in classes])
