"""Optuna interoperability: studies exported to Optuna, Optuna samplers as autodl searchers."""

import math

import pytest

import autodl
from autodl import Categorical, Float, Int, Space
from autodl.testing import CHECKS

optuna = pytest.importorskip("optuna")

from autodl.integrations.optuna import OptunaSearcher  # noqa: E402


def _space():
    return Space({
        "x": Float(-3.0, 3.0),
        "lr": Float(1e-4, 1e-1, log=True),
        "n": Int(1, 8),
        "opt": Categorical(["adam", "sgd"]),
        "momentum": Float(0.0, 0.99, condition={"opt": ["sgd"]}),
    })


def _objective(trial):
    c = trial.config
    if c["n"] == 8:
        raise RuntimeError("n=8 is broken")
    for step in range(3):
        trial.report(step, c["x"] ** 2 + step)
    return c["x"] ** 2 + math.log10(c["lr"]) ** 2 * 0.1 + c.get("momentum", 0.0)


def test_to_optuna_copies_every_finished_trial_with_distributions():
    study = autodl.Study(_space(), searcher="random", seed=0)
    study.optimize(_objective, n_trials=25)
    ostudy = study.to_optuna()
    ours = {t.id: t for t in study.trials}
    assert len(ostudy.trials) == 25
    n_failed = 0
    for ot in ostudy.trials:
        t = ours[ot.user_attrs["autodl_id"]]
        assert ot.params == t.config
        assert set(ot.distributions) == set(t.config)  # inactive conditionals absent there too
        if t.state == autodl.TrialState.COMPLETE:
            assert ot.state == optuna.trial.TrialState.COMPLETE and ot.value == t.value
            assert ot.intermediate_values == {0: t.intermediate[0], 1: t.intermediate[1], 2: t.intermediate[2]}
        else:
            n_failed += 1
            assert ot.state == optuna.trial.TrialState.FAIL
    assert n_failed == sum(t.state == autodl.TrialState.FAILED for t in study.trials)
    assert ostudy.best_value == pytest.approx(study.best_value)
    assert ostudy.direction == optuna.study.StudyDirection.MINIMIZE
    # Optuna's own analysis runs on it
    importances = optuna.importance.get_param_importances(ostudy, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    assert "x" in importances


def test_to_optuna_keeps_direction_and_writes_to_an_optuna_storage(tmp_path):
    study = autodl.Study(_space(), searcher="random", direction="maximize", seed=1)
    study.optimize(lambda t: -t.config["x"] ** 2, n_trials=10)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study.to_optuna(storage=url, study_name="from-autodl")
    loaded = optuna.load_study(study_name="from-autodl", storage=url)
    assert loaded.direction == optuna.study.StudyDirection.MAXIMIZE
    assert loaded.best_value == pytest.approx(study.best_value)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_optuna_searcher_conformance(check):
    check(lambda space, seed: OptunaSearcher(space, seed=seed, sampler="tpe"))


@pytest.mark.parametrize("sampler", ["cmaes", "random", "qmc"])
def test_optuna_samplers_drive_an_autodl_study(sampler):
    space = Space({"x": Float(-5.0, 5.0), "y": Float(-5.0, 5.0)})
    study = autodl.Study(space, searcher="optuna", searcher_params={"sampler": sampler}, seed=0)
    study.optimize(lambda t: (t.config["x"] - 1) ** 2 + (t.config["y"] + 2) ** 2, n_trials=40)
    assert study.n_finished == 40
    assert study.best_value < 3.0  # far below a typical random point (~ 17 on average)


def test_cmaes_through_autodl_beats_its_own_start():
    space = Space({f"x{i}": Float(-5.0, 5.0) for i in range(4)})
    study = autodl.Study(space, searcher=OptunaSearcher(space, seed=3, sampler="cmaes"))
    study.optimize(lambda t: sum(v * v for v in t.config.values()), n_trials=120)
    values = [t.value for t in study.trials]
    assert min(values[-40:]) < 0.1 * min(values[:10])


def test_unknown_sampler_is_a_user_error():
    with pytest.raises(autodl.UserError, match="unknown Optuna sampler 'nope'"):
        OptunaSearcher(_space(), sampler="nope")
