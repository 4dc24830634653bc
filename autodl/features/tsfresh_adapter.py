"""tsfresh as a scikit-learn transformer: one row of features per time series.

Input forms (``form``):

* ``"wide"``: ``X`` has one row per series and one column per time step, in order. Missing
  values (NaN) are dropped, so series of different lengths are rows padded with NaN. With
  ``kind_sep`` (e.g. ``"__"``) the columns are named ``<kind><kind_sep><step>`` and each kind
  (sensor, channel) is its own series: multivariate series in one row.
* ``"long"``: ``X`` has one row per series holding its id in ``column_id``; the observations are
  in ``timeseries``, a long DataFrame with ``column_id``, ``column_sort`` and either
  ``column_kind`` + ``column_value`` or one column per kind (tsfresh's own long/flat formats).
  To transform new series, ``set_params(timeseries=new_long_frame)``.

At ``fit`` every feature of ``feature_set`` (``minimal``, ``efficient``, ``comprehensive`` or a
tsfresh settings dict) is extracted, then ``select_features`` keeps those relevant to ``y``
(Benjamini-Yekutieli procedure at ``fdr_level``; multi-class targets are tested per class and a
feature is kept when relevant to at least one). The kept feature names become
``kind_to_fc_parameters_`` (tsfresh's ``settings.from_columns``), so ``transform`` computes only
those features, and its columns are exactly ``features_``. NaN/inf feature values are filled
with the feature's median over the fit rows (``fill_values_``), so a transformed row depends on
its series alone.

Caching: features of a series do not depend on the other series, so extracted rows are cached
by the series' content (see :mod:`autodl.features._cache`); the folds of a search and every
trial after the first reuse them. The selection is cached by (rows, target, settings), so a
fold's relevance tests run once per search, not once per trial.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from autodl._deps import require
from autodl.errors import DataError, UserError
from autodl.features import _cache

FEATURE_SETS = ("minimal", "efficient", "comprehensive")
FORMS = ("wide", "long")


def fc_parameters(feature_set) -> dict:
    """tsfresh's settings dict for a feature-set name (or a settings dict, returned as is)."""
    if isinstance(feature_set, dict):
        return feature_set
    from tsfresh.feature_extraction import settings

    classes = {"minimal": settings.MinimalFCParameters, "efficient": settings.EfficientFCParameters,
               "comprehensive": settings.ComprehensiveFCParameters}
    if feature_set not in classes:
        raise UserError(f"feature_set is '{feature_set}', but must be one of: {', '.join(FEATURE_SETS)} "
                        "(or a tsfresh settings dict)")
    return dict(classes[feature_set]())


