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
    trial.report(1.0, 0)
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


def test_grid_resume_with_workers_retries_an_abandoned_point_once(tmp_path):
    """A grid point left running by a dead process is retried, not also asked afresh."""
    import json
    import socket
    import sqlite3

    from autodl import Categorical

    grid_space = Space({"c": Categorical(["a", "b", "c"]), "k": Int(1, 2)})
    db = tmp_path / "s.db"
    study = Study(grid_space, searcher="grid", storage=db, seed=0)
    for _ in range(2):
        study.tell(study.ask(), 1.0)
    dead = study.ask()  # its process "dies": mark the owner as a pid that does not exist
    con = sqlite3.connect(db)
    con.execute("UPDATE trials SET owner = ? WHERE id = ?", (f"{socket.gethostname()}:999999999", dead.id))
    con.commit()
    con.close()

    resumed = Study.load(db)
    resumed.optimize(lambda t: 1.0, n_trials=100, n_workers=2)
    finished = resumed.get_trials(["complete"])
    keys = [json.dumps(t.config, sort_keys=True) for t in finished]
    assert len(keys) == 6, keys
    assert len(set(keys)) == 6
    assert sum(t.retry_of == dead.id for t in finished) == 1


def _interrupt_on_third(trial):
    import time

    time.sleep(0.2)
    if trial.id == 3:
        raise KeyboardInterrupt  # what Ctrl-C raises inside a worker
    return 1.0


def test_keyboard_interrupt_in_a_worker_abandons_running_trials_and_reraises(tmp_path):
    run = tmp_path / "run"
    study = Study(space(), storage=run, seed=0)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(_interrupt_on_third, n_trials=8, n_workers=2)
    trials = study.trials
    states = {t.id: t.state for t in trials}
    assert states[3] == TrialState.ABANDONED
    assert TrialState.RUNNING not in states.values()
    abandoned = [t for t in trials if t.state == TrialState.ABANDONED]

    resumed = Study.load(run)
    resumed.optimize(lambda t: 2.0, n_trials=len(abandoned))
    for old in abandoned:
        retries = [t for t in resumed.trials if t.retry_of == old.id]
        assert len(retries) == 1 and retries[0].config == old.config
        assert retries[0].state == TrialState.COMPLETE
