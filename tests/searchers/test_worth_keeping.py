"""``worth_keeping``: multi-fidelity searchers say which finished trials can never be continued,
so their checkpoints need not be written. The property users rely on: no config that is later
promoted (or that ends up the best) was ever told "not worth keeping"."""

from __future__ import annotations

import numpy as np
import pytest

from autodl.searchers import ASHA, BOHB, Hyperband, SuccessiveHalving, make_searcher
from autodl.space import Float, Space
from autodl.study import Study


def _space() -> Space:
    return Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})


def _rung_zero(searcher, n):
    trials = [searcher.ask() for _ in range(n)]
    assert all(t.budget == 1 for t in trials)
    return trials


def test_hyperband_rule_on_a_rung():
    hb = Hyperband(_space(), min_budget=1, max_budget=9, eta=3, seed=0)  # first bracket: 9 -> 3 -> 1
    trials = _rung_zero(hb, 9)
    for value, t in enumerate(trials[:8]):
        hb.tell(t, float(value))  # 0 is best (minimized)
    last = trials[8]
    assert hb.worth_keeping(last, 0.5)  # one better: in the top 3
    assert hb.worth_keeping(last, 2.0)  # two strictly better, one tie: may be promoted on ties
    assert not hb.worth_keeping(last, 2.5)  # three better: can never be promoted
    assert not hb.worth_keeping(last, None)  # failures are never promoted
    hb.tell(last, 2.5)
    promoted = [hb.ask() for _ in range(3)]
    assert {t.info["config_key"] for t in promoted} == {t.info["config_key"] for t in trials[:3]}


def test_top_rung_is_kept_only_when_best_so_far():
    sh = SuccessiveHalving(_space(), min_budget=1, max_budget=3, eta=3, seed=0)  # 3 -> 1
    for value, t in enumerate(_rung_zero(sh, 3)):
        sh.tell(t, float(value))
    top = sh.ask()
    assert top.budget == 3
    assert sh.worth_keeping(top, 5.0)  # nothing at budget 3 yet: may be the best
    sh.tell(top, 5.0)
    again = [sh.ask() for _ in range(3)]  # the next copy of the bracket
    for value, t in enumerate(again):
        sh.tell(t, float(value))
    top2 = sh.ask()
    assert not sh.worth_keeping(top2, 6.0)
    assert sh.worth_keeping(top2, 5.0)  # a tie: the study may pick either as the best
    assert sh.worth_keeping(top2, 4.0)


def test_asha_keeps_every_lower_rung_result():
    asha = ASHA(_space(), min_budget=1, max_budget=9, eta=3, seed=0)
    t = asha.ask()
    for v in range(6):
        other = asha.ask()
        asha.tell(other, float(v))
    assert asha.worth_keeping(t, 100.0)  # a growing rung may promote it later


def test_full_budget_and_prune_mode_searchers_keep_everything():
    space = _space()
    for s in (make_searcher("random", space, seed=0), make_searcher("tpe", space, seed=0),
              SuccessiveHalving(space, mode="prune", seed=0), ASHA(space, mode="prune", seed=0)):
        t = s.ask()
        assert s.worth_keeping(t, 1e9)


def _loss(config, budget):
    return (config["x"] - 0.3) ** 2 + config["y"] * 0.1 + 1.0 / budget


@pytest.mark.parametrize("factory, min_dropped", [
    (lambda: Hyperband(_space(), min_budget=1, max_budget=27, eta=3, seed=1), 30),
    (lambda: SuccessiveHalving(_space(), min_budget=1, max_budget=9, eta=3, seed=2), 30),
    (lambda: BOHB(_space(), min_budget=1, max_budget=9, eta=3, seed=3), 30),
    (lambda: ASHA(_space(), min_budget=1, max_budget=9, eta=3, seed=4), 3),  # failures, top rung
], ids=["hyperband", "sh", "bohb", "asha"])
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_no_promoted_or_best_config_was_dropped(factory, min_dropped, noise):
    """Sequential ask/tell with the answer asked right before each tell: every later promotion
    continues a config whose state was kept, and so does the final best."""
    s = factory()
    rng = np.random.default_rng(0)
    kept: dict[tuple[str, float], bool] = {}
    last_budget: dict[str, float] = {}
    n_dropped = 0
    for _ in range(120):
        t = s.ask()
        key = t.info["config_key"]
        if key in last_budget:  # a promotion: continues from the previous budget's state
            assert kept[key, last_budget[key]], f"promoted {key} to {t.budget} but its state was dropped"
        value = _loss(t.config, t.budget) + noise * rng.normal()
        if rng.random() < 0.05:
            value = None  # a failure
        keep = s.worth_keeping(t, value)
        kept[key, t.budget] = keep
        n_dropped += not keep
        last_budget[key] = t.budget
        s.tell(t, value)
    best = s.best()
    assert kept[best.trial.info["config_key"], best.trial.budget]
    assert n_dropped >= min_dropped  # the rule does drop results


