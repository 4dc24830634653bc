"""Study.optimize in one process: budgets, directions, failures, pruning, ask/tell, leaderboard."""

from __future__ import annotations

import math
import time

import pandas as pd
import pytest

from autodl import (Categorical, Float, Int, SearchExhausted, Space, Study, TrialPruned, TrialState,
                    UserError)
from autodl.searchers import RandomSearch


def space() -> Space:
    return Space({
        "x": Float(-3.0, 3.0),
        "k": Int(1, 5),
        "c": Categorical(["a", "b"]),
    })


def quad(trial) -> float:
    return (trial.config["x"] - 1.0) ** 2 + trial.config["k"]


# ---------------------------------------------------------------------------- budgets
def test_optimize_n_trials_and_it_adds_up():
    study = Study(space(), seed=0)
    study.optimize(quad, n_trials=5)
    assert len(study.trials) == 5 and study.n_finished == 5
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    study.optimize(quad, n_trials=3)
    assert len(study.trials) == 8
    assert [t.id for t in study.trials] == sorted({t.id for t in study.trials})
    for t in study.trials:
        assert t.value == pytest.approx((t.config["x"] - 1.0) ** 2 + t.config["k"])
        space().validate_config(t.config)
        assert t.duration is not None and t.duration >= 0


def test_optimize_timeout_stops_starting_trials():
    def slow(trial):
        time.sleep(0.05)
        return 1.0

    study = Study(space(), seed=0)
    t0 = time.monotonic()
    study.optimize(slow, timeout=0.4)
    elapsed = time.monotonic() - t0
    assert 2 <= len(study.trials) <= 10
    assert elapsed < 0.4 + 1.0  # the last trial started before the deadline, then it stopped
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_timeout_and_n_trials_whichever_first():
    study = Study(space(), seed=0)
    study.optimize(quad, n_trials=3, timeout=60)
    assert len(study.trials) == 3


@pytest.mark.parametrize("kwargs", [
    {"n_trials": 0}, {"n_trials": -1}, {"n_trials": 2.5}, {"timeout": 0}, {"timeout": -3},
    {"n_trials": 1, "n_workers": 0},
])
def test_bad_budgets_are_user_errors(kwargs):
    study = Study(space())
    with pytest.raises(UserError):
        study.optimize(quad, **kwargs)
    assert study.trials == []


def test_bad_direction_is_a_user_error():
    with pytest.raises(UserError, match="direction"):
        Study(space(), direction="max")


def test_unknown_searcher_is_a_user_error():
    with pytest.raises(UserError, match="random"):
        Study(space(), searcher="nope")


def test_space_by_name():
    study = Study("tabular", seed=0)
    assert "model" in study.space


# ---------------------------------------------------------------------------- direction
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_direction_picks_the_best_trial(direction):
    study = Study(space(), direction=direction, seed=1)
    study.optimize(lambda t: t.config["x"], n_trials=15)
    values = [t.value for t in study.trials]
    want = min(values) if direction == "minimize" else max(values)
    assert study.best_trial.value == want
    assert study.best_value == want
    assert study.best_config == study.best_trial.config


def test_maximize_searcher_sees_flipped_values():
    study = Study(space(), direction="maximize", seed=1)
    study.optimize(lambda t: t.config["x"], n_trials=10)
    # searchers always minimize: the searcher's best is the study's max, negated
    assert study.searcher.best().value == -study.best_value


def test_best_trial_without_completed_trials():
    study = Study(space())
    with pytest.raises(ValueError, match="no trial"):
        study.best_trial
    study.optimize(lambda t: None, n_trials=2)
    with pytest.raises(ValueError, match="no trial"):
        study.best_value


# ---------------------------------------------------------------------------- failures
def _failing(result):
    def objective(trial):
        if trial.id == 2:
            if isinstance(result, BaseException):
                raise result
            return result
        return 1.0
    return objective


@pytest.mark.parametrize("result, message", [
    (ValueError("boom at x"), "ValueError: boom at x"),
    (ZeroDivisionError("division by zero"), "ZeroDivisionError"),
    (float("nan"), "nan"),
    (float("inf"), "inf"),
    (float("-inf"), "-inf"),
    (None, "None"),
    ("abc", "str"),
    ([1.0], "list"),
    (True, "True"),
])
def test_bad_objective_result_fails_the_trial_and_the_study_goes_on(result, message):
    study = Study(space(), seed=0)
    study.optimize(_failing(result), n_trials=4)
    trials = study.trials
    assert len(trials) == 4
    bad = trials[1]
    assert bad.id == 2
    assert bad.state == TrialState.FAILED
    assert bad.value is None
    assert message in bad.message
    assert "\n" not in bad.message
    assert [t.state for t in trials if t.id != 2] == [TrialState.COMPLETE] * 3
    assert study.n_finished == 4
    assert study.best_value == 1.0


