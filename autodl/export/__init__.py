"""Exporting models to ONNX, verified against onnxruntime, and running the files.

* :func:`export_onnx` converts a fitted scikit-learn pipeline (skl2onnx, see
  :mod:`autodl.export.sklearn_onnx` for the HistGradientBoosting and string-imputer fixes) or a
  ``torch.nn.Module`` (TorchScript exporter, see :mod:`autodl.export.torch_onnx`), checks it,
  verifies it on held-out rows with onnxruntime and writes it atomically (see
  :mod:`autodl.export.core` for the tolerances and the metadata).
* :func:`predict_table` runs an exported file on a DataFrame with onnxruntime alone
  (:mod:`autodl.export.runtime`); ``autodl predict`` is built on it.
* :mod:`autodl.export.runs` loads the network of a PyTorch run folder (``--model mlp|cnn``,
  DARTS, ``--nas``) with its held-out rows, for ``autodl export RUN``.

Importing this package loads nothing heavy; onnx, onnxruntime, skl2onnx and torch are imported
by the functions that need them.
"""

from autodl.errors import ExportError
from autodl.export.core import export_onnx
from autodl.export.runtime import predict_table, read_metadata

__all__ = ["export_onnx", "predict_table", "read_metadata", "ExportError"]
