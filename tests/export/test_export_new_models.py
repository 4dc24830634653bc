"""ONNX parity for the models added to the tabular space: k-NN, SVM, extra trees, torch MLP,
ordinal encoding; feature-engineering steps are refused with a one-line error."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

import autodl  # noqa: E402
import autodl.features  # noqa: E402
from autodl.errors import ExportError  # noqa: E402
from autodl.export import predict_table  # noqa: E402
from autodl.tabular.pipeline import build_pipeline  # noqa: E402
from test_export_sklearn import _frame  # noqa: E402

CONFIGS = {
    "knn_manhattan": {"model": "knn", "knn.n_neighbors": 7, "knn.p": 1},
    "knn_euclidean": {"model": "knn", "knn.n_neighbors": 3, "knn.p": 2, "scaler": "minmax"},
    "svm": {"model": "svm", "svm.C": 3.0, "svm.gamma": 0.1},
    "extra_trees": {"model": "extra_trees", "extra_trees.n_estimators": 25, "extra_trees.max_depth": 8},
    "mlp_relu": {"model": "mlp", "mlp.hidden_size": 24, "mlp.n_layers": 2, "mlp.max_epochs": 15},
    "mlp_tanh": {"model": "mlp", "mlp.activation": "tanh", "mlp.max_epochs": 15, "scaler": "none"},
    "ordinal_linear": {"model": "linear", "encoder": "ordinal"},
}


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_parity(tmp_path, name, task):
    X, yc, yr = _frame()
    y = yc if task == "classification" else yr
    config = {"impute": "median", "scaler": "standard", **CONFIGS[name]}
    pipe = build_pipeline(config, X, task).fit(X.iloc[:220], y[:220])
    path = autodl.export_onnx(pipe, tmp_path / "m.onnx", sample=X.iloc[220:])  # verified inside
    preds = predict_table(path, X.iloc[220:])
    if task == "classification":
        proba = preds[[f"proba_{c}" for c in pipe.classes_]].to_numpy()
        np.testing.assert_allclose(proba, pipe.predict_proba(X.iloc[220:]), atol=1e-5)
        agree = preds["prediction"].astype(str).to_numpy() == pipe.predict(X.iloc[220:]).astype(str)
        assert agree.mean() > 0.98  # ties in float32 may break either way
    else:
        np.testing.assert_allclose(preds["prediction"], pipe.predict(X.iloc[220:]), rtol=1e-4, atol=1e-3)


def test_mlp_with_integer_and_string_labels(tmp_path):
    from autodl.tabular.torch_mlp import TorchMLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    for labels in (np.array([3, 7, 11]), np.array(["a", "b", "c"])):
        y = labels[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
        pipe = make_pipeline(StandardScaler(), TorchMLPClassifier(max_epochs=10, random_state=0)).fit(X, y)
        autodl.export_onnx(pipe, tmp_path / "m.onnx", sample=X[:40])


def test_feature_steps_are_refused(tmp_path):
    pytest.importorskip("featuretools")
    import pandas as pd

    X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    y = (X["a"] * X["b"] > 50).astype(int)
    pipe = build_pipeline({"model": "linear"}, X, "classification",
                          features=autodl.features.make_features("featuretools")).fit(X, y)
    with pytest.raises(ExportError, match="FeaturetoolsTransformer.*no ONNX converter"):
        autodl.export_onnx(pipe, tmp_path / "m.onnx", sample=X)
    assert not list(tmp_path.iterdir())
