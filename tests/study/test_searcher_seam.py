"""The study drives its searcher only through the protocol: reseed on resume and in extra
workers, adopt for retries, discard for trials that get no result. Every searcher, Optuna's
samplers included, proposes new configs after a resume and in each extra worker."""

from __future__ import annotations

import importlib.util
import json

import pytest

from autodl import Float, Int, Space, Study
from autodl.searchers import RandomSearch, searcher_names
from autodl.study import InMemoryStorage, TrialState


def space() -> Space:
    return Space({"x": Float(-3.0, 3.0), "y": Float(-3.0, 3.0), "k": Int(1, 5)})


def proposal(config, budget) -> str:
    return json.dumps([config, budget], sort_keys=True)


def objective(trial) -> float:
    return (trial.config["x"] - 1.0) ** 2 + trial.config["y"] ** 2 + trial.config["k"]


def _names() -> list:
    no_optuna = importlib.util.find_spec("optuna") is None
    skip = pytest.mark.skipif(no_optuna, reason="optuna is not installed")
    return [pytest.param(n, marks=skip if n == "optuna" else ()) for n in searcher_names()]


# ---------------------------------------------------------------------------- every searcher
@pytest.mark.parametrize("name", _names())
def test_a_resumed_study_proposes_new_trials_with_every_searcher(tmp_path, name):
    run = tmp_path / "run"
    Study(space(), searcher=name, seed=0, storage=run).optimize(objective, n_trials=6)
    first = {proposal(t.config, t.budget) for t in Study.load(run).trials}
    assert len(first) == 6

    resumed = Study.load(run)
    resumed.optimize(objective, n_trials=6)
    new = [proposal(t.config, t.budget) for t in resumed.trials[6:]]
    assert len(new) == 6
    assert first.isdisjoint(new), f"{name}: the resumed study ran the first run's trials again"


@pytest.mark.parametrize("name", _names())
def test_diversified_workers_get_their_own_stream_with_every_searcher(tmp_path, name):
    db = tmp_path / "s.db"
    Study(space(), searcher=name, seed=0, storage=db)  # created, no trials yet
    workers = [Study.load(db), Study.load(db)]  # two processes joining the run at once
    for salt, worker in enumerate(workers, start=1):
        worker.diversify(salt)
    asked = [[w.ask() for _ in range(3)] for w in workers]
    for worker, handles in zip(workers, asked):
        for h in handles:
            worker.tell(h, objective(h))
    one, two = ({proposal(h.config, h.budget) for h in handles} for handles in asked)
    assert one.isdisjoint(two), f"{name}: two workers proposed the same trials"


# ---------------------------------------------------------------------------- the seam
class Spy(RandomSearch):
    """Random search recording the protocol calls the study makes."""

    name = "spy"

    def __init__(self, space, seed=None):
        super().__init__(space, seed)
        self.calls = []

    def reseed(self, entropy):
        self.calls.append(("reseed", list(entropy)))
        super().reseed(entropy)

    def adopt(self, config, budget=None, info=None):
        trial = super().adopt(config, budget, info)
        self.calls.append(("adopt", dict(config), budget, dict(info or {}), trial.id))
        return trial

    def discard(self, trial):
        self.calls.append(("discard", trial.id))
        super().discard(trial)


def test_resume_reseeds_from_the_seed_and_the_stored_trials(tmp_path):
    db = tmp_path / "s.db"
    Study(space(), searcher=Spy(space(), seed=5), seed=5, storage=db).optimize(objective, n_trials=4)
    spy = Spy(space(), seed=5)
    Study(space(), searcher=spy, seed=5, storage=db)
    assert [c for c in spy.calls if c[0] == "reseed"] == [("reseed", [5, 4])]


def test_resume_after_a_crash_reseeds_past_the_unfinished_trials(tmp_path):
    db = tmp_path / "s.db"
    crashed = Study(space(), searcher="random", seed=5, storage=db)
    crashed.optimize(objective, n_trials=3)
    crashed.ask()  # left running: the process "dies" here
    crashed.storage.abandon_orphans(all_running=True)
    spy = Spy(space(), seed=5)
    Study(space(), searcher=spy, seed=5, storage=db)
    assert [c for c in spy.calls if c[0] == "reseed"] == [("reseed", [5, 3]), ("reseed", [5, 3, 4])]


def test_diversify_reseeds_with_the_salt():
    spy = Spy(space(), seed=2)
    study = Study(space(), searcher=spy, seed=2)
    study.diversify(1234)
    assert spy.calls == [("reseed", [2, 0, 1234])]


def test_an_abandoned_trial_is_discarded_and_its_retry_adopted():
    spy = Spy(space(), seed=0)
    study = Study(space(), searcher=spy, seed=0)

    def interrupted(trial):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted, n_trials=1)
    lost = study.trials[0]
    assert lost.state == TrialState.ABANDONED
    assert ("discard", 0) in spy.calls and not spy.pending

    study.optimize(objective, n_trials=1)
    adopted = [c for c in spy.calls if c[0] == "adopt"]
    assert adopted == [("adopt", lost.config, lost.budget, dict(lost.info), 1)]
    retry = study.trials[1]
    assert retry.retry_of == lost.id and retry.config == lost.config
    assert retry.state == TrialState.COMPLETE
    assert [o.trial.config for o in spy.observations] == [lost.config]


class SlotTakenOnce(InMemoryStorage):
    """Another process takes the last slot between the study's count and its insert, once."""

    def __init__(self):
        super().__init__()
        self.refused = 0

    def create_trial(self, config, budget, info=None, retry_of=None, limit=None):
        if limit is not None and not self.refused:
            self.refused += 1
            return None
        return super().create_trial(config, budget, info, retry_of, limit)


def test_a_trial_refused_by_the_study_wide_limit_is_discarded():
    spy = Spy(space(), seed=0)
    study = Study(space(), searcher=spy, seed=0, storage=SlotTakenOnce())
    study.optimize(objective, total_trials=5)
    assert study.storage.refused == 1 and not study.trials
    assert spy.calls == [("discard", 0)] and not spy.pending


def test_trials_finished_by_another_process_are_adopted_then_told(tmp_path):
    db = tmp_path / "s.db"
    other = Study(space(), seed=1, storage=db)
    spy = Spy(space(), seed=0)
    study = Study(space(), searcher=spy, seed=0, storage=db)
    mine = study.ask()  # pending in the spy while the other process finishes two trials
    other.optimize(objective, n_trials=2)
    study.tell(mine, 0.5)
    study.ask()
    adopted = [c for c in spy.calls if c[0] == "adopt"]
    assert [c[1] for c in adopted] == [t.config for t in other.trials if t.id != mine.id][:2]
    ids = [o.trial.id for o in spy.observations]
    assert len(ids) == len(set(ids)) == 3


def test_trials_another_process_is_running_are_pending_here(tmp_path):
    """A shared study's running trials of another process are adopted as pending before an ask
    (so a model-based searcher does not propose them again) and told when they finish."""
    from autodl.searchers import GaussianProcess

    db = tmp_path / "s.db"
    other = Study(space(), seed=1, storage=db)
    running = other.ask()
    here = Study(space(), searcher=GaussianProcess(space(), seed=0), seed=0, storage=db)
    mine = here.ask()
    pending = [t.config for t in here.searcher.pending.values()]
    assert running.config in pending and mine.config in pending and len(pending) == 2
    other.tell(running, 1.5)
    here.tell(mine, 0.5)
    here.ask()
    told = sorted(o.value for o in here.searcher.observations)
    assert told == [0.5, 1.5]
