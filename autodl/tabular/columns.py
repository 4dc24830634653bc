"""Column understanding for tabular search: what each column is, said out loud.

:func:`infer_roles` reads the training rows and gives a :class:`ColumnPlan`, one role per column:

* ``numeric``: numbers (imputed, then the config's scaler);
* ``boolean``: ``bool`` columns (or object columns holding only booleans), used as 0/1 numbers
  with the numeric columns (0/1 keeps them exportable: ONNX has no boolean input here);
* ``categorical``: at most :data:`MAX_CATEGORICAL_LEVELS` levels (imputed, then the config's
  encoder, one-hot or ordinal);
* ``high_cardinality``: more levels, never one-hot encoded (imputed, ordinal codes with -1 for
  an unknown level, then the config's scaler). The threshold is a constant, not a share of the
  rows, so one-hot widths stay bounded as tables grow: memory is O(rows x columns);
* ``datetime``: ``datetime64`` columns, and text columns whose values look like ISO dates
  (``YYYY-MM...``) and parse with ``pd.to_datetime(format="ISO8601")`` (at least
  :data:`DATE_SHARE` of a sample of the values). The pipeline sees them as epoch seconds
  (:func:`prepare_frame`) and :class:`DateParts` turns those into calendar parts;
* ``ignore`` with a reason: ``all-missing``; ``constant``; ``duplicate of <col>`` (the same
  values as an earlier column); ``id-like``: more than :data:`MAX_CATEGORICAL_LEVELS` distinct
  strings that are unique for at least :data:`ID_UNIQUE_SHARE` of the rows, or distinct whole
  numbers filling at least :data:`ID_DENSITY` of their range (row numbers, sequence ids;
  unique floats are measurements and stay numeric); ``free text``: more than
  :data:`MAX_CATEGORICAL_LEVELS` distinct strings of :data:`TEXT_WORDS` words or more on
  average (autodl has no exportable text features, so they are left out rather than encoded as
  meaningless codes; ask for ``high_cardinality`` to use them anyway).

A mixed-type text column (numbers and strings) is categorical (or high-cardinality): its values
are compared as strings. ``overrides={"zip": "categorical", "note": "ignore"}`` wins over
inference. A plan is plain JSON (:meth:`ColumnPlan.to_dict`); run folders keep it in
``run.json`` (``column_plan``) and ``columns.json``, and ``result.json`` has it in ``extra``.

**Dates.** :func:`prepare_frame` turns a datetime column into float64 seconds since
1970-01-01 (NaN when missing or unparsable; values with a UTC offset are converted to UTC,
naive values are taken as they are; a numeric column given the datetime role is taken to be
epoch seconds already). :class:`DateParts` makes, per column: year, month, day, day of week
(Monday = 0, as pandas), day of year, hour (only for columns whose training values have a time
of day other than midnight) and days elapsed since the training minimum, in float64 arithmetic
(H. Hinnant's ``civil_from_days``) that the ONNX converter
(:mod:`autodl.export.sklearn_onnx`) runs operation by operation, so both give the same bits.
Missing stays NaN (imputed after).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from autodl.errors import UserError
from autodl.export.runtime import boolean_values, category_strings, epoch_seconds

ROLES = ("numeric", "categorical", "high_cardinality", "boolean", "datetime", "ignore")
#: a categorical column with more levels is high-cardinality (ordinal codes, never one-hot)
MAX_CATEGORICAL_LEVELS = 50
#: a high-cardinality string column unique on at least this share of its rows is an id
ID_UNIQUE_SHARE = 0.9
#: distinct whole numbers that fill at least this share of their range (min..max) are an id
ID_DENSITY = 0.5
#: ids need at least this many non-missing rows (below, uniqueness says little)
ID_MIN_ROWS = 20
#: mean words per value from which a high-cardinality string column is free text
TEXT_WORDS = 4
#: share of sampled values that must parse for a text column to be a date column
DATE_SHARE = 0.9
DATE_SAMPLE = 500
_ISO_DATE = re.compile(r"^\s*[+-]?\d{4}-\d{2}")


@dataclass
class ColumnPlan:
    """Roles of a table's columns (see the module docstring); JSON via :meth:`to_dict`."""

    roles: dict[Any, str]  # column -> role, in the table's column order
    reasons: dict[Any, str] = field(default_factory=dict)  # column -> why (ignored, overridden)
    overrides: dict[Any, str] = field(default_factory=dict)
    dropped_target_rows: int = 0

    def columns(self, *roles: str) -> list:
        return [c for c, r in self.roles.items() if r in roles]

    @property
    def used(self) -> list:
        """The columns the pipeline reads (every role but ``ignore``), in table order."""
        return [c for c, r in self.roles.items() if r != "ignore"]

    def summary_lines(self, width: int = 6, *, dropped: bool = True) -> list[str]:
        """One compact line per role with (at most ``width``) column names; ignored columns
        with the gist of their reasons (the details are in :attr:`reasons`); with ``dropped``,
        the rows dropped for a missing target."""
        def names(cols):
            shown = [str(c) for c in cols[:width]]
            return ", ".join(shown) + (f", ... (+{len(cols) - width})" if len(cols) > width else "")

        lines = [f"{role} ({len(cols)}): {names(cols)}" for role in ROLES[:-1] if (cols := self.columns(role))]
        ignored = self.columns("ignore")
        if ignored:
            shown = [f"{c} ({self.reasons.get(c, 'ignored').split(':')[0]})" for c in ignored[:width]]
            more = f", ... (+{len(ignored) - width})" if len(ignored) > width else ""
            lines.append(f"ignored ({len(ignored)}): {', '.join(shown)}{more}")
        if dropped and self.dropped_target_rows:
            lines.append(f"dropped {self.dropped_target_rows} rows whose target is missing")
        return lines

    def announcement(self) -> str:
        """The summary as printed before a search: ``autodl: columns: ...`` lines (without the
        dropped rows, which are said when they are dropped)."""
        return "\n".join(f"autodl: columns: {line}" for line in self.summary_lines(dropped=False))

    def to_dict(self) -> dict[str, Any]:
        cols = [{"name": c, "role": r, **({"reason": self.reasons[c]} if c in self.reasons else {})}
                for c, r in self.roles.items()]
        return {"columns": cols, "overrides": [[c, r] for c, r in self.overrides.items()],
                "dropped_target_rows": self.dropped_target_rows, "summary": self.summary_lines()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnPlan:
        cols = data["columns"]
        return cls(roles={c["name"]: c["role"] for c in cols},
                   reasons={c["name"]: c["reason"] for c in cols if "reason" in c},
                   overrides={c: r for c, r in data.get("overrides", [])},
                   dropped_target_rows=int(data.get("dropped_target_rows", 0)))

    def onnx_metadata(self) -> dict[str, Any]:
        """What an exported file needs to be fed raw columns (``autodl.datetime_columns``:
        inputs of epoch seconds that ``autodl predict`` converts from dates;
        ``autodl.boolean_columns``: 0/1 inputs converted from booleans)."""
        meta = {}
        if self.columns("datetime"):
            meta["datetime_columns"] = [str(c) for c in self.columns("datetime")]
        if self.columns("boolean"):
            meta["boolean_columns"] = [str(c) for c in self.columns("boolean")]
        return meta


def export_sample(plan: ColumnPlan, frame):
    """``(rows, metadata)`` for :func:`autodl.export_onnx`: ``frame`` (prepared rows) cut to the
    columns the pipeline reads, which become the file's only inputs, and
    :meth:`ColumnPlan.onnx_metadata`."""
    return frame[[c for c in plan.used if c in frame.columns]], plan.onnx_metadata()


# ------------------------------------------------------------------------------ inference
def _is_datetime_text(s) -> bool:
    import pandas as pd

    values = s.dropna()
    sample = values.sample(min(len(values), DATE_SAMPLE), random_state=0) if len(values) > DATE_SAMPLE else values
    text = sample.astype(str)
    if not len(text) or text.str.match(_ISO_DATE).mean() < DATE_SHARE:
        return False
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    return bool(parsed.notna().mean() >= DATE_SHARE)


def _infer_one(s) -> tuple[str, str | None]:
    """``(role, reason)`` of one column (a Series) that is neither empty nor constant."""
    import pandas as pd

    dtype = s.dtype
    values = s.dropna()
    if pd.api.types.is_bool_dtype(dtype) or (dtype == object and values.map(type).isin([bool, np.bool_]).all()):
        return "boolean", None
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime", None
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        arr = values.to_numpy(dtype=np.float64)
        if len(arr) >= ID_MIN_ROWS and np.all(arr == np.round(arr)):
            n_unique = len(np.unique(arr))
            span = arr.max() - arr.min() + 1
            if n_unique == len(arr) and n_unique >= ID_DENSITY * span:
                return "ignore", f"id-like: distinct whole numbers {arr.min():.0f}..{arr.max():.0f}"
        return "numeric", None
    if _is_datetime_text(s):
        return "datetime", None
    strings = category_strings(values)
    n_levels = len(set(strings.tolist()))
    if n_levels <= MAX_CATEGORICAL_LEVELS:
        return "categorical", None
    words = np.mean([len(v.split()) for v in strings[:DATE_SAMPLE]])
    if words >= TEXT_WORDS:
        return "ignore", f"free text: {words:.0f} words per value on average"
    if len(values) >= ID_MIN_ROWS and n_levels >= ID_UNIQUE_SHARE * len(values):
        return "ignore", f"id-like: {n_levels} distinct values in {len(values)} rows"
    return "high_cardinality", None


def infer_roles(X, y=None, *, overrides: dict | None = None) -> ColumnPlan:
    """The :class:`ColumnPlan` of the table ``X`` (its training rows; ``y`` is not read, it is
    there so the signature can grow target-aware rules). ``overrides`` maps columns to roles
    and wins over inference; an unknown column or role is a one-line :class:`UserError`."""
    import pandas as pd

    overrides = dict(overrides or {})
    columns = list(X.columns)
    for col, role in overrides.items():
        if col not in columns:
            shown = ", ".join(map(str, columns[:12])) + (", ..." if len(columns) > 12 else "")
            raise UserError(f"column roles: there is no column {col!r}; the columns are: {shown}")
        if role not in ROLES:
            raise UserError(f"column roles: unknown role {role!r} for column {col!r}; choose one of: "
                            f"{', '.join(ROLES)}")
    roles: dict[Any, str] = {}
    reasons: dict[Any, str] = {}
    seen: dict[int, list] = {}  # content hash -> earlier columns (for duplicates)
    for col in columns:
        if col in overrides:
            roles[col] = overrides[col]
            reasons[col] = "as asked" if overrides[col] == "ignore" else "role as asked"
            continue
        s = X[col]
        n_levels = s.nunique(dropna=True)
        if n_levels == 0:
            roles[col], reasons[col] = "ignore", "all-missing"
            continue
        if n_levels == 1:
            roles[col], reasons[col] = "ignore", "constant"
            continue
        key = int(pd.util.hash_pandas_object(s.astype(str) if s.dtype == object else s, index=False).sum())
        twin = next((c for c in seen.get(key, []) if X[c].equals(s)), None)
        if twin is not None:
            roles[col], reasons[col] = "ignore", f"duplicate of {twin}"
            continue
        seen.setdefault(key, []).append(col)
        roles[col], why = _infer_one(s)
        if why:
            reasons[col] = why
    return ColumnPlan(roles, reasons, overrides)


# ------------------------------------------------------------------------ the pipeline's data
def prepare_frame(X, plan: ColumnPlan):
    """``X`` as the pipeline sees it: datetime columns as epoch seconds (float64, NaN for
    missing), booleans as 0.0/1.0, categorical and high-cardinality columns as strings (NaN for
    missing; whole floats written as integers), numeric ones as float64 numbers (text that does
    not parse becomes NaN). Nothing is dropped (ignored columns stay, unread); columns absent
    from ``X`` are left out. Applying it twice changes nothing."""
    import pandas as pd

    out = X.copy()
    for col, role in plan.roles.items():
        if col not in out.columns or role == "ignore":
            continue
        s = out[col]
        if role == "datetime":
            out[col] = epoch_seconds(s)
        elif role == "boolean":
            out[col] = boolean_values(s)
        elif role in ("categorical", "high_cardinality"):
            out[col] = pd.Series(category_strings(s, missing=np.nan), index=s.index, dtype=object)
        elif not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            out[col] = pd.to_numeric(s, errors="coerce").astype(np.float64)
    return out


def drop_missing_target(X, y, *, say: bool = True):
    """``(X, y, n)`` without the ``n`` rows whose target is missing (one line on stderr when
    ``say`` and ``n > 0``); all rows missing is a one-line error."""
    import pandas as pd

    from autodl.errors import DataError

    missing = pd.isna(pd.Series(np.asarray(y, dtype=object).ravel())).to_numpy()
    n = int(missing.sum())
    if n == 0:
        return X, y, 0
    if n == len(missing):
        raise DataError("the target is missing on every row")
    keep = np.flatnonzero(~missing)
    X = X.iloc[keep].reset_index(drop=True)
    y = y.iloc[keep].reset_index(drop=True) if hasattr(y, "iloc") else np.asarray(y)[keep]
    if say:
        sys.stderr.write(f"autodl: dropped {n} rows whose target is missing\n")
        sys.stderr.flush()
    return X, y, n


# ----------------------------------------------------------------------------- date parts
def _floor(x):
    return np.floor(x) if isinstance(x, np.ndarray) else x.floor()


def date_parts(t, t_min):
    """``[year, month, day, dayofweek, dayofyear, hour, elapsed_days]`` of epoch seconds ``t``
    (NumPy float64 arrays, or ONNX expressions of :mod:`autodl.export.sklearn_onnx`: the same
    operations in the same order). H. Hinnant's ``civil_from_days`` with floor divisions (all
    exact in float64 for these magnitudes); the choice ``m <= 2`` is ``floor(mp / 10)``, so no
    comparison is needed."""
    days = _floor(t / 86400.0)
    hour = _floor((t - days * 86400.0) / 3600.0)
    z = days + 719468.0
    era = _floor(z / 146097.0)
    doe = z - era * 146097.0  # day of the 400-year era, 0..146096
    yoe = _floor((doe - _floor(doe / 1460.0) + _floor(doe / 36524.0) - _floor(doe / 146096.0)) / 365.0)
    doy = doe - (yoe * 365.0 + _floor(yoe / 4.0) - _floor(yoe / 100.0))  # from March 1st, 0..365
    mp = _floor((doy * 5.0 + 2.0) / 153.0)  # month from March, 0..11
    day = doy - _floor((mp * 153.0 + 2.0) / 5.0) + 1.0
    jan_feb = _floor(mp / 10.0)  # 1 for January and February (they belong to the next civil year)
    month = mp + 3.0 - jan_feb * 12.0
    year = yoe + era * 400.0 + jan_feb
    # January 1st of `year` is day 306 of the March-based year that began the March before
    y0 = year - 1.0
    era0 = _floor(y0 / 400.0)
    yoe0 = y0 - era0 * 400.0
    jan1 = era0 * 146097.0 + yoe0 * 365.0 + _floor(yoe0 / 4.0) - _floor(yoe0 / 100.0) + 306.0 - 719468.0
    dayofyear = days - jan1 + 1.0
    dayofweek = (days + 3.0) - _floor((days + 3.0) / 7.0) * 7.0  # 1970-01-01 was a Thursday (3)
    elapsed = (t - t_min) / 86400.0
    return [year, month, day, dayofweek, dayofyear, hour, elapsed]


PART_NAMES = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "elapsed_days")


