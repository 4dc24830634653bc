"""ONNX export of k-NN (uniform and distance weights), verified against scikit-learn.

skl2onnx 1.20 exports ``weights="distance"`` as uniform weighting; autodl's own converter
(``autodl.export.sklearn_onnx._convert_knn_distance``) must reproduce scikit-learn, including
its rule for exact matches (zero distance: those training rows get all the weight).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

import autodl  # noqa: E402
from autodl.errors import ExportError  # noqa: E402
from autodl.export import predict_table  # noqa: E402
from autodl.export.core import PROBA_ATOL, VALUE_ATOL, VALUE_RTOL  # noqa: E402
from autodl.tabular.pipeline import build_pipeline  # noqa: E402


def _frame(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = pd.DataFrame({"num a": rng.randn(n), "b": rng.rand(n) * 100, "count": rng.randint(0, 5, n),
                      "color": rng.choice(["red", "green", "blue"], n)})
    X.loc[rng.rand(n) < 0.1, "num a"] = np.nan
    yc = np.where(X["num a"].fillna(0) + (X["color"] == "red") > 0.3, "yes", "no").astype(object)
    yc[:40] = "maybe"
    yr = X["b"].to_numpy() * 3 + X["count"] + rng.randn(n) * 5
    return X, yc, yr


def _check_parity(pipe, path, rows, task):
    preds = predict_table(path, rows)
    if task == "classification":
        labels = preds["prediction"].astype(str).to_numpy()
        np.testing.assert_array_equal(labels, pipe.predict(rows).astype(str))
        proba = preds[[f"proba_{c}" for c in pipe.classes_]].to_numpy()
        np.testing.assert_allclose(proba, pipe.predict_proba(rows), rtol=0, atol=PROBA_ATOL)
        return proba
    got = preds["prediction"].to_numpy()
    np.testing.assert_allclose(got, pipe.predict(rows), rtol=VALUE_RTOL, atol=VALUE_ATOL)
    return got


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("p,scaler", [(2, "standard"), (1, "minmax")])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_parity_in_pipeline(tmp_path, task, weights, p, scaler):
    X, yc, yr = _frame()
    y = yc if task == "classification" else yr
    config = {"model": "knn", "impute": "median", "scaler": scaler, "knn.n_neighbors": 7,
              "knn.p": p, "knn.weights": weights}
    pipe = build_pipeline(config, X, task).fit(X.iloc[:220], y[:220])
    held_out = X.iloc[220:]
    # export_onnx itself compares onnxruntime with the pipeline at batch sizes 1, 7 and 64
    path = autodl.export_onnx(pipe, tmp_path / "knn.onnx", sample=held_out, metadata={"config": config})
    got = _check_parity(pipe, path, held_out, task)

    # the check must be able to tell the two weightings apart on these rows
    other = "uniform" if weights == "distance" else "distance"
    twin = build_pipeline({**config, "knn.weights": other}, X, task).fit(X.iloc[:220], y[:220])
    ref_other = twin.predict_proba(held_out) if task == "classification" else twin.predict(held_out)
    assert np.abs(got - ref_other).max() > 1e-3


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_distance_exact_matches_take_all_the_weight(tmp_path, task):
    """Rows equal to training rows: scikit-learn gives the zero-distance neighbours all the weight."""
    X, yc, yr = _frame(seed=1)
    y = yc if task == "classification" else yr
    config = {"model": "knn", "impute": "mean", "scaler": "standard", "knn.n_neighbors": 9,
              "knn.weights": "distance"}
    pipe = build_pipeline(config, X, task).fit(X, y)
    train_rows = X.iloc[:60]  # no NaN fixes here: imputed rows are still exact matches
    path = autodl.export_onnx(pipe, tmp_path / "knn.onnx", sample=train_rows)
    got = _check_parity(pipe, path, train_rows, task)
    if task == "classification":
        expected = (np.asarray(pipe.classes_)[None, :] == y[:60, None]).astype(float)
        np.testing.assert_array_equal(got, expected)  # one-hot on the training label, no 1e6 smoothing
    else:
        np.testing.assert_allclose(got, y[:60], rtol=VALUE_RTOL, atol=VALUE_ATOL)


def test_distance_duplicate_training_rows_share_the_weight(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 3))
    X[1] = X[0]  # the same point twice, with different targets
    X[2] = X[0]
    yc = rng.integers(0, 3, 80)
    yc[:3] = [0, 1, 1]
    yr = rng.normal(size=80) * 10
    query = np.vstack([X[:1], rng.normal(size=(20, 3))])

    clf = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=6, weights="distance")).fit(X, yc)
    autodl.export_onnx(clf, tmp_path / "clf.onnx", sample=query)
    np.testing.assert_allclose(clf.predict_proba(query[:1]), [[1 / 3, 2 / 3, 0]], atol=1e-12)
    proba = _onnx_outputs(tmp_path / "clf.onnx", query)[1]
    np.testing.assert_allclose(proba, clf.predict_proba(query), rtol=0, atol=PROBA_ATOL)

    reg = make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=6, weights="distance")).fit(X, yr)
    autodl.export_onnx(reg, tmp_path / "reg.onnx", sample=query)
    pred = _onnx_outputs(tmp_path / "reg.onnx", query)[0].ravel()
    assert pred[0] == pytest.approx(yr[:3].mean(), rel=1e-12)
    np.testing.assert_allclose(pred, reg.predict(query), rtol=VALUE_RTOL, atol=VALUE_ATOL)


def _onnx_outputs(path, X):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: np.asarray(X, dtype=np.float64)})


def test_distance_bare_regressor_on_array(tmp_path):
    from sklearn.neighbors import KNeighborsRegressor

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(150, 4)), rng.normal(size=150)
    model = KNeighborsRegressor(n_neighbors=4, weights="distance", p=3).fit(X[:100], y[:100])
    autodl.export_onnx(model, tmp_path / "reg.onnx", sample=X[100:])
    pred = _onnx_outputs(tmp_path / "reg.onnx", X[100:])[0].ravel()
    np.testing.assert_allclose(pred, model.predict(X[100:]), rtol=VALUE_RTOL, atol=VALUE_ATOL)


def test_distance_unsupported_metric_refused_without_file(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    model = KNeighborsClassifier(n_neighbors=3, weights="distance", metric="chebyshev").fit(X, y)
    with pytest.raises(ExportError, match="chebyshev"):
        autodl.export_onnx(model, tmp_path / "knn.onnx", sample=X[:20])
    assert not list(tmp_path.iterdir())
