"""Networks exported so that a deployment can feed the file its raw data, as is.

* :func:`image_input` wraps a network trained on standardized images so that it takes raw
  images ``[batch, C, H, W]`` in their own dtype (``uint8`` pixels stay a ``uint8`` ONNX
  input): the graph casts them to float32 and standardizes each channel,
  ``(x - mean[c]) / std[c]``, before the network.
* :func:`table_network` joins a fitted scikit-learn preprocessor (imputation, scaling, one-hot
  encoding: the ``preprocess`` step of :func:`autodl.tabular.pipeline.build_pipeline`) and a
  torch network on its output into a :class:`TableNetwork`. :func:`autodl.export_onnx` writes
  it as ONE graph taking the raw table columns (the ``columns`` scheme of
  :mod:`autodl.export.sklearn_onnx`: one ``[batch, 1]`` input per column, ``double`` for
  numbers, ``string`` for categories): the preprocessor converted by skl2onnx (float64, the
  same arithmetic as scikit-learn), ``Cast`` to float32, then the network converted by
  :mod:`autodl.export.torch_onnx`, joined with ``onnx.compose.merge_models``.

With class labels, both graphs output ``output`` (the logits), ``label`` and ``probabilities``
(see :mod:`autodl.export.torch_onnx`), and :mod:`autodl.export.core` verifies all three.
Importing this module loads no torch, scikit-learn or onnx.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from autodl.errors import ExportError, first_line


def _image_input_class():  # built lazily: importing this module loads no torch
    import torch
    from torch import nn

    class ImageInput(nn.Module):
        """``net((x.float() - mean[c]) / std[c])`` for raw images ``x`` of shape [N, C, H, W]."""

        def __init__(self, net: nn.Module, mean: np.ndarray, std: np.ndarray):
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

        def forward(self, x):
            if x.ndim != 4 or x.shape[1] != self.mean.shape[1]:
                raise ValueError(f"the model takes images [batch, {self.mean.shape[1]}, height, width], "
                                 f"not {tuple(x.shape)}")
            return self.net((x.to(torch.float32) - self.mean) / self.std)

    return ImageInput


def image_input(net, mean, std):
    """``net`` taking raw images: a module computing ``net((x.float() - mean[c]) / std[c])``.

    Args:
        net: a ``torch.nn.Module`` trained on standardized float32 images [N, C, H, W].
        mean, std: per-channel statistics (length C) in the raw images' units (e.g. 0..255).

    Exported with :func:`autodl.export_onnx` on a sample of raw images, the file's input has the
    sample's dtype (``uint8``, ``int64`` or ``float32``) and shape ``[None, C, H, W]``.
    """
    from autodl.export.torch_onnx import is_torch_module

    if not is_torch_module(net):
        raise ExportError(f"image_input needs a torch.nn.Module, not a {type(net).__name__}")
    mean = np.asarray(mean, dtype=np.float64).ravel()
    std = np.asarray(std, dtype=np.float64).ravel()
    if len(mean) == 0 or len(mean) != len(std):
        raise ExportError(f"mean and std must both have one value per channel (got {len(mean)} and {len(std)})")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise ExportError("mean must be finite and std finite and > 0 for every channel")
    return _image_input_class()(net, mean, std)


class TableNetwork:
    """A fitted scikit-learn preprocessor followed by a torch network (build it with
    :func:`table_network`).

    ``predict`` / ``predict_proba`` / ``logits`` take a DataFrame of raw rows and compute
    ``net(float32(preprocessor.transform(frame)))`` in eval mode: what the exported file does.
    """

    def __init__(self, preprocessor, net, class_labels: list | None, inputs: list[dict[str, Any]]):
        self.preprocessor = preprocessor
        self.net = net
        self.class_labels = list(class_labels) if class_labels is not None else None
        self.inputs = inputs  # the raw columns: [{"name", "column", "type", "shape"}, ...]

    @property
    def columns(self) -> list[str]:
        return [spec["column"] for spec in self.inputs]

    def features(self, frame) -> np.ndarray:
        """The network's input for raw rows: the preprocessor's output as float32."""
        z = self.preprocessor.transform(frame[self.columns])
        return np.asarray(z.toarray() if hasattr(z, "toarray") else z, dtype=np.float32)

    def logits(self, frame) -> np.ndarray:
        """The network's output (float64) for raw rows."""
        from autodl.export.torch_onnx import reference_outputs

        return reference_outputs(self.net, self.features(frame))["output"]

    def predict(self, frame) -> np.ndarray:
        """Class labels (``class_labels[argmax]``), or the network's output for a regressor."""
        out = self.logits(frame)
        if self.class_labels is None:
            return out
        return np.asarray(self.class_labels, dtype=object)[out.argmax(axis=1)]

    def predict_proba(self, frame) -> np.ndarray:
        """Softmax of the logits, in float64, one column per class label."""
        if self.class_labels is None:
            raise ExportError("this TableNetwork has no class_labels, so no probabilities")
        from autodl.export.runtime import softmax

        return softmax(self.logits(frame))


