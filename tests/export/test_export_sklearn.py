"""ONNX export of every tabular model kind, verified against the scikit-learn pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

import autodl  # noqa: E402
from autodl.errors import ExportError, UserError  # noqa: E402
from autodl.export import predict_table, read_metadata  # noqa: E402
from autodl.tabular.pipeline import build_pipeline  # noqa: E402


def _frame(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({
        "num a": rng.randn(n), "b": rng.rand(n) * 100, "count": rng.randint(0, 5, n),
        "color": rng.choice(["red", "green", "blue"], n), "size": rng.choice(["s", "m"], n)})
    X.loc[rng.rand(n) < 0.1, "num a"] = np.nan
    X.loc[rng.rand(n) < 0.1, "color"] = np.nan
    yc = np.where(X["num a"].fillna(0) + (X["color"] == "red") > 0.3, "yes", "no").astype(object)
    yc[:40] = "maybe"
    yr = X["b"].to_numpy() * 3 + (X["size"] == "s") + rng.randn(n) * 0.1
    return X, yc, yr


CONFIGS = {
    "linear": {"model": "linear", "impute": "median", "scaler": "standard"},
    "random_forest": {"model": "random_forest", "impute": "mean", "scaler": "standard",
                      "random_forest.n_estimators": 30},
    "hist_gb": {"model": "hist_gb", "impute": "median", "scaler": "robust", "hist_gb.max_iter": 30},
}


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("model", list(CONFIGS))
def test_parity_mixed_frame(tmp_path, model, task):
    X, yc, yr = _frame()
    y = yc if task == "classification" else yr
    pipe = build_pipeline(CONFIGS[model], X, task).fit(X.iloc[:220], y[:220])
    path = autodl.export_onnx(pipe, tmp_path / "m.onnx", sample=X.iloc[220:],
                              metadata={"config": CONFIGS[model], "score": 0.5})
    assert path.is_file() and not list(tmp_path.glob(".*tmp"))
    preds = predict_table(path, X.iloc[220:])
    if task == "classification":
        assert (preds["prediction"].astype(str).to_numpy() == pipe.predict(X.iloc[220:]).astype(str)).all()
        proba = preds[[f"proba_{c}" for c in pipe.classes_]].to_numpy()
        np.testing.assert_allclose(proba, pipe.predict_proba(X.iloc[220:]), atol=1e-5)
    else:
        np.testing.assert_allclose(preds["prediction"], pipe.predict(X.iloc[220:]), atol=1e-5, rtol=1e-4)


def test_every_scaler_and_passthrough(tmp_path):
    X, yc, _ = _frame(seed=1)
    for scaler in ["standard", "minmax", "robust", "none"]:
        pipe = build_pipeline({**CONFIGS["random_forest"], "scaler": scaler}, X, "classification").fit(X, yc)
        autodl.export_onnx(pipe, tmp_path / f"{scaler}.onnx", sample=X.iloc[:50])


def test_metadata(tmp_path):
    import onnx

    X, yc, _ = _frame()
    pipe = build_pipeline(CONFIGS["linear"], X, "classification").fit(X, yc)
    path = autodl.export_onnx(pipe, tmp_path / "m.onnx", sample=X.iloc[:40],
                              metadata={"config": CONFIGS["linear"], "score": 0.875})
    meta = read_metadata(onnx.load(path))
    assert meta["feature_names"] == list(X.columns)
    assert [i["type"] for i in meta["inputs"]] == ["double", "double", "double", "string", "string"]
    assert meta["class_labels"] == ["maybe", "no", "yes"]
    assert meta["version"] == autodl.__version__
    assert meta["config"] == CONFIGS["linear"] and meta["score"] == 0.875
    assert meta["task"] == "classification" and meta["input_scheme"] == "columns"


def test_unsupported_step_refused_and_no_file(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = np.abs(np.random.RandomState(0).randn(80, 3))
    y = (X[:, 0] > 0.7).astype(int)
    pipe = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(X, y)
    with pytest.raises(ExportError, match="functiontransformer.*log1p"):
        autodl.export_onnx(pipe, tmp_path / "m.onnx", sample=X)
    assert list(tmp_path.iterdir()) == []
    assert issubclass(ExportError, UserError)


def test_failed_verification_leaves_old_file_alone(tmp_path, monkeypatch):
    from autodl.export import core

    X, yc, _ = _frame()
    pipe = build_pipeline(CONFIGS["linear"], X, "classification").fit(X, yc)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    monkeypatch.setattr(core, "PROBA_ATOL", -1.0)  # nothing can pass
    with pytest.raises(ExportError, match="output 'probabilities' differs from the model by"):
        autodl.export_onnx(pipe, target, sample=X.iloc[:20])
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_array_input_pipeline(tmp_path):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.random.RandomState(0).randn(100, 4)
    y = X @ [1.0, 2.0, 0.0, -1.0]
    pipe = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    path = autodl.export_onnx(pipe, tmp_path / "m.onnx", sample=X[:10])
    preds = predict_table(path, pd.DataFrame(X[:10], columns=["x0", "x1", "x2", "x3"]))
    np.testing.assert_allclose(preds["prediction"], pipe.predict(X[:10]), atol=1e-5)


def test_search_result_export(tmp_path):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    result = autodl.search(X, y, n_trials=2, cv=2, seed=0)
    path = result.export_onnx(tmp_path / "best.onnx")
    preds = predict_table(path, X)
    assert (preds["prediction"].to_numpy() == result.predict(X)).all()
