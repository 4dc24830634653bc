"""Successive halving, Hyperband, ASHA and BOHB: schedules, promotions, parallel asks, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autodl import TrialPruned
from autodl.searchers import ASHA, BOHB, Hyperband, SuccessiveHalving, make_searcher
from autodl.searchers.brackets import hyperband_brackets, rung_budgets
from autodl.space import Categorical, Float, Int, Space
from autodl.study import Study, TrialState
from autodl.testing import CHECKS

FACTORIES = {
    "sh": lambda space, seed: SuccessiveHalving(space, min_budget=1, max_budget=27, eta=3, seed=seed),
    "hyperband": lambda space, seed: Hyperband(space, min_budget=1, max_budget=27, eta=3, seed=seed),
    "asha": lambda space, seed: ASHA(space, min_budget=1, max_budget=9, eta=3, seed=seed),
    "bohb": lambda space, seed: BOHB(space, min_budget=1, max_budget=27, eta=3, seed=seed),
    "sh_prune": lambda space, seed: SuccessiveHalving(space, mode="prune", seed=seed),
    "asha_prune": lambda space, seed: ASHA(space, mode="prune", seed=seed),
    "hyperband_tpe": lambda space, seed: Hyperband(space, searcher="tpe", seed=seed),
}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", list(FACTORIES))
def test_conformance(name, check):
    check(FACTORIES[name])


def _space() -> Space:
    return Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "k": Categorical(["a", "b"]),
                  "n": Int(1, 5)})


def _loss(config: dict, budget: float) -> float:
    """Lower for small x; more budget helps every config equally (so ranks are stable)."""
    return config["x"] + 0.1 * config["y"] + 1.0 / (1.0 + budget)


# ---------------------------------------------------------------------- schedules
# (min, max, eta) -> [(sizes, budgets)] computed by hand from Li et al. (2018):
# s_max = floor(log_eta(R/r)), n = ceil((s_max+1)/(s+1) * eta^s), n_i = floor(n eta^-i),
# r_i = R eta^(i-s)
SCHEDULES = {
    (1, 27, 3): [((27, 9, 3, 1), (1, 3, 9, 27)), ((12, 4, 1), (3, 9, 27)), ((6, 2), (9, 27)),
                 ((4,), (27,))],
    # the paper's table for R = 81, eta = 3
    (1, 81, 3): [((81, 27, 9, 3, 1), (1, 3, 9, 27, 81)), ((34, 11, 3, 1), (3, 9, 27, 81)),
                 ((15, 5, 1), (9, 27, 81)), ((8, 2), (27, 81)), ((5,), (81,))],
    (1, 16, 2): [((16, 8, 4, 2, 1), (1, 2, 4, 8, 16)), ((10, 5, 2, 1), (2, 4, 8, 16)),
                 ((7, 3, 1), (4, 8, 16)), ((5, 2), (8, 16)), ((5,), (16,))],
    (1, 10, 3): [((9, 3, 1), (10 / 9, 10 / 3, 10)), ((5, 1), (10 / 3, 10)), ((3,), (10,))],
    (2, 2, 3): [((1,), (2,))],
    (3, 27, 3): [((9, 3, 1), (3, 9, 27)), ((5, 1), (9, 27)), ((3,), (27,))],
}


@pytest.mark.parametrize("key", list(SCHEDULES), ids=str)
def test_bracket_sizes_and_budgets(key):
    got = hyperband_brackets(*key)
    want = SCHEDULES[key]
    assert [b.sizes for b in got] == [w[0] for w in want]
    for b, (_, budgets) in zip(got, want):
        assert b.budgets == pytest.approx(budgets, rel=1e-12)
    assert rung_budgets(*key) == pytest.approx(want[0][1], rel=1e-12)


def test_sequential_hyperband_runs_the_schedule_in_order():
    hb = Hyperband(_space(), min_budget=1, max_budget=27, eta=3, seed=0)
    seen = []
    for _ in range(27 + 9 + 3 + 1 + 12 + 4 + 1 + 6 + 2 + 4 + 27):
        t = hb.ask()
        seen.append((t.info["bracket"], t.info["rung"], t.budget))
        hb.tell(t, _loss(t.config, t.budget))
    want = []
    for b, (sizes, budgets) in enumerate(SCHEDULES[(1, 27, 3)] + SCHEDULES[(1, 27, 3)][:1]):
        for k, (n, r) in enumerate(zip(sizes, budgets)):
            want += [(b, k, float(r))] * n
    assert seen == want[:len(seen)] and len(seen) == len(want) - 13


def test_promotions_are_the_top_k_by_value():
    sh = SuccessiveHalving(_space(), min_budget=1, max_budget=9, eta=3, seed=1)
    rung0 = [sh.ask() for _ in range(9)]
    assert {t.info["rung"] for t in rung0} == {0}
    values = {t.info["slot"]: _loss(t.config, 1) for t in rung0}
    for t in rung0:
        sh.tell(t, values[t.info["slot"]])
    rung1 = [sh.ask() for _ in range(3)]
    assert {t.info["rung"] for t in rung1} == {1}
    best3 = sorted(values, key=values.get)[:3]
    assert sorted(t.info["slot"] for t in rung1) == sorted(best3)
    # same config key as their rung-0 run, so training can resume from its checkpoint
    keys0 = {t.info["slot"]: t.info["config_key"] for t in rung0}
    assert all(t.info["config_key"] == keys0[t.info["slot"]] for t in rung1)
    for t in rung1:
        sh.tell(t, _loss(t.config, 3))
    top = sh.ask()
    assert top.info["rung"] == 2 and top.budget == 9
    assert top.info["slot"] == min(best3, key=lambda j: _loss(rung0[j].config, 3))
    sh.tell(top, 0.0)
    assert sh.best().trial.id == top.id


def test_failures_are_never_promoted():
    sh = SuccessiveHalving(_space(), min_budget=1, max_budget=3, eta=3, seed=2)
    rung0 = [sh.ask() for _ in range(3)]
    sh.tell(rung0[0], None)
    sh.tell(rung0[1], float("nan"))
    sh.tell(rung0[2], 5.0)
    t = sh.ask()
    assert t.info["rung"] == 1 and t.info["slot"] == 2


def test_waiting_rung_opens_the_next_bracket():
    hb = Hyperband(_space(), min_budget=1, max_budget=9, eta=3, seed=0)  # brackets 9/3/1, 5/1, 3
    first = [hb.ask() for _ in range(9)]
    nxt = hb.ask()  # bracket 0's rung 0 waits for results
    assert nxt.info["bracket"] == 1 and nxt.info["s"] == 1 and nxt.budget == 3
    for t in first:
        hb.tell(t, _loss(t.config, t.budget))
    promoted = hb.ask()  # the older bracket goes first again
    assert promoted.info["bracket"] == 0 and promoted.info["rung"] == 1


def test_asha_promotes_from_the_highest_rung_first():
    asha = ASHA(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    ts = [asha.ask() for _ in range(9)]
    assert all(t.info["rung"] == 0 and t.budget == 1 for t in ts)
    for t in ts[:3]:
        asha.tell(t, _loss(t.config, 1))
    p = asha.ask()  # 3 results at rung 0: the best one is promotable
    assert p.info["rung"] == 1 and p.budget == 3
    assert p.info["slot"] == min(range(3), key=lambda j: _loss(ts[j].config, 1))
    assert asha.ask().info["rung"] == 0  # nothing else promotable: a new config
    for t in ts[3:]:
        asha.tell(t, _loss(t.config, 1))
    p2 = asha.ask()
    assert p2.info["rung"] == 1  # now 9 results: top 3, one already promoted
    asha.tell(p, _loss(p.config, 3))
    asha.tell(p2, _loss(p2.config, 3))
    # rung 1 has 2 results, floor(2/3) = 0 promotable; rung 0 still has its third best
    assert asha.ask().info["rung"] == 1


# ---------------------------------------------------------------------- discard / adopt / reseed
def test_a_discarded_hyperband_job_runs_again_and_the_bracket_completes():
    hb = Hyperband(_space(), min_budget=1, max_budget=27, eta=3, seed=0)
    lost = hb.ask()
    hb.discard(lost)  # it will get no result (never stored, or abandoned)
    seen = []
    for _ in range(27 + 9 + 3 + 1):
        t = hb.ask()
        seen.append(t)
        hb.tell(t, _loss(t.config, t.budget))
    again = seen[0]
    assert (again.config, again.budget, dict(again.info)) == (lost.config, lost.budget, dict(lost.info))
    assert again.id != lost.id
    # the first bracket still runs its whole schedule, in order, without a stalled slot
    assert [(t.info["bracket"], t.budget) for t in seen] == (
        [(0, 1.0)] * 27 + [(0, 3.0)] * 9 + [(0, 9.0)] * 3 + [(0, 27.0)])


def test_a_retried_hyperband_job_is_not_handed_out_twice():
    hb = Hyperband(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    lost = hb.ask()
    hb.discard(lost)
    retry = hb.adopt(lost.config, lost.budget, lost.info)  # the study runs the retry
    others = [hb.ask() for _ in range(8)]
    slots = [(t.info["bracket"], t.info["rung"], t.info["slot"]) for t in [retry, *others]]
    assert len(set(slots)) == 9 and {b for b, _, _ in slots} == {0}
    for t in [retry, *others]:
        hb.tell(t, _loss(t.config, t.budget))
    assert hb.ask().info["rung"] == 1  # rung 0 complete: promotions start


def test_a_discarded_asha_promotion_is_promoted_again():
    asha = ASHA(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    ts = [asha.ask() for _ in range(3)]
    for t in ts:
        asha.tell(t, _loss(t.config, 1))
    promoted = asha.ask()
    assert promoted.info["rung"] == 1
    asha.discard(promoted)
    again = asha.ask()
    assert (again.config, again.budget, again.info["slot"]) == (
        promoted.config, promoted.budget, promoted.info["slot"])


def test_reseed_reaches_the_inner_searcher():
    a, b = (Hyperband(_space(), searcher="tpe", seed=0) for _ in range(2))
    assert a.ask().config == b.ask().config
    a2, b2 = (Hyperband(_space(), searcher="tpe", seed=0) for _ in range(2))
    b2.reseed([0, 1])  # new configs come from the inner TPE: it must get the new stream too
    assert a2.ask().config != b2.ask().config


class AshaLedger:
    """ASHA's promotion rule (Li et al. 2020, Algorithm 2), kept by the test from the results it
    tells: at each ask, from the highest rung down, the best config among the top
    ``floor(n_k / eta)`` results of rung ``k`` not yet sent to rung ``k + 1`` goes there at budget
    ``min_budget * eta ** (k + 1)``; if there is none, a new config starts at rung 0."""

    def __init__(self, min_budget: float, eta: int, n_rungs: int):
        self.min_budget, self.eta, self.n_rungs = min_budget, eta, n_rungs
        self.results: list[dict[int, float]] = [{} for _ in range(n_rungs)]  # per rung: slot -> value
        self.promoted: list[set[int]] = [set() for _ in range(n_rungs)]  # per rung: slots sent up

    def budget(self, rung: int) -> float:
        return self.min_budget * self.eta ** rung

    def expected(self) -> tuple[int, int] | None:
        """(rung, slot) of the next promotion, or None for a new config."""
        for k in reversed(range(self.n_rungs - 1)):
            ranked = sorted(self.results[k], key=self.results[k].get)
            for slot in ranked[: len(ranked) // self.eta]:
                if slot not in self.promoted[k]:
                    return k + 1, slot
        return None

    def asked(self, rung: int, slot: int) -> None:
        if rung > 0:
            self.promoted[rung - 1].add(slot)

    def told(self, rung: int, slot: int, value: float) -> None:
        self.results[rung][slot] = value


def test_asha_keeps_four_workers_busy_in_random_completion_order():
    rng = np.random.default_rng(0)
    asha = ASHA(_space(), min_budget=1, max_budget=27, eta=3, seed=3)
    ledger = AshaLedger(min_budget=1, eta=3, n_rungs=4)  # budgets 1, 3, 9, 27
    running = []
    for _ in range(4):
        t = asha.ask()
        assert (t.info["rung"], t.budget) == (0, 1)
        running.append(t)
    asked = [4, 0, 0, 0]  # trials asked per rung
    n_told = 0
    while n_told < 300:
        # one to three workers finish (so several rungs may have a promotable config at once)
        finished = [running.pop(int(rng.integers(len(running)))) for _ in range(int(rng.integers(1, 4)))]
        for done in finished:
            value = _loss(done.config, done.budget) + 0.01 * rng.standard_normal()
            asha.tell(done, value)
            ledger.told(done.info["rung"], done.info["slot"], value)
        n_told += len(finished)
        for _ in finished:
            want = ledger.expected()
            t = asha.ask()  # never blocks or raises
            rung, slot = t.info["rung"], t.info["slot"]
            if want is None:  # a new config, in a slot never used before
                assert rung == 0 and all(slot not in r for r in ledger.results) and slot not in {
                    x.info["slot"] for x in running}
            else:
                assert (rung, slot) == want
            assert t.budget == ledger.budget(rung)
            ledger.asked(rung, slot)
            asked[rung] += 1
            running.append(t)
        assert len(running) == 4
    # the rungs fill from the bottom: every promotion is a distinct config finished one rung
    # below, fewer configs reach each higher rung, and the top rung (27) was reached
    told = [len(r) for r in ledger.results]
    assert sum(told) == n_told and sum(asked) == n_told + 4
    assert all(ledger.promoted[k] <= set(ledger.results[k]) for k in range(3))
    assert asked[0] > asked[1] > asked[2] > asked[3] >= 1
    assert any(o.trial.budget == 27 for o in asha.observations)


def test_bohb_uses_the_model_of_the_largest_ready_budget():
    space = _space()
    bohb = BOHB(space, min_budget=1, max_budget=9, eta=3, seed=0, random_fraction=0.0)
    assert bohb.n_min == len(space) + 1
    for _ in range(60):
        t = bohb.ask()
        bohb.tell(t, _loss(t.config, t.budget))
    assert bohb.model_budget() is not None
    # late proposals concentrate on small x (the loss's main term)
    late = [o.trial.config["x"] for o in bohb.observations[-20:] if o.trial.info["rung"] == 0]
    early = [o.trial.config["x"] for o in bohb.observations[:9]]
    assert np.mean(late) < np.mean(early)


@pytest.mark.parametrize("kwargs, message", [
    ({"eta": 1}, "`eta` is 1, but must be > 1"),
    ({"min_budget": 0}, "`min_budget` is 0, but must be > 0"),
    ({"min_budget": 10, "max_budget": 5}, "`max_budget` is 5, but must be >= `min_budget` (10)"),
    ({"eta": float("nan")}, "`eta` is nan, but must be a finite number"),
])
@pytest.mark.parametrize("name", ["sh", "hyperband", "asha", "bohb"])
def test_constructor_validation(name, kwargs, message):
    with pytest.raises(ValueError) as exc:
        make_searcher(name, _space(), seed=0, **kwargs)
    assert message in str(exc.value)


def test_registered_and_rebuildable():
    for name in ("sh", "hyperband", "asha", "bohb"):
        s = make_searcher(name, _space(), seed=0, min_budget=1, max_budget=9)
        again = make_searcher(name, _space(), seed=0, **s.get_params())
        assert again.get_params() == s.get_params()
        assert s.uses_budget


# ---------------------------------------------------------------------- resume from storage
def _objective(calls):
    def objective(trial):
        calls.append((trial.config["x"], trial.budget))
        return _loss(trial.config, trial.budget)

    return objective


def test_hyperband_killed_mid_bracket_resumes_without_redoing_rungs(tmp_path):
    space = _space()
    # uninterrupted reference: bracket 0 of (1, 27, 3) is exactly 27 + 9 + 3 + 1 = 40 trials
    ref_calls: list = []
    Study(space, searcher="hyperband", seed=5, searcher_params={"max_budget": 27}).optimize(
        _objective(ref_calls), n_trials=40)

    calls: list = []
    study = Study(space, searcher="hyperband", storage=tmp_path / "study.db", seed=5,
                  searcher_params={"max_budget": 27})

    def interrupted(trial):
        if len(calls) == 31:  # killed while running the 5th trial of rung 1
            raise KeyboardInterrupt
        return _objective(calls)(trial)

    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted, n_trials=40)
    assert study.n_finished == 31
    del study

    resumed = Study.load(tmp_path)
    assert isinstance(resumed.searcher, Hyperband)
    resumed.optimize(_objective(calls), n_trials=9)  # 1 retry + rest of rung 1, rungs 2 and 3
    assert calls == ref_calls  # same trials, none redone
    states = [t.state for t in resumed.trials]
    assert states.count(TrialState.ABANDONED) == 1
    assert states.count(TrialState.COMPLETE) == 40
    done = [(t.info["rung"], t.info["slot"]) for t in resumed.trials if t.state == TrialState.COMPLETE]
    assert len(set(done)) == len(done) == 40
    # the next ask starts bracket 1 (s = 2)
    nxt = resumed.searcher.ask()
    assert nxt.info["bracket"] == 1 and nxt.info["s"] == 2 and nxt.budget == 3


def test_asha_restore_keeps_promotions(tmp_path):
    space = _space()
    study = Study(space, searcher="asha", storage=tmp_path / "study.db", seed=1,
                  searcher_params={"max_budget": 9})
    study.optimize(_objective([]), n_trials=25)
    before = [(t.info["rung"], t.info["slot"]) for t in study.trials]
    del study
    resumed = Study.load(tmp_path)
    resumed.optimize(_objective([]), n_trials=25)
    after = [(t.info["rung"], t.info["slot"]) for t in resumed.trials]
    assert after[:25] == before
    assert len(set(after)) == len(after)  # no (rung, slot) ran twice


# ---------------------------------------------------------------------- define-by-run pruning
@pytest.mark.parametrize("name", ["sh", "asha"])
def test_define_by_run_pruning_prunes_bad_trials(name):
    space = Space({"x": Float(0.0, 1.0)})
    study = Study(space, searcher=name, seed=0,
                  searcher_params={"mode": "prune", "min_budget": 1, "max_budget": 27})

    def objective(trial):
        assert trial.budget == 27
        value = math.inf
        for epoch in range(1, int(trial.budget) + 1):
            value = trial.config["x"] + 1.0 / epoch
            trial.report(value, epoch)
            if trial.should_prune():
                raise TrialPruned()
        return value

    study.optimize(objective, n_trials=40)
    pruned = study.get_trials(["pruned"])
    complete = study.get_trials(["complete"])
    assert len(pruned) >= 20 and complete
    assert np.mean([t.config["x"] for t in complete]) < np.mean([t.config["x"] for t in pruned])
    steps_pruned = [max(t.intermediate) for t in pruned]
    assert set(steps_pruned) <= {1, 3, 9}  # pruned exactly at the rungs
    assert study.best_config["x"] == min(t.config["x"] for t in study.trials)


def test_promote_mode_never_prunes():
    asha = ASHA(_space(), seed=0)
    t = asha.ask()
    asha.report(t, 100.0, 1)
    assert not asha.should_prune(t)


# ---------------------------------------------------------------------- best trial across budgets
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_best_trial_compares_only_the_largest_budget(direction):
    """A value after 1 epoch must not beat one after 27 (low budgets look better or worse by
    chance); the leaderboard agrees with best_trial."""
    study = Study(_space(), searcher=Hyperband(_space(), min_budget=1, max_budget=27, eta=3, seed=0),
                  direction=direction)
    sign = 1 if direction == "minimize" else -1
    seen = {}
    for _ in range(27 + 9 + 3 + 1):  # the first bracket: budgets 1, 3, 9, 27
        t = study.ask()
        value = _loss(t.config, t.budget)
        if t.budget == 1 and not any(b == 1 for b, _ in seen.values()):
            value = sign * -1e6  # the best value of the study, but only after one epoch
        seen[t.id] = (t.budget, value)
        study.tell(t, value)
    top = [tid for tid, (b, _) in seen.items() if b == 27]
    assert len(top) == 1
    assert study.best_trial.id == top[0] and study.best_trial.budget == 27
    assert study.best_value == seen[top[0]][1]
    board = study.leaderboard()
    assert board.loc[0, "id"] == top[0] and board.loc[0, "budget"] == 27
    assert list(board["budget"]) == sorted(board["budget"], reverse=True)


def test_best_trial_without_budgets_is_the_best_value():
    study = Study(_space(), searcher="random", direction="minimize", seed=0)
    values = []
    for _ in range(6):
        t = study.ask()
        values.append(t.config["x"])
        study.tell(t, t.config["x"])
    assert study.best_value == min(values)
