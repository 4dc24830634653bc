"""The model of a PyTorch run folder and the held-out rows to verify its export on.

``autodl export RUN`` tells the kind of run from the folder's files (:func:`run_kind`):

* ``tabular`` -- ``model.skops`` (a scikit-learn pipeline; handled by :mod:`autodl.cli.export_cmds`);
* ``nn``      -- ``run.json`` with ``kind: "nn"`` and ``model.pt`` (``autodl search --model mlp|cnn``);
* ``darts``   -- ``genotype.json``, ``result.json`` and ``model.pt`` (:func:`autodl.nas.run_darts`,
  ``autodl search --nas darts``);
* ``nas``     -- ``run.json`` with ``kind: "nas"`` and ``architecture.json`` (``autodl search --nas
  evolution|random`` over the MLP space; loaded with ``autodl.nas.search.load_nas_model``).

**Raw inputs.** The networks were trained on scaled rows (:func:`autodl.nn.data.load_dataset`:
digits pixels divided by 16, tabular sets standardized with the training split's mean and
standard deviation). The exported graph starts with that scaling (:class:`ScaledInput`), so the
file takes the data set's columns as the user has them (``load_digits(as_frame=True)``: columns
``pixel_0_0`` .. ``pixel_7_7``, values 0..16) and ``autodl predict model.onnx --data new.csv``
needs no preprocessing. Dividing by 16 is exact in float32, so the scaled rows are bit for bit
those the network was trained and scored on.

**Held-out rows.** The rows are rebuilt from the run's settings: the test split of the data set
(same seed and fractions as the run). Before they are used they are checked: the network's
accuracy on them must equal the test accuracy in ``result.json`` (so they are the rows the run
held out, scaled as in training), otherwise the export stops with a message. A DARTS folder
written by ``run_darts`` from Python does not name its data; it is taken to be digits when its
image shape (1x8x8), ten classes and 1797 rows say so, and the accuracy check confirms it.
Anything else must be exported in Python with its own held-out rows:
``autodl.export_onnx(autodl.nas.load_model(RUN), "model.onnx", sample=rows)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autodl.errors import ExportError, UserError

KINDS = ("tabular", "nn", "darts", "nas")
#: rows of sklearn's digits: how a DARTS folder without a data set name is recognised
_DIGITS_ROWS = 1797


@dataclass
class RunModel:
    """What :func:`autodl.export_onnx` needs for a run folder's model."""

    model: Any  # a torch module taking raw rows
    sample: np.ndarray  # held-out raw rows, float32
    class_labels: list
    feature_names: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    rows_note: str = ""


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON; the run folder is damaged") from None


def run_kind(run_dir: str | Path) -> str:
    """``"tabular"``, ``"nn"`` or ``"darts"`` from the files in ``run_dir`` (see the module doc)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder; give a run folder made by autodl search or run_darts")
    run = _read_json(run_dir / "run.json") or {}
    if (run_dir / "genotype.json").is_file() and (run_dir / "model.pt").is_file():
        return "darts"
    if run.get("kind") == "nn":
        if not (run_dir / "model.pt").is_file():
            raise UserError(f"{run_dir} has no model.pt yet; finish the run with `autodl resume {run_dir}`")
        return "nn"
    if run.get("kind") == "nas" and (run_dir / "architecture.json").is_file() and (run_dir / "model.pt").is_file():
        return "nas"
    if run.get("kind") not in (None, "tabular"):
        raise UserError(f"{run_dir} is a '{run['kind']}' run, which autodl export cannot read yet; export its "
                        "model in Python with autodl.export_onnx(model, path, sample=held_out_rows)")
    if (run_dir / "model.skops").is_file() or (run_dir / "run.json").is_file():
        return "tabular"
    raise UserError(f"{run_dir} is not an autodl run folder (no model.skops, model.pt or genotype.json)")


def _scaled_input_class():  # built lazily: importing this module loads no torch
    import torch
    from torch import nn

    class ScaledInput(nn.Module):
        """``model((x - mean) / std)``: the training data's scaling inside the exported graph."""

        def __init__(self, model: nn.Module, mean: np.ndarray, std: np.ndarray):
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)))
            self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)))

        def forward(self, x):
            return self.model((x - self.mean) / self.std)

    return ScaledInput


def scaled_input(model, mean, std):
    """Wrap ``model`` so that it takes raw rows (see :class:`ScaledInput` in the module doc)."""
    return _scaled_input_class()(model, mean, std)