def table_network(preprocessor, net, *, feature_frame, class_labels: list | None = None) -> TableNetwork:
    """A :class:`TableNetwork` that :func:`autodl.export_onnx` writes as one graph on raw columns.

    Args:
        preprocessor: a scikit-learn transformer fitted on a DataFrame (e.g. the ``preprocess``
            step of a fitted :func:`~autodl.tabular.pipeline.build_pipeline` pipeline).
        net: a ``torch.nn.Module`` taking its float32 output ``[batch, n_features]``.
        feature_frame: raw rows with the columns the preprocessor was fitted on (e.g. the
            training rows); their dtypes decide each input's type (number: ``double``, else
            ``string``), and two of them check that the network accepts the features.
        class_labels: the classes of the network's outputs (logits), in order; None for a
            regressor.
    """
    import pandas as pd

    from autodl.export import sklearn_onnx, torch_onnx

    if not torch_onnx.is_torch_module(net):
        raise ExportError(f"table_network needs a torch.nn.Module, not a {type(net).__name__}")
    if not isinstance(feature_frame, pd.DataFrame) or len(feature_frame) == 0:
        raise ExportError("feature_frame must be a DataFrame with rows (the raw columns the preprocessor was fitted on)")
    fitted = getattr(preprocessor, "feature_names_in_", None)
    if fitted is None:
        raise ExportError(f"{type(preprocessor).__name__} has no feature_names_in_: fit it on the raw table "
                          "(a DataFrame) first, so the file can take named columns")
    missing = [str(c) for c in fitted if c not in feature_frame.columns]
    if missing:
        raise ExportError(f"feature_frame lacks {len(missing)} column(s) the preprocessor was fitted on: "
                          f"{', '.join(missing[:10])}")
    _, inputs, _ = sklearn_onnx.describe_inputs(preprocessor, feature_frame[list(fitted)])
    model = TableNetwork(preprocessor, net, class_labels, inputs)
    try:
        out = model.logits(feature_frame.iloc[:2])
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ExportError(f"the network cannot take the preprocessor's output: {first_line(exc)}") from None
    if class_labels is not None and (out.ndim != 2 or out.shape[1] != len(class_labels)):
        raise ExportError(f"{len(class_labels)} class labels but the network outputs shape {out.shape}; a "
                          "classifier must output [batch, n_classes] logits")
    return model


def convert(model: TableNetwork, sample):
    """``(onnx ModelProto, "columns", inputs, feature_names, outputs)`` for a :class:`TableNetwork`."""
    import onnx
    import pandas as pd
    from onnx import compose, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    from autodl.export import sklearn_onnx, torch_onnx

    if not isinstance(sample, pd.DataFrame):
        raise ExportError("a TableNetwork is verified on a DataFrame sample (held-out raw rows)")
    missing = [c for c in model.columns if c not in sample.columns]
    if missing:
        raise ExportError(f"sample lacks {len(missing)} column(s) of the table: {', '.join(missing[:10])}")
    sklearn_onnx.check_supported(model.preprocessor)
    inputs = copy.deepcopy(model.inputs)
    types = [(spec["column"], (DoubleTensorType if spec["type"] == "double" else StringTensorType)([None, 1]))
             for spec in inputs]
    features = model.features(sample.iloc[:2])
    try:
        pre = convert_sklearn(sklearn_onnx._strip_passthrough(model.preprocessor), initial_types=types,
                              target_opset=sklearn_onnx.TARGET_OPSET,
                              custom_conversion_functions=sklearn_onnx._custom_converters())
    except ExportError:
        raise
    except (RuntimeError, ValueError, TypeError, NotImplementedError, KeyError, AttributeError) as exc:
        raise ExportError(f"skl2onnx cannot convert {type(model.preprocessor).__name__}: "
                          f"{first_line(exc)}") from None
    if len(pre.graph.output) != 1:
        raise ExportError(f"the preprocessor's graph has {len(pre.graph.output)} outputs; one feature matrix expected")
    pre.graph.node.append(helper.make_node("Cast", [pre.graph.output[0].name], ["features32"],
                                           to=onnx.TensorProto.FLOAT, name="CastToFloat32"))
    del pre.graph.output[:]
    pre.graph.output.append(helper.make_tensor_value_info("features32", onnx.TensorProto.FLOAT,
                                                          [None, features.shape[1]]))
    net, _, _, _, outputs = torch_onnx.convert(model.net, features, class_labels=model.class_labels)
    pre.ir_version = net.ir_version = max(pre.ir_version, net.ir_version)
    onx = compose.merge_models(sklearn_onnx._with_opsets(pre), sklearn_onnx._with_opsets(net),
                               io_map=[("features32", "input")], prefix2="net_")
    sklearn_onnx._unprefix_outputs(onx, "net_")
    graph_inputs = [i.name for i in onx.graph.input]
    if len(graph_inputs) != len(inputs):
        raise ExportError(f"skl2onnx produced {len(graph_inputs)} inputs for {len(inputs)} columns")
    for spec, name in zip(inputs, graph_inputs):
        spec["name"] = name
    for spec, out in zip(outputs, onx.graph.output):
        spec["name"] = out.name
    return onx, "columns", inputs, model.columns, outputs
