"""Native thread pools are capped in every process that runs trials (this one included with the
inline executor) and restored afterwards; a per-trial timeout stops an in-process trial at its
next ``trial.report()`` / ``should_prune()`` / ``should_stop()``; ``trial_timeout`` reaches
``Study.optimize`` from ``autodl.search`` and the estimators.

Oracles: ``threadpoolctl.threadpool_info()`` (and ``torch.get_num_threads()``) read in the
objective, before and after; wall-clock time; the arguments ``Study.optimize`` receives.
"""

from __future__ import annotations

import os
import time

import numpy as np  # noqa: F401 - loads a BLAS pool for threadpoolctl to see
import pytest
import threadpoolctl

from autodl import Categorical, Float, Space, Study, TrialState


def pools() -> dict[str, int]:
    """``{library path: threads}`` of the native pools loaded in this process."""
    return {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info()}


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run_inline(seen: list) -> Study:
    def objective(trial):
        seen.append(pools())
        return trial.config["x"]

    study = Study(Space({"x": Float(0.0, 1.0)}), searcher="random", seed=0)
    return study.optimize(objective, n_trials=2, executor="inline", show_progress=False)


def test_an_inline_study_caps_the_pools_at_omp_num_threads_and_restores_them(monkeypatch):
    before = pools()
    if max(before.values(), default=1) < 2:
        pytest.skip("no native pool with more than one thread to cap")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's setting wins
    seen: list = []
    run_inline(seen)
    assert len(seen) == 2 and all(set(p.values()) == {1} for p in seen), seen
    assert pools() == before  # restored when optimize returned


def test_an_inline_study_caps_the_pools_at_the_usable_cores(monkeypatch):
    before = pools()
    if max(before.values(), default=1) < 2 or not hasattr(os, "sched_getaffinity"):
        pytest.skip("no native pool with more than one thread, or no affinity mask")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # one usable core: 1 // 1 worker
    seen: list = []
    run_inline(seen)
    assert all(set(p.values()) == {1} for p in seen), seen
    assert pools() == before


def test_torch_threads_are_capped_and_restored_when_torch_is_imported(monkeypatch):
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        seen = []
        study = Study(Space({"x": Float(0.0, 1.0)}), searcher="random", seed=0)
        study.optimize(lambda t: seen.append(torch.get_num_threads()) or 0.0, n_trials=2,
                       executor="inline", show_progress=False)
        assert seen == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def _worker_pools(trial):
    import numpy  # noqa: F401
    import threadpoolctl as tc

    trial.set_user_attr("threads", max(i["num_threads"] for i in tc.threadpool_info()))
    trial.set_user_attr("pid", os.getpid())
    time.sleep(0.3)  # both workers busy at once
    return 0.0


