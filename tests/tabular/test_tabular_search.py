"""autodl.search on tables: results, task inference, mixed data, run folders, bad inputs."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris

import autodl
from autodl import DataError, Space, TrialState, UserError
from autodl.tabular import load_best_model
from autodl.study.executors import available_memory
from autodl.tabular.data import infer_task


def _finished(result: dict) -> int:
    """Trials the run finished, from the result.json envelope's counts."""
    return result["n_complete"] + result["n_failed"] + result["n_pruned"]


SMALL = dict(cv=3, seed=0)


pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def iris_result(iris):
    X, y = iris
    return autodl.search(X, y, n_trials=4, **SMALL)


def check_result(result, X, n_trials, direction):
    space = Space.load("tabular")
    space.validate_config(result.best_config)
    assert np.isfinite(result.best_score)
    lb = result.leaderboard
    assert isinstance(lb, pd.DataFrame)
    if result.ensemble:  # the ensemble's row first (its out-of-fold score), then the trials
        assert lb.iloc[0]["id"] == "ensemble" and lb.iloc[0][result.metric] == result.ensemble["ensemble_score"]
        lb = lb.iloc[1:]
    n_complete = sum(t.state == TrialState.COMPLETE for t in result.study.trials)
    assert len(lb) == n_complete >= 1
    assert result.study.n_finished == n_trials
    values = list(lb[result.metric])  # the score column is named after the metric, with its CV spread
    assert (lb[f"{result.metric}_cv_std"] >= 0).all()
    assert values == sorted(values, reverse=direction == "maximize")
    assert values[0] == result.best_score
    assert result.best_model is not None
    pred = result.predict(X)
    assert pred.shape == (len(X),)
    return pred


def test_iris_classification(iris, iris_result):
    X, y = iris
    r = iris_result
    assert r.task == "classification" and r.metric == "accuracy"
    pred = check_result(r, X, 4, "maximize")
    assert set(np.unique(pred)) <= set(np.unique(y))
    assert 0.5 < r.best_score <= 1.0
    assert (pred == y.to_numpy()).mean() > 0.8
    assert r.test_score is not None and 0 <= r.test_score <= 1
    proba = r.predict_proba(X)
    assert proba.shape == (len(X), 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert r.run_dir is None
    s = r.summary()
    assert _finished(s) == 4 and s["best_config"] == r.best_config


def test_numpy_input_works(iris):
    X, y = iris
    r = autodl.search(X.to_numpy(), y.to_numpy(), n_trials=2, test_size=0, **SMALL)
    assert r.predict(X.to_numpy()[:7]).shape == (7,)
    assert r.test_score is None


def test_diabetes_regression():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    r = autodl.search(X, y, n_trials=3, **SMALL)
    assert r.task == "regression" and r.metric == "r2"
    pred = check_result(r, X, 3, "maximize")
    assert pred.dtype.kind == "f"
    with pytest.raises(AttributeError):
        r.predict_proba(X)


def test_regression_metric_to_minimize():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    r = autodl.search(X.iloc[:200], y.iloc[:200], n_trials=3, metric="rmse", **SMALL)
    assert r.metric == "rmse" and r.study.direction == "minimize"
    check_result(r, X.iloc[:200], 3, "minimize")
    assert r.best_score > 0
    assert r.best_score == min(t.value for t in r.study.trials if t.value is not None)


def test_task_inference():
    assert infer_task(pd.Series([0, 1, 2] * 20)) == "classification"
    assert infer_task(pd.Series(["a", "b"] * 5)) == "classification"
    assert infer_task(pd.Series([True, False] * 5)) == "classification"
    assert infer_task(np.array([0.0, 1.0] * 30)) == "classification"
    assert infer_task(pd.Series(np.linspace(0, 1, 50))) == "regression"
    assert infer_task(pd.Series(np.arange(200))) == "regression"


def test_forcing_regression_on_integer_labels(iris):
    X, y = iris
    r = autodl.search(X, y, task="regression", n_trials=2, **SMALL)
    assert r.task == "regression" and r.metric == "r2"
    assert r.predict(X).dtype.kind == "f"
    assert r.study.n_finished == 2


def test_forcing_classification(iris):
    X, y = iris
    r = autodl.search(X, y.astype(float), task="classification", n_trials=2, **SMALL)
    assert r.task == "classification"


def mixed_frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue"], n).astype(object)
    size = rng.normal(size=n)
    age = rng.integers(18, 80, n).astype(float)
    y = np.where((color == "red") | (size > 0.8), "yes", "no")
    color[rng.random(n) < 0.1] = None
    size[rng.random(n) < 0.1] = np.nan
    age[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"color": color, "size": size, "age": age}), pd.Series(y, name="label")


