"""The network of a PyTorch run folder (``--model``, ``--nas``) and the held-out rows to verify
its export on.

**Raw inputs.** The networks were trained on scaled rows (:func:`autodl.nn.data.scaling`: image
pixels divided by their maximum, tables standardized with the training split's mean and standard
deviation). The exported graph starts with that scaling (:class:`ScaledInput`), so the file takes
the data set's columns as the user has them (``load_digits(as_frame=True)``: columns
``pixel_0_0`` .. ``pixel_7_7``, values 0..16) and ``autodl predict model.onnx --data new.csv``
needs no preprocessing.

**Held-out rows.** The rows are the run's own test rows: their indices are saved in the run folder
(``split.npz``), and the scaling is computed from its training rows by the same function the
training used. As a check that nothing changed underneath (the data set, the model file), the
network's accuracy on them must equal the test accuracy in ``result.json``; otherwise the export
stops with a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autodl.errors import ExportError


@dataclass
class RunModel:
    """What :func:`autodl.export_onnx` needs for a run folder's model."""

    model: Any  # a torch module taking raw rows
    sample: np.ndarray  # held-out raw rows, float32
    class_labels: list
    feature_names: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)
    rows_note: str = ""
    #: how raw inputs reach ``model`` (:func:`autodl.nn.userdata.as_model_input` arguments)
    input: dict[str, Any] = field(default_factory=dict)


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


def _metric_score(score):
    """The metric's test score: the first of a multi-objective run's list (the others are its
    latency, size, ...)."""
    return score[0] if isinstance(score, list) and score else score


def _accuracy(model, rows: np.ndarray, labels: np.ndarray) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(rows)).argmax(1).numpy()
    return float((pred == labels).mean())


def run_model(net, run_dir: Path, dataset: str, split: dict[str, np.ndarray] | None, result: dict[str, Any],
              metadata: dict[str, Any]) -> RunModel:
    """``net`` wrapped to take raw rows, with the run's held-out raw rows (checked against the
    recorded test accuracy) and labels.

    ``split``: the saved row indices (a format-1 folder without them: rebuilt by the caller).
    """
    from autodl.nn.data import load_dataset, raw_dataset

    X, y, names = raw_dataset(dataset)
    data = load_dataset(dataset, split=split)
    model = scaled_input(net, data.mean, data.std).eval()
    test = split.get("test") if split is not None else None
    held, what = (test, "test rows") if test is not None and len(test) else (split["val"], "validation rows")
    classes = np.asarray(data.classes)
    rows, labels = X[held], np.searchsorted(classes, y[held])
    recorded = _metric_score(result.get("test_score")) if what == "test rows" else None
    acc = _accuracy(model, rows, labels)
    if recorded is None:
        note = f"{len(rows)} {dataset} {what} (accuracy {acc:.4f})"
    else:
        if abs(acc - float(recorded)) > 0.5 / len(rows):
            raise ExportError(f"the model scores {acc:.4f} on the run's {what}, but {run_dir}/result.json records "
                              f"{float(recorded):.4f}: the data set or model.pt changed since the run; export it in "
                              "Python with autodl.export_onnx(model, path, sample=held_out_rows)")
        note = f"{len(rows)} {dataset} {what} (test accuracy {acc:.4f}, as recorded)"
    pixel = np.all(data.mean == 0) and np.all(data.std == data.std[0])
    metadata = {**metadata, "dataset": dataset,
                "input": (f"raw {dataset} feature values; the graph divides them by {float(data.std[0]):g} first"
                          if pixel else f"raw {dataset} feature values; the graph standardizes them with the "
                                        "training split's mean and std")}
    return RunModel(model, rows, list(data.classes), names, metadata, note,
                    {"kind": "table", "feature_names": [str(n) for n in names]})


