"""The user's own data for network search (``--model mlp|cnn``, ``--nas``): read, checked, stored.

:func:`read_net_data` accepts

* a **table**: a ``.csv`` / ``.tsv`` / ``.parquet`` / ``.pq`` file or a pandas DataFrame, with
  ``target=`` naming the label column (or, for a DataFrame, ``y=`` labels) -> ``kind="table"``;
* an **.npz** file with arrays ``X`` and ``y`` (``y=`` may be passed instead), or a NumPy array
  ``X`` with ``y=``:

  - ``N×C×H×W`` or ``N×H×W×C`` images (C of 1, 3 or 4; channel-last when only the last axis is a
    channel count, else channel-first -- both being 1/3/4 means a side under 8 pixels: an error),
  - ``N×H×W`` grey images when both H and W are at least 8, else ``N×T×F`` sequences; pass
    ``kind="image"`` or ``kind="sequence"`` to decide (a 2-D array with ``kind="sequence"`` is
    N sequences of T single values),
  - ``N×F`` rows of numbers: a table with columns ``x0, x1, ...``;

* a **folder of images**: one sub-folder per class (its name is the label) holding ``.png``,
  ``.jpg``, ``.jpeg``, ``.bmp`` or ``.gif`` files (any case, nested folders allowed);
* a **torch Dataset**: ``len()`` and ``ds[i] -> (x, label)`` with x a tensor, array or PIL image
  ``C×H×W``, ``H×W×C`` or ``H×W`` (stacked, then read as an array).

Pixels keep the user's dtype (uint8 stays uint8, other integers become int64, floats float32);
folders give uint8, grey (``L``) when every file is stored grey, else RGB (alpha dropped).
Images larger than :data:`MAX_SIDE` on a side are downscaled (PIL ``BOX``, i.e. area averaging)
so the longer side is 64; a folder's images of different sizes are all resized to their median
size (capped the same way). Labels become int64 indices into ``classes`` (the sorted labels).

:func:`save_net_data` writes ``X.npy`` (or ``table.parquet``), ``y.npy`` and ``data.json`` into a
folder (each atomically, ``data.json`` last); :func:`load_net_data` reads them back, memory-mapping
a large ``X.npy``. :func:`read_inputs` reads new inputs for ``autodl predict`` shaped as the model
expects.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autodl.errors import DataError, StorageError, first_line

#: images larger than this on a side are downscaled so their longer side is this
MAX_SIDE = 64
#: images smaller than this on a side are refused
MIN_SIDE = 8
#: an ``X.npy`` larger than this is memory-mapped by :func:`load_net_data`, else read whole.
#: Measured (uint8 N×3×64×64, 2-core VM, best of 3; "cold" = file evicted from the page cache):
#:   size     open: full / mmap    open + 1 sequential pass: full / mmap    open + 1 shuffled pass, cold: full / mmap
#:   10 MB      5.6 / 0.6 ms          9.6 /   9.8 ms                          11 /   16 ms
#:   100 MB    23   / 0.6 ms         67   /  66 ms                            62 /  146 ms
#:   300 MB   135   / 0.7 ms        240   / 198 ms                           295 /  448 ms
#:   1 GB     473   / 1.0 ms        814   / 649 ms                           858 / 1547 ms
#: Later passes take the same time either way (pages cached). Reading whole only wins the first
#: shuffled pass from a cold cache (by ~85 ms at 100 MB, ~0.7 s at 1 GB) but costs a private copy
#: of X in every process (main + each worker); under ~128 MB that copy is cheap and the gain
#: worth it, above it the shared page cache of a memory map is worth more than a one-off
#: fraction of a second.
MMAP_BYTES = 128 << 20

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TABLE_EXTS = (".csv", ".tsv", ".txt", ".parquet", ".pq")
KINDS = ("image", "table", "sequence")
_CHANNELS = (1, 3, 4)
_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


@dataclass
class NetData:
    """The user's data as networks take it (see the module doc for the formats).

    ``X``: images ``N×C×H×W`` (uint8, int64 or float32), sequences ``N×T×F`` float32, or a
    DataFrame of the feature columns (tables, raw). ``y``: int64 indices into ``classes``, or
    for ``task="regression"`` (tables with a numeric target of many values) the float64
    targets, with ``classes`` empty.
    """

    kind: str
    X: Any
    y: np.ndarray
    classes: list
    source: str
    notes: list
    load_seconds: float
    feature_names: list | None = None
    target: str | None = None
    files: list | None = None
    task: str = "classification"

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        return tuple(int(s) for s in self.X.shape[1:]) if self.kind == "image" else None

    @property
    def n_classes(self) -> int:
        return len(self.classes)


# ------------------------------------------------------------------------------------ reading
def read_net_data(data, y=None, *, target: str | None = None, kind: str | None = None) -> NetData:
    """Read ``data`` (a path, DataFrame, array or torch Dataset; see the module doc) with its
    labels (``y=``, or ``target=`` column of a table); ``kind=`` settles a 3-D array."""
    t0 = time.perf_counter()
    if kind is not None and kind not in KINDS:
        raise DataError(f"kind '{kind}' is unknown; use one of: {', '.join(KINDS)}")
    notes: list[str] = []
    pd = sys.modules.get("pandas")
    if isinstance(data, (str, Path)):
        path = Path(data)
        if path.is_dir():
            _want(kind, "image", f"folder {path}")
            X, y, classes, files = _read_folder(path, notes)
            nd = NetData("image", X, y, classes, f"folder {path.name}/ ({len(classes)} classes)", notes, 0.0,
                         files=files)
        elif not path.exists():
            raise DataError(f"data {path} does not exist; give a CSV/Parquet file, an .npz or a folder of images")
        elif path.suffix.lower() == ".npz":
            X, y_file = _read_npz(path, need_y=y is None)
            nd = _from_array(X, y if y is not None else y_file, kind, str(path), path.name, notes)
        elif path.suffix.lower() in TABLE_EXTS:
            _want(kind, "table", str(path))
            from autodl.tabular.data import read_table

            nd = _from_frame(read_table(path), y, target, str(path), path.name, notes)
        else:
            raise DataError(f"{path}: unsupported format '{path.suffix}'; use .csv, .parquet, .npz or a folder "
                            "of images (one sub-folder per class)")
    elif pd is not None and isinstance(data, pd.DataFrame):
        _want(kind, "table", "a DataFrame")
        nd = _from_frame(data, y, target, "DataFrame", "DataFrame", notes)
    elif isinstance(data, (np.ndarray, list, tuple)) or hasattr(data, "__array__"):
        nd = _from_array(_as_array(data, "X"), y, kind, "X", "array", notes)
    elif hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        X, y = _stack_dataset(data)
        nd = _from_array(X, y, kind, "dataset", type(data).__name__, notes)
    else:
        raise DataError(f"cannot read data of type {type(data).__name__}; give a path, a DataFrame, a NumPy "
                        "array (with y=) or a torch Dataset")
    nd.load_seconds = time.perf_counter() - t0
    return nd


def _want(kind, actual, what) -> None:
    if kind is not None and kind != actual:
        raise DataError(f"{what} holds {actual} data, not {kind}; leave out kind= or give {kind} data")


def _as_array(X, what) -> np.ndarray:
    try:
        X = np.asarray(X.detach().cpu() if hasattr(X, "detach") else X)
    except ValueError:
        raise DataError(f"{what} is ragged (rows of different shapes); give rows of one shape") from None
    if X.dtype.kind not in "biuf":
        raise DataError(f"{what} holds {X.dtype} values, not numbers; give a numeric array of one shape")
    return X


def _read_npz(path: Path, need_y: bool):
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: its arrays hold Python objects (ragged or text); save numeric arrays of one "
                            "shape (np.savez(path, X=..., y=...))") from None
        raise DataError(f"{path}: cannot read it as .npz ({first_line(exc)}); save it with "
                        "np.savez(path, X=..., y=...)") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: cannot read it as .npz ({first_line(exc)}); save it with "
                        "np.savez(path, X=..., y=...)") from None
    X, y = arrays.get("X", arrays.get("x")), arrays.get("y", arrays.get("Y"))
    missing = "X" if X is None else "y" if y is None and need_y else None
    if missing:
        raise DataError(f"{path} has no array named {missing} (it has: {', '.join(arrays) or 'none'}); save it with "
                        "np.savez(path, X=inputs, y=labels)")
    return _as_array(X, f"{path}: X"), y


def _stack_dataset(ds):
    """``(X, labels)`` of a torch-style dataset whose items are ``(x, label)``."""
    n = len(ds)
    if n == 0:
        raise DataError("the dataset is empty; give a dataset with rows")
    X, labels = None, []
    for i in range(n):
        item = ds[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise DataError(f"dataset item {i} is not an (x, label) pair; make ds[i] return (input, label)")
        x, label = item
        x = _as_array(x, f"dataset item {i}")
        if X is None:
            X = np.empty((n, *x.shape), x.dtype)
        elif x.shape != X.shape[1:]:
            raise DataError(f"dataset items have different shapes ({_dims(X.shape[1:])} and {_dims(x.shape)} at "
                            f"items 0 and {i}); give inputs of one shape")
        X[i] = x
        labels.append(label.item() if hasattr(label, "item") else label)
    return X, labels


def _from_array(X, y, kind, where, source, notes) -> NetData:
    if y is None:
        raise DataError(f"{where} needs labels: pass y= with one label per row")
    if X.ndim == 2 and kind == "sequence":
        X = X[:, :, None]
    if X.ndim == 2:
        _want(kind, "table", f"{where} ({_dims(X.shape)})")
        import pandas as pd

        names = [f"x{i}" for i in range(X.shape[1])]
        labels, classes = _labels(y, len(X), where)
        return NetData("table", pd.DataFrame(X, columns=names), labels, classes, source, notes, 0.0, names)
    if X.ndim == 3 and kind is None:
        kind = "image" if min(X.shape[1:]) >= MIN_SIDE else "sequence"
        if kind == "image":
            notes.append(f"X of shape {_dims(X.shape)} read as grey images of {_dims(X.shape[1:])}; pass "
                         "kind='sequence' if its rows are sequences")
    if X.ndim == 3 and kind == "sequence":
        X = _finite(X.astype(np.float32, copy=False), where, "sequences")
    elif X.ndim in (3, 4):
        _want(kind, "image", f"{where} ({_dims(X.shape)})")
        X = _image_array(X, where, notes)
        kind = "image"
    else:
        raise DataError(f"{where} has {X.ndim} dims ({_dims(X.shape)}); give images NxCxHxW or NxHxWxC, "
                        "sequences NxTxF or rows NxF")
    labels, classes = _labels(y, len(X), where)
    return NetData(kind, X, labels, classes, source, notes, 0.0)


def _image_array(X, where, notes, fit=True) -> np.ndarray:
    """N×H×W, N×C×H×W or N×H×W×C numbers -> checked N×C×H×W in the kept dtype, downscaled to fit."""
    if X.ndim == 3:
        X = X[:, None]
    elif X.shape[3] in _CHANNELS and X.shape[1] not in _CHANNELS:
        X = X.transpose(0, 3, 1, 2)
    elif X.shape[1] not in _CHANNELS:
        raise DataError(f"{where}: images of shape {_dims(X.shape)} have no channel axis of 1, 3 or 4; give "
                        "NxCxHxW or NxHxWxC with C of 1 (grey), 3 (RGB) or 4 (RGBA)")
    if len(X) == 0:
        raise DataError(f"{where} has no rows; give at least one image per class")
    h, w = X.shape[2:]
    if min(h, w) < MIN_SIDE:
        raise DataError(f"{where}: images are {h}x{w}; give images of at least {MIN_SIDE}x{MIN_SIDE} pixels")
    kind = X.dtype.kind
    dtype = np.uint8 if kind == "b" or X.dtype == np.uint8 else np.int64 if kind in "iu" else np.float32
    X = np.ascontiguousarray(X, dtype=dtype)
    _finite(X, where, "images")
    if fit:
        th, tw = _fit(h, w, where)
        if (th, tw) != (h, w):
            X = _resize(X, th, tw)
            notes.append(f"images downscaled from {h}x{w} to {th}x{tw} (longer side {MAX_SIDE})")
    return X


def _finite(X, where, what) -> np.ndarray:
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))
        raise DataError(f"{where}: {len(bad)} {what} have NaN or infinite values (first at row {bad[0]}); "
                        "fix or drop those rows")
    return X


def _fit(h: int, w: int, where: str) -> tuple[int, int]:
    """(h, w) scaled so the longer side is at most MAX_SIDE."""
    side = max(h, w)
    if side <= MAX_SIDE:
        return h, w
    th, tw = round(h * MAX_SIDE / side), round(w * MAX_SIDE / side)
    if min(th, tw) < MIN_SIDE:
        raise DataError(f"{where}: images of {h}x{w} would be {th}x{tw} once downscaled to {MAX_SIDE} pixels on the "
                        f"longer side; crop them closer to square")
    return th, tw


def _resize(X: np.ndarray, h: int, w: int) -> np.ndarray:
    """N×C×H×W -> N×C×h×w, plane by plane with PIL (BOX when shrinking, bilinear when growing),
    in the same dtype (integers rounded)."""
    from autodl._deps import require

    require("PIL", "images", "reading and resizing images")
    from PIL import Image

    resample = Image.BOX if X.shape[2] >= h and X.shape[3] >= w else Image.BILINEAR
    out = np.empty((*X.shape[:2], h, w), X.dtype)
    for n in range(X.shape[0]):
        for c in range(X.shape[1]):
            plane = X[n, c] if X.dtype == np.uint8 else X[n, c].astype(np.float32)
            small = np.asarray(Image.fromarray(plane).resize((w, h), resample))
            out[n, c] = np.rint(small) if X.dtype == np.int64 else small
    return out


def _labels(y, n: int, where: str) -> tuple[np.ndarray, list]:
    """int64 indices into the sorted labels, and the labels as plain Python values."""
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    elif isinstance(y, (list, tuple)) and any(map(_missing, y)):
        y = np.array(y, dtype=object)  # else NumPy would turn a NaN among text labels into the text 'nan'
    y = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"labels y have shape {_dims(y.shape)}; give one label per row (a 1-D array of classes)")
    if len(y) != n:
        raise DataError(f"{where} has {n} rows but y has {len(y)} labels; give one label per row")
    if y.dtype.kind == "S":
        y = y.astype(str)
    missing = np.isnan(y) if y.dtype.kind == "f" else np.array([y.dtype == object and _missing(v) for v in y], bool)
    if missing.any():
        raise DataError(f"y has {int(missing.sum())} missing (NaN) labels (first at row {np.flatnonzero(missing)[0]}); "
                        "drop those rows or give their labels")
    try:
        classes, index = np.unique(y, return_inverse=True)
    except TypeError:
        raise DataError("labels y mix types (e.g. text and numbers); give labels of one type") from None
    classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if len(classes) < 2:
        one = f"every label is {classes[0]!r}" if classes else "there are no rows"
        raise DataError(f"{where}: {one}; needs at least two classes to learn from")
    return index.reshape(-1).astype(np.int64), classes


def is_regression_target(labels) -> bool:
    """A numeric target with more than 20 distinct values, not all whole numbers: a quantity to
    predict (regression), not classes (the rule of :func:`autodl.tabular.data.infer_task` for
    floats)."""
    import pandas as pd

    labels = pd.Series(labels)
    if not pd.api.types.is_float_dtype(labels):
        return False
    values = labels.to_numpy(dtype=np.float64)
    return labels.nunique() > 20 and not np.all(np.mod(values[np.isfinite(values)], 1) == 0)


def _missing(v) -> bool:
    """None, NaN, or pandas' NA / NaT."""
    return v is None or isinstance(v, float) and np.isnan(v) or type(v).__name__ in ("NAType", "NaTType")