def test_categorical_columns_and_missing_values_end_to_end(tmp_path):
    X, y = mixed_frame()
    assert X.isna().any().all()
    r = autodl.search(X, y, n_trials=3, out=tmp_path / "run", **SMALL)
    assert r.task == "classification"
    assert all(t.state == TrialState.COMPLETE for t in r.study.trials), \
        [t.message for t in r.study.trials]
    pred = r.predict(X)
    assert pred.shape == (len(X),) and set(pred) <= {"yes", "no"}
    # unseen category and all-missing row at prediction time
    new = pd.DataFrame({"color": ["purple", None], "size": [0.1, np.nan], "age": [np.nan, 30.0]})
    assert r.predict(new).shape == (2,)
    # the saved model handles the same data, prepared as the search's pipelines saw it
    from autodl.tabular.columns import prepare_frame

    model = load_best_model(tmp_path / "run")
    assert list(model.predict(prepare_frame(X, r.plan))) == list(pred)


def test_out_writes_the_run_folder(iris, tmp_path):
    X, y = iris
    run = tmp_path / "run"
    r = autodl.search(X, y, n_trials=3, out=run, **SMALL)
    for name in ("study.db", "run.json", "result.json", "model.skops"):
        assert (run / name).is_file(), name
    assert r.run_dir == run
    result = json.loads((run / "result.json").read_text())
    assert result["best_config"] == r.best_config
    assert result["best_value"] == pytest.approx(r.best_score)
    assert result["extra"]["task"] == "classification" and result["metric"] == "accuracy"
    assert _finished(result) == 3
    spec = json.loads((run / "run.json").read_text())
    assert spec["n_trials"] == 3 and spec["seed"] == 0 and spec["cv"] == 3
    assert spec["n_workers"] == 1  # n_trials alone: one worker, in this process (reproducible)
    # the study is readable on its own
    study = autodl.Study.load(run)
    assert len(study.trials) == 3 and study.best_config == r.best_config
    # the saved model predicts exactly what the result's model predicts
    model = load_best_model(run)
    np.testing.assert_array_equal(model.predict(X), r.best_model.predict(X))
    np.testing.assert_array_equal(model.predict(X), r.predict(X))


def test_out_refuses_a_folder_with_a_run(iris, tmp_path):
    X, y = iris
    run = tmp_path / "run"
    autodl.search(X, y, n_trials=1, out=run, **SMALL)
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(UserError, match="already holds a run"):
        autodl.search(X, y, n_trials=1, out=run, **SMALL)
    assert sorted(p.name for p in run.iterdir()) == before
    assert len(autodl.Study.load(run).trials) == 1


def test_same_seed_same_best_config(iris, iris_result):
    X, y = iris
    again = autodl.search(X, y, n_trials=4, **SMALL)
    assert again.best_config == iris_result.best_config
    assert again.best_score == iris_result.best_score
    assert [t.config for t in again.study.trials] == [t.config for t in iris_result.study.trials]


