"""A Dask worker killed mid-trial: the trial is retried elsewhere and the study completes."""

from __future__ import annotations

import os
import signal
import time

import pytest

pytest.importorskip("distributed")

from autodl import Float, Space, Study, TrialState, UserError  # noqa: E402


def slow_square(trial):
    time.sleep(0.8)
    if trial.config["x"] > 0.95:
        time.sleep(60)  # hangs past the timeout
    return trial.config["x"] ** 2


@pytest.mark.slow
def test_dask_worker_killed_mid_trial_then_the_study_completes(tmp_path):
    from autodl.study.dask_executor import DaskExecutor

    ex = DaskExecutor(n_workers=2, trial_timeout=5.0)
    killed: list[int] = []

    def kill_a_busy_worker(study, trial):
        if killed:
            return
        pids = ex.client.run(os.getpid)
        busy = [addr for addr, keys in ex.client.processing().items() if keys]
        if not busy:  # both workers between trials right now: try after the next trial
            return
        os.kill(pids[busy[0]], signal.SIGKILL)
        killed.append(pids[busy[0]])

    study = Study(Space({"x": Float(0.0, 0.9)}), storage=tmp_path / "run", seed=0)
    t0 = time.monotonic()
    study.optimize(slow_square, n_trials=10, executor=ex, callbacks=[kill_a_busy_worker])
    elapsed = time.monotonic() - t0
    trials = study.trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    abandoned = [t for t in trials if t.state == TrialState.ABANDONED]
    print(f"\ndask: killed worker pid {killed}; {len(complete)} complete, "
          f"{len(abandoned)} abandoned+retried, {elapsed:.1f}s")
    assert len(killed) == 1
    assert len(complete) == 10 and study.n_finished == 10
    assert len(abandoned) == 1 and "worker process died on Dask" in abandoned[0].message
    retry = [t for t in trials if t.retry_of == abandoned[0].id]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].config == abandoned[0].config
    for t in complete:
        assert t.value == pytest.approx(t.config["x"] ** 2)
    assert ex.client is None  # shut down with the study


@pytest.mark.slow
def test_dask_trial_timeout_restarts_the_worker_and_the_study_goes_on():
    study = Study(Space({"x": Float(0.0, 1.0)}), seed=0)
    # trial 2 hangs past the timeout
    study.optimize(lambda t: slow_square(t) if t.id != 2 else time.sleep(60), n_trials=4,
                   executor="dask", n_workers=2, trial_timeout=3.0)
    states = {t.id: (t.state, t.message) for t in study.trials}
    assert states[2] == (TrialState.FAILED, "timed out after 3s")
    assert sum(s == TrialState.COMPLETE for s, _ in states.values()) == 3


def test_bad_scheduler_addresses_are_one_line_user_errors():
    study = Study(Space({"x": Float(0.0, 1.0)}), seed=0)
    for bad in ("localhost", "tcp://", "http://host:8786", "tcp://host:port"):
        with pytest.raises(UserError, match="not like tcp://host:8786"):
            study.optimize(slow_square, n_trials=1, executor="dask", dask_scheduler=bad)
    with pytest.raises(UserError, match="only applies with executor='dask'"):
        study.optimize(slow_square, n_trials=1, executor="local", dask_scheduler="tcp://h:8786")
    with pytest.raises(UserError, match="cannot reach the Dask scheduler"):
        from autodl.study.dask_executor import DaskExecutor

        study.optimize(slow_square, n_trials=1,
                       executor=DaskExecutor(scheduler="tcp://127.0.0.1:9", connect_timeout=2))
    assert study.trials == []
