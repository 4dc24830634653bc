"""Study.optimize with n_workers > 1: trials run in separate processes."""

from __future__ import annotations

import os

import pytest

from autodl import Float, Int, Space, Study, TrialState


def space() -> Space:
    return Space({"x": Float(-3.0, 3.0), "k": Int(1, 5)})


def test_two_workers_run_a_lambda_in_other_processes(tmp_path):
    offset = 10.0  # captured by the lambda: closures must survive the trip to the workers
    study = Study(space(), storage=tmp_path / "run", seed=0)
    study.optimize(lambda t: t.config["x"] ** 2 + offset, n_trials=6, n_workers=2)
    trials = study.trials
    assert len(trials) == 6
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        assert t.value == pytest.approx(t.config["x"] ** 2 + offset)
    assert len({t.id for t in trials}) == 6
    # n_trials adds up across calls
    study.optimize(lambda t: 1.0, n_trials=2, n_workers=2)
    assert study.n_finished == 8


def _pid_objective(trial):
    trial.set_user_attr("pid", os.getpid())
    trial.report(0, 1.0)
    if trial.config["k"] == 3:
        raise RuntimeError("k is three")
    if trial.config["k"] == 4:
        return float("nan")
    return trial.config["x"]


def test_workers_record_failures_and_attrs(tmp_path):
    study = Study(space(), seed=3)
    study.optimize(_pid_objective, n_trials=12, n_workers=2)
    trials = study.trials
    assert len(trials) == 12 and study.n_finished == 12
    pids = {t.user_attrs["pid"] for t in trials}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2
    for t in trials:
        assert dict(t.intermediate) == {0: 1.0}
        if t.config["k"] == 3:
            assert t.state == TrialState.FAILED and "RuntimeError: k is three" in t.message
        elif t.config["k"] == 4:
            assert t.state == TrialState.FAILED and "nan" in t.message
        else:
            assert t.state == TrialState.COMPLETE and t.value == t.config["x"]
    assert any(t.state == TrialState.FAILED for t in trials)
