"""``export_onnx``: convert, check, verify against onnxruntime, then write atomically.

A file counts as written only after all of these pass, in this order:

1. conversion (:mod:`autodl.export.sklearn_onnx` or :mod:`autodl.export.torch_onnx`);
2. ``onnx.checker.check_model(full_check=True)`` (structure and shape inference);
3. onnxruntime on the held-out rows, through the same feeding code as ``autodl predict``
   (:mod:`autodl.export.runtime`), at batch sizes 1 (first 4 rows, one at a time), 7, and 64
   (up to 512 rows in batches of 64); rows are repeated when there are fewer;
4. comparison with the original model on the same rows:

   * class labels must be equal, except on rows whose two largest original probabilities are
     within ``2 * PROBA_ATOL`` of each other (a tie float32 may break either way);
   * probabilities: ``|onnx - original| <= PROBA_ATOL = 1e-5`` (absolute);
   * scikit-learn regression predictions: ``|onnx - original| <= VALUE_ATOL + VALUE_RTOL *
     |original|`` with ``VALUE_ATOL = 1e-5``, ``VALUE_RTOL = 1e-4``. The relative term is there
     because ONNX computes in float32 (scikit-learn in float64): a regression target in the
     hundreds carries float32 rounding of ~1e-5 by itself;
   * torch outputs (logits, predictions): ``|onnx - torch| <= VALUE_ATOL + TORCH_RTOL * scale``
     with ``TORCH_RTOL = 1e-5`` and ``scale`` the largest ``|torch output|`` of the row (the
     sample);
   * torch classifiers, in addition: the probabilities ``autodl predict`` computes from the
     logits (softmax) within ``PROBA_ATOL`` of softmax(torch logits), and the same argmax
     except on probability ties (as above); and the graph's own ``probabilities`` and ``label``
     outputs against softmax(torch logits) and ``class_labels[argmax]``, with the same rules;
   * a :class:`~autodl.export.network.TableNetwork` (preprocessor + network in one graph, fed
     the sample's raw columns): its logits as torch outputs above, its ``probabilities`` and
     ``label`` against the wrapper's own ``predict_proba`` / ``predict``.

   Why torch outputs are not held to 1e-5 absolute: torch and onnxruntime both compute in
   float32, and each rounds. For the benchmark's digits CNN (logits up to 31) torch's own output
   is 1.0e-5 away from the same network evaluated in float64, onnxruntime's 1.3e-5, and the two
   differ by up to 1.9e-5; no float32 implementation can promise to land within 1e-5 of torch's
   rounding. The error grows layer by layer with the size of the activations (2e-7 after the
   first conv, |v| ~ 1.6; 1e-5 at the logits, |v| ~ 31) and is the same with onnxruntime's graph
   optimisations off and without BatchNorm folding (both measured), so it is float32 accumulation
   order, not a fused kernel. Relative to the row's largest logit it stayed below 1.5e-6
   (~12 float32 epsilons) for every MLP, CNN, RNN and DARTS network measured, so ``TORCH_RTOL``
   leaves a 7x margin while a wrong operator (errors of 1e-3 and more) still fails.

Then the bytes are written to a temporary file next to ``path`` and moved into place with
``os.replace``. Any failure raises :class:`~autodl.errors.ExportError` (a
:class:`~autodl.errors.UserError`, so the CLI prints one line) naming the step or the output and
the size of the difference, and leaves no file (an existing file at ``path`` is not touched).

Metadata (``metadata_props``; values are JSON strings, keys prefixed ``autodl.``): ``version``,
``kind`` (sklearn/torch; torch for a TableNetwork too), ``task``, ``input_scheme``
(columns/tensor), ``inputs`` (ONNX name, column, type and shape of each input),
``feature_names``, ``class_labels``, ``outputs`` (name and role: ``label`` + ``probabilities``
for scikit-learn classifiers, ``logits`` + ``label`` + ``probabilities`` for torch ones,
``prediction`` for regressors), the
``tolerances`` used, and every key of the caller's ``metadata`` (autodl passes ``config``,
``score``, ``metric``, ``test_score``; a tabular search's winner also ``datetime_columns``, inputs
of float64 epoch seconds that :func:`autodl.export.runtime.table_to_feeds` converts from dates,
and ``boolean_columns``, 0/1 inputs converted from booleans; see :mod:`autodl.tabular.columns`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from autodl._deps import require
from autodl.errors import ExportError, first_line
from autodl.export import runtime

PROBA_ATOL = 1e-5
VALUE_ATOL = 1e-5
VALUE_RTOL = 1e-4
TORCH_RTOL = 1e-5
BATCH_SIZES = (1, 7, 64)
MAX_CHECK_ROWS = 512


def export_onnx(
    model,
    path: str | Path,
    *,
    sample,
    feature_names: list[str] | None = None,
    class_labels: list | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Export a fitted scikit-learn pipeline or a torch module to ONNX, verified.

    Args:
        model: a fitted scikit-learn estimator/pipeline, a ``torch.nn.Module`` (e.g. from
            :func:`~autodl.export.network.image_input`), or a
            :class:`~autodl.export.network.TableNetwork` (:func:`~autodl.export.network.table_network`).
        path: where to write the ``.onnx`` file.
        sample: held-out input rows (not used for fitting): a DataFrame or 2-D array for
            scikit-learn (a DataFrame gives one ONNX input per column), an array or tensor
            with the batch axis first for torch (its dtype is the input's: uint8, int64 or
            float32), a DataFrame of raw rows for a TableNetwork. They trace the model and
            verify the file.
        feature_names: input column names (default: the DataFrame's columns or
            ``feature_names_in_``; for torch ``x0, x1, ...`` over the flattened row).
        class_labels: class labels (default: ``model.classes_`` for classifiers, the
            TableNetwork's). For a torch module, giving them marks its output as
            ``[batch, n_classes]`` logits and adds ``label`` and ``probabilities`` outputs.
        metadata: extra JSON-serializable entries stored as ``autodl.<key>``.

    Returns:
        The path written.

    Raises:
        ExportError: the model (or one of its steps) cannot be exported, or the ONNX file does
            not reproduce the model within tolerance; no file is written.
    """
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ExportError(f"{path}: the file name must end in .onnx")
    if not path.parent.is_dir():
        raise ExportError(f"{path.parent} does not exist; create the folder first")
    data = onnx_bytes(model, sample=sample, feature_names=feature_names, class_labels=class_labels,
                      metadata=metadata)
    _write_atomic(path, data)
    return path


