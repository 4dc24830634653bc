"""scikit-learn pipelines to ONNX with skl2onnx, plus three fixes skl2onnx 1.20 needs.

Inputs. A pipeline fitted on a DataFrame gets one ONNX input per column, named like the column
(skl2onnx sanitizes the name: ``petal length (cm)`` becomes ``petal_length__cm_``; the
metadata maps each input to its column), shape ``[batch, 1]``: numeric columns as float64,
categorical (object, string, category) columns as strings. skl2onnx maps the
``ColumnTransformer``'s column names onto these inputs. A pipeline fitted on an array gets one
float64 input ``X`` of shape ``[batch, n]``. The preprocessing runs in float64; forests, single
trees and SVR see float32 features (see :func:`convert`), and some outputs come out of float32
operators, so verification uses tolerances (see :mod:`autodl.export.core`). Boolean columns are refused: one-hot encoding booleans is not
expressible with string inputs without changing the categories.

Fix 1: HistGradientBoosting in float64. scikit-learn's HGB predicts on float64 features
against float64 thresholds (unlike its other trees, which cast to float32). skl2onnx 1.20
converts it to float32 ``TreeEnsemble*`` nodes, so a feature whose neighbouring values round
to the same float32 (epoch seconds, large ids, amounts in the millions: 1.6e9 has a float32
step of 128) goes down the other branch: a regressor 0.12 off, a classifier's probabilities
4e-5 off on such a column (measured; a 7-member HGB ensemble of the messy regression table
failed its check that way). skl2onnx's converter also built its node attributes from NumPy
scalars mixed with Python bools, which protobuf >= 5 refuses. autodl's own converter
(:func:`_convert_hgb`) emits one ``TreeEnsembleRegressor`` with float64 thresholds and leaf
values (``*_as_tensor``, which onnxruntime takes with float64 inputs) for the raw scores and
the link function after it. HGB models with native categorical splits (``is_categorical``)
are refused: the converter has no bitset splits.

Fix 2: string imputation. ``SimpleImputer(strategy="most_frequent")`` on a string column has
``missing_values=nan``, which skl2onnx's string imputer refuses (ONNX strings have no NaN). The
exported imputer uses :data:`~autodl.export.runtime.MISSING_STRING` (``""``) as the missing
marker instead, and the runtime feeds missing strings as ``""`` (so a real empty-string
category would be imputed too).

Fix 3: distance-weighted k-NN. skl2onnx's ``onnx_nearest_neighbors_indices_k`` (opset >= 11)
takes the k smallest distances with ``TopK(largest=0)`` and then, with ``keep_distances=True``,
multiplies them by -1, a leftover of the opset < 10 path, which ran ``TopK`` on negated
distances. The weights are then ``1 / max(d, 1e-6)`` of those negative values, i.e. ``1e6`` for
every neighbour: the file behaves like ``weights="uniform"`` and the check refuses it. (Even
with the sign right, ``max(d, 1e-6)`` gives an exact match weight 1e6 instead of all the
weight, as scikit-learn does.) ``KNeighborsClassifier``/``KNeighborsRegressor`` with
``weights="distance"`` get autodl's own converter (:func:`_convert_knn_distance`): the
distances from skl2onnx's ``onnx_cdist`` (Euclidean, Manhattan, Minkowski), ``TopK``, then
scikit-learn's ``_get_weights`` rule, ``w = 1 / d``, except that on a row where some ``1 / d``
is infinite (an exact match) those neighbours get weight 1 and the others 0. Uniform k-NN
keeps skl2onnx's converter. Limitation (uniform k-NN has it too): among training rows at
exactly the k-th distance, ``TopK`` keeps the lower index while scikit-learn's KD/ball tree or
``argpartition`` may keep another, so such a row can differ; the export's check then refuses it.

The PyTorch MLP (:mod:`autodl.tabular.torch_mlp`) keeps its trained weights as NumPy arrays and
predicts in NumPy, so it is converted like any scikit-learn model: a converter registered with
skl2onnx (:func:`register_autodl_models`) emits its forward pass from the weights,
``(x - mean) / scale``, then ``MatMul``/``Add`` and ``Relu``/``Tanh`` per layer, then ``Softmax``
with ``ArgMax`` + ``Gather`` over the classes (classifier) or ``* y_scale + y_mean`` (regressor),
all in the input's precision (float64 from autodl's pipelines).

Dates: :class:`~autodl.tabular.columns.DateParts` (tabular search's date columns, fed as float64
epoch seconds) gets autodl's converter too (:func:`_convert_date_parts`): the same function that
computes the parts in NumPy, :func:`~autodl.tabular.columns.date_parts`, is run on ONNX values
(``_Expr``: ``Add``/``Sub``/``Mul``/``Div``/``Floor`` on float64), so the graph performs the same
IEEE operations in the same order and gives the same bits, NaN for a missing date included.

Unsupported steps (a ``FunctionTransformer`` with a Python function, a transformer skl2onnx has
no converter for, future featuretools/tsfresh transformers) are refused before conversion with
an :class:`~autodl.errors.ExportError` naming the step: exporting the rest would give a file
whose inputs silently differ from the model's, so autodl does not do it.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from autodl._deps import require
from autodl.errors import ExportError, first_line

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def is_sklearn_model(model) -> bool:
    return hasattr(model, "fit") and hasattr(model, "get_params") and hasattr(model, "predict")


def _steps(model, prefix: str = ""):
    """``(path, estimator)`` for every leaf estimator of nested pipelines/column transformers."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    if isinstance(model, Pipeline):
        for name, step in model.steps:
            yield from _steps(step, f"{prefix}{name}/")
    elif isinstance(model, ColumnTransformer):
        for name, step, _cols in getattr(model, "transformers_", model.transformers):
            yield from _steps(step, f"{prefix}{name}/")
    elif isinstance(model, FeatureUnion):
        for name, step in model.transformer_list:
            yield from _steps(step, f"{prefix}{name}/")
    elif model is None or isinstance(model, str):  # "passthrough" / "drop"
        return
    else:
        yield prefix.rstrip("/") or type(model).__name__, model