def _from_frame(df, y, target, where, source, notes) -> NetData:
    """A table: the ``target`` column (or ``y``) as labels, the other columns as features."""
    if target is not None:
        if target not in df.columns:
            cols = ", ".join(map(str, df.columns[:12])) + (", ..." if df.shape[1] > 12 else "")
            raise DataError(f"target column '{target}' is not in {where}; its columns are: {cols}")
        labels, X = df[target], df.drop(columns=[target])
        if labels.isna().all():
            raise DataError(f"target column '{target}' in {where} is empty; give a column with labels")
        if labels.isna().any():
            keep = labels.notna().to_numpy()
            notes.append(f"{int((~keep).sum())} rows without a value in '{target}' were dropped")
            labels, X = labels[keep], X[keep]
    elif y is not None:
        labels, X = y, df
    else:
        raise DataError(f"{where}: no labels given; name the label column with target=COLUMN (--target COLUMN) "
                        "or pass y=")
    if X.shape[1] == 0:
        raise DataError(f"{where} has no feature columns besides the target '{target}'; give columns to learn from")
    names = [str(c) for c in X.columns]
    if len(set(names)) < len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise DataError(f"{where} has duplicate column names ({', '.join(dup)}); give every column its own name")
    X = X.reset_index(drop=True)
    X.columns = names
    if is_regression_target(np.asarray(labels.to_numpy() if hasattr(labels, "to_numpy") else labels).ravel()):
        values = np.asarray(labels, dtype=np.float64).ravel()
        if len(values) != len(X):
            raise DataError(f"{where} has {len(X)} rows but y has {len(values)} values; give one per row")
        if not np.isfinite(values).all():
            raise DataError(f"the target of {where} has missing or infinite values; drop those rows")
        return NetData("table", X, values, [], source, notes, 0.0, names, target, task="regression")
    index, classes = _labels(labels, len(X), where)
    return NetData("table", X, index, classes, source, notes, 0.0, names, target)