def test_two_workers_share_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    study = Study(Space({"x": Float(0.0, 1.0)}), searcher="random", seed=0)
    study.optimize(_worker_pools, n_trials=4, n_workers=2, show_progress=False)
    trials = study.trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.user_attrs["threads"] for t in trials} == {max(1, cores() // 2)}
    assert len({t.user_attrs["pid"] for t in trials} - {os.getpid()}) == 2


def test_n_workers_none_means_one_per_core(monkeypatch):
    seen = {}

    def fake_make_executor(executor, n_workers, *args, **kwargs):
        seen["n"] = n_workers
        raise RuntimeError("stop here")

    monkeypatch.setattr("autodl.study.executors.make_executor", fake_make_executor)
    study = Study(Space({"x": Float(0.0, 1.0)}), searcher="random", seed=0)
    with pytest.raises(RuntimeError, match="stop here"):
        study.optimize(lambda t: 0.0, n_trials=1, n_workers=None)
    assert seen["n"] == cores()


# ---------------------------------------------------------------------- per-trial timeout
def _looping(trial):
    """Reports (or asks) every 0.05 s for up to 20 s; swallows ordinary exceptions."""
    how = trial.config["how"]
    if how == "quick":
        return 1.0
    for step in range(400):
        time.sleep(0.05)
        try:
            if how == "report":
                trial.report(0.5, step)
            elif how == "should_prune":
                trial.should_prune()
            else:
                trial.should_stop()
        except Exception:  # noqa: BLE001 - the timeout must get through this
            pass
    return 0.0


@pytest.mark.parametrize("how", ["report", "should_prune", "should_stop"])
def test_an_inline_trial_stops_at_its_next_check_after_the_timeout(how):
    study = Study(Space({"how": Categorical([how, "quick"])}), searcher="grid", seed=0)
    t0 = time.monotonic()
    study.optimize(_looping, executor="inline", trial_timeout=0.5, show_progress=False)
    elapsed = time.monotonic() - t0
    by_how = {t.config["how"]: t for t in study.trials}
    slow = by_how[how]
    assert slow.state == TrialState.FAILED
    assert slow.message == "timed out after 0.5s"  # as the process executors record it
    assert 0.5 <= slow.duration < 1.0, slow.duration
    if how == "report":
        assert len(slow.intermediate) >= 5  # the values reported before it stopped are kept
    assert by_how["quick"].state == TrialState.COMPLETE  # the study went on
    assert elapsed < 5


def test_search_and_the_estimators_pass_trial_timeout_and_n_workers_on(monkeypatch):
    from sklearn.datasets import load_iris

    import autodl
    from autodl import AutoDLClassifier

    calls = []

    def fake_optimize(self, objective, **kwargs):
        calls.append(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(Study, "optimize", fake_optimize)
    X, y = load_iris(return_X_y=True, as_frame=True)
    with pytest.raises(RuntimeError, match="stop here"):
        autodl.search(X, y, n_trials=2, cv=2, trial_timeout=7.5, n_workers=None)
    with pytest.raises(RuntimeError, match="stop here"):
        AutoDLClassifier(n_trials=2, cv=2, trial_timeout=3.0).fit(X, y)
    with pytest.raises(RuntimeError, match="stop here"):  # under a budget: one worker per core
        autodl.search(X, y, time_budget=20, cv=2, n_workers=None)
    assert [c["trial_timeout"] for c in calls] == [7.5, 3.0, None]
    # n_trials alone: one worker (reproducible); iris is small, so memory does not limit the cores
    assert [c["n_workers"] for c in calls] == [1, 1, cores()]
    assert AutoDLClassifier(trial_timeout=3.0).get_params()["trial_timeout"] == 3.0


def test_a_busy_machine_gets_one_thread_per_trial(monkeypatch):
    """OpenMP threads on oversubscribed cores wait for each other (measured: 2 threads 4x slower
    than 1 under a load of 3.4 on 2 cores), so trials take one thread while other processes
    keep the cores busy, and cores // workers on a quiet machine."""
    from autodl.study import executors

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(executors, "cpu_cores", lambda: 4)
    monkeypatch.setattr(executors, "cores_free", lambda: 3.8)
    assert executors.trial_threads(1) == 4 and executors.trial_threads(2) == 2
    monkeypatch.setattr(executors, "cores_free", lambda: 0.6)
    assert executors.trial_threads(1) == 1 and executors.trial_threads(4) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's setting wins
    assert executors.trial_threads(1) == 3


def test_cores_free_sees_another_process_spinning_but_not_this_one():
    import subprocess
    import sys

    from autodl.study.executors import cores_free, cpu_cores

    if not os.path.exists("/proc/stat"):
        pytest.skip("needs /proc/stat")
    spin = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 5\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.5)
        busy = cores_free(window=0.5)
    finally:
        spin.kill()
        spin.wait()
    assert busy <= cpu_cores() - 0.6  # the spinning child holds about one core
    start = time.process_time()
    while time.process_time() - start < 0.05:  # this process's own work is not "another process"
        pass
    assert cores_free(window=0.3) > busy
