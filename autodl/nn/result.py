"""``autodl.search_network``: a PyTorch network searched for the user's own data, from Python.

The Python twin of ``autodl search --data F --model mlp|cnn`` and ``--nas darts|evolution|random``:
it takes the data as it is (an array of images, a DataFrame, a torch ``Dataset``, a file or a
folder of images; see :mod:`autodl.nn.userdata`), runs the search in a run folder under one
deadline (reading the data included), and returns a :class:`NetworkResult` that predicts from
raw inputs and returns the user's labels, like the :class:`~autodl.SearchResult` of
:func:`autodl.search`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from autodl.errors import UserError

#: what ``run.json`` records as the source of data given in memory
IN_MEMORY = {"DataFrame", "array", "Dataset"}


def search_network(data, y=None, *, target: str | None = None, kind: str | None = None, model: str | None = None,
                   nas: str | None = None,
                   time_budget: float | None = None, n_trials: int | None = None, out: str | Path | None = None,
                   seed: int = 0, progress: str = "quiet", **settings) -> "NetworkResult":
    """Search a PyTorch network for ``data`` and return the result.

    Args:
        data: images (an array N×H×W, N×C×H×W or N×H×W×C, integer or float, with ``y``; a torch
            ``Dataset`` of ``(image, label)``; an ``.npz`` with ``X`` and ``y``; a folder of class
            sub-folders of PNG/JPEG files), a table (a DataFrame with ``target`` or ``y``, a CSV or
            Parquet file with ``target``), sequences (an array or ``.npz`` N×T×F), or the name of a
            built-in set (``"digits"``).
        y: the labels when ``data`` is an array or a DataFrame without the target column.
        target: a table's label column (a numeric target of many values: regression).
        kind: ``"image"``, ``"sequence"`` or ``"table"`` when a 3-D array could be either
            (default: images when both sides are 8 or more, else sequences).
        model: ``"mlp"`` or ``"cnn"`` (default: ``cnn`` for images, else ``mlp``); tunes the
            network family's hyperparameters (budget = epochs, Hyperband by default).
        nas: ``"darts"``, ``"evolution"`` or ``"random"`` instead of ``model``: searches
            architectures (the cell space for images, the MLP space otherwise).
        time_budget: seconds for the whole call from now: reading the data, the search, the final
            training and saving.
        n_trials: trials at most (``model`` and ``nas="evolution"|"random"``).
        out: the run folder (default ``runs/<data>-<model>-<time>``); ``autodl show|report|export|
            predict|resume`` work on it.
        settings: fields of :class:`autodl.nn.search.NNSearchSpec` (``searcher``, ``max_budget``,
            ``n_workers``, ...) or :class:`autodl.nas.search.NasSpec` (``epochs``, ``space``, ...),
            including ``objectives=["accuracy", "latency"]`` (also ``size``, ``params``),
            ``max_latency_ms=`` and ``latency_fn="module:function"`` (ONNX bytes -> ms).
    """
    from autodl.nn.data import NN_DATASETS
    from autodl.runs import Deadline, Run, get_kind

    deadline = Deadline.after(time_budget)
    if model is not None and nas is not None:
        raise UserError("give model= (a network family's hyperparameters) or nas= (architectures), not both")
    builtin = isinstance(data, str) and data in NN_DATASETS and not Path(data).exists()
    netdata, source = None, None
    if not builtin:
        from autodl.nn.userdata import read_net_data

        netdata = read_net_data(data, y, target=target, kind=kind)
        source = str(Path(data).resolve()) if isinstance(data, (str, Path)) else _memory_name(data)
    where = {"dataset": data if builtin else None, "data": source, "target": target, "seed": seed,
             "time_budget": time_budget, "n_trials": n_trials}
    images = builtin and NN_DATASETS[data] is not None or netdata is not None and netdata.kind == "image"
    if nas is not None:
        from autodl.nas.search import NasSpec, start_nas_run

        settings.setdefault("space", "cell" if images else "mlp")
        spec = _spec(NasSpec, method=nas, **where, **settings)
        kind, run_dir = get_kind("nas"), None
        run_dir = start_nas_run(spec, out or kind.default_out(spec), netdata)
    else:
        from autodl.nn.search import NNSearchSpec, start_nn_run

        spec = _spec(NNSearchSpec, model=model or ("cnn" if images else "mlp"), **where, **settings)
        kind = get_kind("nn")
        run_dir = start_nn_run(spec, out or kind.default_out(spec), netdata)
    kind.run(Run(kind, spec, Path(run_dir)), deadline=deadline, progress=progress)
    return NetworkResult(run_dir)


def _spec(cls, **fields):
    unknown = sorted(set(fields) - set(cls.__dataclass_fields__))
    if unknown:
        raise UserError(f"unknown settings {unknown}; see {cls.__module__}.{cls.__name__}")
    spec = cls(**fields)
    spec.validate()
    return spec


def _memory_name(data) -> str:
    if hasattr(data, "iloc"):
        return "DataFrame"
    return "array" if isinstance(data, np.ndarray) else "Dataset"


class NetworkResult:
    """What :func:`search_network` returns (and what ``NetworkResult(run_dir)`` reopens).

    Attributes:
        best_config: the winning configuration (hyperparameters, or the architecture).
        best_score: its validation accuracy (R² for regression); test_score: the same on the
            held-out test rows.
        classes: the user's labels, in the order of :meth:`predict_proba`'s columns (empty for
            regression).
        model: the network taking raw inputs: a torch module returning logits for images and
            sequences (pixels as given), an :class:`autodl.export.network.TableNetwork` for tables.
        metric, task: ``"accuracy"`` and ``"classification"``, or ``"r2"`` and ``"regression"`` (a
            table with a numeric target); run_dir: the run folder.
    """

    def __init__(self, run_dir: str | Path):
        from autodl.runs import open_run, read_result

        self.run_dir = Path(run_dir)
        self._run = open_run(self.run_dir)
        self._envelope = read_result(self.run_dir)
        self.best_config = self._envelope["best_config"]
        self.best_score = self._envelope["best_value"]
        self.test_score = self._envelope["test_score"]
        self.best_trial_id = self._envelope["best_trial"]
        self.metric = self._envelope.get("metric") or "accuracy"
        self.task = "regression" if self.metric == "r2" else "classification"
        loaded = self._run.kind.load_model(self.run_dir)
        self.model = loaded.model
        self.classes = list(loaded.class_labels)
        self._input = getattr(loaded, "input", None) or {}

    @property
    def leaderboard(self):
        """Finished trials best first (a DataFrame); DARTS, which runs no trials, gives one row."""
        import pandas as pd

        if (self.run_dir / "study.db").is_file():
            from autodl.study import Study

            return Study.load(self.run_dir).leaderboard()
        return pd.DataFrame([{"value": self.best_score, "test_score": self.test_score, **self.best_config}])

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for raw inputs (the formats the search read: an array of images in
        any layout it accepts, a DataFrame, a path to an ``.npz``, a table or an image folder)."""
        import torch

        from autodl.export.runtime import softmax

        if self.task == "regression":
            raise AttributeError("predict_proba is only available for classification")
        rows = self._rows(X)
        if hasattr(self.model, "predict_proba"):  # a table: the search's column handling, then the network
            return self.model.predict_proba(rows)
        if hasattr(rows, "iloc"):  # the raw columns of a built-in set, as one float32 row each
            rows = rows.to_numpy(dtype=np.float32)
        self.model.eval()
        with torch.no_grad():
            logits = self.model(torch.as_tensor(np.ascontiguousarray(rows)))
        return softmax(np.asarray(logits, dtype=np.float64))

    def predict(self, X) -> np.ndarray:
        """The user's labels for raw inputs (see :meth:`predict_proba`); for regression, the
        predicted values in the target's units."""
        if self.task == "regression":
            return np.asarray(self.model.logits(self._rows(X)), dtype=np.float64).reshape(-1)
        return np.asarray(self.classes, dtype=object)[self.predict_proba(X).argmax(axis=1)]

    def _rows(self, X):
        from autodl.nn.userdata import as_model_input

        return as_model_input(X, **self._input)

    def export_onnx(self, path: str | Path) -> Path:
        """Write the network as one verified ONNX file taking raw inputs and returning the
        user's labels and probabilities (see ``autodl export``)."""
        written, _ = self._run.kind.export(self.run_dir, Path(path))
        return written

    def summary(self) -> dict[str, Any]:
        """The ``result.json`` envelope (see :func:`autodl.runs.result_envelope`)."""
        return dict(self._envelope)

    def __repr__(self) -> str:
        test = f", test_score={self.test_score:.4g}" if self.test_score is not None else ""
        return f"NetworkResult({self.metric}={self.best_score:.4g}{test}, run_dir={str(self.run_dir)!r})"
