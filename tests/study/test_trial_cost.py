"""Trials predicted to overrun the time they would get are skipped (``Study.optimize(trial_cost=)``),
and the tabular cost model that predicts them (``autodl.tabular.cost.TrialCost``)."""

from __future__ import annotations

import time

import pytest

from autodl import Categorical, Float, Space, Study, TrialState
from autodl.study.study import MAX_SKIPS_IN_A_ROW
from autodl.study.trial import FrozenTrial
from autodl.tabular.cost import SVM_SECONDS_PER_ROW2, TrialCost


def sleepy(trial) -> float:
    time.sleep(0.05)
    return trial.config["x"]


def test_a_trial_predicted_to_overrun_is_skipped_and_the_searcher_goes_on():
    space = Space({"kind": Categorical(["fast", "slow"]), "x": Float(0.0, 1.0)})
    asked = []

    def cost(config, budget, finished):  # a slow config would need far more than the 8 s budget
        asked.append(len(finished))
        return 100.0 if config["kind"] == "slow" else 0.05

    study = Study(space, searcher="random", direction="maximize", seed=0)
    start = time.monotonic()
    study.optimize(sleepy, n_trials=20, timeout=8.0, stop_at_timeout=True, executor="inline", trial_cost=cost)
    assert time.monotonic() - start < 6.0  # 20 trials of 0.05 s, nothing waited for a slow one
    trials = study.trials
    slow = [t for t in trials if t.config["kind"] == "slow"]
    fast = [t for t in trials if t.config["kind"] == "fast"]
    assert len(trials) == 20 and slow and fast  # skipped trials count as finished trials
    assert all(t.state == TrialState.PRUNED and t.message.startswith("skipped: expected to need 100.0s")
               for t in slow)
    assert all(t.state == TrialState.COMPLETE for t in fast)
    assert all(t.duration is not None and t.duration < 0.5 for t in slow)
    assert asked == sorted(asked) and asked[-1] >= 10  # the rule sees the trials finished so far


def test_no_new_trial_starts_when_everything_proposed_is_too_costly():
    space = Space({"x": Float(0.0, 1.0)})
    study = Study(space, searcher="random", direction="maximize", seed=0)
    start = time.monotonic()
    study.optimize(sleepy, timeout=30.0, stop_at_timeout=True, executor="inline",
                   trial_cost=lambda config, budget, finished: 60.0)
    assert time.monotonic() - start < 10.0  # returns early instead of spinning until the deadline
    assert len(study.trials) == MAX_SKIPS_IN_A_ROW
    assert all(t.state == TrialState.PRUNED and "skipped" in t.message for t in study.trials)


def test_without_a_deadline_the_cost_rule_is_not_used():
    study = Study(Space({"x": Float(0.0, 1.0)}), searcher="random", direction="maximize", seed=0)
    study.optimize(sleepy, n_trials=3, executor="inline", trial_cost=lambda c, b, f: 1e9)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3


def _done(config, seconds, budget=None, state=TrialState.COMPLETE, message=None):
    return FrozenTrial(0, state, config, 0.5, budget, message, started=100.0, finished=100.0 + seconds)


def test_trial_cost_scales_a_family_by_its_size_parameter_and_budget():
    cost = TrialCost(fit_rows=1000, fits=5, max_budget=9)
    finished = [_done({"model": "hist_gb", "hist_gb.max_iter": 100}, 2.0, budget=9),
                _done({"model": "hist_gb", "hist_gb.max_iter": 50}, 1.0, budget=9),
                _done({"model": "hist_gb", "hist_gb.max_iter": 100}, 0.7, budget=3),
                _done({"model": "linear"}, 0.3, budget=9)]
    # 2 s per 100 iterations at the full budget (the median of 0.02, 0.02 and 0.021 s per unit)
    assert cost({"model": "hist_gb", "hist_gb.max_iter": 300}, 9, finished) == pytest.approx(6.0)
    assert cost({"model": "hist_gb", "hist_gb.max_iter": 300}, 3, finished) == pytest.approx(2.0)
    assert cost({"model": "linear", "linear.alpha": 5.0}, 9, finished) == pytest.approx(0.3)
    assert cost({"model": "knn"}, 9, finished) is None  # a family nobody has run: no idea
    # a trial stopped at the deadline is a lower bound of its cost; a skipped or failed one says nothing
    stopped = [_done({"model": "random_forest", "random_forest.n_estimators": 100}, 20.0, budget=9,
                     state=TrialState.PRUNED, message="stopped after 20.0s: the time budget ran out"),
               _done({"model": "extra_trees", "extra_trees.n_estimators": 100}, 0.0, budget=9,
                     state=TrialState.PRUNED, message="skipped: expected to need 40.0s, 3.0s left"),
               _done({"model": "extra_trees", "extra_trees.n_estimators": 100}, 0.1, budget=9,
                     state=TrialState.FAILED, message="MemoryError")]
    assert cost({"model": "random_forest", "random_forest.n_estimators": 200}, 9, stopped) == pytest.approx(40.0)
    assert cost({"model": "extra_trees", "extra_trees.n_estimators": 100}, 9, stopped) is None


def test_an_rbf_svm_on_many_rows_is_predicted_from_its_quadratic_cost():
    assert TrialCost(fit_rows=500, fits=5)({"model": "svm", "svm.C": 1.0}, None, []) < 0.1
    big = TrialCost(fit_rows=16_000, fits=5)({"model": "svm", "svm.C": 1.0}, None, [])
    assert big == pytest.approx(SVM_SECONDS_PER_ROW2 * 16_000 ** 2 * 5) and big > 60
