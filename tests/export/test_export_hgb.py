"""ONNX export of HistGradientBoosting in float64, verified against scikit-learn.

scikit-learn's HGB compares float64 features with float64 thresholds. A float32 export (what
skl2onnx 1.20 gives) sends rows down the wrong branch whenever neighbouring values round to the
same float32: epoch seconds (step 128 at 1.6e9), large ids, amounts in the millions. Each model
here is fitted on such a column, and the file's outputs are compared with scikit-learn's own
``predict``/``predict_proba`` on rows it did not see, NaN rows included.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from autodl.export import export_onnx, predict_table  # noqa: E402


def _frame(n=1500, seed=0):
    """``t``: epoch seconds one to 100,000 s apart (float32 cannot tell 64 s apart there); ``a``: noise
    with 10 % missing; targets follow a fast oscillation in ``t``, so the splits sit between
    values that are equal in float32."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"t": 1.6e9 + rng.integers(0, 100_000, n).astype(float), "a": rng.normal(size=n)})
    X.loc[rng.random(n) < 0.1, "a"] = np.nan
    signal = np.sin(X["t"].to_numpy() / 3000) + np.nan_to_num(X["a"].to_numpy())
    return X, signal


def _pipe(est, X, y):
    return make_pipeline(ColumnTransformer([("num", "passthrough", ["t", "a"])]), est).fit(X, y)


def _rows(seed=1):
    X, _ = _frame(400, seed)
    return X


def test_float32_cannot_separate_the_column():
    """The premise: the fitted thresholds sit between values that float32 rounds together."""
    X, signal = _frame()
    pipe = _pipe(HistGradientBoostingRegressor(max_iter=30, random_state=0), X, signal)
    rows = _rows()["t"].to_numpy()
    thresholds = np.array([n["num_threshold"] for p in pipe[-1]._predictors for n in p[0].nodes
                           if not n["is_leaf"] and n["feature_idx"] == 0])
    flips = ((rows[:, None] <= thresholds) != (rows[:, None].astype(np.float32) <= thresholds.astype(np.float32)))
    assert flips.any()


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_matches_scikit_learn(tmp_path, loss):
    X, signal = _frame()
    y = signal * 10 + 30 if loss == "squared_error" else np.exp(signal)  # poisson wants y > 0
    pipe = _pipe(HistGradientBoostingRegressor(loss=loss, max_iter=60, random_state=0), X, y)
    rows = _rows()
    path = export_onnx(pipe, tmp_path / "m.onnx", sample=X.iloc[:200])
    got = predict_table(path, rows)["prediction"].to_numpy(dtype=float)
    want = pipe.predict(rows)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_matches_scikit_learn(tmp_path, n_classes):
    X, signal = _frame()
    y = np.asarray(["low", "mid", "high"])[np.digitize(signal, [-0.5, 0.5] if n_classes == 3 else [0.0])]
    pipe = _pipe(HistGradientBoostingClassifier(max_iter=60, random_state=0), X, y)
    rows = _rows()
    path = export_onnx(pipe, tmp_path / "m.onnx", sample=X.iloc[:200])
    preds = predict_table(path, rows)
    np.testing.assert_array_equal(preds["prediction"].astype(str).to_numpy(), pipe.predict(rows).astype(str))
    proba = preds[[f"proba_{c}" for c in pipe.classes_]].to_numpy(dtype=float)
    np.testing.assert_allclose(proba, pipe.predict_proba(rows), atol=1e-6)


def test_a_tree_that_is_one_leaf(tmp_path):
    """A constant target: every tree is a single leaf; the file predicts the constant."""
    X, _ = _frame(300)
    pipe = _pipe(HistGradientBoostingRegressor(max_iter=5), X, np.full(len(X), 4.25))
    assert all(len(p[0].nodes) == 1 for p in pipe[-1]._predictors)
    got = predict_table(export_onnx(pipe, tmp_path / "m.onnx", sample=X), _rows())["prediction"]
    np.testing.assert_allclose(got.to_numpy(dtype=float), 4.25)