class DateParts(TransformerMixin, BaseEstimator):
    """Epoch-second columns -> calendar parts per column (see :func:`date_parts` and the module
    docstring); ``hour`` only for columns with a time of day in the training rows."""

    def fit(self, X, y=None):
        t = np.asarray(X, dtype=np.float64)
        self.n_features_in_ = t.shape[1]
        finite = np.where(np.isfinite(t), t, np.nan)
        self.t_min_ = np.array([np.nanmin(c) if np.isfinite(c).any() else 0.0 for c in finite.T])
        tod = np.nansum(np.abs(finite - np.floor(finite / 86400.0) * 86400.0), axis=0)
        self.with_hour_ = tod > 0
        self.columns_ = self._columns()
        return self

    def _columns(self) -> np.ndarray:
        """Positions, in the part-major concatenation of :func:`date_parts`, of the outputs:
        per input column its parts in :data:`PART_NAMES` order."""
        k, out = self.n_features_in_, []
        for j in range(k):
            out += [p * k + j for p, name in enumerate(PART_NAMES) if name != "hour" or self.with_hour_[j]]
        return np.asarray(out, dtype=np.int64)

    def transform(self, X):
        t = np.asarray(X, dtype=np.float64)
        return np.concatenate(date_parts(t, self.t_min_), axis=1)[:, self.columns_]

    def get_feature_names_out(self, input_features=None):
        names = list(input_features) if input_features is not None else [f"x{j}" for j in range(self.n_features_in_)]
        k = self.n_features_in_
        return np.asarray([f"{names[c % k]}_{PART_NAMES[c // k]}" for c in self.columns_], dtype=object)