_REGISTERED = False


def register_autodl_models() -> None:
    """Register skl2onnx converters for autodl's own estimators (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)

    from autodl.tabular.columns import DateParts
    from autodl.tabular.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

    update_registered_converter(DateParts, "AutodlDateParts", _date_parts_shape, _convert_date_parts)
    update_registered_converter(TorchMLPClassifier, "AutodlTorchMLPClassifier",
                                calculate_linear_classifier_output_shapes, _convert_torch_mlp,
                                options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    update_registered_converter(TorchMLPRegressor, "AutodlTorchMLPRegressor",
                                calculate_linear_regressor_output_shapes, _convert_torch_mlp)
    _REGISTERED = True


def _date_parts_shape(operator) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = DoubleTensorType([n, len(operator.raw_operator.columns_)])


class _Expr:
    """A float64 ONNX value with NumPy's arithmetic operators, so that
    :func:`autodl.tabular.columns.date_parts` builds the graph of the very operations it runs in
    NumPy (IEEE float64 ``Add``/``Sub``/``Mul``/``Div``/``Floor``: the same bits)."""

    def __init__(self, scope, container, name: str):
        self.scope, self.container, self.name = scope, container, name

    def _value(self, other) -> str:
        if isinstance(other, _Expr):
            return other.name
        from onnx import TensorProto

        arr = np.asarray(other, dtype=np.float64)
        name = self.scope.get_unique_variable_name("c")
        self.container.add_initializer(name, TensorProto.DOUBLE, list(arr.shape), arr.ravel().tolist())
        return name

    def _node(self, kind: str, *inputs: str) -> _Expr:
        out = self.scope.get_unique_variable_name(kind.lower())
        self.container.add_node(kind, list(inputs), [out], name=self.scope.get_unique_operator_name(kind))
        return _Expr(self.scope, self.container, out)

    def __add__(self, o):
        return self._node("Add", self.name, self._value(o))

    def __sub__(self, o):
        return self._node("Sub", self.name, self._value(o))

    def __mul__(self, o):
        return self._node("Mul", self.name, self._value(o))

    def __truediv__(self, o):
        return self._node("Div", self.name, self._value(o))

    def floor(self):
        return self._node("Floor", self.name)


def _convert_date_parts(scope, operator, container) -> None:
    """:class:`~autodl.tabular.columns.DateParts`: epoch seconds ``[N, k]`` (float64) -> the
    parts of :func:`~autodl.tabular.columns.date_parts` concatenated part by part, then the
    fitted output columns gathered (``hour`` only where it was fitted)."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables

    from autodl.tabular.columns import date_parts

    op = operator.raw_operator
    x = concatenate_variables(scope, operator.inputs, container)
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        cast = scope.get_unique_variable_name("t64")
        container.add_node("Cast", [x], [cast], to=TensorProto.DOUBLE, name=scope.get_unique_operator_name("Cast"))
        x = cast
    t = _Expr(scope, container, x)
    parts = date_parts(t, np.asarray(op.t_min_, dtype=np.float64).reshape(1, -1))
    cat = scope.get_unique_variable_name("date_parts")
    container.add_node("Concat", [p.name for p in parts], [cat], axis=1, name=scope.get_unique_operator_name("Concat"))
    idx = scope.get_unique_variable_name("date_columns")
    container.add_initializer(idx, TensorProto.INT64, [len(op.columns_)], [int(c) for c in op.columns_])
    container.add_node("Gather", [cat, idx], [operator.outputs[0].full_name], axis=1,
                       name=scope.get_unique_operator_name("Gather"))