def onnx_bytes(model, *, sample, feature_names: list[str] | None = None, class_labels: list | None = None,
               metadata: dict[str, Any] | None = None, check: bool = True) -> bytes:
    """The verified ONNX file of ``model`` as bytes, written nowhere (what :func:`export_onnx`
    writes; the arguments are its own). ``check=False`` skips the comparison with ``model``
    (for a file that is only timed, e.g. :mod:`autodl.export.latency`); the ONNX checker runs
    either way."""
    from autodl.export import network, sklearn_onnx, torch_onnx

    # a torch module needs no skl2onnx (and without torch imported, the model is not one)
    torch_model = "torch" in sys.modules and torch_onnx.is_torch_module(model)
    require(("onnx", "onnxruntime") if torch_model else ("onnx", "onnxruntime", "skl2onnx"), "onnx", "ONNX export")
    import onnx

    if torch_model:
        kind, task = "torch", "classification" if class_labels is not None else "regression"
        onx, scheme, inputs, names, outputs = torch_onnx.convert(
            model, sample, class_labels=class_labels, feature_names=feature_names)
    elif isinstance(model, network.TableNetwork):
        if class_labels is not None and list(class_labels) != list(model.class_labels or []):
            raise ExportError("class_labels differ from the TableNetwork's; give them to table_network only")
        if feature_names is not None and [str(n) for n in feature_names] != model.columns:
            raise ExportError("a TableNetwork takes the columns of its feature_frame; feature_names cannot rename them")
        class_labels = model.class_labels
        kind, task = "torch", "classification" if class_labels is not None else "regression"
        onx, scheme, inputs, names, outputs = network.convert(model, sample)
    elif type(model).__name__ == "EnsembleModel":  # autodl.tabular.ensemble (not imported here)
        from autodl.export import ensemble

        kind, task = "sklearn", model.task
        if task == "classification" and class_labels is None:
            class_labels = list(model.classes_)
        onx, scheme, inputs, names, outputs = ensemble.convert(model, sample)
        if feature_names is not None:
            raise ExportError("an ensemble takes its members' columns; feature_names cannot rename them")
    elif sklearn_onnx.is_sklearn_model(model):
        from sklearn.base import is_classifier

        kind = "sklearn"
        clf = bool(is_classifier(model))
        task = "classification" if clf else "regression"
        if clf and class_labels is None:
            class_labels = list(getattr(model, "classes_", []))
        onx, scheme, inputs, names, outputs = sklearn_onnx.convert(model, sample, is_classifier=clf)
        if feature_names is not None:
            if len(feature_names) != len(names):
                raise ExportError(f"{len(feature_names)} feature names for {len(names)} inputs")
            names = [str(n) for n in feature_names]
            if scheme == "columns":
                for spec, name in zip(inputs, names):
                    spec["column"] = name
    else:
        raise ExportError(f"cannot export a {type(model).__name__}: give a fitted scikit-learn "
                          "estimator/pipeline or a torch.nn.Module")
    meta = {
        "version": _version(), "kind": kind, "task": task, "input_scheme": scheme, "inputs": inputs,
        "feature_names": names, "outputs": outputs,
        "class_labels": [_jsonable(c) for c in class_labels] if class_labels is not None else None,
        "tolerances": _tolerances(kind),
    }
    for key, value in (metadata or {}).items():
        if key in meta:
            raise ExportError(f"metadata key '{key}' is reserved by autodl")
        meta[key] = value
    onx.producer_name, onx.producer_version = "autodl", _version()
    del onx.metadata_props[:]
    for key, value in meta.items():
        entry = onx.metadata_props.add()
        entry.key, entry.value = runtime.PREFIX + key, json.dumps(value, default=_jsonable)
    try:
        onnx.checker.check_model(onx, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"the ONNX model is invalid: {first_line(exc)}") from None
    data = onx.SerializeToString()
    if check:
        verify(model, data, meta, sample)
    return data


