"""``searcher="auto"``: the rule picks what autodl.searchers.auto documents, on spaces built by
hand whose kinds are known; it is deterministic; and it is the study's default."""

from __future__ import annotations

import math

import pytest

from autodl import Categorical, Float, Int, Space, Study
from autodl.errors import UserError
from autodl.searchers import (ASHA, BOHB, TPE, AutoSearcher, GaussianProcess, GridSearch,
                              make_searcher)
from autodl.searchers.auto import GP_MAX_PARAMS, GP_MAX_TRIALS, choose_searcher

CONTINUOUS = Space({"x": Float(-5.0, 5.0), "lr": Float(1e-4, 1e-1, log=True)})
MIXED = Space({"x": Float(0.0, 1.0), "n": Int(1, 64, log=True), "act": Categorical(["relu", "tanh"])})
CONDITIONAL = Space({
    "model": Categorical(["svm", "knn"]),
    "svm.C": Float(1e-2, 1e2, log=True, condition={"model": ["svm"]}),
    "knn.k": Int(1, 30, condition={"model": ["knn"]}),
})
#: 3 x 2 = 6 configurations
FINITE = Space({"depth": Int(1, 3), "act": Categorical(["relu", "tanh"])})
#: "a" with k in 1..3, or "b": 4 configurations
FINITE_CONDITIONAL = Space({"m": Categorical(["a", "b"]), "k": Int(1, 3, condition={"m": ["a"]})})


def floats(d: int) -> Space:
    return Space({f"x{i}": Float(0.0, 1.0) for i in range(d)})


# ---------------------------------------------------------------------------- the rule
@pytest.mark.parametrize("space, kwargs, expected", [
    (CONTINUOUS, {}, "gp"),                                    # rule 5
    (MIXED, {}, "gp"),                                         # rule 5: integers, categories
    (CONDITIONAL, {}, "tpe"),                                  # rule 3
    (floats(GP_MAX_PARAMS), {}, "gp"),
    (floats(GP_MAX_PARAMS + 1), {}, "tpe"),                    # rule 4: many parameters
    (MIXED, {"n_trials": GP_MAX_TRIALS}, "gp"),
    (MIXED, {"n_trials": GP_MAX_TRIALS + 1}, "tpe"),           # rule 4: many trials
    (FINITE, {"n_trials": 6}, "grid"),                         # rule 2: 6 configs, 6 trials
    (FINITE, {"n_trials": 5}, "gp"),                           # the trials do not cover it
    (FINITE, {}, "gp"),                                        # unknown trials: no grid
    (FINITE_CONDITIONAL, {"n_trials": 4}, "grid"),
    (FINITE_CONDITIONAL, {"n_trials": 3}, "tpe"),
    (MIXED, {"n_trials": 10_000}, "tpe"),                      # continuous: never a grid
    (CONTINUOUS, {"max_budget": 27}, "asha"),                  # rule 1
    (CONDITIONAL, {"max_budget": 27, "min_budget": 3, "eta": 3}, "asha"),
    (CONTINUOUS, {"max_budget": 27, "n_initial": 3}, "bohb"),  # d + 1 = 3 starting configs
    (CONTINUOUS, {"max_budget": 27, "n_initial": 2}, "asha"),
    (FINITE, {"max_budget": 9, "n_trials": 100}, "asha"),      # budgets come first
])
def test_the_rule_picks_what_its_documentation_says(space, kwargs, expected):
    assert choose_searcher(space, **kwargs).name == expected
    searcher = AutoSearcher(space, seed=0, **kwargs)
    assert searcher.choice.name == expected and searcher.chosen.name == expected
    assert searcher.choice.reason


def test_the_chosen_searcher_gets_the_budgets_and_a_grid_covering_the_space():
    mf = AutoSearcher(CONTINUOUS, seed=0, min_budget=1, max_budget=9, eta=3)
    assert isinstance(mf.chosen, ASHA)
    assert (mf.chosen.min_budget, mf.chosen.max_budget, mf.chosen.eta) == (1, 9, 3)
    assert mf.uses_budget and mf.max_budget == 9
    assert isinstance(AutoSearcher(CONTINUOUS, max_budget=27, n_initial=5).chosen, BOHB)
    grid = AutoSearcher(FINITE, seed=0, n_trials=6)
    assert isinstance(grid.chosen, GridSearch) and grid.chosen.size == 6
    full = AutoSearcher(MIXED, seed=0)
    assert not full.uses_budget and full.max_budget is None


def test_bad_hints_are_user_errors_naming_the_value():
    with pytest.raises(UserError, match="n_trials"):
        make_searcher("auto", MIXED, n_trials=0)
    with pytest.raises(UserError, match="max_budget"):
        make_searcher("auto", MIXED, min_budget=1)
    with pytest.raises(UserError, match="n_initial"):
        make_searcher("auto", MIXED, n_initial=-1)


# ---------------------------------------------------------------------------- determinism
def _run(searcher, objective, n: int) -> list[tuple]:
    out = []
    for _ in range(n):
        t = searcher.ask()
        out.append((sorted(t.config.items()), t.budget))
        searcher.tell(t, objective(t.config))
    return out


def _loss(config) -> float:
    return (config["x"] - 0.3) ** 2 + math.log(config["n"]) / 10 + (config["act"] == "tanh")


@pytest.mark.parametrize("cls, space, kwargs", [
    (GaussianProcess, MIXED, {}),
    (TPE, MIXED, {"n_trials": 500}),
])
def test_auto_proposes_exactly_what_the_chosen_searcher_proposes(cls, space, kwargs):
    auto = _run(AutoSearcher(space, seed=7, **kwargs), _loss, 14)
    assert auto == _run(cls(space, seed=7), _loss, 14)
    assert auto == _run(AutoSearcher(space, seed=7, **kwargs), _loss, 14)
    assert auto != _run(AutoSearcher(space, seed=8, **kwargs), _loss, 14)


def test_auto_keeps_pending_and_best_in_step_with_the_chosen_searcher():
    s = AutoSearcher(MIXED, seed=0)
    a, b = s.ask(), s.ask()
    assert set(s.pending) == set(s.chosen.pending) == {a.id, b.id}
    s.discard(a)
    s.tell(b, 0.5)
    assert s.pending == {} and s.chosen.pending == {}
    assert s.best().value == 0.5 and s.best().trial.id == b.id


# ---------------------------------------------------------------------------- the study
def test_a_study_with_the_default_searcher_runs_and_says_what_it_chose():
    study = Study(MIXED, seed=0)
    assert study.searcher.name == "auto" and study.searcher.choice.name == "gp"
    study.optimize(lambda t: _loss(t.config), n_trials=14)
    assert len(study.trials) == 14 and all(t.state.value == "complete" for t in study.trials)
    assert math.isfinite(study.best_value)


def test_a_resumed_auto_study_rebuilds_the_same_choice(tmp_path):
    run = tmp_path / "run"
    study = Study(CONTINUOUS, seed=0, storage=run, searcher_params={"max_budget": 9, "min_budget": 1})
    study.optimize(lambda t: t.config["x"] ** 2 + 1.0 / t.budget, n_trials=8)
    assert all(t.budget is not None for t in study.trials)
    resumed = Study.load(run)
    assert resumed.searcher.name == "auto" and resumed.searcher.choice.name == "asha"
    resumed.optimize(lambda t: t.config["x"] ** 2 + 1.0 / t.budget, n_trials=4)
    assert len(resumed.trials) == 12