def _convert_torch_mlp(scope, operator, container) -> None:
    """The MLP's forward pass from its NumPy weights (see the module docstring)."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType

    op = operator.raw_operator
    x = operator.inputs[0].full_name
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    proto, dtype = (TensorProto.DOUBLE, np.float64) if double else (TensorProto.FLOAT, np.float32)
    if not double:
        cast = scope.get_unique_variable_name("x_cast")
        container.add_node("Cast", [x], [cast], to=TensorProto.FLOAT, name=scope.get_unique_operator_name("Cast"))
        x = cast

    def const(name, values):
        arr = np.asarray(values, dtype=dtype)
        vname = scope.get_unique_variable_name(name)
        container.add_initializer(vname, proto, list(arr.shape), arr.ravel().tolist())
        return vname

    def node(kind, inputs, **attrs):
        out = scope.get_unique_variable_name(kind.lower())
        container.add_node(kind, inputs, [out], name=scope.get_unique_operator_name(kind), **attrs)
        return out

    h = node("Div", [node("Sub", [x, const("x_mean", op.x_mean_)]), const("x_scale", op.x_scale_)])
    last = len(op.coefs_) - 1
    for i, (w, b) in enumerate(zip(op.coefs_, op.intercepts_)):
        h = node("Add", [node("MatMul", [h, const(f"w{i}", w)]), const(f"b{i}", b)])
        if i < last:
            h = node("Relu" if op.activation == "relu" else "Tanh", [h])
    if hasattr(op, "classes_"):
        label, proba = operator.outputs[0].full_name, operator.outputs[1].full_name
        container.add_node("Softmax", [h], [proba], axis=1, name=scope.get_unique_operator_name("Softmax"))
        idx = node("ArgMax", [proba], axis=1, keepdims=0)
        classes = np.asarray(op.classes_)
        cname = scope.get_unique_variable_name("classes")
        if classes.dtype.kind in "iub":
            container.add_initializer(cname, TensorProto.INT64, [len(classes)], classes.astype(np.int64).tolist())
        else:
            container.add_initializer(cname, TensorProto.STRING, [len(classes)],
                                      [str(c).encode() for c in classes])
        container.add_node("Gather", [cname, idx], [label], axis=0, name=scope.get_unique_operator_name("Gather"))
    else:
        y = node("Add", [node("Mul", [h, const("y_scale", [op.y_scale_])]), const("y_mean", [op.y_mean_])])
        container.add_node("Identity", [y], [operator.outputs[0].full_name],
                           name=scope.get_unique_operator_name("Identity"))


def check_supported(model) -> None:
    """Raise :class:`ExportError` naming the first step ONNX cannot express."""
    require("skl2onnx", "onnx", "ONNX export of scikit-learn models")
    from skl2onnx._supported_operators import sklearn_operator_name_map

    register_autodl_models()
    from sklearn.preprocessing import FunctionTransformer

    for path, est in _steps(model):
        if isinstance(est, FunctionTransformer):
            if est.func is not None or est.inverse_func is not None:
                fname = getattr(est.func, "__name__", repr(est.func))
                raise ExportError(
                    f"step '{path}' is FunctionTransformer({fname}): ONNX cannot express an arbitrary "
                    f"Python function; apply {fname} to the data yourself and fit/export the pipeline "
                    "without that step")
            continue
        if type(est) not in sklearn_operator_name_map:
            raise ExportError(f"step '{path}' ({type(est).__name__}) has no ONNX converter; refit the "
                              "pipeline without it (or apply it to the data before the model)")
        for predictors in getattr(est, "_predictors", None) or []:
            for pred in predictors:
                nodes = pred.nodes
                if "is_categorical" in nodes.dtype.names and nodes["is_categorical"].any():
                    raise ExportError(f"step '{path}' uses native categorical splits, which skl2onnx "
                                      "cannot express; one-hot encode the categories instead")


def describe_inputs(model, sample) -> tuple[str, list[dict[str, Any]], list[str]]:
    """``(scheme, inputs, feature_names)`` for a model and a sample of its input rows."""
    import pandas as pd

    if isinstance(sample, pd.DataFrame):
        inputs = []
        for col in sample.columns:
            dtype = sample[col].dtype
            if pd.api.types.is_bool_dtype(dtype):
                raise ExportError(f"column '{col}' is boolean; convert it to strings or 0/1 numbers "
                                  "before fitting so it can be exported")
            kind = "double" if pd.api.types.is_numeric_dtype(dtype) else "string"
            inputs.append({"name": str(col), "column": str(col), "type": kind,
                           "shape": [None, 1]})
        return "columns", inputs, [str(c) for c in sample.columns]
    arr = np.asarray(sample)
    if arr.ndim != 2:
        raise ExportError(f"sample must be a DataFrame or a 2-D array, not {arr.ndim}-D")
    names = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else [f"x{i}" for i in range(arr.shape[1])]
    return "tensor", [{"name": "X", "type": "double", "shape": [None, arr.shape[1]]}], names


def _emitters(scope, container, default_kind=None):
    """``const(name, values, kind)`` adds an initializer and ``node(op, inputs, out=None, **attrs)`` a
    node, each returning the new value's unique name: the converters below build graphs with them."""
    from onnx import TensorProto

    def const(name, values, kind=default_kind):
        arr = np.asarray(values)
        vname = scope.get_unique_variable_name(name)
        flat = [v.encode() for v in arr.ravel().tolist()] if kind == TensorProto.STRING else arr.ravel().tolist()
        container.add_initializer(vname, kind, list(arr.shape), flat)
        return vname

    def node(kind, inputs, out=None, **attrs):
        out = out or scope.get_unique_variable_name(kind.lower())
        container.add_node(kind, inputs, [out], name=scope.get_unique_operator_name(kind), **attrs)
        return out

    return const, node