def _objective(trial):
    kept = trial.worth_keeping(-((trial.config["x"] - 0.3) ** 2) - 1.0 / trial.budget)
    trial.set_user_attr("kept", kept)
    return -((trial.config["x"] - 0.3) ** 2) - 1.0 / trial.budget


@pytest.mark.parametrize("n_workers", [1, 2])
def test_the_study_answers_from_inline_and_worker_processes(n_workers, tmp_path):
    study = Study(_space(), searcher="hyperband", direction="maximize", storage=tmp_path / "s.db", seed=0,
                  searcher_params={"min_budget": 1, "max_budget": 9, "eta": 3})
    study.optimize(_objective, n_trials=13, n_workers=n_workers)
    kept = [t.user_attrs["kept"] for t in study.trials]
    assert len(kept) == 13 and not all(kept) and any(kept)
    # every config run at a higher rung had been kept at the rung below
    by_key: dict[str, list] = {}
    for t in sorted(study.trials, key=lambda t: t.id):
        by_key.setdefault(t.info["config_key"], []).append(t)
    for runs in by_key.values():
        assert all(r.user_attrs["kept"] for r in runs[:-1])


@pytest.mark.parametrize("searcher", ["sh", "hyperband", "bohb", "asha"])
@pytest.mark.parametrize("seed", range(6))
def test_ties_and_out_of_order_results_keep_the_study_best(searcher, seed):
    """Two trials running at once, results told in random order, accuracies with many ties:
    every promoted config and the study's own best trial were kept."""
    study = Study(_space(), searcher=searcher, direction="maximize", seed=seed,
                  searcher_params={"min_budget": 1, "max_budget": 9, "eta": 3})
    rng = np.random.default_rng(seed)
    kept: dict[tuple[str, float], bool] = {}
    done: dict[str, float] = {}
    running = []
    for _ in range(60):
        while len(running) < 2:
            running.append(study.ask())
        t = running.pop(int(rng.integers(len(running))))
        value = float(rng.choice([0.9, 1.0]))  # coarse accuracies: ties everywhere
        key = study.storage.get_trial(t.id).info["config_key"]
        if key in done:
            assert kept[key, done[key]], "promoted from a rung whose state was dropped"
        kept[key, t.budget] = t.worth_keeping(value)
        done[key] = t.budget
        study.tell(t, value)
    best = study.best_trial
    assert kept[best.info["config_key"], best.budget]
    if searcher != "asha":  # (ASHA drops only top-rung results here)
        assert not all(kept.values())


def test_a_tie_told_out_of_order_keeps_the_trial_the_study_calls_best():
    """Two top-rung trials with the same accuracy, the later one told first: the study breaks
    the tie by the lower id, so the earlier one must still be kept."""
    study = Study(_space(), searcher="sh", direction="maximize", seed=0,
                  searcher_params={"min_budget": 1, "max_budget": 3, "eta": 3})
    tops = []
    for _ in range(2):  # two copies of the bracket 3 -> 1
        for v, t in zip((0.5, 0.6, 0.7), [study.ask() for _ in range(3)]):
            study.tell(t, v)
        tops.append(study.ask())
    first, second = tops
    assert first.budget == second.budget == 3 and first.id < second.id
    assert second.worth_keeping(0.9)
    study.tell(second, 0.9)
    assert first.worth_keeping(0.9)
    study.tell(first, 0.9)
    assert study.best_trial.id == first.id