def test_exception_message_says_where():
    def objective(trial):
        raise RuntimeError("kaput")

    study = Study(space())
    study.optimize(objective, n_trials=1)
    assert "test_study_optimize.py" in study.trials[0].message


def test_numpy_and_int_results_are_fine():
    import numpy as np

    study = Study(space())
    study.optimize(lambda t: np.float32(0.5) if t.id % 2 else 3, n_trials=2)
    assert [t.value for t in study.trials] == [0.5, 3.0]
    assert all(type(t.value) is float for t in study.trials)


def test_failed_trials_are_told_to_the_searcher_as_failures():
    study = Study(space(), seed=0)
    study.optimize(lambda t: float("nan"), n_trials=3)
    assert len(study.searcher.observations) == 3
    assert study.searcher.best() is None


# ---------------------------------------------------------------------------- pruning
def test_trial_pruned_keeps_the_last_reported_value():
    def objective(trial):
        for step in range(5):
            trial.report(10.0 - step, step)
            if step == 2:
                raise TrialPruned()
        return 0.0

    study = Study(space())
    study.optimize(objective, n_trials=2)
    for t in study.trials:
        assert t.state == TrialState.PRUNED
        assert t.value == 8.0
        assert dict(t.intermediate) == {0: 10.0, 1: 9.0, 2: 8.0}
    # pruned trials count toward n_trials but are not the best
    assert study.n_finished == 2
    with pytest.raises(ValueError):
        study.best_trial


def test_pruned_without_reports_has_no_value():
    study = Study(space())
    study.optimize(lambda t: t.prune(), n_trials=1)
    t = study.trials[0]
    assert t.state == TrialState.PRUNED and t.value is None


class PruneAfterTwo(RandomSearch):
    """Prunes a trial once it has reported three values; records what it was told."""

    name = "prune_after_two"

    def __init__(self, space, seed=None):
        super().__init__(space, seed)
        self.reports = []

    def report(self, trial, value, step):
        super().report(trial, value, step)
        self.reports.append((trial.id, step, value))

    def should_prune(self, trial):
        return len(self.intermediate.get(trial.id, {})) >= 3


def test_report_and_should_prune_reach_the_searcher():
    searcher = PruneAfterTwo(space(), seed=0)
    study = Study(space(), searcher=searcher, direction="maximize")
    seen = []

    def objective(trial):
        for step in range(10):
            trial.report(float(step), step)
            prune = trial.should_prune()
            seen.append((trial.id, step, prune))
            if prune:
                raise TrialPruned()
        return 100.0

    study.optimize(objective, n_trials=2)
    assert [s for s in seen if s[0] == 1] == [(1, 0, False), (1, 1, False), (1, 2, True)]
    # the searcher minimizes: it was told the negated values
    assert (1, 1, -1.0) in searcher.reports
    t = study.trials[0]
    assert t.state == TrialState.PRUNED and t.value == 2.0
    assert dict(t.intermediate) == {0: 0.0, 1: 1.0, 2: 2.0}


def test_random_search_never_prunes():
    study = Study(space())
    flags = []

    def objective(trial):
        trial.report(1.0, 0)
        flags.append(trial.should_prune())
        return 1.0

    study.optimize(objective, n_trials=3)
    assert flags == [False, False, False]


def test_report_rejects_non_finite_values():
    def objective(trial):
        trial.report(float("nan"), 0)
        return 1.0

    study = Study(space())
    study.optimize(objective, n_trials=1)
    t = study.trials[0]
    assert t.state == TrialState.FAILED and "nan" in t.message


def test_report_takes_the_value_then_the_step_as_in_optuna():
    # code ported from Optuna: report(value, step)
    def objective(trial):
        trial.report(0.93, 5)
        trial.report(0.95, step=6)
        return 0.95

    study = Study(space(), direction="maximize")
    study.optimize(objective, n_trials=1)
    assert dict(study.trials[0].intermediate) == {5: 0.93, 6: 0.95}


@pytest.mark.parametrize("step", [0.5, 5.0, True, "1", None, [1]])
def test_report_refuses_a_step_that_is_not_an_int(step):
    study = Study(space())
    trial = study.ask()
    must = r"step is .*, but must be an int; the order is report\(value, step\)"
    with pytest.raises(TypeError, match=must):
        trial.report(0.9, step)
    assert trial.intermediate == {}
    assert study.storage.get_trial(trial.id).intermediate == {}


def test_report_refuses_a_negative_step_and_takes_numpy_ints():
    import numpy as np

    study = Study(space())
    trial = study.ask()
    with pytest.raises(ValueError, match="step is -1, but must be >= 0"):
        trial.report(0.9, -1)
    trial.report(0.9, np.int64(3))
    study.tell(trial, 0.9)
    assert dict(study.trials[0].intermediate) == {3: 0.9}


