"""Arrays for the PyTorch trainer: a train / validation / test split of a built-in data set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autodl.errors import DataError

#: built-in data sets usable with ``--model``: name -> image shape (C, H, W) or None (tabular)
NN_DATASETS = {"digits": (1, 8, 8), "iris": None, "wine": None, "breast_cancer": None}


@dataclass
class ArrayData:
    """Float32 features and int64 labels, already split and scaled.

    ``image_shape`` is ``(channels, height, width)`` for image data (CNNs reshape the flat
    rows to it) and None for tabular data (MLPs only).
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

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])


def load_dataset(name: str, *, seed: int = 0, val_size: float = 0.2, test_size: float = 0.2) -> ArrayData:
    """Load a built-in classification set and split it (stratified, seeded).

    ``test_size`` of the rows are held out for the final test score, then ``val_size`` of the
    rest is the validation split the search optimizes. Features are standardized with the
    training split's statistics (digits: pixel values divided by 16).
    """
    if name not in NN_DATASETS:
        raise DataError(f"dataset '{name}' cannot be used with --model; choose one of: {', '.join(NN_DATASETS)}")
    if not 0 < val_size < 1 or not 0 <= test_size < 1 or val_size + test_size >= 1:
        raise DataError(f"val_size {val_size} and test_size {test_size} must be fractions summing below 1")
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    X_te = y_te = None
    if test_size > 0:
        X, X_te, y, y_te = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=val_size, random_state=seed, stratify=y)
    shape = NN_DATASETS[name]
    if shape is not None:
        mean, std = 0.0, 16.0  # digits pixels are 0..16
    else:
        mean, std = X_tr.mean(axis=0), X_tr.std(axis=0) + 1e-8

    def scale(a):
        return None if a is None else ((a - mean) / std).astype(np.float32)

    return ArrayData(scale(X_tr), y_tr, scale(X_va), y_va, scale(X_te), y_te,
                     int(len(np.unique(y))), shape, name)
