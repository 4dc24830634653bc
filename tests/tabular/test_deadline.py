"""A time budget is a deadline: no trial starts after it, running ones are stopped and recorded
PRUNED, and ``autodl.search`` returns within the budget plus a small slack, refit included."""

from __future__ import annotations

import time

import pytest
from sklearn.datasets import load_iris

import autodl
from autodl import Categorical, Space, Study, TrialState, UserError

#: what the whole call may take beyond its budget (see autodl/tabular/search.py): the refit
#: estimate's error and process start-up/shutdown, with room for a loaded 2-core machine
SLACK = 1.5
IN_ORDER = {"shuffle": False}  # grid points in the order of the choices


def sleepy(trial):
    time.sleep(trial.config["sleep"])
    return trial.config["sleep"]


def test_study_stops_a_running_trial_at_the_timeout():
    study = Study(Space({"sleep": Categorical([0.05, 120.0])}), searcher="grid",
                  searcher_params=IN_ORDER)
    study.optimize(sleepy, n_trials=1)  # the quick one, in this process
    t0 = time.monotonic()
    study.optimize(sleepy, timeout=4.0, stop_at_timeout=True)  # a worker process by default
    took = time.monotonic() - t0
    assert took < 4.0 + SLACK
    quick, slow = study.trials
    assert quick.state == TrialState.COMPLETE and quick.value == 0.05
    assert slow.state == TrialState.PRUNED and slow.value is None
    assert slow.message.startswith("stopped after") and "time budget ran out" in slow.message
    assert study.best_value == 0.05 and study.n_finished == 2


def test_study_keeps_time_free_after_the_search():
    # the best trial took ~0.5 s, so reserve_ratio=6 keeps ~3 s free: the slow trial is stopped
    # and the call returns ~3 s before the timeout
    study = Study(Space({"sleep": Categorical([0.5, 120.0])}), searcher="grid",
                  searcher_params=IN_ORDER)
    study.optimize(sleepy, n_trials=1)
    reserve = 6 * study.best_trial.duration
    t0 = time.monotonic()
    study.optimize(sleepy, timeout=8.0, stop_at_timeout=True, reserve_ratio=6)
    took = time.monotonic() - t0
    assert took < 8.0 - reserve + SLACK and took < 8.0
    slow = study.trials[1]
    assert slow.state == TrialState.PRUNED and slow.message.startswith("stopped after")


def test_deadline_cutoffs():
    from autodl.study.study import _Deadline

    d = _Deadline(at=100.0, ratio=1.0)
    assert d.end == 100.0
    assert d.cutoff(started=60.0) == 80.0  # finishing at 80 leaves 20 s for its 20 s refit
    d.reserve = 30.0  # the best trial so far needs 30 s after the search
    assert d.end == 70.0 and d.cutoff(started=60.0) == 70.0
    assert _Deadline(at=100.0).cutoff(started=99.0) == 100.0  # no reserve: the timeout itself


def test_without_stop_at_timeout_a_running_trial_finishes():
    study = Study(Space({"sleep": Categorical([1.5])}), searcher="grid")
    study.optimize(sleepy, timeout=0.2)  # inline, as before: the trial outlives the timeout
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]


def test_inline_deadline_stops_an_objective_that_checks_should_stop():
    from autodl import TrialPruned

    def patient(trial):
        while True:  # would run forever without the deadline
            if trial.should_stop():
                raise TrialPruned("deadline")
            time.sleep(0.01)

    study = Study(Space({"x": Categorical([0.0])}), searcher="random")
    t0 = time.monotonic()
    study.optimize(patient, timeout=1.0, executor="inline", stop_at_timeout=True, n_trials=1)
    took = time.monotonic() - t0
    assert [t.state for t in study.trials] == [TrialState.PRUNED]
    assert 0.9 <= took < 1.5


@pytest.mark.parametrize("kwargs, pattern", [
    ({"reserve_ratio": 0.5}, "only applies with stop_at_timeout"),
    ({"stop_at_timeout": True, "reserve_ratio": -1}, "reserve_ratio is -1"),
])
def test_deadline_arguments_are_checked(kwargs, pattern):
    study = Study(Space({"sleep": Categorical([0.0])}), searcher="grid")
    with pytest.raises(UserError, match=pattern):
        study.optimize(sleepy, timeout=1.0, **kwargs)


# ---------------------------------------------------------------------- autodl.search
#: a deliberately slow model: 100,000 trees take minutes per fold on iris
SLOW_FOREST = {"model": Categorical(["linear", "random_forest"]),
               "random_forest.n_estimators": Categorical([100_000],
                                                         condition={"model": ["random_forest"]})}


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True, as_frame=True)


def test_search_stops_a_slow_model_at_the_deadline(iris, tmp_path):
    from autodl.tabular.search import resume_run

    X, y = iris
    run = tmp_path / "run"
    autodl.search(X, y, space=Space(SLOW_FOREST), searcher="grid", searcher_params=IN_ORDER,
                  n_trials=1, cv=3, seed=0, out=run)  # linear, no deadline
    budget = 6.0
    t0 = time.monotonic()
    result = resume_run(run, n_trials=2, time_budget=budget)  # the slow forest, then the refit
    took = time.monotonic() - t0
    assert took < budget + SLACK  # search, refit of the winner and the run folder
    linear, forest = result.study.trials
    assert linear.state == TrialState.COMPLETE and forest.state == TrialState.PRUNED
    assert forest.message.startswith("stopped after")
    assert result.best_config == {"model": "linear"} and result.test_score > 0.8
    summary = result.summary()
    assert summary["n_failed"] == 0 and summary["n_complete"] == 1  # stopped is not failed
    assert (run / "model.skops").is_file()


def test_search_with_only_slow_models_says_to_give_more_time(iris):
    X, y = iris
    space = Space({"model": Categorical(["random_forest"]),
                   "random_forest.n_estimators": Categorical([100_000])})
    t0 = time.monotonic()
    with pytest.raises(UserError, match="stopped at the deadline of the 5s time budget"):
        autodl.search(X, y, space=space, searcher="grid", time_budget=5.0, cv=3)
    assert time.monotonic() - t0 < 5.0 + SLACK


def test_refit_ratio_follows_rows_and_folds(iris):
    from autodl.tabular.search import REFIT_SAFETY, SearchSpec, prepare, refit_ratio

    X, y = iris
    with_test = prepare(SearchSpec(n_trials=1, cv=5, test_size=0.2), X, y)
    # 5 folds fit 4 x 120 rows; the refit fits 120 (test score) + 150 rows
    assert refit_ratio(with_test) == pytest.approx(REFIT_SAFETY * 270 / 480)
    no_test = prepare(SearchSpec(n_trials=1, cv=3, test_size=0), X, y)
    assert refit_ratio(no_test) == pytest.approx(REFIT_SAFETY * 150 / 300)


def test_a_time_budget_refuses_the_inline_executor(iris, tmp_path):
    from autodl.tabular.search import SearchSpec, start_run

    X, y = iris
    spec = SearchSpec(time_budget=5.0, executor="inline")
    with pytest.raises(UserError, match="time budget stops running trials"):
        start_run(spec, tmp_path / "run", X, y)
    assert not (tmp_path / "run").exists()
