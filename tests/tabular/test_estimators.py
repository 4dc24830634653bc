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


# ---------------------------------------------------------------------------- random_state
def _trials(est) -> list:
    """What the search tried and found, by trial id (durations vary between runs)."""
    board = est.leaderboard_.drop(columns=["duration"]).sort_values("id")
    return board.astype(object).where(board.notna(), None).to_dict("records")


def test_random_state_is_stored_unchanged_and_cloned():
    rs = np.random.RandomState(0)
    est = AutoDLClassifier(n_trials=2, random_state=rs)
    assert est.get_params()["random_state"] is rs
    assert AutoDLRegressor().get_params()["random_state"] is None
    assert clone(AutoDLClassifier(random_state=7)).get_params()["random_state"] == 7


def test_random_state_seeds_the_search_and_takes_precedence_over_seed(iris):
    X, y = iris
    by_random_state = AutoDLClassifier(n_trials=2, cv=2, seed=0, random_state=3).fit(X, y)
    by_seed = AutoDLClassifier(n_trials=2, cv=2, seed=3).fit(X, y)
    default = AutoDLClassifier(n_trials=2, cv=2, seed=0).fit(X, y)
    assert _trials(by_random_state) == _trials(by_seed)
    assert _trials(by_random_state) != _trials(default)
    # None (the default) keeps `seed`
    unset = AutoDLClassifier(n_trials=2, cv=2, seed=3, random_state=None).fit(X, y)
    assert _trials(unset) == _trials(by_seed)
    assert by_random_state.get_params()["random_state"] == 3  # fit did not change it


@pytest.mark.parametrize("bad", ["0", 1.5, True])
def test_a_bad_random_state_is_a_clear_error_at_fit(iris, bad):
    X, y = iris
    must = "random_state is .*, but must be None, an int or a numpy.random.RandomState"
    with pytest.raises(ValueError, match=must):
        AutoDLClassifier(n_trials=1, cv=2, random_state=bad).fit(X, y)