def _raw_dataset(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    return (np.asarray(bunch.data, dtype=np.float32), np.asarray(bunch.target, dtype=np.int64),
            [str(n) for n in bunch.feature_names])


def _raw_splits(name: str, seed: int, val_size: float, test_size: float):
    """Raw rows of the train / validation / test split of :func:`autodl.nn.data.load_dataset`, and
    the (mean, std) it scaled them with -- checked to reproduce its scaled arrays exactly."""
    from sklearn.model_selection import train_test_split

    from autodl.nn.data import NN_DATASETS, load_dataset

    data = load_dataset(name, seed=seed, val_size=val_size, test_size=test_size)
    X, y, names = _raw_dataset(name)
    idx = np.arange(len(y))
    test = idx[:0]
    if test_size > 0:  # the same stratified splits, made on row numbers
        idx, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    train, val = train_test_split(idx, test_size=val_size, random_state=seed, stratify=y[idx])
    if NN_DATASETS[name] is not None:
        mean, std = np.zeros(X.shape[1], np.float32), np.full(X.shape[1], 16.0, np.float32)
    else:
        mean, std = X[train].mean(axis=0), X[train].std(axis=0) + np.float32(1e-8)
    same = np.array_equal(((X[train] - mean) / std).astype(np.float32), data.X_train) and (
        data.X_test is None or np.array_equal(((X[test] - mean) / std).astype(np.float32), data.X_test))
    if not same:
        raise ExportError(f"cannot rebuild the raw rows of the {name} splits (autodl.nn.data changed?); "
                          "export the model in Python with autodl.export_onnx(model, path, sample=rows)")
    return X, y, names, train, val, test, mean, std


def _accuracy(model, rows: np.ndarray, labels: np.ndarray) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(rows)).argmax(1).numpy()
    return float((pred == labels).mean())


def _check_rows(model, rows, labels, recorded, what: str, how: str, run_dir: Path) -> str:
    """The rows are the run's held-out rows if they give its recorded test accuracy."""
    if recorded is None:
        return f"{len(rows)} {what} ({how}; the run recorded no test accuracy to confirm them)"
    acc = _accuracy(model, rows, labels)
    if abs(acc - float(recorded)) > 0.5 / len(rows):
        raise ExportError(f"the model scores {acc:.4f} on the rows rebuilt as {what}, but {run_dir}/result.json "
                          f"records {float(recorded):.4f}: they are not the run's held-out rows; export it in "
                          "Python with autodl.export_onnx(model, path, sample=held_out_rows)")
    return f"{len(rows)} {what} ({how}; test accuracy {acc:.4f}, as recorded)"


def load_nn_run(run_dir: str | Path) -> RunModel:
    """The best network of an ``autodl search --model mlp|cnn`` folder, taking raw rows."""
    from autodl.nn.checkpoint import load_weights
    from autodl.nn.search import load_nn_spec
    from autodl.nn.trainer import build_model

    run_dir = Path(run_dir)
    spec = load_nn_spec(run_dir)
    info = _read_json(run_dir / "model.json")
    result = _read_json(run_dir / "result.json")
    if spec is None or info is None or result is None:
        raise UserError(f"{run_dir} lacks run.json, model.json or result.json; finish it with "
                        f"`autodl resume {run_dir}`")
    image_shape = tuple(info["image_shape"]) if info.get("image_shape") else None
    net = build_model(info["config"], info["model"], int(info["n_features"]), int(info["n_classes"]),
                      image_shape, seed=spec.seed)
    try:
        net.load_state_dict(load_weights(run_dir / "model.pt"))
    except (RuntimeError, KeyError) as exc:
        raise ExportError(f"{run_dir}/model.pt does not fit the model in model.json: {str(exc).splitlines()[0]}") from None
    X, y, names, _, val, test, mean, std = _raw_splits(spec.dataset, spec.seed, spec.val_size, spec.test_size)
    model = scaled_input(net, mean, std).eval()
    held, what = (test, "test rows") if len(test) else (val, "validation rows")
    classes = np.unique(y)
    rows = X[held]
    note = _check_rows(model, rows, np.searchsorted(classes, y[held]), result.get("test_accuracy") if len(test) else None,
                       f"{spec.dataset} {what}", "the run's split, from run.json", run_dir)
    meta = {"config": result.get("best_config"), "score": result.get("best_val_accuracy"),
            "metric": "accuracy (validation split)", "test_score": result.get("test_accuracy"),
            "trial_id": result.get("best_trial_id"), "run_kind": "nn", "architecture": info["model"],
            "dataset": spec.dataset, "input": _input_note(spec.dataset, mean, std)}
    return RunModel(model, rows, [c.item() for c in classes], names, meta, note)


def _input_note(dataset: str, mean, std) -> str:
    if np.all(mean == 0) and np.all(std == std[0]):
        return f"raw {dataset} feature values; the graph divides them by {float(std[0]):g} first"
    return f"raw {dataset} feature values; the graph standardizes them with the training split's mean and std"


