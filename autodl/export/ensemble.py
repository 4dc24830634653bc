"""A weighted ensemble of scikit-learn pipelines as ONE ONNX graph.

Each member is converted on its own exactly as a single model is
(:func:`autodl.export.sklearn_onnx.convert`: its preprocessing, float32 features for forests, its
estimator), then the graphs are joined (``onnx.compose.add_prefix_graph``: every node, edge and
initializer of member ``i`` gets the prefix ``m<i>_``; the raw-column inputs keep their names
and are shared):

* classification: each member's ``probabilities`` cast to float64, multiplied by its weight and
  summed (``Sum``) into ``probabilities``; ``label`` = the class labels (a constant tensor)
  gathered at ``ArgMax`` of the sum: the :class:`~autodl.tabular.ensemble.EnsembleModel` rule;
* regression: the weighted sum of the members' values, ``[batch, 1]`` float64.

onnxruntime runs the file alone; :func:`autodl.export.export_onnx` verifies it against the
ensemble's Python predictions like any model (labels equal, probabilities within the tolerance).
"""

from __future__ import annotations

import numpy as np

from autodl.errors import ExportError


def convert(ensemble, sample):
    """``(onnx ModelProto, scheme, inputs, feature_names, outputs)`` for an
    :class:`~autodl.tabular.ensemble.EnsembleModel` of fitted scikit-learn pipelines."""
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    from autodl.export import sklearn_onnx

    clf = ensemble.task == "classification"
    members = ensemble.flat_members()  # a member that averages its fold models contributes each of them
    parts = [sklearn_onnx.convert(model, sample, is_classifier=clf) for _, model in members]
    _, scheme, inputs, names, _ = parts[0]
    shape = [(i["column"], i["type"]) for i in inputs] if scheme == "columns" else None
    nodes, inits, infos = [], [], []
    summands = []
    opsets: dict[str, int] = {}
    for i, ((weight, _), (onx, scheme_i, inputs_i, _, outputs)) in enumerate(zip(members, parts)):
        if scheme_i != scheme or (shape is not None and [(s["column"], s["type"]) for s in inputs_i] != shape):
            raise ExportError(f"ensemble member {i} takes other inputs than member 0; the members cannot share one graph")
        for spec, first in zip(inputs_i, inputs):
            if spec["name"] != first["name"]:
                raise ExportError(f"ensemble member {i} names its input '{spec['name']}', member 0 '{first['name']}'")
        prefix = f"m{i}_"
        graph = compose.add_prefix_graph(onx.graph, prefix, rename_inputs=False)
        nodes.extend(graph.node)
        inits.extend(graph.initializer)
        infos.extend(graph.value_info)
        for op in onx.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
        role = "probabilities" if clf else "prediction"
        out = prefix + next(o["name"] for o in outputs if o["role"] == role)
        cast, weighted = f"{prefix}ens_f64", f"{prefix}ens_weighted"
        inits.append(numpy_helper.from_array(np.array(weight, dtype=np.float64), f"{prefix}ens_weight"))
        nodes.append(helper.make_node("Cast", [out], [cast], to=TensorProto.DOUBLE, name=f"{prefix}EnsCast"))
        if not clf:  # a member's values may be [batch] or [batch, 1]
            inits.append(numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), f"{prefix}ens_shape"))
            nodes.append(helper.make_node("Reshape", [cast, f"{prefix}ens_shape"], [f"{prefix}ens_col"],
                                          name=f"{prefix}EnsReshape"))
            cast = f"{prefix}ens_col"
        nodes.append(helper.make_node("Mul", [cast, f"{prefix}ens_weight"], [weighted], name=f"{prefix}EnsWeight"))
        summands.append(weighted)
    if clf:
        labels = np.asarray(ensemble.classes_)
        label_tensor = (numpy_helper.from_array(labels.astype(np.int64), "ens_classes")
                        if np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool
                        else helper.make_tensor("ens_classes", TensorProto.STRING, [len(labels)],
                                                [str(c).encode() for c in labels]))
        inits.append(label_tensor)
        nodes += [helper.make_node("Sum", summands, ["probabilities"], name="EnsSum"),
                  helper.make_node("ArgMax", ["probabilities"], ["ens_index"], axis=1, keepdims=0, name="EnsArgMax"),
                  helper.make_node("Gather", ["ens_classes", "ens_index"], ["label"], axis=0, name="EnsLabel")]
        label_type = TensorProto.INT64 if label_tensor.data_type == TensorProto.INT64 else TensorProto.STRING
        graph_outputs = [helper.make_tensor_value_info("label", label_type, [None]),
                         helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, len(labels)])]
        outputs = [{"name": "label", "role": "label"}, {"name": "probabilities", "role": "probabilities"}]
    else:
        nodes.append(helper.make_node("Sum", summands, ["variable"], name="EnsSum"))
        graph_outputs = [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])]
        outputs = [{"name": "variable", "role": "prediction"}]
    graph = helper.make_graph(nodes, "autodl_ensemble", list(parts[0][0].graph.input), graph_outputs,
                              initializer=inits, value_info=infos)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
                              ir_version=max(p[0].ir_version for p in parts))
    onnx.checker.check_model(model)
    return model, scheme, [dict(s) for s in inputs], names, outputs