def verify(model, data: bytes, meta: dict[str, Any], sample) -> None:
    """Run the serialized model with onnxruntime and compare with ``model`` (see module doc)."""
    from autodl.export import network, sklearn_onnx, torch_onnx

    try:
        session = runtime.make_session(data, threads=1)
    except Exception as exc:  # onnxruntime raises its own (non-Python-hierarchy) error types
        raise ExportError(f"onnxruntime cannot load the exported model: {first_line(exc)}") from None
    n = len(sample)
    if n == 0:
        raise ExportError("sample has no rows; give held-out rows to verify the export")
    checks = max(64, min(n, MAX_CHECK_ROWS))
    order = np.resize(np.arange(n), checks)
    batches = [order[i:i + 1] for i in range(min(4, n))] + [order[:7]]
    batches += [order[i:i + 64] for i in range(0, checks - 63, 64)]
    roles = {o["role"]: o["name"] for o in meta["outputs"]}
    table_net = isinstance(model, network.TableNetwork)
    for idx in batches:
        rows = _take(sample, idx)
        if meta["kind"] == "torch":
            if table_net:
                feeds, expected = runtime.table_to_feeds(rows, meta), model.logits(rows)
            else:
                feeds = runtime.array_to_feeds(rows, meta)
                expected = torch_onnx.reference_outputs(model, rows)["output"]
            try:
                got = runtime.run(session, feeds)
            except Exception as exc:  # onnxruntime's own error types
                raise ExportError(f"onnxruntime fails at batch size {len(idx)}: {first_line(exc)}") from None
            _compare_torch(expected, got[meta["outputs"][0]["name"]], meta["outputs"][0], len(idx))
            if "label" in roles:  # the graph's own label and probabilities
                if table_net:
                    ref = {"label": model.predict(rows), "probabilities": model.predict_proba(rows)}
                else:
                    proba = runtime.softmax(expected)
                    ref = {"label": np.asarray(meta["class_labels"], dtype=object)[proba.argmax(axis=1)],
                           "probabilities": proba}
                _compare(ref, got, roles, len(idx))
            continue
        feeds = (runtime.table_to_feeds(rows, meta) if meta["input_scheme"] == "columns"
                 else runtime.array_to_feeds(rows, meta))
        ref = sklearn_onnx.reference_outputs(model, rows, meta["task"] == "classification")
        try:
            got = runtime.run(session, feeds)
        except Exception as exc:  # onnxruntime's own error types
            raise ExportError(f"onnxruntime fails at batch size {len(idx)}: {first_line(exc)}") from None
        _compare(ref, got, roles, len(idx))


