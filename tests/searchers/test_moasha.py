"""Multi-objective ASHA: conformance, promotions and prunings against hand-computed Pareto ranks
and hypervolume contributions, constraints, reported tuples through a study and its storage."""

from __future__ import annotations

from collections import Counter

import pytest

from autodl import Float, Space, Study, TrialPruned
from autodl.searchers import MOASHA, make_searcher
from autodl.searchers.moasha import rank_results
from autodl.study import TrialState
from autodl.testing import CHECKS, mixed_space

FACTORIES = {
    "promote": lambda space, seed: MOASHA(space, min_budget=1, max_budget=9, eta=3, seed=seed),
    "prune": lambda space, seed: MOASHA(space, mode="prune", seed=seed),
    "motpe_inner": lambda space, seed: MOASHA(space, min_budget=1, max_budget=9, searcher="motpe", seed=seed),
    "crowding": lambda space, seed: MOASHA(space, min_budget=1, max_budget=9, tie_break="crowding", seed=seed),
}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", list(FACTORIES))
def test_conformance(name, check):
    check(FACTORIES[name])


def space() -> Space:
    return Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})


# Six results of one rung (both minimized). By hand: E and F are dominated by B; the front is
# A, B, C, D. Scaled to the observed ranges (already [0, 1]) with the reference (1.1, 1.1), the
# exclusive hypervolumes are A 0.3 * 0.1 = 0.03, B 0.05 * 0.5 = 0.025, C 0.65 * 0.05 = 0.0325,
# D 0.1 * 0.45 = 0.045: B goes last; then A 0.35 * 0.1 = 0.035, C 0.65 * 0.55, D 0.045: A; then
# D 0.045 < C 0.65 * 0.65: D. Order C, D, A, B, then E, F (front 1, by hypervolume: E's box is
# larger, x 0.5..0.9 by y 0.9..1.1 = 0.08 against F's 0.2 * 0.2 = 0.04).
RUNG = {"A": (0.0, 1.0), "B": (0.3, 0.5), "C": (0.35, 0.45), "D": (1.0, 0.0), "E": (0.5, 0.9),
        "F": (0.9, 0.9)}


def test_rank_by_front_then_greedy_hypervolume_contribution():
    names = list(RUNG)
    order = rank_results([RUNG[n] for n in names], range(len(names)))
    assert [names[i] for i in order] == ["C", "D", "A", "B", "E", "F"]


def test_crowding_tie_break_keeps_the_extremes_first():
    # crowding distance by hand: A and D are the extremes (infinite); B (0.35 - 0) + (1 - 0.45)
    # = 0.9 < C (1 - 0.3) + (0.5 - 0) = 1.2
    names = list(RUNG)
    order = rank_results([RUNG[n] for n in names], range(len(names)), tie_break="crowding")
    assert [names[i] for i in order][:4] == ["A", "D", "C", "B"]


def test_constraints_rank_feasible_first_then_by_violation():
    order = rank_results([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [0.1, 0.1]], [0, 1, 2, 3],
                         violations=[2.0, 0.0, 0.5, 0.0])
    assert order == [3, 1, 2, 0]


def _tell_rung(s: MOASHA, values: dict[str, tuple]) -> dict[str, dict]:
    asked = [s.ask() for _ in values]
    assert all(t.budget == 1.0 for t in asked)
    configs = {}
    for name, t in zip(values, asked):
        s.tell(t, list(values[name]))
        configs[name] = t.config
    return configs


def test_promotes_the_top_third_by_pareto_rank_and_hypervolume():
    s = MOASHA(space(), min_budget=1, max_budget=9, eta=3, seed=0)
    configs = _tell_rung(s, RUNG)
    promoted = [s.ask() for _ in range(2)]  # floor(6 / 3) = 2 promotions, best first
    assert [t.budget for t in promoted] == [3.0, 3.0]
    assert [t.config for t in promoted] == [configs["C"], configs["D"]]
    fresh = s.ask()  # nothing else is in the top third: a new config at the bottom rung
    assert fresh.budget == 1.0 and fresh.config not in configs.values()


def test_crowding_promotes_the_extremes():
    s = MOASHA(space(), min_budget=1, max_budget=9, eta=3, tie_break="crowding", seed=0)
    configs = _tell_rung(s, RUNG)
    assert [s.ask().config for _ in range(2)] == [configs["A"], configs["D"]]


def test_an_infeasible_result_is_promoted_after_every_feasible_one():
    s = MOASHA(space(), min_budget=1, max_budget=9, eta=3, seed=0)
    asked = [s.ask() for _ in range(3)]
    s.tell(asked[0], [0.0, 0.0], constraints=[1.0])  # dominates all, but infeasible
    s.tell(asked[1], [0.9, 0.9], constraints=[-1.0])
    s.tell(asked[2], [1.0, 1.0], constraints=[-1.0])
    assert s.ask().config == asked[1].config


