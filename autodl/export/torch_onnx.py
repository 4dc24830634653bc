"""PyTorch modules to ONNX with the TorchScript-based exporter (``dynamo=False``).

Why this exporter: torch 2.13's ``torch.onnx.export`` defaults to ``dynamo=True``, which needs
the ``onnxscript`` package (not a dependency of autodl, and not installed in many deployments).
The TorchScript (tracing) exporter ships with torch and covers every model kind autodl builds:
MLPs, CNNs (Conv/BatchNorm/pooling, dilated and depthwise-separable convs, as in DARTS-like
cells), and RNN/LSTM/GRU layers, which it lowers to the ONNX ``RNN``/``LSTM``/``GRU`` operators
with a dynamic batch. Its limit is tracing: Python control flow that depends on tensor *values*
is frozen to the branch the sample took. That is exactly what the onnxruntime verification in
:mod:`autodl.export.core` catches, on several rows and batch sizes, before the file is kept.

The module is exported in ``eval()`` mode (BatchNorm running statistics, no dropout) with the
batch axis (axis 0 of every input and output) dynamic, opset 17. The caller's module is put
back into the train/eval mode it was in.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from autodl.errors import ExportError

OPSET = 17


def is_torch_module(model) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


def _as_tensor(sample):
    import torch

    if isinstance(sample, torch.Tensor):
        return sample.detach().cpu()
    arr = np.asarray(sample)
    if arr.dtype.kind in "iu":
        return torch.from_numpy(arr.astype(np.int64))
    return torch.from_numpy(arr.astype(np.float32))


def convert(model, sample, *, class_labels=None, feature_names=None):
    """``(onnx ModelProto, scheme, inputs, feature_names, outputs)`` for a torch module."""
    import onnx
    import torch

    x = _as_tensor(sample)
    if x.ndim < 2:
        raise ExportError(f"sample must have a batch axis first (got shape {tuple(x.shape)})")
    was_training = model.training
    model.eval()
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model(x[:2])
            if not isinstance(out, torch.Tensor):
                raise ExportError(f"{type(model).__name__} returns {type(out).__name__}; export needs a "
                                  "module returning one tensor")
            torch.onnx.export(model, (x[:2],), buf, dynamo=False, opset_version=OPSET,
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                              do_constant_folding=True)
    except ExportError:
        raise
    except (RuntimeError, ValueError, TypeError, NotImplementedError, AttributeError) as exc:
        raise ExportError(f"torch.onnx cannot export {type(model).__name__}: {_first_line(exc)}") from None
    finally:
        model.train(was_training)
    onx = onnx.load_from_string(buf.getvalue())
    per_row = int(np.prod(x.shape[1:]))
    names = [str(n) for n in feature_names] if feature_names is not None else [f"x{i}" for i in range(per_row)]
    if len(names) != per_row:
        raise ExportError(f"{len(names)} feature names for {per_row} values per row")
    kind = "int64" if x.dtype == torch.int64 else "float"
    inputs = [{"name": "input", "type": kind, "shape": [None, *map(int, x.shape[1:])]}]
    role = "logits" if class_labels is not None else "prediction"
    if class_labels is not None and (out.ndim != 2 or out.shape[1] != len(class_labels)):
        raise ExportError(f"{len(class_labels)} class labels but the module outputs shape "
                          f"{tuple(out.shape)}; a classifier must output [batch, n_classes] logits")
    return onx, "tensor", inputs, names, [{"name": "output", "role": role}]


def reference_outputs(model, x) -> dict[str, np.ndarray]:
    """The module's output (eval mode, no grad) for rows ``x``, by role-independent key."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(_as_tensor(x))
    finally:
        model.train(was_training)
    return {"output": out.detach().cpu().numpy().astype(np.float64)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def describe(model) -> dict[str, Any]:
    return {"class": type(model).__name__, "parameters": int(sum(p.numel() for p in model.parameters()))}