class TsfreshTransformer(TransformerMixin, BaseEstimator):
    """Extract tsfresh features from time series and keep those relevant to the target.

    Args:
        form: ``"wide"`` (a row per series, a column per step) or ``"long"`` (ids in ``X``,
            observations in ``timeseries``); see the module docstring.
        column_id: long form: the id column (in ``X`` and ``timeseries``).
        column_sort: long form: the column ordering the observations.
        column_kind: long form: the column naming the kind of each observation (optional).
        column_value: long form: the value column (optional; default: every other column).
        timeseries: long form: the observations (a DataFrame).
        kind_sep: wide form: columns are ``<kind><kind_sep><step>`` (None: a single series).
        feature_set: ``"minimal"``, ``"efficient"``, ``"comprehensive"`` or a settings dict.
        select: keep only features relevant to ``y`` at fit (needs ``y``).
        fdr_level: the false discovery rate of the relevance tests.
        n_jobs: processes for extraction and selection (0: serial, the default).
        cache_dir: also cache extracted rows as Parquet files here (None: memory only).

    Attributes:
        features_: names of the output columns, in order.
        kind_to_fc_parameters_: tsfresh settings that compute exactly ``features_``.
        fill_values_: per-feature fill value for NaN/inf (medians over the fit rows).
        n_features_extracted_: number of features extracted before selection.
        n_features_in_: number of columns of ``X`` at fit.
    """

    def __init__(self, form: str = "wide", column_id: str | None = None, column_sort: str | None = None,
                 column_kind: str | None = None, column_value: str | None = None, timeseries=None,
                 kind_sep: str | None = None, feature_set: Any = "efficient", select: bool = True,
                 fdr_level: float = 0.05, n_jobs: int = 0, cache_dir: str | None = None):
        self.form = form
        self.column_id = column_id
        self.column_sort = column_sort
        self.column_kind = column_kind
        self.column_value = column_value
        self.timeseries = timeseries
        self.kind_sep = kind_sep
        self.feature_set = feature_set
        self.select = select
        self.fdr_level = fdr_level
        self.n_jobs = n_jobs
        self.cache_dir = cache_dir

    # ------------------------------------------------------------------ input handling
    def _check_params(self) -> None:
        if self.form not in FORMS:
            raise UserError(f"form is '{self.form}', but must be 'wide' or 'long'")
        if self.form == "long":
            if not self.column_id or not self.column_sort:
                raise UserError("long-form series need column_id and column_sort")
            if self.timeseries is None:
                raise UserError("long-form series need timeseries=<long DataFrame of observations>")
            missing = [c for c in (self.column_id, self.column_sort, self.column_kind, self.column_value)
                       if c is not None and c not in self.timeseries.columns]
            if missing:
                raise DataError(f"the series table has no column(s) {', '.join(map(repr, missing))}")
        if not isinstance(self.n_jobs, int) or self.n_jobs < 0:
            raise UserError(f"n_jobs is {self.n_jobs!r}, but must be an integer >= 0")

    def _frame(self, X):
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            return X
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise DataError(f"X must be 2-D (a row per series), got shape {arr.shape}")
        return pd.DataFrame(arr, columns=[f"t{i}" for i in range(arr.shape[1])])

    def _series_hashes(self, X) -> np.ndarray:
        """One content hash per row of ``X`` (per series)."""
        import pandas as pd

        if self.form == "wide":
            return _cache.row_hashes(X)
        if self.column_id not in X.columns:
            raise DataError(f"X has no id column '{self.column_id}'")
        ts = self.timeseries
        h = pd.Series(_cache.row_hashes(ts), index=ts.index)
        per_id = h.groupby(ts[self.column_id].to_numpy()).sum()  # order-free combination
        ids = X[self.column_id].to_numpy()
        present = pd.Index(ids).isin(per_id.index)
        if not present.all():
            absent = [i for i, ok in zip(ids, present) if not ok][:5]
            raise DataError(f"no observations in the series table for id(s) {absent}")
        return per_id.loc[ids].to_numpy(dtype=np.uint64)

    def _long(self, X, rows: np.ndarray):
        """``(long frame, kwargs for extract_features, ids)`` for the rows ``rows`` of ``X``;
        the ids are the positions 0..len(rows)-1 for the wide form."""
        import pandas as pd

        if self.form == "long":
            ids = X[self.column_id].to_numpy()[rows]
            ts = self.timeseries
            sub = ts[ts[self.column_id].isin(ids)]
            kwargs = dict(column_id=self.column_id, column_sort=self.column_sort,
                          column_kind=self.column_kind, column_value=self.column_value)
            return sub, kwargs, ids
        sub = X.iloc[rows]
        cols = [str(c) for c in sub.columns]
        if self.kind_sep:
            kinds, steps = [], []
            for c in cols:
                if self.kind_sep not in c:
                    raise DataError(f"column '{c}' is not named <kind>{self.kind_sep}<step>")
                k, s = c.rsplit(self.kind_sep, 1)
                kinds.append(k)
                steps.append(int(s) if s.lstrip("-").isdigit() else len(steps))
        else:
            kinds, steps = ["value"] * len(cols), list(range(len(cols)))
        try:
            values = sub.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError("wide-form series must be numeric (a column per time step)") from None
        n, m = values.shape
        frame = pd.DataFrame({
            "id": np.repeat(np.arange(n), m), "sort": np.tile(np.asarray(steps), n),
            "kind": np.tile(np.asarray(kinds, dtype=object), n), "value": values.ravel()})
        frame = frame[np.isfinite(frame["value"].to_numpy())]
        return frame, dict(column_id="id", column_sort="sort", column_kind="kind", column_value="value"), np.arange(n)

    def _extract(self, X, rows: np.ndarray, settings: dict | None, kind_settings: dict | None):
        """Features of rows ``rows`` of ``X`` (a DataFrame in that order, NaN kept)."""
        from tsfresh import extract_features

        frame, kwargs, ids = self._long(X, rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            feats = extract_features(frame, default_fc_parameters=settings, kind_to_fc_parameters=kind_settings,
                                     n_jobs=self.n_jobs, disable_progressbar=True, show_warnings=False,
                                     **kwargs)
        feats = feats.reindex(ids)
        feats.columns = [str(c) for c in feats.columns]
        return feats.astype(np.float64).replace([np.inf, -np.inf], np.nan)

    def _features(self, X, hashes: np.ndarray, skey: str, settings, kind_settings):
        """Feature table for every row of ``X`` (row order), from the row cache or extracted."""
        table, todo = _cache.ROWS.lookup(skey, hashes, self.cache_dir)
        if todo.any():
            _, first = np.unique(hashes[todo], return_index=True)
            rows = np.flatnonzero(todo)[np.sort(first)]
            new = self._extract(X, rows, settings, kind_settings)
            table = _cache.ROWS.add(skey, hashes[rows], new, self.cache_dir)
        out = table.loc[hashes]
        out.index = X.index
        return out

    def _settings_key(self, what) -> str:
        return _cache.settings_key("tsfresh", self.form, self.kind_sep, self.column_id, self.column_sort,
                                   self.column_kind, self.column_value, what)

    # ------------------------------------------------------------------ estimator API
    def fit(self, X, y=None):
        """Extract every feature of ``feature_set`` and keep those relevant to ``y``."""
        import pandas as pd

        require("tsfresh", "features", "tsfresh features")

        self._check_params()
        X = self._frame(X)
        if len(X) == 0:
            raise DataError("X has no rows")
        settings = fc_parameters(self.feature_set)
        hashes = self._series_hashes(X)
        full = self._features(X, hashes, self._settings_key(settings), settings, None)
        full = full.reset_index(drop=True)
        self.n_features_extracted_ = int(full.shape[1])
        usable = full.columns[full.notna().any() & (full.nunique(dropna=True) > 1)]
        if len(usable) == 0:
            raise DataError("tsfresh found no informative feature (every feature is missing or constant)")
        full = full[usable]
        medians = full.median()
        filled = full.fillna(medians)
        chosen = list(usable)
        if self.select and y is not None:
            # the same fold in a later trial has the same rows and targets: select once
            key = _cache.settings_key("select", hashes.tobytes().hex(), np.asarray(y).ravel().tolist(),
                                      self.fdr_level, chosen, self._settings_key(settings))
            selected = _cache.SELECTIONS.get(key)
            if selected is None:
                selected = self._select(filled, y)
                _cache.SELECTIONS.put(key, selected)
            chosen = list(selected) or chosen
        self.features_ = chosen
        self.fill_values_ = medians[chosen].to_numpy(dtype=np.float64)
        from tsfresh.feature_extraction.settings import from_columns

        self.kind_to_fc_parameters_ = _plain(from_columns(chosen))
        self.n_features_in_ = int(X.shape[1])
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        return self

    def _select(self, features, y) -> list[str]:
        import pandas as pd
        from tsfresh import select_features

        y = pd.Series(np.asarray(y).ravel(), index=features.index)
        classes = y.nunique()
        task = "classification" if (classes <= max(2, len(y) // 10) and not pd.api.types.is_float_dtype(y)
                                    or not pd.api.types.is_numeric_dtype(y)) else "regression"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kept = select_features(features, y, fdr_level=self.fdr_level, ml_task=task, n_jobs=self.n_jobs,
                                   multiclass=task == "classification" and classes > 2, n_significant=1)
        return [str(c) for c in kept.columns]

    def transform(self, X):
        """The features chosen at fit (columns ``features_``), one row per series."""
        import pandas as pd

        check_is_fitted(self, "features_")
        self._check_params()
        X = self._frame(X)
        hashes = self._series_hashes(X)
        settings = fc_parameters(self.feature_set)
        table, todo = _cache.ROWS.lookup(self._settings_key(settings), hashes, self.cache_dir)
        if table is not None and not todo.any():  # every row extracted in full already
            out = table.loc[hashes].reindex(columns=self.features_)
        else:
            kind_settings = self.kind_to_fc_parameters_
            out = self._features(X, hashes, self._settings_key(("selected", kind_settings)), None, kind_settings)
            out = out.reindex(columns=self.features_)
        out = pd.DataFrame(out.to_numpy(dtype=np.float64), columns=self.features_, index=X.index)
        return out.fillna(pd.Series(self.fill_values_, index=self.features_))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "features_")
        return np.asarray(self.features_, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.requires_fit = True
        return tags


def _plain(obj):
    """Settings as plain lists/dicts/scalars (storable with skops, comparable, JSON-able)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
