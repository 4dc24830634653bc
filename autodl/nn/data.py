"""Arrays for the PyTorch trainer and NAS: built-in data sets, the train / validation / test split
(as row indices, saved in the run folder) and the scaling the networks train on."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    #: user data (:func:`from_net_data`): kind, per-channel scaling or the table preprocessor, timings
    extra: dict = field(default_factory=dict)

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
                  rows: np.ndarray | None = None, stratify: bool = True) -> dict[str, np.ndarray]:
    """Row indices ``train``/``val``/``test``: ``test_size`` of the rows held out (stratified by
    class unless ``stratify=False``, e.g. for a regression target; seeded), then ``val_size`` of
    the rest for validation. ``rows``: a subset to split."""
    if not 0 < val_size < 1 or not 0 <= test_size < 1 or val_size + test_size >= 1:
        raise DataError(f"val_size {val_size} and test_size {test_size} must be fractions summing below 1")
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y)) if rows is None else np.asarray(rows)
    test = idx[:0]
    try:
        if test_size > 0:
            idx, test = train_test_split(idx, test_size=test_size, random_state=seed,
                                         stratify=y[idx] if stratify else None)
        train, val = train_test_split(idx, test_size=val_size, random_state=seed, stratify=y[idx] if stratify else None)
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


# ------------------------------------------------------------------------- the user's own data
#: the run folder's copy of the user's data, as read once (:mod:`autodl.nn.userdata`)
DATA_DIR = "data"
#: rows per chunk when computing statistics over a (possibly memory-mapped) image array
_CHUNK = 4096


def channel_stats(X: np.ndarray, rows: np.ndarray, axes: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``X[rows]`` per index of the axis left out of ``axes``
    (images N×C×H×W: ``axes=(0, 2, 3)`` gives one pair per channel), in float64, chunk by chunk so
    a memory-mapped array is read once and never copied whole."""
    rows = np.sort(np.asarray(rows))
    total = total_sq = None
    count = 0
    for start in range(0, len(rows), _CHUNK):
        part = np.asarray(X[rows[start:start + _CHUNK]], dtype=np.float64)
        s, sq = part.sum(axis=axes), (part * part).sum(axis=axes)
        total, total_sq = (s, sq) if total is None else (total + s, total_sq + sq)
        count += part.size // s.size
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def table_preprocessor(frame):
    """The column handling of tabular search (:func:`autodl.tabular.pipeline.build_pipeline`):
    numbers mean-imputed and standardized, categories most-frequent-imputed and one-hot encoded
    (unseen categories at prediction time: all zeros). Unfitted."""
    from autodl.tabular.pipeline import build_pipeline

    config = {"model": "linear", "impute": "mean", "scaler": "standard", "encoder": "onehot"}
    return build_pipeline(config, frame, "classification").steps[0][1]