def test_define_by_run_prunes_by_rank_among_reported_tuples():
    s = MOASHA(space(), min_budget=1, max_budget=9, eta=3, mode="prune", seed=0)
    t = [s.ask() for _ in range(4)]
    assert all(x.budget == 9.0 for x in t)

    def at_step_1(trial, values):
        s.report(trial, values, 1)
        return s.should_prune(trial)

    assert not at_step_1(t[0], (0.5, 0.5))  # alone at the rung: goes on
    assert at_step_1(t[1], (0.6, 0.6))  # dominated by the first; keep max(1, 2 // 3) = 1
    # non-dominated but, scaled to x 0.1..0.6 and y 0.5..0.9, it covers 0.8 * 0.1 alone
    # against the first's 0.3 * 1.0: second of three, and one goes on
    assert at_step_1(t[2], (0.1, 0.9))
    assert not at_step_1(t[3], (0.05, 0.05))  # dominates every other
    for x in t:
        s.tell(x, [0.0, 0.0])
    assert not s.pending


def test_registered_rebuildable_and_refuses_a_single_objective_inner_searcher():
    s = make_searcher("moasha", mixed_space(), seed=0, min_budget=1, max_budget=9, tie_break="random")
    assert isinstance(s, MOASHA) and s.multi_objective and s.uses_budget
    assert make_searcher("moasha", mixed_space(), seed=0, **s.get_params()).get_params() == s.get_params()
    with pytest.raises(ValueError, match="several objectives"):
        MOASHA(space(), searcher="tpe")
    with pytest.raises(ValueError, match="tie_break"):
        MOASHA(space(), tie_break="nearest")


def test_auto_picks_moasha_for_several_objectives_with_budgets():
    both = ["maximize", "minimize"]
    study = Study(space(), directions=both, searcher_params={"min_budget": 1, "max_budget": 9})
    assert study.searcher.choice.name == "moasha" and study.searcher.multi_objective
    assert Study(space(), directions=both).searcher.name == "motpe"
    one = Study(space(), searcher_params={"min_budget": 1, "max_budget": 9})
    assert one.searcher.choice.name == "asha"


def _objective(trial):
    x, y = trial.config["x"], trial.config["y"]
    latency = 1.0 + 3.0 * x  # known before training, the same at every step
    for epoch in range(1, 10):
        acc = x * (1.0 - 0.5 / epoch) + 0.1 * y
        trial.report((acc, latency), epoch)
        if trial.should_prune():
            raise TrialPruned()
    return acc, latency


def test_a_multi_objective_study_prunes_and_stores_reported_tuples(tmp_path):
    db = tmp_path / "study.db"
    study = Study(space(), directions=["maximize", "minimize"], searcher="moasha", seed=0, storage=db,
                  searcher_params={"min_budget": 1, "max_budget": 9, "mode": "prune"})
    study.optimize(_objective, n_trials=20)
    states = Counter(t.state for t in study.trials)
    assert states[TrialState.PRUNED] >= 5 and states[TrialState.COMPLETE] >= 1
    reopened = Study.load(db)
    for t in reopened.trials:
        steps = sorted(t.intermediate)
        assert all(isinstance(t.intermediate[k], tuple) and len(t.intermediate[k]) == 2 for k in steps)
        if t.state == TrialState.PRUNED:  # keeps its last report, in the study's directions
            assert t.values == t.intermediate[steps[-1]] and t.values[1] == pytest.approx(1 + 3 * t.config["x"])
    front = reopened.best_trials
    assert front and all(t.state == TrialState.COMPLETE for t in front)
    reopened.optimize(_objective, n_trials=3)  # resumes with the stored tuples
    assert len(reopened.trials) == 23


def test_a_reported_tuple_must_match_the_directions():
    study = Study(space(), directions=["maximize", "minimize"], searcher="moasha",
                  searcher_params={"min_budget": 1, "max_budget": 9, "mode": "prune"})
    h = study.ask()
    with pytest.raises(ValueError, match="3 values, but the study has 2 directions"):
        h.report((0.1, 0.2, 0.3), 1)
    one = Study(space())
    with pytest.raises(ValueError, match="2 values, but the study has 1 direction"):
        one.ask().report((0.1, 0.2), 1)


def test_two_objective_contributions_match_the_exact_hypervolume_difference():
    import numpy as np

    from autodl.searchers.moasha import _contributions
    from autodl.searchers.pareto import hypervolume, pareto_mask

    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.random((12, 2))
        y = y[pareto_mask(y)]
        ref = np.array([1.1, 1.1])
        total = hypervolume(y, ref)
        # what the set loses without each point, computed from the definition
        expected = [total - hypervolume(np.delete(y, i, axis=0), ref) for i in range(len(y))]
        assert _contributions(y, ref) == pytest.approx(expected)


def test_three_objectives_rank_by_front_first():
    order = rank_results([[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 1, 1], [0.5, 0.5, 0.5]], range(5))
    assert set(order[:4]) == {0, 1, 2, 4} and order[4] == 3


def test_to_optuna_keeps_reported_tuples_as_a_user_attribute():
    pytest.importorskip("optuna")
    study = Study(space(), directions=["maximize", "minimize"], searcher="moasha", seed=0,
                  searcher_params={"min_budget": 1, "max_budget": 9, "mode": "prune"})
    study.optimize(_objective, n_trials=6)
    o = study.to_optuna()
    for ours, theirs in zip(study.trials, o.trials):
        assert theirs.intermediate_values == {}
        assert theirs.user_attrs["autodl_intermediate_values"] == {
            str(k): list(v) for k, v in ours.intermediate.items()}
