"""Loading tabular data: built-in scikit-learn sets, CSV and Parquet files, and task inference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autodl.errors import DataError, UserError

BUILTIN_DATASETS = {
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
}

TASKS = ("classification", "regression")


@dataclass
class Dataset:
    """Features ``X`` (a DataFrame), target ``y`` (a Series) and where they came from."""

    X: Any
    y: Any
    name: str
    target: str

    @property
    def n_rows(self) -> int:
        return len(self.X)


def load_builtin(name: str) -> Dataset:
    """One of scikit-learn's bundled sets (no download): iris, wine, breast_cancer, digits, diabetes."""
    if name not in BUILTIN_DATASETS:
        raise DataError(f"unknown dataset '{name}'; choose one of: {', '.join(BUILTIN_DATASETS)}")
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    bunch = loader(as_frame=True)
    X = bunch.data
    y = bunch.target.rename("target")
    return Dataset(X=X, y=y, name=name, target="target")


def read_table(path: str | Path):
    """Read a CSV or Parquet file into a DataFrame, with one-line errors."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".tsv", ""):
            df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise DataError(f"{path}: unsupported format '{suffix}'; use .csv or .parquet")
    except DataError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot read it as {suffix.lstrip('.') or 'csv'} ({first})") from None
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataError(f"{path}: the table is empty")
    return df


def load_file(path: str | Path, target: str | None) -> Dataset:
    """Split a CSV/Parquet table into features and the ``target`` column."""
    if not target:
        raise UserError("--data needs --target COLUMN naming the column to predict")
    df = read_table(path)
    if target not in df.columns:
        cols = ", ".join(map(str, df.columns[:12])) + (", ..." if df.shape[1] > 12 else "")
        raise DataError(f"target column '{target}' is not in {path}; its columns are: {cols}")
    y = df[target]
    X = df.drop(columns=[target])
    if X.shape[1] == 0:
        raise DataError(f"{path} has no feature columns besides the target '{target}'")
    if y.isna().all():
        raise DataError(f"target column '{target}' in {path} is empty")
    # rows whose target is missing stay: the search drops them and says how many
    return Dataset(X=X.reset_index(drop=True), y=y.reset_index(drop=True), name=Path(path).name,
                   target=target)


def infer_task(y) -> str:
    """``classification`` for text, boolean, categorical or few-valued integer targets, else
    ``regression``."""
    import pandas as pd

    s = pd.Series(np.asarray(y).ravel()) if not isinstance(y, pd.Series) else y
    if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == bool or pd.api.types.is_string_dtype(s):
        return "classification"
    values = s.dropna()
    if pd.api.types.is_integer_dtype(values) or (
        pd.api.types.is_float_dtype(values) and np.all(np.mod(values, 1) == 0)
    ):
        n_unique = values.nunique()
        if n_unique <= max(2, min(20, len(values) // 10)):
            return "classification"
    return "regression"


def check_task(task: str | None, y) -> str:
    if task is None or task == "auto":
        task = infer_task(y)  # then checked like a task given by name
    elif task not in TASKS:
        raise UserError(f"task is '{task}', but must be one of: auto, {', '.join(TASKS)}")
    if task == "classification":
        n_classes = len(set(np.asarray(y).ravel().tolist()))
        if n_classes < 2:
            raise DataError("classification needs at least two classes in the target")
    if task == "regression":
        import pandas as pd

        if not pd.api.types.is_numeric_dtype(pd.Series(np.asarray(y).ravel())):
            raise DataError("regression needs a numeric target; use --task classification")
    return task


def as_frame(X, feature_names: list[str] | None = None):
    """A DataFrame from a DataFrame, numpy array or list of rows (columns x0, x1, ... for arrays)."""
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise DataError(f"X must be 2-D (rows x features), got shape {arr.shape}")
    names = feature_names or [f"x{i}" for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=names)
