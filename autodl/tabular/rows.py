"""What rows bring besides their features: a sample weight, a group, a date; and the held-out
test split they shape (:func:`make_split`).

A search's ``SearchSpec`` names the columns that hold them (``weight_column``, ``groups_column``,
``time_column``); arrays given to :func:`autodl.search` become the columns :data:`WEIGHT_COLUMN`
and :data:`GROUPS_COLUMN` (:func:`with_row_arrays`), so they stay with their rows (a row dropped
for a missing target drops its weight) and a run folder's ``data.parquet`` keeps them for resume.
:func:`row_columns` takes them out of the features and checks them.

``sample_weight`` weights every fit (the model step's ``sample_weight``; k-NN takes none and is
fitted unweighted) and every score, in the folds and on the test split. ``groups`` keep each
group on one side of every split: the test split holds ``test_size`` of the groups, the folds are
group k-fold (stratified for classes) or one group-disjoint holdout
(:func:`autodl.tabular.pipeline.make_cv`). ``cv="time"`` orders the rows by a date column: the
test split is the last ``test_size`` share of them, and the folds are expanding windows over the
rest, so a training fold never holds a row later than its validation rows.
"""

from __future__ import annotations

import sys

import numpy as np

from autodl.errors import DataError, UserError
from autodl.tabular.metrics import Metric, takes_weights

#: the columns holding the ``sample_weight`` and ``groups`` given to :func:`autodl.search` (in the
#: frame the search prepares and in a run folder's ``data.parquet``)
WEIGHT_COLUMN, GROUPS_COLUMN = "__weight__", "__groups__"


def make_split(n_rows: int, stratify, test_size: float, seed: int, *, groups=None,
               times=None) -> dict[str, np.ndarray]:
    """Row indices ``train`` / ``test`` (``test_size`` of the rows, stratified by ``stratify``
    when given, seeded); ``test`` is empty for ``test_size`` 0. With ``groups``: ``test_size``
    of the groups, no group on both sides. With ``times``: ``test`` is the last ``test_size``
    share of the rows in time order, and ``train`` the others in time order."""
    idx = np.arange(n_rows)
    if times is not None:
        order = np.argsort(times, kind="stable")
        n_train = n_rows - int(np.ceil(test_size * n_rows))
        return {"train": order[:n_train], "val": idx[:0], "test": order[n_train:]}
    if test_size <= 0:
        return {"train": idx, "val": idx[:0], "test": idx[:0]}
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    try:
        if groups is not None:
            splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
            train, test = next(splitter.split(idx, groups=groups))
        else:
            train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise DataError(f"cannot hold out a test split of {test_size}: {exc}") from None
    return {"train": train, "val": idx[:0], "test": test}  # validation: the CV folds of train


def with_row_arrays(X, spec, sample_weight, groups):
    """``X`` with the ``sample_weight`` / ``groups`` arrays as columns (so they stay with their
    rows until :func:`row_columns` takes them out); names the columns in ``spec``."""
    for attr, values, default, name in (("weight_column", sample_weight, WEIGHT_COLUMN, "sample_weight"),
                                        ("groups_column", groups, GROUPS_COLUMN, "groups")):
        if values is None:
            continue
        values = np.asarray(values)
        if values.shape != (len(X),):
            raise DataError(f"{name} has shape {values.shape}, but needs one value per row of X ({len(X)})")
        setattr(spec, attr, getattr(spec, attr) or default)
        X = X.assign(**{getattr(spec, attr): values})
    return X


def row_columns(X, spec):
    """``(X without them, weights, group codes)`` from the columns ``spec.weight_column`` and
    ``spec.groups_column`` (None for one not named), checked: weights finite, >= 0, not all 0;
    every row in a group."""
    import pandas as pd

    values = {}
    for kind, column, given, name in (("weight", spec.weight_column, WEIGHT_COLUMN, "sample_weight"),
                                      ("groups", spec.groups_column, GROUPS_COLUMN, "groups")):
        if column is None:
            continue
        if column not in X.columns:
            shown = ", ".join(map(str, X.columns[:12])) + (", ..." if X.shape[1] > 12 else "")
            raise DataError(f"{kind} column '{column}' is not in the data; its columns are: {shown}")
        what = name if column == given else f"{kind} column '{column}'"  # as the user gave it
        values[kind] = (what, pd.Series(X[column]).reset_index(drop=True))
        X = X.drop(columns=[column])
    weights = groups = None
    if "weight" in values:
        what, series = values["weight"]
        weights = pd.to_numeric(series, errors="coerce").to_numpy(np.float64)
        for bad, problem in ((~np.isfinite(weights), "missing, non-numeric or infinite"), (weights < 0, "negative")):
            if bad.any():
                raise DataError(f"{what} has {int(bad.sum())} {problem} values; weights must be finite numbers "
                                ">= 0: fix or drop those rows")
        if not weights.any():
            raise DataError(f"{what} is zero on every row; give the rows to learn from a positive weight")
    if "groups" in values:
        what, series = values["groups"]
        groups, _ = pd.factorize(series)  # codes in order of appearance
        if (groups < 0).any():
            raise DataError(f"{what} has {int((groups < 0).sum())} missing values; give every row a group")
        if groups.max() < 1:
            raise DataError(f"{what} has one group; group-disjoint splits need at least 2 (3 with a test split)")
    return X, weights, groups


def row_times(X, spec) -> np.ndarray:
    """cv="time": each row's date in epoch seconds, from ``spec.time_column`` (filled in with the
    one datetime column of the column roles when None)."""
    from autodl.export.runtime import epoch_seconds
    from autodl.tabular.columns import infer_roles

    if spec.time_column is None:
        dates = infer_roles(X, overrides=spec.column_roles).columns("datetime")
        if len(dates) != 1:
            found = f"{len(dates)} ({', '.join(map(str, dates))})" if dates else "none"
            raise UserError(f"cv='time' orders the rows by a date column, and the data has {found}; name it with "
                            "time_column= (--time-column COL)")
        spec.time_column = dates[0]
    elif spec.time_column not in X.columns:
        raise DataError(f"time column '{spec.time_column}' is not in the data")
    times = epoch_seconds(X[spec.time_column])
    if np.isnan(times).any():
        raise DataError(f"time column '{spec.time_column}' has {int(np.isnan(times).sum())} missing or unreadable "
                        "dates; fix or drop those rows")
    return times


def weight_notes(weights, metric: Metric, space) -> None:
    """One line each for what sample weights cannot reach: k-NN's fits, a metric function without
    a ``sample_weight`` parameter."""
    if weights is None:
        return
    notes = []
    if "knn" in (getattr(space["model"], "choices", None) or ()):
        notes.append("k-NN takes no sample weights: it is fitted unweighted (and scored weighted like the others)")
    if metric.func is not None and not takes_weights(metric.func):
        notes.append(f"the metric {metric.name} has no sample_weight parameter: scores are unweighted")
    for note in notes:
        sys.stderr.write(f"autodl: {note}\n")
        sys.stderr.flush()
