"""Running an exported ONNX file with onnxruntime alone (no torch, no scikit-learn).

This is what ``autodl predict`` uses, and what :func:`autodl.export_onnx` uses to verify a file
before it counts as written, so the checked path and the deployed path are the same code. It
imports only NumPy, pandas and onnxruntime.

Input schemes (stored in the file's ``autodl.input_scheme`` metadata):

* ``columns``: one ONNX input per table column, shape ``[batch, 1]``; numeric columns are
  ``double`` (float64), categorical columns ``string``. A missing string value is fed as the
  empty string ``""`` (ONNX string tensors have no NaN); the exported imputer treats ``""`` as
  missing. A missing number is fed as NaN.
  Two kinds of numeric input take other values from the table (``autodl.datetime_columns``,
  ``autodl.boolean_columns``, written for tabular search's column plan, see
  :mod:`autodl.tabular.columns`): a date column is fed as float64 epoch seconds, converted from
  ``datetime64`` values or ISO 8601 text (:func:`epoch_seconds`; numbers pass through), a
  boolean column as 1.0/0.0 (:func:`boolean_values`).
* ``tensor``: one input ``[batch, ...]``; a table is read column by column in the order of
  ``autodl.feature_names`` and reshaped to the input's per-row shape.

Input types (``type`` of each ``autodl.inputs`` entry): ``double`` (float64: scikit-learn),
``float`` (float32: torch), ``int64`` and ``uint8`` (torch modules taking integers, e.g. raw
images), ``string`` (categorical columns). Values that do not fit an integer type (missing,
fractional or out of range) raise a :class:`~autodl.errors.DataError`; they are not wrapped.

Outputs (``autodl.outputs``, name and role): ``label`` + ``probabilities`` for classifiers
(scikit-learn, and torch files written since labels are computed in the graph, which also keep
their ``logits``), ``logits`` alone for older torch classifier files, ``prediction`` otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from autodl._deps import require
from autodl.errors import DataError, ExportError, first_line

#: what a missing categorical value becomes in a string input
MISSING_STRING = ""
PREFIX = "autodl."


def read_metadata(model_or_session) -> dict[str, Any]:
    """The ``autodl.*`` metadata of an ONNX file path, model proto or onnxruntime session,
    JSON-decoded."""
    if isinstance(model_or_session, (str, Path)):
        model_or_session = make_session(model_or_session)
    if hasattr(model_or_session, "get_modelmeta"):
        props = dict(model_or_session.get_modelmeta().custom_metadata_map)
    else:
        props = {p.key: p.value for p in model_or_session.metadata_props}
    meta: dict[str, Any] = {}
    for key, value in props.items():
        if key.startswith(PREFIX):
            try:
                meta[key[len(PREFIX):]] = json.loads(value)
            except json.JSONDecodeError:
                meta[key[len(PREFIX):]] = value
    return meta


def make_session(path_or_bytes: str | Path | bytes, threads: int | None = None):
    """An onnxruntime CPU session (``threads`` intra-op threads; None: onnxruntime's default)."""
    require("onnxruntime", "onnx", "running ONNX files")
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    src = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    return ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])


def check_columns(frame, meta: dict[str, Any]) -> None:
    """Raise a one-line :class:`DataError` when ``frame`` lacks a column the model needs."""
    names = [str(n) for n in (meta.get("feature_names") or [])]
    have = {str(c) for c in frame.columns}
    missing = [n for n in names if n not in have]
    if missing:
        shown = ", ".join(missing[:10]) + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else "")
        raise DataError(f"the data lacks {len(missing)} column(s) the model needs: {shown}")