def test_report_in_the_old_order_fails_the_trial_with_the_reason():
    def objective(trial):
        trial.report(2, 0.93)  # report(step, value): the order of older autodl versions
        return 0.93

    study = Study(space())
    study.optimize(objective, n_trials=1)
    t = study.trials[0]
    assert t.state == TrialState.FAILED and "report(value, step)" in t.message
    assert dict(t.intermediate) == {}


def test_user_attrs_are_stored():
    def objective(trial):
        trial.set_user_attr("extra", 7)
        return 1.0

    study = Study(space())
    study.optimize(objective, n_trials=1)
    assert study.trials[0].user_attrs == {"extra": 7}


def test_callbacks_see_each_finished_trial():
    seen = []
    study = Study(space())
    study.optimize(quad, n_trials=3, callbacks=[lambda s, t: seen.append((t.id, t.state))])
    assert seen == [(1, TrialState.COMPLETE), (2, TrialState.COMPLETE), (3, TrialState.COMPLETE)]


# ---------------------------------------------------------------------------- Ctrl-C
def test_keyboard_interrupt_abandons_the_running_trial_and_reraises():
    calls = []

    def objective(trial):
        calls.append(trial.config)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return 1.0

    study = Study(space(), seed=0)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=10)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.ABANDONED]
    assert "interrupt" in study.trials[2].message.lower()
    assert study.n_finished == 2
    # the next optimize re-runs the interrupted config first
    study.optimize(objective, n_trials=2)
    retry = study.trials[3]
    assert retry.retry_of == 3 and retry.config == calls[2]
    assert retry.state == TrialState.COMPLETE
    assert study.n_finished == 4


# ---------------------------------------------------------------------------- ask / tell
def test_ask_and_tell():
    study = Study(space(), seed=0, direction="maximize")
    t1 = study.ask()
    t2 = study.ask()
    assert t1.id != t2.id
    space().validate_config(t1.config)
    assert study.get_trials([TrialState.RUNNING])[0].id == t1.id
    f2 = study.tell(t2, 2.0)
    f1 = study.tell(t1, 5.0)
    assert f1.state == TrialState.COMPLETE and f1.value == 5.0
    assert f2.state == TrialState.COMPLETE
    assert study.best_trial.id == t1.id
    t3 = study.ask()
    f3 = study.tell(t3.id, float("nan"))
    assert f3.state == TrialState.FAILED and "nan" in f3.message
    t4 = study.ask()
    t4.report(1.5, 0)
    f4 = study.tell(t4, 1.5, state="pruned")
    assert f4.state == TrialState.PRUNED and dict(f4.intermediate) == {0: 1.5}
    assert study.n_finished == 4


def test_tell_unknown_or_twice_is_a_user_error():
    study = Study(space())
    t = study.ask()
    study.tell(t, 1.0)
    with pytest.raises(UserError, match=str(t.id)):
        study.tell(t, 1.0)
    with pytest.raises(UserError):
        study.tell(999, 1.0)


def test_ask_on_an_exhausted_grid_raises_search_exhausted():
    study = Study(Space({"c": Categorical(["a", "b"])}), searcher="grid")
    for _ in range(2):
        study.tell(study.ask(), 1.0)
    with pytest.raises(SearchExhausted):
        study.ask()


def test_optimize_stops_when_the_grid_is_exhausted():
    study = Study(Space({"c": Categorical(["a", "b", "c"]), "k": Int(1, 2)}), searcher="grid")
    study.optimize(lambda t: 1.0, n_trials=100)
    assert len(study.trials) == 6
    assert len({tuple(sorted(t.config.items())) for t in study.trials}) == 6


# ---------------------------------------------------------------------------- leaderboard
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_leaderboard_order(direction):
    values = iter([3.0, None, 1.0, 2.0, 1.0, 5.0])
    study = Study(space(), direction=direction, seed=0)
    study.optimize(lambda t: next(values), n_trials=6)
    df = study.leaderboard()
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 5  # the failed trial is not on it
    assert {"id", "value", "duration", "x", "k", "c"} <= set(df.columns)
    expected = sorted([v for v in [3.0, 1.0, 2.0, 1.0, 5.0]], reverse=direction == "maximize")
    assert list(df["value"]) == expected
    # ties broken by id
    ties = df[df["value"] == 1.0]["id"].tolist()
    assert ties == sorted(ties) == [3, 5]
    assert df.iloc[0]["value"] == study.best_value
    assert list(df.index) == list(range(5))
    assert len(study.leaderboard(top=2)) == 2


def test_leaderboard_of_an_empty_study_is_empty():
    df = Study(space()).leaderboard()
    assert isinstance(df, pd.DataFrame) and df.empty


def test_conditional_params_in_leaderboard_are_missing_where_inactive():
    sp = Space({"m": Categorical(["a", "b"]), "a.x": Float(0, 1, condition={"m": ["a"]})})
    study = Study(sp, seed=0)
    study.optimize(lambda t: 1.0, n_trials=12)
    df = study.leaderboard()
    for _, row in df.iterrows():
        assert (row["m"] == "a") == (not math.isnan(row["a.x"]))