def from_net_data(nd, split: dict[str, np.ndarray], name: str = "data") -> ArrayData:
    """The user's data (:class:`autodl.nn.userdata.NetData`) split by ``split`` and scaled with
    statistics of its training rows only: images per channel, sequences per feature, tables by
    :func:`table_preprocessor`. Rows are flattened (networks reshape them).

    The returned :class:`ArrayData` also carries what the export needs to take raw inputs:
    ``kind``, ``channel_mean``/``channel_std`` (images, sequences) or ``preprocessor`` (tables)."""
    import time

    t0 = time.perf_counter()
    train = np.asarray(split["train"])
    extra: dict = {"kind": nd.kind, "raw_dtype": str(getattr(nd.X, "dtype", "table")), "notes": list(nd.notes)}
    if nd.kind == "table":
        import warnings

        pre = table_preprocessor(nd.X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pre.fit(nd.X.iloc[train])

        def rows(idx):
            return np.asarray(pre.transform(nd.X.iloc[idx]), dtype=np.float32)
        extra["preprocessor"] = pre
        width = rows(train[:1]).shape[1]
        mean, std, shape = np.zeros(width, np.float32), np.ones(width, np.float32), None
    else:
        axes = (0, 2, 3) if nd.kind == "image" else (0, 1)
        cm, cs = channel_stats(nd.X, train, axes)
        view = (1, -1, 1, 1) if nd.kind == "image" else (1, 1, -1)

        def rows(idx):
            part = (np.asarray(nd.X[np.sort(idx)], dtype=np.float32) - cm.reshape(view)) / cs.reshape(view)
            order = np.argsort(np.argsort(idx))  # back to the order of idx
            return part[order].reshape(len(idx), -1)
        extra.update(channel_mean=cm, channel_std=cs)
        per = int(np.prod(nd.X.shape[2:])) if nd.kind == "image" else int(nd.X.shape[1])
        mean, std = (np.repeat(cm, per), np.repeat(cs, per)) if nd.kind == "image" else (np.tile(cm, per), np.tile(cs, per))
        shape = tuple(int(s) for s in nd.X.shape[1:]) if nd.kind == "image" else None

    regression = getattr(nd, "task", "classification") == "regression"
    if regression:  # the network learns standardized targets; the export maps its output back
        y_all = np.asarray(nd.y, dtype=np.float64)
        y_mean, y_std = float(y_all[train].mean()), float(y_all[train].std()) or 1.0
        extra.update(task="regression", y_mean=y_mean, y_std=y_std)

    def part(key):
        idx = split.get(key)
        if idx is None or len(idx) == 0:
            return None, None
        idx = np.asarray(idx)
        if regression:
            return rows(idx), ((np.asarray(nd.y, dtype=np.float64)[idx] - y_mean) / y_std).astype(np.float32)
        return rows(idx), np.asarray(nd.y)[idx].astype(np.int64)

    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = part("train"), part("val"), part("test")
    data = ArrayData(X_tr, y_tr, X_va, y_va, X_te, y_te, 1 if regression else len(nd.classes), shape, name,
                     mean, std, list(nd.classes))
    data.extra = {**extra, "sequence_shape": tuple(int(s) for s in nd.X.shape[1:]) if nd.kind == "sequence" else None,
                  "prepare_seconds": time.perf_counter() - t0, "load_seconds": float(nd.load_seconds),
                  "source": nd.source, "feature_names": nd.feature_names}
    return data


def run_data(dataset: str | None, run_dir, split: dict[str, np.ndarray], *, val_size: float = 0.2,
             test_size: float = 0.2, seed: int = 0) -> ArrayData:
    """The data of a run: a built-in set by name, else the user's data saved in ``RUN/data/``."""
    if dataset:
        return load_dataset(dataset, seed=seed, val_size=val_size, test_size=test_size, split=split)
    from pathlib import Path

    from autodl.nn.userdata import load_net_data

    folder = Path(run_dir) / DATA_DIR
    if not folder.is_dir():
        raise DataError(f"{run_dir} has no {DATA_DIR}/ folder with the run's data; start a new run")
    nd = load_net_data(folder)
    return from_net_data(nd, split, name=nd.source)


# ------------------------------------------------------------------- classification or regression
def task_of(data) -> str:
    """``"regression"`` for a table with a numeric target (:func:`from_net_data`), else
    ``"classification"``."""
    return (getattr(data, "extra", None) or {}).get("task", "classification")


def loss_function(task: str):
    """The training loss on the network's output: cross-entropy of the logits, or for regression
    the mean squared error of its single output against the standardized target."""
    import torch.nn.functional as F

    if task == "regression":
        return lambda out, y: F.mse_loss(out.reshape(-1), y)
    return F.cross_entropy


def score(out, y, task: str) -> float:
    """What the searches maximize on held-out rows: accuracy of the logits' argmax, or R² of the
    output (1 - residual / total sum of squares; the same on standardized and raw targets)."""
    if task == "regression":
        pred = out.reshape(-1).double()
        y = y.double()
        total = float(((y - y.mean()) ** 2).sum())
        return 1.0 - float(((y - pred) ** 2).sum()) / total if total > 0 else 0.0
    return float((out.argmax(1) == y).float().mean())