def _emit_label(const, node, classes, proba: str, out: str) -> None:
    """``label = classes[ArgMax(proba)]`` (the first class on ties, like ``np.argmax``)."""
    from onnx import TensorProto

    idx = node("ArgMax", [proba], axis=1, keepdims=0)
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub" or (classes.dtype.kind == "f" and np.all(classes == np.round(classes))):
        cname = const("classes", classes.astype(np.int64), TensorProto.INT64)
    else:
        cname = const("classes", classes.astype(str), TensorProto.STRING)
    node("Gather", [cname, idx], out=out, axis=0)


def _convert_hgb(scope, operator, container) -> None:
    """HistGradientBoosting{Classifier,Regressor} in float64 (Fix 1 in the module docstring).

    One ``ai.onnx.ml`` ``TreeEnsembleRegressor`` (opset 3) takes the float64 features, with
    float64 thresholds, leaf values and baseline (the ``*_as_tensor`` attributes), and gives the
    raw scores, one target per tree of an iteration: scikit-learn's ``_raw_predict``. A node
    sends ``x <= num_threshold`` to the left (true) child and NaN where ``missing_go_to_left``
    says, as in ``_predict_from_raw_data``. The scores come out as float32 (the operator's only
    output type, a relative rounding of 6e-8) and are cast back to float64 for the link:
    identity or ``Exp`` (log link: poisson, gamma) for a regressor; ``Sigmoid`` into ``[1 - p, p]``
    (binary) or ``Softmax`` (multiclass) for a classifier, whose label is ``classes_`` at the
    ``ArgMax`` of the probabilities (scikit-learn's rule).
    """
    from onnx import TensorProto, numpy_helper

    op = operator.raw_operator
    classifier = hasattr(op, "classes_")
    k = int(op.n_trees_per_iteration_)
    feature_ids, modes, values, true_ids, false_ids, missing_true = [], [], [], [], [], []
    tree_ids, node_ids, t_tree, t_node, t_target, t_weight = [], [], [], [], [], []
    tree = 0
    for iteration in op._predictors:
        for target, predictor in enumerate(iteration):
            nodes = predictor.nodes
            for i, nd in enumerate(nodes):
                tree_ids.append(tree)
                node_ids.append(i)
                if nd["is_leaf"]:
                    feature_ids.append(0)
                    modes.append("LEAF")
                    values.append(0.0)
                    true_ids.append(0)
                    false_ids.append(0)
                    missing_true.append(0)
                    t_tree.append(tree)
                    t_node.append(i)
                    t_target.append(target)
                    t_weight.append(float(nd["value"]))
                else:
                    feature_ids.append(int(nd["feature_idx"]))
                    modes.append("BRANCH_LEQ")
                    values.append(float(nd["num_threshold"]))
                    true_ids.append(int(nd["left"]))
                    false_ids.append(int(nd["right"]))
                    missing_true.append(int(nd["missing_go_to_left"]))
            tree += 1
    baseline = np.asarray(op._baseline_prediction, dtype=np.float64).ravel()

    def f64(name, arr):
        return numpy_helper.from_array(np.asarray(arr, dtype=np.float64), name)

    const, node = _emitters(scope, container, TensorProto.DOUBLE)
    x = operator.inputs[0].full_name
    if operator.inputs[0].type.__class__.__name__ != "DoubleTensorType":
        x = node("Cast", [x], to=TensorProto.DOUBLE)
    raw32 = scope.get_unique_variable_name("hgb_raw")
    container.add_node(
        "TreeEnsembleRegressor", [x], [raw32], op_domain="ai.onnx.ml", op_version=3,
        name=scope.get_unique_operator_name("TreeEnsembleRegressor"), n_targets=k,
        nodes_treeids=tree_ids, nodes_nodeids=node_ids, nodes_featureids=feature_ids, nodes_modes=modes,
        nodes_values_as_tensor=f64("nodes_values", values), nodes_truenodeids=true_ids,
        nodes_falsenodeids=false_ids, nodes_missing_value_tracks_true=missing_true,
        target_treeids=t_tree, target_nodeids=t_node, target_ids=t_target,
        target_weights_as_tensor=f64("target_weights", t_weight),
        base_values_as_tensor=f64("base_values", baseline), aggregate_function="SUM", post_transform="NONE")
    raw = node("Cast", [raw32], to=TensorProto.DOUBLE)
    if not classifier:
        link = type(op._loss.link).__name__
        if link == "IdentityLink":
            node("Identity", [raw], out=operator.outputs[0].full_name)
        elif link == "LogLink":
            node("Exp", [raw], out=operator.outputs[0].full_name)
        else:
            raise ExportError(f"HistGradientBoostingRegressor(loss={op.loss!r}) has a {link} that autodl "
                              "cannot export; use loss='squared_error', 'absolute_error', 'poisson' or 'gamma'")
        return
    proba = operator.outputs[1].full_name
    if k == 1:  # binary: [1 - p, p]
        p = node("Sigmoid", [raw])
        node("Concat", [node("Sub", [const("one", [1.0]), p]), p], out=proba, axis=1)
    else:
        node("Softmax", [raw], out=proba, axis=1)
    _emit_label(const, node, op.classes_, proba, operator.outputs[0].full_name)


