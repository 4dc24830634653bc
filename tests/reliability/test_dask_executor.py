"""A Dask worker killed mid-trial: the trial is retried elsewhere and the study completes."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

pytest.importorskip("distributed")

from autodl import Float, Space, Study, TrialState, UserError  # noqa: E402


#: times this process unpickled a CountingObjective (read on the Dask workers)
_UNPICKLED: list[int] = []


class CountingObjective:
    """Returns how often this worker process has unpickled it, and records the worker's pid."""

    def __init__(self):
        self.data = bytes(1 << 20)  # an objective that carries data

    def __setstate__(self, state):
        self.__dict__.update(state)
        _UNPICKLED.append(1)

    def __call__(self, trial):
        trial.set_user_attr("pid", os.getpid())
        return float(len(_UNPICKLED))


def _has_objective(token):
    from autodl.study import dask_executor

    return token in dask_executor._PAYLOADS


def _run_all(ex, tasks):
    from autodl.study.executors import TrialTask

    for tid in tasks:
        ex.submit(TrialTask(tid, {"x": 0.5}))
    out = {}
    while len(out) < len(tasks):
        out.update(ex.wait_any(timeout=60))
    return out


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
    first_done = threading.Event()
    stop = threading.Event()

    def kill_a_busy_worker():
        """Once a trial has finished, SIGKILL a worker that has been running its (0.8 s) trial
        for 0.1-0.5 s: mid-trial, whether or not both workers finish at the same moments (a
        check from a study callback can miss them: then no worker is busy)."""
        first_done.wait(60)
        seen: dict[str, float] = {}  # task key -> when first seen processing
        while not stop.is_set():
            now = time.monotonic()
            client = ex.client
            if client is None:  # not started yet, or already shut down
                time.sleep(0.02)
                continue
            try:
                processing = client.processing()
            except OSError:  # the study is shutting its client down
                return
            for addr, keys in processing.items():
                if len(keys) != 1:
                    continue
                since = seen.setdefault(keys[0], now)
                if 0.1 <= now - since <= 0.5:
                    pid = client.run(os.getpid, workers=[addr])[addr]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    study = Study(Space({"x": Float(0.0, 0.9)}), storage=tmp_path / "run", seed=0)
    t0 = time.monotonic()
    try:
        study.optimize(slow_square, n_trials=10, executor=ex,
                       callbacks=[lambda study, trial: first_done.set()])
    finally:
        stop.set()
        killer.join(timeout=10)
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


@pytest.mark.slow
def test_objective_is_sent_once_per_worker_and_to_a_restarted_worker():
    from autodl.study.dask_executor import DaskExecutor
    from autodl.study.executors import Hooks

    ex = DaskExecutor(n_workers=2)
    ex.start(CountingObjective(), Hooks())
    try:
        token = ex._token
        assert all(ex.client.run(_has_objective, token).values())
        first = _run_all(ex, range(1, 7))
        assert {o.state for o in first.values()} == {TrialState.COMPLETE}
        assert {o.value for o in first.values()} == {1.0}  # unpickled once per worker
        old_pids = set(ex.client.run(os.getpid).values())

        victim = next(iter(old_pids))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:  # the nanny starts a new worker process, which registers with the scheduler
            pids = set(ex.client.run(os.getpid, on_error="ignore").values())
            if len(pids) == 2 and victim not in pids:
                break
            assert time.monotonic() < deadline, f"no replacement worker after 60s: {pids}"
            time.sleep(0.2)
        new_pid = (pids - old_pids).pop()
        # the scheduler ran the plugin on the new worker before it took any task
        assert all(ex.client.run(_has_objective, token).values())
        after = _run_all(ex, range(7, 19))
        assert {o.state for o in after.values()} == {TrialState.COMPLETE}
        assert {o.value for o in after.values()} == {1.0}
        assert new_pid in {o.user_attrs["pid"] for o in after.values()}
    finally:
        ex.shutdown()


@pytest.mark.slow
def test_a_worker_without_the_objective_gets_it_with_the_trial():
    from autodl.study.dask_executor import DaskExecutor
    from autodl.study.executors import Hooks

    ex = DaskExecutor(n_workers=1)
    ex.start(CountingObjective(), Hooks())
    try:
        ex.client.unregister_worker_plugin(f"autodl-objective-{ex._token}")  # its teardown runs
        assert not any(ex.client.run(_has_objective, ex._token).values())
        out = _run_all(ex, [1, 2])
        assert [o.state for o in out.values()] == [TrialState.COMPLETE] * 2
    finally:
        ex.shutdown()


@pytest.mark.slow
def test_a_shared_cluster_forgets_the_objective_when_the_study_ends():
    import logging

    from distributed import Client, LocalCluster

    from autodl.study.dask_executor import DaskExecutor

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None,
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        def ours():
            names = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))
            return [n for n in names if n.startswith("autodl-objective-")]

        ex = DaskExecutor(scheduler=cluster.scheduler_address)
        seen: list[tuple[list[str], bool]] = []
        study = Study(Space({"x": Float(0.0, 1.0)}), seed=0)
        study.optimize(CountingObjective(), n_trials=4, executor=ex,
                       callbacks=[lambda s, t: seen.append(
                           (ours(), all(client.run(_has_objective, ex._token).values())))])
        assert study.n_finished == 4
        assert {t.state for t in study.trials} == {TrialState.COMPLETE}
        assert seen[0] == ([f"autodl-objective-{ex._token}"], True)  # while the study ran
        assert ours() == []  # after it
        assert not any(client.run(_has_objective, ex._token).values())