def _compare(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], roles: dict[str, str], batch: int) -> None:
    for role, expected in ref.items():
        name = roles[role]
        actual = np.asarray(got[name])
        if role == "label":
            continue
        expected = np.asarray(expected, dtype=np.float64)
        actual = actual.astype(np.float64).reshape(expected.shape) if actual.size == expected.size else actual
        if actual.shape != expected.shape:
            raise ExportError(f"ONNX output '{name}' has shape {actual.shape}, the model's {expected.shape} "
                              f"(batch size {batch})")
        diff = np.abs(actual - expected)
        if role == "probabilities":
            allowed = np.full_like(diff, PROBA_ATOL)
            tol = f"atol {PROBA_ATOL:g}"
        else:
            allowed = VALUE_ATOL + VALUE_RTOL * np.abs(expected)
            tol = f"atol {VALUE_ATOL:g} + rtol {VALUE_RTOL:g}"
        bad = ~(diff <= allowed)  # NaN counts as a difference
        if bad.any():
            worst = np.unravel_index(np.nanargmax(np.where(bad, diff, -1.0)), diff.shape)
            raise ExportError(f"ONNX output '{name}' differs from the model by {float(diff[worst]):.3g} "
                              f"(allowed {tol}) at batch size {batch}, row {worst[0]}; the file was not written")
    if "label" in ref:
        expected = np.asarray(ref["label"])
        actual = np.asarray(got[roles["label"]]).ravel()
        differ = np.array([str(a) != str(e) for a, e in zip(actual, expected)])
        if differ.any():
            proba = np.sort(np.asarray(ref["probabilities"], dtype=np.float64), axis=1)
            tied = proba[:, -1] - proba[:, -2] <= 2 * PROBA_ATOL if proba.shape[1] > 1 else np.zeros(len(proba), bool)
            real = differ & ~tied
            if real.any():
                i = int(np.flatnonzero(real)[0])
                raise ExportError(f"ONNX output '{roles['label']}' gives label {actual[i]!r} where the model "
                                  f"predicts {expected[i]!r} ({int(real.sum())} of {batch} rows at batch size "
                                  f"{batch}, probabilities not tied); the file was not written")


def _tolerances(kind: str) -> dict[str, float]:
    if kind == "torch":
        return {"proba_atol": PROBA_ATOL, "value_atol": VALUE_ATOL, "torch_rtol_of_row_max": TORCH_RTOL}
    return {"proba_atol": PROBA_ATOL, "value_atol": VALUE_ATOL, "value_rtol": VALUE_RTOL}


def _compare_torch(expected: np.ndarray, actual, output: dict[str, str], batch: int) -> None:
    """Torch output vs onnxruntime (see the module doc for the tolerances and why)."""
    name = output["name"]
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        raise ExportError(f"ONNX output '{name}' has shape {actual.shape}, the model's {expected.shape} "
                          f"(batch size {batch})")
    actual = actual.astype(np.float64)
    diff = np.abs(actual - expected)
    flat = np.abs(expected).reshape(len(expected), -1)
    scale = (flat.max(axis=1) if flat.shape[1] else np.zeros(len(expected))).reshape(
        (len(expected),) + (1,) * (expected.ndim - 1))
    allowed = VALUE_ATOL + TORCH_RTOL * scale
    bad = ~(diff <= allowed)  # NaN counts as a difference
    if bad.any():
        worst = np.unravel_index(np.nanargmax(np.where(bad, diff, -1.0)), diff.shape)
        raise ExportError(f"ONNX output '{name}' differs from the model by {float(diff[worst]):.3g} (allowed "
                          f"{float(np.broadcast_to(allowed, diff.shape)[worst]):.3g} = atol {VALUE_ATOL:g} + "
                          f"{TORCH_RTOL:g} x the row's largest |output|) at batch size {batch}, row {worst[0]}; "
                          "the file was not written")
    if output["role"] != "logits":
        return
    p_exp, p_act = runtime.softmax(expected), runtime.softmax(actual)
    pdiff = np.abs(p_act - p_exp)
    if not (pdiff <= PROBA_ATOL).all():
        row = int(np.nanargmax(np.nan_to_num(pdiff, nan=np.inf).max(axis=1)))
        raise ExportError(f"probabilities from ONNX output '{name}' differ from the model's by "
                          f"{float(np.nanmax(pdiff)):.3g} (allowed {PROBA_ATOL:g}) at batch size {batch}, row {row}; "
                          "the file was not written")
    top = np.sort(p_exp, axis=1)
    tied = top[:, -1] - top[:, -2] <= 2 * PROBA_ATOL if top.shape[1] > 1 else np.zeros(len(top), bool)
    real = (p_act.argmax(1) != p_exp.argmax(1)) & ~tied
    if real.any():
        raise ExportError(f"ONNX output '{name}' predicts another class than the model in {int(real.sum())} of "
                          f"{batch} rows at batch size {batch} (probabilities not tied); the file was not written")


def _take(sample, idx):
    if hasattr(sample, "iloc"):
        return sample.iloc[idx]
    if hasattr(sample, "detach"):
        import torch

        return sample[torch.as_tensor(idx)]
    return np.asarray(sample)[idx]


def _write_atomic(path: Path, data: bytes) -> None:
    from autodl.runs import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(path, write)


def _jsonable(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (str, int, float, bool)) or o is None:
        return o
    return str(o)


def _version() -> str:
    from autodl._version import __version__

    return __version__