def user_run_model(net, run_dir: Path, split: dict[str, np.ndarray], result: dict[str, Any],
                   metadata: dict[str, Any]) -> RunModel:
    """The network of a run on the user's own data (``RUN/data/``), taking raw inputs as the
    user gave them: images in their dtype and layout N×C×H×W, normalized per channel inside the
    graph (:func:`autodl.export.network.image_input`); sequences N×T×F standardized per feature;
    table columns through the column handling of the search
    (:func:`autodl.export.network.table_network`). The held-out rows are checked against the
    recorded test accuracy, as in :func:`run_model`. A regression network's output is mapped
    back from the standardized target it learned (``y_std * out + y_mean``, inside the graph), so
    the file predicts in the target's own units."""
    from torch import nn

    from autodl.export.network import image_input, table_network
    from autodl.nn.data import DATA_DIR, from_net_data
    from autodl.nn.userdata import load_net_data

    nd = load_net_data(Path(run_dir) / DATA_DIR)
    data = from_net_data(nd, split)
    x = data.extra
    flat = nn.Sequential(nn.Flatten(), net).eval()  # every network here takes flat rows
    test = split.get("test")
    held, what = (test, "test rows") if test is not None and len(test) else (split["val"], "validation rows")
    held = np.asarray(held)
    regression = x.get("task") == "regression"
    if nd.kind == "table":
        body = _target_units(net.eval(), x["y_mean"], x["y_std"]) if regression else net.eval()
        model = table_network(x["preprocessor"], body, feature_frame=nd.X.iloc[split["train"]],
                              class_labels=None if regression else list(nd.classes))
        rows = nd.X.iloc[held].reset_index(drop=True)
        out = model.logits(rows)
        how = "raw table columns; the graph imputes, standardizes and one-hot encodes them as the search did"
        inputs = {"kind": "table", "feature_names": list(nd.feature_names or [])}
    else:
        axes = (1, -1, 1, 1) if nd.kind == "image" else (1, 1, -1)
        model = image_input(flat, x["channel_mean"], x["channel_std"]) if nd.kind == "image" else \
            scaled_input(flat, x["channel_mean"].reshape(axes), x["channel_std"].reshape(axes)).eval()
        rows = np.ascontiguousarray(nd.X[np.sort(held)])
        held = np.sort(held)
        import torch

        with torch.no_grad():
            out = model(torch.as_tensor(rows)).numpy()
        how = (f"raw {nd.kind}s as given ({x['raw_dtype']}, N x {' x '.join(map(str, nd.X.shape[1:]))}); the graph "
               f"standardizes each {'channel' if nd.kind == 'image' else 'feature'} with the training rows' "
               "mean and std")
        inputs = {"kind": nd.kind, "image_shape": nd.image_shape}
    recorded = _metric_score(result.get("test_score")) if what == "test rows" else None
    truth = np.asarray(nd.y)[held]
    if regression:
        pred = np.asarray(out, dtype=np.float64).reshape(-1)
        acc = 1.0 - float(((truth - pred) ** 2).sum()) / max(float(((truth - truth.mean()) ** 2).sum()), 1e-300)
        allowed, metric = 1e-4, "R²"
    else:
        acc = float((np.asarray(out).argmax(axis=1) == truth).mean())
        allowed, metric = 0.5 / len(held), "accuracy"
    if recorded is not None and abs(acc - float(recorded)) > allowed:
        raise ExportError(f"the model scores {acc:.4f} on the run's {what}, but {run_dir}/result.json records "
                          f"{float(recorded):.4f}: {run_dir}/{DATA_DIR} or model.pt changed since the run")
    note = f"{len(held)} {what} of {nd.source} ({metric} {acc:.4f}" + (", as recorded)" if recorded is not None else ")")
    names = list(nd.feature_names) if nd.kind == "table" else None
    meta = {**metadata, "dataset": nd.source, "input": how}
    return RunModel(model, rows, list(nd.classes), names, meta, note, inputs)


def _target_units(net, mean: float, std: float):
    """``net`` whose single output is mapped back to the target's units: ``std * out + mean``."""
    import torch
    from torch import nn

    class TargetUnits(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.register_buffer("scale", torch.tensor(float(std), dtype=torch.float32))
            self.register_buffer("shift", torch.tensor(float(mean), dtype=torch.float32))

        def forward(self, x):
            return self.net(x) * self.scale + self.shift

    return TargetUnits().eval()


def export_run_model(run: RunModel, path: str | Path) -> tuple[Path, str]:
    """Export a :class:`RunModel` (verified) and say what it was verified on."""
    import torch

    from autodl.export import export_onnx

    torch.set_num_threads(1)  # small networks; leave the other cores alone
    sample = run.sample.iloc[:512] if hasattr(run.sample, "iloc") else run.sample[:512]
    written = export_onnx(run.model, path, sample=sample, feature_names=run.feature_names,
                          class_labels=run.class_labels or None, metadata=run.metadata)
    return written, run.rows_note
