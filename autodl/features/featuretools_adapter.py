"""featuretools' deep feature synthesis as a scikit-learn transformer.

``X`` is the *target table*: one row per instance to predict. On its own (no ``tables``) DFS
applies transform primitives to its columns (a row index ``__row__`` is made when ``index``
is None). With ``tables`` and ``relationships`` it is one table of an entity set, and DFS also
aggregates the related tables (``SUM(transactions.amount)``, ``MEAN(sessions.COUNT(...))``) up
to ``max_depth``. The related tables are given as DataFrames or as CSV/Parquet paths; they are
static data, while ``X`` changes between ``fit`` and ``transform`` (new customers, say).

What ``fit`` chooses is what ``transform`` produces: ``fit`` runs ``dfs(features_only=True)``,
computes the matrix once to drop features that are constant or missing on the fit rows, and
stores the remaining definitions as ``features_json_`` (``ft.save_features``); ``transform``
loads them (``ft.load_features``) and runs ``calculate_feature_matrix`` on an entity set built
from the new rows, with the logical types fixed at fit (``logical_types_``), then returns the
columns ``feature_names_out_`` in the rows' order. Outputs are model-ready: numbers and
booleans as float64 (missing = NaN), datetimes as seconds since the epoch, everything else as
strings (missing = None).

Caching: the matrix is cached by the content of ``X``, the feature definitions and the related
tables (see :mod:`autodl.features._cache`), so the same fold in a later trial is free.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from autodl._deps import require
from autodl.errors import DataError, UserError
from autodl.features import _cache

ROW_INDEX = "__row__"
#: transform primitives of the single-table shortcut (row-wise, so new rows get the same values)
SINGLE_TABLE_PRIMITIVES = ("multiply_numeric", "absolute", "day", "month", "year", "weekday")
_TABLES: dict[tuple, Any] = {}


class FeaturetoolsTransformer(TransformerMixin, BaseEstimator):
    """Deep feature synthesis over ``X`` and, optionally, tables related to it.

    Args:
        target: the name of ``X``'s table in the entity set.
        index: ``X``'s unique id column (None: a row index is made; needed with ``tables``).
        time_index: ``X``'s time column (optional).
        tables: the related tables, ``{name: {"data": DataFrame or path, "index": column,
            "time_index": column (optional), "logical_types": {column: type} (optional)}}``.
        relationships: ``[(parent, parent_column, child, child_column), ...]``.
        trans_primitives: transform primitive names (None: featuretools' defaults).
        agg_primitives: aggregation primitive names (None: featuretools' defaults).
        max_depth: how deeply primitives are stacked.
        max_features: keep at most this many features (-1: all).
        drop_constant: drop features that are constant or all missing on the fit rows.
        cache_dir: also cache feature matrices as Parquet files here (None: memory only).

    Attributes:
        features_json_: the chosen feature definitions (``ft.save_features`` output).
        feature_names_out_: the output columns, in order.
        logical_types_: the woodwork logical types used for ``X``'s columns.
        n_features_in_, feature_names_in_: what ``X`` looked like at fit.
    """

    def __init__(self, target: str = "data", index: str | None = None, time_index: str | None = None,
                 tables: dict[str, dict[str, Any]] | None = None, relationships: list | None = None,
                 trans_primitives: list[str] | tuple[str, ...] | None = None,
                 agg_primitives: list[str] | tuple[str, ...] | None = None, max_depth: int = 2,
                 max_features: int = -1, drop_constant: bool = True, cache_dir: str | None = None):
        self.target = target
        self.index = index
        self.time_index = time_index
        self.tables = tables
        self.relationships = relationships
        self.trans_primitives = trans_primitives
        self.agg_primitives = agg_primitives
        self.max_depth = max_depth
        self.max_features = max_features
        self.drop_constant = drop_constant
        self.cache_dir = cache_dir

    # ------------------------------------------------------------------ entity set
    def _check(self, X) -> None:
        import pandas as pd

        if not isinstance(X, pd.DataFrame):
            raise DataError("FeaturetoolsTransformer needs X as a DataFrame (named columns)")
        if self.tables and not self.index:
            raise UserError("with related tables, give index=<X's id column>")
        for col in (self.index, self.time_index):
            if col is not None and col not in X.columns:
                raise DataError(f"X has no column '{col}' (the {'index' if col == self.index else 'time index'})")
        if self.index is not None and X[self.index].duplicated().any():
            raise DataError(f"the index column '{self.index}' of X has duplicate values")
        for rel in self.relationships or []:
            if len(rel) != 4:
                raise UserError(f"relationship {rel!r} must be [parent, parent_column, child, child_column]")

    def _table(self, name: str, spec: dict[str, Any]):
        data = spec.get("data", spec.get("path"))
        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            if not path.is_file():
                raise DataError(f"table '{name}': file {path} does not exist")
            st = path.stat()
            key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
            if key not in _TABLES:
                from autodl.features.io import parse_dates
                from autodl.tabular.data import read_table

                _TABLES[key] = parse_dates(read_table(path), spec)
            return _TABLES[key]
        if data is None:
            raise UserError(f"table '{name}' has no data (give 'data': DataFrame or file path)")
        return data

    def _tables_key(self) -> list:
        key = []
        for name, spec in sorted((self.tables or {}).items()):
            data = spec.get("data", spec.get("path"))
            if isinstance(data, (str, os.PathLike)):
                st = Path(data).stat()
                key.append((name, str(data), st.st_mtime_ns, st.st_size))
            else:
                key.append((name, _cache.frame_key(self._table(name, spec))))
            key.append({k: v for k, v in spec.items() if k not in ("data", "path")})
        return key + [list(map(list, self.relationships or []))]

    def _x_logical_types(self, X) -> dict[str, str]:
        """Fixed types for X's plain columns, so fit and transform type them alike."""
        import pandas as pd

        special = {self.index, self.time_index} | {c for rel in self.relationships or [] for c in
                                                   ((rel[1],) if rel[0] == self.target else ()) +
                                                   ((rel[3],) if rel[2] == self.target else ())}
        types = {}
        for col in X.columns:
            if col in special:
                continue
            dtype = X[col].dtype
            if pd.api.types.is_bool_dtype(dtype):
                types[str(col)] = "BooleanNullable"
            elif pd.api.types.is_numeric_dtype(dtype):
                types[str(col)] = "Double"
            elif pd.api.types.is_datetime64_any_dtype(dtype):
                types[str(col)] = "Datetime"
            else:
                types[str(col)] = "Categorical"
        return types

    def _entityset(self, X, logical_types: dict[str, str]):
        import featuretools as ft

        frame = X.copy()
        frame.columns = [str(c) for c in frame.columns]
        for col, kind in logical_types.items():
            if kind == "Categorical":
                frame[col] = frame[col].astype(object).where(frame[col].notna(), None).map(
                    lambda v: v if v is None else str(v))
        index = self.index or ROW_INDEX
        if self.index is None:
            frame[ROW_INDEX] = np.arange(len(frame))
        es = ft.EntitySet(id="autodl")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            es.add_dataframe(dataframe_name=self.target, dataframe=frame, index=index,
                             time_index=self.time_index, logical_types=logical_types)
            for name, spec in (self.tables or {}).items():
                if "index" not in spec:
                    raise UserError(f"table '{name}' needs an 'index' (its unique id column)")
                es.add_dataframe(dataframe_name=name, dataframe=self._table(name, spec).copy(),
                                 index=spec["index"], time_index=spec.get("time_index"),
                                 logical_types=spec.get("logical_types"))
            for parent, pcol, child, ccol in self.relationships or []:
                try:
                    es.add_relationship(parent, pcol, child, ccol)
                except (KeyError, ValueError) as exc:
                    raise UserError(f"relationship {parent}.{pcol} -> {child}.{ccol}: {exc}") from None
        return es

    def _matrix(self, features, es, X, key: str):
        import featuretools as ft

        cached = _cache.FRAMES.get(key, self.cache_dir)
        if cached is not None:
            cached.index = X.index
            return cached
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fm = ft.calculate_feature_matrix(features, entityset=es, verbose=False)
        order = X[self.index].to_numpy() if self.index else np.arange(len(X))
        fm = model_frame(fm.reindex(order))
        fm.index = np.arange(len(fm))
        _cache.FRAMES.put(key, fm, self.cache_dir)
        fm.index = X.index
        return fm

    # ------------------------------------------------------------------ estimator API
    def fit(self, X, y=None):
        """Choose features by deep feature synthesis on ``X`` (and the related tables)."""
        require("featuretools", "features", "featuretools feature synthesis")
        import featuretools as ft

        self._check(X)
        if len(X) == 0:
            raise DataError("X has no rows")
        logical_types = self._x_logical_types(X)
        es = self._entityset(X, logical_types)
        kwargs: dict[str, Any] = {}
        if self.trans_primitives is not None:
            kwargs["trans_primitives"] = list(self.trans_primitives)
        if self.agg_primitives is not None:
            kwargs["agg_primitives"] = list(self.agg_primitives)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                features = ft.dfs(entityset=es, target_dataframe_name=self.target, features_only=True,
                                  max_depth=self.max_depth, max_features=self.max_features, **kwargs)
            except (KeyError, ValueError, TypeError) as exc:
                raise UserError(f"featuretools: {str(exc).strip().splitlines()[0][:200]}") from None
        if not features:
            raise DataError("featuretools produced no features for this data")
        tables = self._tables_key()
        fm = self._matrix(features, es, X, _cache.frame_key(X, ft.save_features(features), logical_types, tables))
        keep = list(fm.columns)
        if self.drop_constant:
            keep = [c for c in fm.columns if fm[c].notna().any() and fm[c].nunique(dropna=False) > 1]
            if not keep:
                raise DataError("every featuretools feature is constant on these rows")
        kept = set(keep)
        features = [f for f in features if any(n in kept for n in f.get_feature_names())]
        self.features_json_ = ft.save_features(features)
        self.feature_names_out_ = [c for f in features for c in f.get_feature_names() if c in kept]
        self.logical_types_ = logical_types
        self.n_features_in_ = int(X.shape[1])
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        return self

    def transform(self, X):
        """The features chosen at fit for the rows of ``X`` (columns ``feature_names_out_``)."""
        import featuretools as ft

        check_is_fitted(self, "features_json_")
        self._check(X)
        missing = [c for c in self.feature_names_in_ if c not in {str(c) for c in X.columns}]
        if missing:
            raise DataError(f"X lacks column(s) seen at fit: {', '.join(missing[:10])}")
        X = X[[c for c in X.columns if str(c) in set(self.feature_names_in_)]]
        es = self._entityset(X, self.logical_types_)
        key = _cache.frame_key(X, self.features_json_, self.logical_types_, self._tables_key())
        cached = _cache.FRAMES.get(key, self.cache_dir)
        if cached is None:
            features = ft.load_features(self.features_json_)
            cached = self._matrix(features, es, X, key)
        cached.index = X.index
        return cached.reindex(columns=self.feature_names_out_)

    def fit_transform(self, X, y=None, **fit_params):
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "features_json_")
        return np.asarray(self.feature_names_out_, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # skops (autodl's model format) cannot store DataFrames: related tables given as frames are
    # stored column by column (NumPy arrays) and rebuilt on load
    def __getstate__(self):
        state = super().__getstate__()
        if self.tables:
            state = dict(state)
            state["tables"] = {name: {k: (_frame_state(v) if hasattr(v, "columns") else v)
                                      for k, v in spec.items()} for name, spec in self.tables.items()}
        return state

    def __setstate__(self, state):
        tables = state.get("tables")
        if tables:
            state = dict(state)
            state["tables"] = {name: {k: (_frame_from_state(v) if isinstance(v, dict) and "__frame__" in v else v)
                                      for k, v in spec.items()} for name, spec in tables.items()}
        super().__setstate__(state)


def model_frame(fm):
    """A featuretools matrix as model input: numbers/booleans float64, datetimes in seconds,
    the rest strings (missing: NaN / None)."""
    import pandas as pd

    cols = {}
    for col in fm.columns:
        s = fm[col]
        dtype = s.dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            cols[str(col)] = pd.Series(s).astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            ts = pd.to_datetime(s)
            vals = ts.astype("int64").to_numpy(dtype=np.float64) / 1e9
            vals[ts.isna().to_numpy()] = np.nan
            cols[str(col)] = vals
        else:
            obj = s.astype(object)
            cols[str(col)] = np.array([None if _missing(v) else str(v) for v in obj], dtype=object)
    return pd.DataFrame(cols, index=fm.index)


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _frame_state(df) -> dict[str, Any]:
    return {"__frame__": True, "columns": [str(c) for c in df.columns],
            "dtypes": [str(t) for t in df.dtypes],
            "values": [df[c].to_numpy() if df[c].dtype != object else df[c].to_numpy(dtype=object)
                       for c in df.columns]}


def _frame_from_state(state: dict[str, Any]):
    import pandas as pd

    df = pd.DataFrame({c: v for c, v in zip(state["columns"], state["values"])})
    for col, dtype in zip(state["columns"], state["dtypes"]):
        if str(df[col].dtype) != dtype:
            try:
                df[col] = df[col].astype(dtype)
            except (TypeError, ValueError):
                pass  # keep the stored values as they are
    return df
