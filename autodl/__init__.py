"""autodl: AutoML and hyperparameter optimization with searchers of its own.

``import autodl`` stays light: torch, featuretools, tsfresh, onnx and dask load only when a
feature that needs them is used.
"""

from autodl.errors import DataError, ExportError, SearchExhausted, SpaceError, StorageError, TrialPruned, UserError
from autodl.space import Categorical, Float, Int, Space
from autodl.study import FrozenTrial, RunningTrial, Study, TrialState
from autodl.tabular import SearchResult, search

from autodl._version import __version__


def export_onnx(model, path, *, sample, feature_names=None, class_labels=None, metadata=None):
    """Export a fitted scikit-learn pipeline or torch module to ONNX, verified with onnxruntime.

    A thin wrapper that imports :mod:`autodl.export` on call (so ``import autodl`` stays free of
    onnx and torch); see :func:`autodl.export.export_onnx` for the arguments.
    """
    from autodl.export import export_onnx as _export_onnx

    return _export_onnx(model, path, sample=sample, feature_names=feature_names,
                        class_labels=class_labels, metadata=metadata)

_LAZY = {"AutoDLClassifier": "autodl.tabular.estimators", "AutoDLRegressor": "autodl.tabular.estimators",
         "search_network": "autodl.nn.result", "NetworkResult": "autodl.nn.result"}


def __getattr__(name: str):
    """``autodl.AutoDLClassifier`` / ``autodl.AutoDLRegressor`` / ``autodl.search_network`` (torch),
    imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autodl' has no attribute '{name}'")


__all__ = [
    "AutoDLClassifier", "AutoDLRegressor",
    "Space", "Float", "Int", "Categorical", "Study", "TrialState", "FrozenTrial", "RunningTrial",
    "search", "SearchResult", "search_network", "NetworkResult", "export_onnx",
    "UserError", "SpaceError", "DataError", "ExportError", "StorageError", "SearchExhausted", "TrialPruned",
    "__version__",
]