# ----------------------------------------------------------------------------- image folders
def _image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _scan(files: list[Path], root: Path) -> tuple[list[tuple[int, int]], list[str]]:
    """Each file's (height, width) and PIL mode, from its header (nothing decoded)."""
    from autodl._deps import require

    require("PIL", "images", "reading and resizing images")
    from PIL import Image

    sizes, modes = [], []
    for f in files:
        try:
            with Image.open(f) as im:
                sizes.append((im.height, im.width))
                modes.append(im.mode)
        except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for a damaged file
            raise DataError(f"{f.relative_to(root).as_posix()} in {root}: cannot read it as an image "
                            f"({first_line(exc)}); fix or remove the file") from None
    return sizes, modes


def _decode(files: list[Path], root: Path, mode: str, h: int, w: int) -> np.ndarray:
    """Every file decoded once, converted to ``mode`` and resized to h×w: one uint8 N×C×h×w array."""
    from autodl._deps import require

    require("PIL", "images", "reading and resizing images")
    from PIL import Image

    X = np.empty((len(files), len(mode), h, w), np.uint8)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert(mode)
                if im.size != (w, h):
                    im = im.resize((w, h), Image.BOX if im.width >= w and im.height >= h else Image.BILINEAR)
                a = np.asarray(im)
        except Exception as exc:  # noqa: BLE001 - as above
            raise DataError(f"{f.relative_to(root).as_posix()} in {root}: cannot decode the image ({first_line(exc)});"
                            " fix or remove the file") from None
        X[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return X


def _read_folder(root: Path, notes: list[str]):
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    per_class = {c: _image_files(root / c) for c in classes}
    empty = [c for c in classes if not per_class[c]]
    classes = [c for c in classes if per_class[c]]
    if len(classes) < 2:
        loose = any(p.suffix.lower() in IMAGE_EXTS for p in root.iterdir())
        found = f"only one class sub-folder with images ('{classes[0]}')" if classes else (
            "images but no class sub-folders" if loose else "no image files in class sub-folders")
        raise DataError(f"folder {root} has {found}; it needs at least two classes: put each class's "
                        f"images ({', '.join(IMAGE_EXTS)}) in a sub-folder named after it")
    if empty:
        notes.append(f"sub-folders without images skipped: {', '.join(empty)}")
    files = [f for c in classes for f in per_class[c]]
    y = np.repeat(np.arange(len(classes), dtype=np.int64), [len(per_class[c]) for c in classes])
    sizes, modes = _scan(files, root)
    grey = [m in _GREY_MODES for m in modes]
    small = next((i for i, s in enumerate(sizes) if min(s) < MIN_SIDE), None)
    if small is not None:
        raise DataError(f"{files[small].relative_to(root).as_posix()} in {root} is {_dims(sizes[small])}; give "
                        f"images of at least {MIN_SIDE}x{MIN_SIDE} pixels")
    h, w = sizes[0]
    if len(set(sizes)) > 1:
        h, w = (round(float(np.median([s[k] for s in sizes]))) for k in (0, 1))
    th, tw = _fit(h, w, f"folder {root}")
    if len(set(sizes)) > 1:
        lo, hi = min(sizes, key=lambda s: s[0] * s[1]), max(sizes, key=lambda s: s[0] * s[1])
        notes.append(f"images have different sizes ({_dims(lo)} to {_dims(hi)}); all resized to "
                     f"{th}x{tw} (the median size{'' if (th, tw) == (h, w) else f' {h}x{w} scaled to {MAX_SIDE}'})")
    elif (th, tw) != (h, w):
        notes.append(f"images downscaled from {h}x{w} to {th}x{tw} (longer side {MAX_SIDE})")
    if not all(grey) and any(grey):
        notes.append(f"{sum(grey)} grey images converted to RGB (the others have colour)")
    if any("A" in m for m in modes):
        notes.append("transparency (alpha) dropped: images read without it")
    X = _decode(files, root, "L" if all(grey) else "RGB", th, tw)
    return X, y, classes, [f.relative_to(root).as_posix() for f in files]


# ------------------------------------------------------------------------- storing in a run
def save_net_data(nd: NetData, folder) -> None:
    """Write ``nd`` into ``folder`` (created): ``X.npy`` or ``table.parquet``, ``y.npy`` and
    ``data.json``, each atomically, ``data.json`` last."""
    from autodl.runs import atomic_write, write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if nd.kind == "table":
        try:
            atomic_write(folder / "table.parquet", lambda p: nd.X.to_parquet(p, index=False))
        except (ValueError, TypeError, NotImplementedError) as exc:  # pyarrow: a column mixing types
            raise DataError(f"{nd.source}: cannot store the table as Parquet ({first_line(exc)}); give every column "
                            "values of one type") from None
    else:
        _save_npy(folder / "X.npy", nd.X)
    _save_npy(folder / "y.npy", np.asarray(nd.y, dtype=np.float64 if nd.task == "regression" else np.int64))
    write_json(folder / "data.json", {
        "kind": nd.kind, "task": nd.task, "classes": list(nd.classes), "source": nd.source, "notes": list(nd.notes),
        "load_seconds": float(nd.load_seconds), "feature_names": nd.feature_names, "target": nd.target,
        "files": nd.files, "dtype": None if nd.kind == "table" else str(nd.X.dtype), "shape": list(nd.X.shape)})


def _save_npy(path: Path, array) -> None:
    from autodl.runs import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would append .npy to the temporary name
            np.save(f, np.asarray(array), allow_pickle=False)
    atomic_write(path, write)


def load_net_data(folder, *, mmap_bytes: int = MMAP_BYTES) -> NetData:
    """What :func:`save_net_data` wrote; an ``X.npy`` larger than ``mmap_bytes`` is memory-mapped
    (read-only) instead of read whole."""
    from autodl.runs import read_json

    folder = Path(folder)
    if not (folder / "data.json").is_file():
        raise StorageError(f"{folder} has no data.json (the data was not saved completely); start a new run")
    meta = read_json(folder / "data.json")
    try:
        if meta["kind"] == "table":
            import pandas as pd

            X = pd.read_parquet(folder / "table.parquet")
        else:
            path = folder / "X.npy"
            X = np.load(path, mmap_mode="r" if path.stat().st_size > mmap_bytes else None, allow_pickle=False)
        y = np.load(folder / "y.npy", allow_pickle=False)
    except (OSError, ValueError, KeyError) as exc:
        raise StorageError(f"{folder}: cannot read the saved data ({first_line(exc)}); start a new run") from None
    if list(X.shape) != list(meta["shape"]) or len(y) != X.shape[0]:
        raise StorageError(f"{folder}: the saved arrays do not match data.json (shape {list(X.shape)}, "
                           f"{len(y)} labels, expected {meta['shape']}); start a new run")
    return NetData(meta["kind"], X, y, list(meta["classes"]), meta["source"], list(meta["notes"]),
                   float(meta["load_seconds"]), meta.get("feature_names"), meta.get("target"), meta.get("files"),
                   meta.get("task", "classification"))


# ------------------------------------------------------------------------------- prediction
def read_inputs(path, *, kind: str, image_shape=None, feature_names=None) -> tuple[Any, list[str] | None]:
    """New inputs for ``autodl predict`` from ``path``, shaped as the model takes them.

    ``path``: an ``.npz`` with ``X`` (a ``y`` is ignored), a folder of images (flat or with
    sub-folders; every image converted to ``image_shape``'s channels and resized to its size), or
    a CSV/Parquet table (``feature_names`` columns kept, in that order). Returns ``(X or DataFrame,
    row ids)``: the folder's file paths (relative to it), else None.
    """
    path = Path(path)
    if kind not in KINDS:
        raise DataError(f"kind '{kind}' is unknown; use one of: {', '.join(KINDS)}")
    if path.is_dir():
        if kind != "image":
            raise DataError(f"{path} is a folder of images, but the model takes {kind} data; give an .npz or a table")
        files = _image_files(path)
        if not files:
            raise DataError(f"folder {path} has no image files ({', '.join(IMAGE_EXTS)}); give a folder of images")
        if image_shape is None:
            sizes, modes = _scan(files, path)
            image_shape = (1 if all(m in _GREY_MODES for m in modes) else 3, *_fit(*sizes[0], str(path)))
        c, h, w = image_shape
        return _decode(files, path, _MODES[c], h, w), [f.relative_to(path).as_posix() for f in files]
    if not path.exists():
        raise DataError(f"data {path} does not exist; give an .npz, a folder of images or a CSV/Parquet file")
    if path.suffix.lower() == ".npz":
        X, _ = _read_npz(path, need_y=False)
        return as_model_input(X, kind=kind, image_shape=image_shape, feature_names=feature_names, where=str(path)), None
    if path.suffix.lower() in TABLE_EXTS:
        if kind != "table":
            raise DataError(f"{path} is a table, but the model takes {kind} data; give an .npz or a folder of images")
        from autodl.tabular.data import read_table

        return as_model_input(read_table(path), kind=kind, feature_names=feature_names, where=str(path)), None
    raise DataError(f"{path}: unsupported format '{path.suffix}'; use .npz, a folder of images or .csv/.parquet")


def as_model_input(X, *, kind: str, image_shape=None, feature_names=None, where: str = "X"):
    """In-memory inputs (array, DataFrame) shaped as the model takes them (see :func:`read_inputs`);
    a path is read with :func:`read_inputs` (its row ids dropped)."""
    if isinstance(X, (str, Path)):
        return read_inputs(X, kind=kind, image_shape=image_shape, feature_names=feature_names)[0]
    if kind == "table":
        pd = sys.modules.get("pandas")
        if pd is None or not isinstance(X, pd.DataFrame):
            import pandas as pd

            X = _as_array(X, where)
            if X.ndim != 2:
                raise DataError(f"{where} has shape {_dims(X.shape)}; the model takes rows NxF (a table)")
            if feature_names is not None and len(feature_names) != X.shape[1]:
                raise DataError(f"{where} has {X.shape[1]} columns but the model takes {len(feature_names)}; give "
                                f"rows of {len(feature_names)} values")
            X = pd.DataFrame(X, columns=list(feature_names or [f"x{i}" for i in range(X.shape[1])]))
        X = X.rename(columns=str)
        if feature_names is None:
            return X
        missing = [c for c in feature_names if c not in X.columns]
        if missing:
            raise DataError(f"{where} lacks the model's columns {', '.join(missing[:12])}; give the columns it was "
                            "trained on")
        return X[list(feature_names)]
    X = _as_array(X, where)
    if kind == "sequence":
        X = X[:, :, None] if X.ndim == 2 else X
        if X.ndim != 3:
            raise DataError(f"{where} has shape {_dims(X.shape)}; the model takes sequences NxTxF")
        return _finite(X.astype(np.float32, copy=False), where, "sequences")
    if X.ndim not in (3, 4):
        raise DataError(f"{where} has shape {_dims(X.shape)}; the model takes images NxCxHxW or NxHxWxC")
    X = _image_array(X, where, [], fit=image_shape is None)
    if image_shape is None:
        return X
    c, h, w = image_shape
    if X.shape[1] == 4 and c != 4:
        X = X[:, :3]
    if X.shape[1] == 1 and c == 3:
        X = np.repeat(X, 3, axis=1)
    elif X.shape[1] == 3 and c == 1:  # ITU-R 601-2 luma, as PIL's convert("L")
        grey = np.tensordot(np.array([0.299, 0.587, 0.114]), X, axes=([0], [1]))[:, None]
        X = np.rint(grey).astype(X.dtype) if X.dtype.kind in "iu" else grey.astype(X.dtype)
    if X.shape[1] != c:
        raise DataError(f"{where}: images have {X.shape[1]} channels but the model takes {c}; give images of {c}")
    if X.shape[2:] != (h, w):
        if X.shape[2] < h or X.shape[3] < w:
            raise DataError(f"{where}: images are {_dims(X.shape[2:])} but the model takes {h}x{w}; give images "
                            f"of {h}x{w} (or larger)")
        X = _resize(X, h, w)
    return X


def _dims(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