def _custom_converters() -> dict:
    from skl2onnx.common._registration import get_converter
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    knn_clf = get_converter("SklearnKNeighborsClassifier")
    knn_reg = get_converter("SklearnKNeighborsRegressor")
    imputer = get_converter("SklearnSimpleImputer")

    def convert_imputer(scope, operator, container):
        op = operator.raw_operator
        mv = op.missing_values
        if (isinstance(operator.inputs[0].type, StringTensorType)
                and (mv is None or (isinstance(mv, float) and np.isnan(mv)))):
            from autodl.export.runtime import MISSING_STRING

            twin = copy.copy(op)
            twin.missing_values = MISSING_STRING
            operator.raw_operator = twin
            try:
                return imputer(scope, operator, container)
            finally:
                operator.raw_operator = op
        if isinstance(operator.inputs[0].type, DoubleTensorType):
            return _double_imputer(scope, operator, container)
        return imputer(scope, operator, container)

    def convert_knn_clf(scope, operator, container):
        if operator.raw_operator.weights == "distance":
            return _convert_knn_distance(scope, operator, container)
        return knn_clf(scope, operator, container)

    def convert_knn_reg(scope, operator, container):
        if operator.raw_operator.weights == "distance":
            return _convert_knn_distance(scope, operator, container)
        return knn_reg(scope, operator, container)

    return {HistGradientBoostingClassifier: _convert_hgb, HistGradientBoostingRegressor: _convert_hgb,
            SimpleImputer: convert_imputer, KNeighborsClassifier: convert_knn_clf,
            KNeighborsRegressor: convert_knn_reg}


