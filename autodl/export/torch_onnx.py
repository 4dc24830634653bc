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

Input: one tensor ``input`` in the sample's dtype: ``uint8`` stays ``uint8`` (raw images, see
:func:`autodl.export.network.image_input`), other integers become ``int64``, floating arrays
``float32`` (a float64 *tensor* stays ``double``).

Outputs: ``output``, the module's output (role ``prediction``, or ``logits`` when class labels
are given). A classifier's graph also computes what a deployment needs, so it can use the file
as is: ``label`` (``Gather`` of the class labels at ``ArgMax`` of the logits, first index on
ties like NumPy; a string tensor for string labels, int64 for integers, double for floats, bool
for booleans) and ``probabilities`` (float32 ``Softmax`` of the logits), shapes ``[batch]`` and
``[batch, n_classes]``.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from autodl.errors import ExportError, first_line

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
        t = sample.detach().cpu()
        integer = not t.is_floating_point() and t.dtype not in (torch.uint8, torch.bool, torch.int64)
        return t.long() if integer else t
    arr = np.asarray(sample)
    if arr.dtype == np.uint8:
        return torch.from_numpy(arr.copy())
    if arr.dtype.kind in "iu":
        return torch.from_numpy(arr.astype(np.int64))
    return torch.from_numpy(arr.astype(np.float32))


#: ONNX input type (as in the ``autodl.inputs`` metadata) of each torch input dtype
_INPUT_TYPES = {"uint8": "uint8", "int64": "int64", "float64": "double"}


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
        raise ExportError(f"torch.onnx cannot export {type(model).__name__}: {first_line(exc)}") from None
    finally:
        model.train(was_training)
    onx = onnx.load_from_string(buf.getvalue())
    per_row = int(np.prod(x.shape[1:]))
    names = [str(n) for n in feature_names] if feature_names is not None else [f"x{i}" for i in range(per_row)]
    if len(names) != per_row:
        raise ExportError(f"{len(names)} feature names for {per_row} values per row")
    kind = _INPUT_TYPES.get(str(x.dtype).removeprefix("torch."), "float")
    inputs = [{"name": "input", "type": kind, "shape": [None, *map(int, x.shape[1:])]}]
    if class_labels is None:
        return onx, "tensor", inputs, names, [{"name": "output", "role": "prediction"}]
    if out.ndim != 2 or out.shape[1] != len(class_labels):
        raise ExportError(f"{len(class_labels)} class labels but the module outputs shape "
                          f"{tuple(out.shape)}; a classifier must output [batch, n_classes] logits")
    add_class_outputs(onx, "output", class_labels)
    return onx, "tensor", inputs, names, [{"name": "output", "role": "logits"}, {"name": "label", "role": "label"},
                                          {"name": "probabilities", "role": "probabilities"}]


def label_tensor(class_labels) -> np.ndarray:
    """The class labels as the array the graph gathers from: int64, float64, bool or strings."""
    arr = np.asarray(class_labels)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    if arr.dtype.kind == "b":
        return arr
    return np.array([str(c) for c in class_labels], dtype=object)


def add_class_outputs(onx, logits: str, class_labels) -> None:
    """Append ``label`` and ``probabilities`` outputs computed from the ``logits`` output."""
    from onnx import TensorProto, helper, numpy_helper

    graph, classes = onx.graph, label_tensor(class_labels)
    table = numpy_helper.from_array(classes, name="autodl_class_labels")
    graph.initializer.append(table)
    graph.node.extend([
        helper.make_node("Softmax", [logits], ["probabilities"], axis=1, name="autodl_Softmax"),
        helper.make_node("ArgMax", [logits], ["autodl_class_index"], axis=1, keepdims=0, name="autodl_ArgMax"),
        helper.make_node("Gather", ["autodl_class_labels", "autodl_class_index"], ["label"], axis=0,
                         name="autodl_Gather"),
    ])
    graph.output.extend([helper.make_tensor_value_info("label", table.data_type, ["batch"]),
                         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                       ["batch", len(classes)])])


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




def describe(model) -> dict[str, Any]:
    return {"class": type(model).__name__, "parameters": int(sum(p.numel() for p in model.parameters()))}