def _darts_dataset(run_dir: Path, result: dict[str, Any]) -> tuple[str | None, str]:
    settings = result.get("settings", {})
    run = _read_json(run_dir / "run.json") or {}
    for source, holder in (("run.json", run), ("result.json", result), ("result.json settings", settings)):
        if holder.get("dataset"):
            return str(holder["dataset"]), f"data set named in {source}"
    n_rows = sum(int(settings.get(k, 0)) for k in ("n_train", "n_val", "n_test"))
    if (list(settings.get("image_shape", [])) == [1, 8, 8] and len(result.get("classes", [])) == 10
            and n_rows == _DIGITS_ROWS):
        return "digits", "digits recognised from 1x8x8 images, 10 classes and 1797 rows"
    return None, ""


def load_darts_run(run_dir: str | Path) -> RunModel:
    """The final network of a :func:`autodl.nas.run_darts` folder, taking raw rows."""
    from autodl.nas.darts import load_model
    from autodl.nn.data import NN_DATASETS

    run_dir = Path(run_dir)
    result = _read_json(run_dir / "result.json")
    if result is None or "settings" not in result:
        raise UserError(f"{run_dir} has no result.json with settings; it was not written by run_darts")
    settings = result["settings"]
    try:
        net = load_model(run_dir)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ExportError(f"cannot load the DARTS network of {run_dir}: {str(exc).splitlines()[0]}") from None
    dataset, how = _darts_dataset(run_dir, result)
    if dataset is None or NN_DATASETS.get(dataset) is None:
        raise UserError(f"{run_dir} does not say which image data it was trained on, so autodl cannot rebuild its "
                        "held-out rows; export it in Python: autodl.export_onnx(autodl.nas.load_model(RUN), "
                        "'model.onnx', sample=held_out_rows)")
    return _nas_export(net, run_dir, result, dataset, how, {"genotype": result.get("genotype"), "settings": settings},
                       "darts")


def load_nas_run(run_dir: str | Path) -> RunModel:
    """The final network of an ``autodl search --nas evolution|random`` folder (MLP space)."""
    from autodl.nas.search import load_nas_model

    run_dir = Path(run_dir)
    result = _read_json(run_dir / "result.json")
    if result is None:
        raise UserError(f"{run_dir} has no result.json yet; finish the run first")
    try:
        net = load_nas_model(run_dir)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ExportError(f"cannot load the network of {run_dir}: {str(exc).splitlines()[0]}") from None
    dataset, how = _darts_dataset(run_dir, result)
    if dataset is None:
        raise UserError(f"{run_dir}/run.json names no data set; export it in Python with "
                        "autodl.export_onnx(model, path, sample=held_out_rows)")
    return _nas_export(net, run_dir, result, dataset, how, result.get("best_config"), "nas")


def _nas_export(net, run_dir: Path, result: dict[str, Any], dataset: str, how: str, config, kind: str) -> RunModel:
    settings = result.get("settings", {})
    run = _read_json(run_dir / "run.json") or {}
    if run.get("max_rows") is not None or settings.get("max_rows") is not None:
        raise UserError(f"{run_dir} was searched on a subset of rows (max_rows), which autodl export cannot "
                        "rebuild; export it in Python with autodl.export_onnx(model, path, sample=held_out_rows)")
    test_size = float(run.get("test_size", settings.get("test_size", 0.2)))
    seed = int(run.get("seed", settings.get("seed", 0)))
    # run_darts and autodl.nas.search hold out the stratified test split of load_dataset, and
    # split the rest in halves (training rows: the first half, whose statistics scale tabular data)
    X, y, names, _, val, test, mean, std = _raw_splits(dataset, seed, 0.5, test_size)
    classes = np.asarray(result.get("classes") or np.unique(y))
    model = scaled_input(net, mean, std).eval()
    held = test if len(test) else val
    rows = X[held]
    what = f"{dataset} test rows" if len(test) else f"{dataset} validation rows"
    note = _check_rows(model, rows, np.searchsorted(classes, y[held]), result.get("test_accuracy") if len(test) else None,
                       what, how, run_dir)
    score, metric = ((result["best_val_accuracy"], "accuracy (validation split)") if "best_val_accuracy" in result
                     else (result.get("test_accuracy"), "accuracy (test split)"))
    meta = {"config": config, "score": score, "metric": metric, "test_score": result.get("test_accuracy"),
            "run_kind": kind, "architecture": "darts cell" if kind == "darts" else result.get("space", "mlp"),
            "dataset": dataset, "input": _input_note(dataset, mean, std)}
    return RunModel(model, rows, [c.item() if hasattr(c, "item") else c for c in classes], names, meta, note)


def load_run_model(run_dir: str | Path) -> RunModel:
    """:func:`load_nn_run` or :func:`load_darts_run`, by :func:`run_kind`."""
    kind = run_kind(run_dir)
    if kind == "nn":
        return load_nn_run(run_dir)
    if kind == "darts":
        return load_darts_run(run_dir)
    if kind == "nas":
        return load_nas_run(run_dir)
    raise UserError(f"{run_dir} is a tabular run; its model is exported from model.skops")
