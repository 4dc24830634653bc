"""AutoDLClassifier / AutoDLRegressor follow scikit-learn's estimator contract."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import autodl
from autodl.tabular.estimators import EXPECTED_FAILED_CHECKS, AutoDLClassifier, AutoDLRegressor

TINY = dict(n_trials=2, cv=2, seed=0)


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def _expected_failed(estimator):
    return EXPECTED_FAILED_CHECKS


@pytest.mark.slow
@parametrize_with_checks([AutoDLClassifier(**TINY), AutoDLRegressor(**TINY)],
                         expected_failed_checks=_expected_failed)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_lazy_export_and_clone():
    assert autodl.AutoDLClassifier is AutoDLClassifier and autodl.AutoDLRegressor is AutoDLRegressor
    est = AutoDLClassifier(n_trials=3, metric="f1", features="tsfresh")
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin is not est


def test_classifier_fit_predict_score_on_a_frame():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    X, y = load_iris(return_X_y=True, as_frame=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    clf = AutoDLClassifier(n_trials=3, cv=3).fit(X_tr, y_tr)
    assert list(clf.classes_) == [0, 1, 2] and clf.n_features_in_ == 4
    assert list(clf.feature_names_in_) == list(X.columns)
    assert clf.best_config_["model"] in autodl.Space.load("tabular")["model"].choices
    assert 0.5 < clf.best_score_ <= 1 and clf.score(X_te, y_te) > 0.8
    proba = clf.predict_proba(X_te)
    assert proba.shape == (len(X_te), 3) and np.allclose(proba.sum(axis=1), 1)


def test_regressor_with_metric():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    reg = AutoDLRegressor(n_trials=2, cv=2, metric="mae").fit(X[:200], y[:200])
    assert reg.metric_ == "mae" and reg.best_score_ > 0
    assert reg.predict(X[200:210]).shape == (10,)