def _convert_knn_distance(scope, operator, container) -> None:
    """k-NN with ``weights="distance"`` (see Fix 3 in the module docstring).

    Distances ``d`` come from skl2onnx's own ``onnx_cdist`` (a ``Scan`` over the training rows:
    exact differences, so an exact match gives ``d = 0`` as in scikit-learn's trees), then
    ``TopK(d, k, largest=0)``, ``w = 1 / d`` except on rows where some ``1 / d`` is infinite:
    there ``w = isinf(1 / d)`` (scikit-learn's ``_get_weights``). Classifier: per-class sums of
    ``w`` over the neighbours' one-hot labels, divided by ``sum(w)``; label = the class with the
    largest probability (first on ties, like ``np.argmax``). Regressor: ``sum(w * y) / sum(w)``.
    """
    from onnx import TensorProto
    from skl2onnx.algebra.complex_functions import onnx_cdist
    from skl2onnx.common.data_types import DoubleTensorType

    op = operator.raw_operator
    opv = container.target_opset
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    proto, dtype = (TensorProto.DOUBLE, np.float64) if double else (TensorProto.FLOAT, np.float32)
    metric = op.effective_metric_
    params = {key: v for key, v in (op.effective_metric_params_ or {}).items() if v is not None}  # w=None
    p = params.pop("p", None)
    if metric not in ("euclidean", "manhattan", "minkowski") or params or (metric == "minkowski" and p is None):
        raise ExportError(f"{type(op).__name__}(metric={metric!r}, metric_params={op.effective_metric_params_!r}) "
                          "with weights='distance': only Euclidean, Manhattan and Minkowski distances export; "
                          "use p=1 or p=2")
    classifier = hasattr(op, "classes_")
    if classifier and getattr(op, "outputs_2d_", False):
        raise ExportError(f"{type(op).__name__} with several outputs (multi-label) cannot be exported; fit "
                          "one classifier per output")
    fit_x = np.asarray(op._fit_X, dtype=dtype)
    k = int(op.n_neighbors)

    const, node = _emitters(scope, container, proto)

    dist = scope.get_unique_variable_name("knn_dist")
    extra = {"p": float(p)} if metric == "minkowski" else {}
    onnx_cdist(operator.inputs[0], fit_x, metric=metric, dtype=dtype, op_version=opv, dim_in=fit_x.shape[1],
               dim_out=fit_x.shape[0], output_names=[dist], **extra).add_to(scope, container)
    top_d, top_i = scope.get_unique_variable_name("top_dist"), scope.get_unique_variable_name("top_idx")
    container.add_node("TopK", [dist, const("k", [k], TensorProto.INT64)], [top_d, top_i], axis=1, largest=0,
                       sorted=1, name=scope.get_unique_operator_name("TopK"))
    inv = node("Reciprocal", [top_d])
    is_inf = node("IsInf", [inv])
    # TopK sorts ascending, so a row has an infinite 1/d iff its first neighbour has one
    one, zero = const("one", [1], TensorProto.INT64), const("zero", [0], TensorProto.INT64)
    row_has_inf = node("Slice", [is_inf, zero, one, one])
    weights = node("Where", [row_has_inf, node("Cast", [is_inf], to=proto), inv])
    w3 = node("Unsqueeze", [weights, const("axis2", [2], TensorProto.INT64)])  # [N, k, 1]
    if classifier:
        onehot = np.eye(len(op.classes_), dtype=dtype)[np.asarray(op._y, dtype=np.int64)]  # [n_fit, n_classes]
    else:
        onehot = np.asarray(op._y, dtype=dtype).reshape(len(fit_x), -1)  # [n_fit, n_targets]
    gathered = node("Gather", [const("neighbour_targets", onehot), top_i], axis=0)  # [N, k, C]
    sums = node("ReduceSum", [node("Mul", [gathered, w3]), one], keepdims=0)  # [N, C]
    if classifier:
        total = node("ReduceSum", [sums, one], keepdims=1)
        proba = operator.outputs[1].full_name
        node("Div", [sums, total], out=proba)
        _emit_label(const, node, op.classes_, proba, operator.outputs[0].full_name)
    else:
        total = node("ReduceSum", [weights, one], keepdims=1)  # [N, 1]
        node("Div", [sums, total], out=operator.outputs[0].full_name)