def test_grid_searcher_on_a_custom_space_stops_when_exhausted(iris, tmp_path):
    X, y = iris
    space = Space({
        "model": autodl.Categorical(["linear"]),
        "linear.alpha": autodl.Float(1e-2, 10.0, log=True, condition={"model": ["linear"]}),
    })
    r = autodl.search(X, y, n_trials=10, space=space, searcher="grid",
                      searcher_params={"points": 3}, out=tmp_path / "run", **SMALL)
    assert r.study.searcher.name == "grid"
    alphas = sorted(t.config["linear.alpha"] for t in r.study.trials)
    assert alphas == pytest.approx([1e-2, 10 ** -0.5, 10.0])
    assert r.study.space == space
    # the custom space is kept in run.json so the run can be resumed
    spec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert Space.from_dict(spec["space"]) == space


@pytest.mark.parametrize("kwargs, pattern", [
    ({"n_trials": 0}, "trials"),
    ({"n_trials": -2}, "trials"),
    ({"n_trials": 2, "metric": "nope"}, "unknown metric 'nope'"),
    ({"n_trials": 2, "metric": "rmse"}, "rmse.*regression"),
    ({"n_trials": 2, "searcher": "nope"}, "unknown searcher 'nope'"),
    ({"n_trials": 2, "task": "ranking"}, "ranking"),
    ({"n_trials": 2, "cv": 1}, "cv"),
    ({"n_trials": 2, "test_size": 1.5}, "test size"),
    ({"n_trials": 2, "space": "no_such_space"}, "no_such_space"),
])
def test_bad_inputs_raise_user_error_and_leave_nothing(iris, tmp_path, kwargs, pattern):
    X, y = iris
    with pytest.raises(UserError, match=pattern):
        autodl.search(X, y, seed=0, cv=kwargs.pop("cv", 3), out=tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


def test_wrong_metric_for_regression(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    with pytest.raises(UserError, match="accuracy.*classification"):
        autodl.search(X, y, n_trials=1, metric="accuracy", out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_length_mismatch(iris, tmp_path):
    X, y = iris
    with pytest.raises(DataError, match="150.*149"):
        autodl.search(X, y[:-1], n_trials=1, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert issubclass(DataError, UserError)


def test_regression_on_text_target_is_an_error():
    X, y = mixed_frame()
    with pytest.raises(UserError, match="numeric"):
        autodl.search(X, y, task="regression", n_trials=1)


def test_classification_needs_two_classes(iris):
    X, _ = iris
    with pytest.raises(UserError, match="two classes"):
        autodl.search(X, np.zeros(len(X)), task="classification", n_trials=1)


def test_time_budget_alone(tmp_path):
    # trials run in worker processes, which take 3-8 s to start on a loaded 2-core machine, so
    # the budget leaves room for one trial after that; test_deadline.py tests the deadline
    X, y = load_iris(return_X_y=True, as_frame=True)
    r = autodl.search(X, y, time_budget=15.0, out=tmp_path / "run", **SMALL)
    assert r.study.n_finished >= 1
    assert r.search_seconds < 15.0 + 1.5  # a deadline, refit included
    # under a budget, n_workers=None (the default) is one worker per usable core (iris is small)
    cores = len(os.sched_getaffinity(0))
    if available_memory() > cores * 2**31:
        assert json.loads((tmp_path / "run" / "run.json").read_text())["n_workers"] == cores


def test_in_memory_data_run_can_be_resumed(tmp_path):
    from autodl.tabular.search import resume_run

    X, y = mixed_frame(n=80)
    run = tmp_path / "run"
    first = autodl.search(X, y, n_trials=2, out=run, **SMALL)
    assert (run / "data.parquet").is_file()
    before = [(t.id, t.value, t.config) for t in first.study.trials]
    again = resume_run(run, n_trials=3)
    after = [(t.id, t.value, t.config) for t in again.study.trials]
    assert len(after) == 3 and after[:2] == before
    assert again.task == "classification"
    assert _finished(json.loads((run / "result.json").read_text())) == 3
    assert again.predict(X).shape == (len(X),)