def table_to_feeds(frame, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """onnxruntime feeds for the rows of a DataFrame, following the file's input scheme."""
    check_columns(frame, meta)
    inputs = meta["inputs"]
    if meta.get("input_scheme") == "columns":
        feeds = {}
        dates, booleans = set(meta.get("datetime_columns") or ()), set(meta.get("boolean_columns") or ())
        for spec in inputs:
            col = frame[spec["column"]]
            if spec["type"] == "string":
                values = category_strings(col)
            elif spec["column"] in dates:
                values = epoch_seconds(col)
            elif spec["column"] in booleans:
                values = boolean_values(col)
            else:
                try:
                    values = np.asarray(col, dtype=np.float64)
                except (TypeError, ValueError):
                    raise DataError(f"column '{spec['column']}' must be numeric for this model") from None
            feeds[spec["name"]] = values.reshape(-1, 1)
        return feeds
    (spec,) = inputs
    names = [str(n) for n in meta["feature_names"]]
    sub = frame[[c for c in frame.columns if str(c) in set(names)]]
    sub = sub[[c for n in names for c in sub.columns if str(c) == n]]
    try:
        arr = np.asarray(sub, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("every feature column must be numeric for this model") from None
    return {spec["name"]: _cast(arr, spec["type"]).reshape((len(frame), *spec["shape"][1:]))}


def array_to_feeds(x, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """Feeds for a tensor-scheme model from an array (or a torch tensor) of rows."""
    (spec,) = meta["inputs"]
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return {spec["name"]: _cast(arr, spec["type"])}


_DTYPES = {"double": np.float64, "float": np.float32, "int64": np.int64, "uint8": np.uint8}


def _cast(arr: np.ndarray, kind: str) -> np.ndarray:
    """``arr`` in the dtype of an input of type ``kind``; integers must be whole and in range."""
    dtype = np.dtype(_DTYPES.get(kind, np.float32))
    if dtype.kind in "iu" and arr.dtype != dtype:
        info = np.iinfo(dtype)
        if arr.dtype.kind not in "iub":
            with np.errstate(invalid="ignore"):
                whole = bool(np.all(np.isfinite(arr) & (arr == np.round(arr))))
            if not whole:
                raise DataError(f"this model takes {kind} values; the data has missing or fractional ones")
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise DataError(f"this model takes {kind} values ({info.min}..{info.max}); the data has "
                            f"{arr.min()}..{arr.max()}")
    return arr.astype(dtype, copy=False)


def _is_missing(v) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # a list-like value
        return False


def category_strings(values, missing: Any = MISSING_STRING) -> np.ndarray:
    """Category values as strings (an object array): ``missing`` for a missing value, whole
    floats as integers (``3.0`` -> ``"3"``, so a column read with and without missing values
    gives the same levels), anything else ``str(v)``."""
    return np.array([missing if _is_missing(v) else
                     str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer() else str(v)
                     for v in (values.tolist() if hasattr(values, "tolist") else list(values))], dtype=object)


def epoch_seconds(values) -> np.ndarray:
    """Dates as float64 seconds since 1970-01-01 (NaN for missing or unparsable values).

    Numbers pass through (taken to be epoch seconds already); ``datetime64`` values and text
    (ISO 8601, ``pd.to_datetime(format="ISO8601")``) are converted; values with a UTC offset or
    time zone are converted to UTC, naive ones taken as they are."""
    import pandas as pd

    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
    if s.dt.tz is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return ((s - pd.Timestamp(0)) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)


_TRUE, _FALSE = {"true", "t", "yes", "y", "1"}, {"false", "f", "no", "n", "0"}


def boolean_values(values) -> np.ndarray:
    """Booleans as float64 1.0/0.0 (also ``"true"``/``"no"``/1/0 ..., case-insensitive); NaN for
    missing or anything else."""
    def one(v):
        if _is_missing(v):
            return np.nan
        key = str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer() else str(v).strip().lower()
        return 1.0 if key in _TRUE else 0.0 if key in _FALSE else np.nan

    items = values.tolist() if hasattr(values, "tolist") else list(values)
    return np.array([one(v) for v in items], dtype=np.float64)


def run(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs by name."""
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def predictions_frame(outputs: dict[str, np.ndarray], meta: dict[str, Any]):
    """A DataFrame with ``prediction`` and, for classifiers, one ``proba_<label>`` per class.

    The prediction of a classifier is its ``label`` output. Torch classifiers report the
    softmax of their ``logits`` computed in float64 (the same numbers as before the graph had
    ``probabilities``); a torch file without a ``label`` output (written by an older autodl)
    predicts the label at the argmax of its logits.
    """
    import pandas as pd

    roles = {o["role"]: o["name"] for o in meta["outputs"]}
    labels = meta.get("class_labels")
    data: dict[str, Any] = {}
    if "label" not in roles and "logits" not in roles:  # a regressor
        value = np.asarray(outputs[roles.get("prediction", meta["outputs"][0]["name"])])
        if value.ndim == 1 or (value.ndim == 2 and value.shape[1] == 1):
            data["prediction"] = value.ravel()
        else:
            flat = value.reshape(len(value), -1)
            for j in range(flat.shape[1]):
                data[f"prediction_{j}"] = flat[:, j]
        return pd.DataFrame(data)
    if "logits" in roles:
        logits = np.asarray(outputs[roles["logits"]], dtype=np.float64)
        proba = softmax(logits)
    else:
        proba = np.asarray(outputs[roles["probabilities"]])
    if "label" in roles:
        data["prediction"] = np.asarray(outputs[roles["label"]]).ravel()
    else:
        idx = logits.argmax(axis=1)
        data["prediction"] = np.asarray(labels, dtype=object)[idx] if labels else idx
    for j, label in enumerate(labels or range(proba.shape[1])):
        data[f"proba_{label}"] = proba[:, j]
    return pd.DataFrame(data)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_table(model_path: str | Path, frame, threads: int | None = None):
    """Predictions of an exported model for a DataFrame (see :func:`predictions_frame`)."""
    path = Path(model_path)
    if not path.is_file():
        raise DataError(f"model file {path} does not exist")
    require("onnxruntime", "onnx", "running ONNX files")  # before the try, which rewords errors
    try:
        session = make_session(path, threads)
    except Exception as exc:  # onnxruntime raises its own exception classes for unreadable files
        raise ExportError(f"{path}: onnxruntime cannot load it ({first_line(exc)})") from None
    meta = read_metadata(session)
    if "inputs" not in meta:
        raise ExportError(f"{path} was not written by autodl (no autodl.inputs metadata)")
    return predictions_frame(run(session, table_to_feeds(frame, meta)), meta)