def _double_imputer(scope, operator, container) -> None:
    """SimpleImputer on float64 columns as ``Where(IsNaN(x), statistics, x)`` (onnxruntime's
    ai.onnx.ml Imputer is float32-only)."""
    from onnx import TensorProto
    from skl2onnx.operator_converters.common import concatenate_variables

    op = operator.raw_operator
    mv = op.missing_values
    if not (isinstance(mv, float) and np.isnan(mv)):
        raise ExportError(f"SimpleImputer(missing_values={mv!r}) on numbers: only NaN is supported")
    x = concatenate_variables(scope, operator.inputs, container)
    stats = scope.get_unique_variable_name("impute_values")
    container.add_initializer(stats, TensorProto.DOUBLE, [len(op.statistics_)],
                              np.asarray(op.statistics_, dtype=np.float64).tolist())
    mask = scope.get_unique_variable_name("is_nan")
    container.add_node("IsNaN", [x], [mask], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node("Where", [mask, stats, x], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Where"))


def final_estimator(model):
    from sklearn.pipeline import Pipeline

    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def _strip_passthrough(model):
    """The same fitted model without ``"passthrough"`` pipeline steps (skl2onnx cannot parse them)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        steps = [(n, _strip_passthrough(s)) for n, s in model.steps if s is not None and s != "passthrough"]
        if not steps:
            return "passthrough"
        return steps[0][1] if len(steps) == 1 else Pipeline(steps)
    if isinstance(model, ColumnTransformer):
        twin = copy.copy(model)
        twin.transformers_ = [(n, _strip_passthrough(t), cols) for n, t, cols in model.transformers_]
        return twin
    return model


def _split(model):
    """``(preprocessing or None, final estimator)`` of a fitted pipeline."""
    from sklearn.pipeline import Pipeline

    model = _strip_passthrough(model)
    if isinstance(model, Pipeline):
        pre = model.steps[:-1]
        pre_model = None if not pre else (pre[0][1] if len(pre) == 1 else Pipeline(pre))
        return pre_model, model.steps[-1][1]
    return None, model


def _is_tree_model(est) -> bool:
    """Models that see float32 features in ONNX: trees (as in scikit-learn), and SVR (onnxruntime
    implements ``SVMRegressor`` for float32 only)."""
    from sklearn.svm import SVR

    return (hasattr(est, "estimators_") or hasattr(est, "tree_")
            or isinstance(est, SVR))


def convert(model, sample, *, is_classifier: bool):
    """``(onnx ModelProto, scheme, inputs, feature_names, outputs)`` for a fitted sklearn model.

    Numeric inputs are float64 and the preprocessing runs in float64 (the same subtractions and
    divisions as scikit-learn, so the same bits). Forests and single trees then see the features
    cast to float32, exactly as scikit-learn's trees do (``X.astype(float32)``), and skl2onnx's
    threshold adjustment makes ``x <= threshold`` agree; HistGradientBoosting and linear models
    stay in float64. Without
    this, a float32 scaler can land one ulp away from scikit-learn's value, and scikit-learn
    trees put thresholds within an ulp of integer-valued features (seen on RandomForest with
    StandardScaler on small integer columns), so a tree would branch the other way.
    """
    require(("onnx", "skl2onnx"), "onnx", "ONNX export of scikit-learn models")
    import onnx
    from onnx import compose, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    check_supported(model)
    scheme, inputs, names = describe_inputs(model, sample)
    if scheme == "columns":
        # the raw column names, so the ColumnTransformer's column selection resolves; skl2onnx
        # sanitizes them into the graph's input names, read back below
        types = [(spec["column"], (DoubleTensorType if spec["type"] == "double" else StringTensorType)([None, 1]))
                 for spec in inputs]
    else:
        types = [("X", DoubleTensorType([None, inputs[0]["shape"][1]]))]
    pre, est = _split(model)
    tree = _is_tree_model(est)
    options = {id(est): {"zipmap": False}} if is_classifier else None
    opset, custom = TARGET_OPSET, _custom_converters()
    try:
        if pre is None:
            if tree:
                raise ExportError(f"{type(est).__name__} without preprocessing: put it in a Pipeline "
                                  "(any scaler or 'passthrough' steps) or fit it on float32 data")
            onx = convert_sklearn(est, initial_types=types, options=options, target_opset=opset,
                                  custom_conversion_functions=custom)
        else:
            width = int(np.asarray(pre.transform(_head(sample))).shape[1])
            pre_onx = convert_sklearn(pre, initial_types=types, target_opset=opset,
                                      custom_conversion_functions=custom)
            feat = pre_onx.graph.output[0].name
            if tree:  # cast to float32 like sklearn's trees do
                pre_onx.graph.node.append(helper.make_node("Cast", [feat], ["features32"], to=onnx.TensorProto.FLOAT,
                                                           name="CastToFloat32"))
                del pre_onx.graph.output[:]
                pre_onx.graph.output.append(helper.make_tensor_value_info("features32", onnx.TensorProto.FLOAT,
                                                                          [None, width]))
                feat = "features32"
            est_type = (FloatTensorType if tree else DoubleTensorType)([None, width])
            est_onx = convert_sklearn(est, initial_types=[("features", est_type)], options=options,
                                      target_opset=opset, custom_conversion_functions=custom)
            onx = compose.merge_models(_with_opsets(pre_onx), _with_opsets(est_onx),
                                       io_map=[(feat, "features")], prefix2="est_")
            _unprefix_outputs(onx, "est_")
    except ExportError:
        raise
    except (RuntimeError, ValueError, TypeError, NotImplementedError, KeyError, AttributeError) as exc:
        raise ExportError(f"skl2onnx cannot convert {type(est).__name__}: {first_line(exc)}") from None
    graph_inputs = [i.name for i in onx.graph.input]
    if len(graph_inputs) != len(inputs):
        raise ExportError(f"skl2onnx produced {len(graph_inputs)} inputs for {len(inputs)} columns")
    for spec, name in zip(inputs, graph_inputs):
        spec["name"] = name
    out_names = [o.name for o in onx.graph.output]
    if is_classifier:
        outputs = [{"name": out_names[0], "role": "label"}, {"name": out_names[1], "role": "probabilities"}]
    else:
        outputs = [{"name": out_names[0], "role": "prediction"}]
    return onx, scheme, inputs, names, outputs


def _unprefix_outputs(onx, prefix: str) -> None:
    """Give the merged graph's outputs back their skl2onnx names (``label``, ``probabilities``)."""
    taken = {v for node in onx.graph.node for v in (*node.input, *node.output)}
    for out in onx.graph.output:
        new = out.name[len(prefix):]
        if not out.name.startswith(prefix) or new in taken:
            continue
        for node in onx.graph.node:
            for k, name in enumerate(node.output):
                if name == out.name:
                    node.output[k] = new
            for k, name in enumerate(node.input):
                if name == out.name:
                    node.input[k] = new
        out.name = new


def _with_opsets(onx):
    """Both halves import the same opsets (merge_models requires equal versions per domain)."""
    from onnx import helper

    versions = {o.domain: o.version for o in onx.opset_import}
    versions.update(TARGET_OPSET)  # skl2onnx declares lower versions for some halves
    del onx.opset_import[:]
    onx.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    return onx


def _head(sample):
    return sample.iloc[:2] if hasattr(sample, "iloc") else np.asarray(sample)[:2]


def reference_outputs(model, frame, is_classifier: bool) -> dict[str, np.ndarray]:
    """The original model's outputs by role, for verification."""
    if is_classifier:
        return {"label": np.asarray(model.predict(frame)), "probabilities": np.asarray(model.predict_proba(frame))}
    return {"prediction": np.asarray(model.predict(frame), dtype=np.float64)}


