"""Every model of the tabular space fits and predicts; metrics, imbalanced classes, torch MLP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris

import autodl
from autodl import Space
from autodl.tabular.metrics import METRICS
from autodl.tabular.pipeline import MODELS, build_pipeline, make_cv


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def mixed(n=160, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=n), "z": rng.uniform(0, 10, n),
                      "color": rng.choice(["red", "green", "blue"], n).astype(object)})
    yc = np.where(X["x"] + (X["color"] == "red") > 0.5, "pos", "neg")
    yr = 2 * X["x"].to_numpy() + X["z"].to_numpy() + rng.normal(scale=0.1, size=n)
    X.loc[rng.random(n) < 0.1, "x"] = np.nan
    X.loc[rng.random(n) < 0.1, "color"] = None
    return X, yc, yr


def test_space_lists_every_model():
    space = Space.load("tabular")
    assert set(space["model"].choices) == set(MODELS)
    rng = np.random.default_rng(0)
    for _ in range(50):  # every sampled config builds
        build_pipeline(space.sample(rng), mixed()[0], "classification")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_each_model_fits_and_predicts(model, task):
    X, yc, yr = mixed()
    y = yc if task == "classification" else yr
    space = Space.load("tabular")
    config = next(c for c in (space.sample(np.random.default_rng(s)) for s in range(500)) if c["model"] == model)
    config.update({"encoder": "ordinal"} if model == "hist_gb" else {})
    # the space's weakest SVMs (C ~ 0.03) predict one class by design: fit one that can learn
    config.update({"svm.C": 1.0, "svm.gamma": 0.1} if model == "svm" else {})
    pipe = build_pipeline(config, X, task, seed=0).fit(X.iloc[:120], y[:120])
    pred = pipe.predict(X.iloc[120:])
    assert pred.shape == (40,)
    if task == "classification":
        assert set(pred) <= {"pos", "neg"}
        proba = pipe.predict_proba(X.iloc[120:])
        assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1)
        assert (pipe.predict(X.iloc[:120]) == y[:120]).mean() > 0.6
    else:
        assert np.isfinite(pred).all()


def test_knn_weights_are_searched():
    space = Space.load("tabular")
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        config = space.sample(rng)
        assert ("knn.weights" in config) == (config["model"] == "knn")  # conditional on k-NN
        seen.add(config.get("knn.weights"))
    assert seen == {None, "uniform", "distance"}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_knn_weights_reach_the_model(task):
    X, yc, yr = mixed()
    y = yc if task == "classification" else yr
    config = {"model": "knn", "knn.n_neighbors": 9, "knn.p": 2}
    assert build_pipeline(config, X, task).named_steps["model"].weights == "uniform"  # default
    distance = build_pipeline({**config, "knn.weights": "distance"}, X, task).fit(X, y)
    uniform = build_pipeline({**config, "knn.weights": "uniform"}, X, task).fit(X, y)
    assert distance.named_steps["model"].weights == "distance"
    # with 1/distance weights a training row is its own neighbour at distance 0 and decides
    # alone; averaging 9 neighbours uniformly does not reproduce the training targets
    if task == "classification":
        assert (distance.predict(X) == y).all() and (uniform.predict(X) != y).any()
    else:
        np.testing.assert_allclose(distance.predict(X), y)
        assert not np.allclose(uniform.predict(X), y)


@pytest.mark.parametrize("metric", [m for m, v in METRICS.items() if v.task == "classification"])
def test_classification_metrics(metric):
    X, y = load_iris(return_X_y=True, as_frame=True)
    r = autodl.search(X, y, n_trials=2, cv=3, seed=1, metric=metric)
    assert r.metric == metric and np.isfinite(r.best_score) and np.isfinite(r.test_score)


@pytest.mark.parametrize("metric", ["r2", "rmse", "mae"])
def test_regression_metrics(metric):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    r = autodl.search(X.iloc[:150], y.iloc[:150], n_trials=2, cv=3, seed=1, metric=metric)
    assert r.metric == metric and np.isfinite(r.best_score)


def test_binary_roc_auc_and_imbalanced_classes_with_stratified_cv():
    rng = np.random.default_rng(0)
    n = 200
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = np.where(X["a"] > 1.4, "rare", "common")  # about 8% rare
    assert 8 <= (y == "rare").sum() <= 24
    cv = make_cv("classification", y, 5, 0)
    for _, test in cv.split(X, y):
        assert (y[test] == "rare").sum() >= 1  # every fold sees the rare class
    r = autodl.search(X, y, n_trials=3, cv=5, seed=0, metric="balanced_accuracy")
    assert r.best_score > 0.6
    r = autodl.search(X, y, n_trials=2, cv=3, seed=0, metric="roc_auc")
    assert 0.5 < r.best_score <= 1


def test_torch_mlp_estimator_contract():
    from autodl.tabular.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

    X, y = load_iris(return_X_y=True)
    clf = TorchMLPClassifier(hidden_layer_sizes=(16,), learning_rate=1e-2, max_epochs=40, random_state=0)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    clf.fit(X, y)
    assert clf.score(X, y) > 0.8 and clf.n_features_in_ == 4 and clf.n_epochs_ >= 1
    again = clone(clf).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X))  # seeded: reproducible
    Xr, yr = load_diabetes(return_X_y=True)
    reg = TorchMLPRegressor(max_epochs=30, random_state=0).fit(Xr, yr)
    assert reg.score(Xr, yr) > 0.2
    with pytest.raises(ValueError, match="activation"):
        TorchMLPClassifier(activation="gelu").fit(X, y)


def test_mlp_model_is_saved_without_pickle(tmp_path):
    from autodl.tabular.persist import load_model, save_model

    X, yc, _ = mixed()
    pipe = build_pipeline({"model": "mlp", "mlp.max_epochs": 10}, X, "classification").fit(X, yc)
    back = load_model(save_model(pipe, tmp_path / "m.skops"))
    np.testing.assert_allclose(back.predict_proba(X), pipe.predict_proba(X))
