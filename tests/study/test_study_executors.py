"""The executor seam: asynchronous dispatch, live reports and pruning over the worker pipe,
shared-study sync between processes' searchers, and the study-wide trial limit."""

from __future__ import annotations

import time

import pytest

from autodl import Float, Space, Study, TrialPruned, TrialState, UserError
from autodl.searchers import RandomSearch
from autodl.study.executors import InlineExecutor, ProcessExecutor, make_executor


def space() -> Space:
    return Space({"x": Float(0.0, 1.0)})


def _one_slow_many_fast(trial):
    time.sleep(2.0 if trial.id == 1 else 0.05)
    trial.set_user_attr("end", time.time())
    return trial.config["x"]


def test_dispatch_is_asynchronous_fast_trials_flow_while_a_slow_one_runs():
    study = Study(space(), seed=0)
    study.optimize(_one_slow_many_fast, n_trials=8, n_workers=2, executor="local")
    trials = {t.id: t for t in study.trials}
    assert all(t.state == TrialState.COMPLETE for t in trials.values())
    slow_end = trials[1].user_attrs["end"]
    # the other worker ran the 7 fast trials one after another while trial 1 was running
    assert sum(t.user_attrs["end"] < slow_end for tid, t in trials.items() if tid != 1) == 7


class _PruneAfterTwo(RandomSearch):
    name = "prune-after-two"

    def should_prune(self, trial):
        return len(self.intermediate.get(trial.id, {})) >= 2


def _reports(trial):
    for step in range(5):
        trial.report(float(step), step)
        if trial.should_prune():
            raise TrialPruned()
    return 10.0


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_reports_and_should_prune_reach_the_searcher_live(executor):
    study = Study(space(), searcher=_PruneAfterTwo(space(), seed=0), seed=0)
    study.optimize(_reports, n_trials=3, executor=executor)
    for t in study.trials:
        assert t.state == TrialState.PRUNED and dict(t.intermediate) == {0: 0.0, 1: 1.0}
        assert t.value == 1.0


def test_processes_sharing_a_study_see_each_others_trials(tmp_path):
    db = tmp_path / "s.db"
    a = Study(space(), storage=db, seed=0)
    b = Study(space(), storage=db, seed=1)
    a.optimize(lambda t: t.config["x"], n_trials=3)
    b.optimize(lambda t: t.config["x"], n_trials=2)
    stored = {t.id: (t.config, t.value) for t in Study.load(db).trials}
    # b's searcher was told a's three trials (configs and values) before its own asks, under
    # ids of its own that collide with none of its trials
    told = b.searcher.observations
    assert [(o.trial.config, o.value) for o in told[:3]] == [stored[i] for i in (1, 2, 3)]
    assert len(told) == 5 and len({o.trial.id for o in told}) == 5
    a.optimize(lambda t: t.config["x"], n_trials=1)
    told = a.searcher.observations
    assert [(o.trial.config, o.value) for o in told[3:5]] == [stored[i] for i in (4, 5)]
    assert len({o.trial.id for o in told}) == len(told) == 6


def test_total_trials_is_a_study_wide_limit(tmp_path):
    db = tmp_path / "s.db"
    a = Study(space(), storage=db, seed=0)
    a.optimize(lambda t: 1.0, n_trials=4)
    b = Study.load(db)
    b.optimize(lambda t: 1.0, total_trials=6)  # no n_trials: stops at the shared total
    assert len(b.trials) == 6
    b.optimize(lambda t: 1.0, n_trials=5, total_trials=6)  # already there: runs nothing
    assert len(b.trials) == 6


def test_make_executor_choices():
    assert isinstance(make_executor(None, 1), InlineExecutor)
    assert isinstance(make_executor(None, 2), ProcessExecutor)
    assert isinstance(make_executor(None, 1, trial_timeout=5), ProcessExecutor)
    assert isinstance(make_executor("local", 1), ProcessExecutor)
    with pytest.raises(UserError, match="unknown executor"):
        make_executor("spark", 1)
    with pytest.raises(UserError, match="one trial at a time"):
        make_executor("inline", 2)
    for bad in ({"max_retries": -1}, {"trial_timeout": 0}, {"total_trials": 0}):
        with pytest.raises(UserError):
            Study(space()).optimize(lambda t: 1.0, n_trials=1, **bad)


def test_unpicklable_objective_is_a_clear_error():
    import threading

    lock = threading.Lock()
    study = Study(space(), seed=0)
    with pytest.raises(TypeError, match="cannot be sent to worker processes"):
        study.optimize(lambda t: (lock, 1.0)[1], n_trials=2, n_workers=2)
    assert study.trials == []
