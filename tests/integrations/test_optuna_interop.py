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
        trial.report(c["x"] ** 2 + step, step)
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


@pytest.mark.parametrize("sampler", ["tpe", "random"])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_optuna_searcher_conformance(check, sampler):
    check(lambda space, seed: OptunaSearcher(space, seed=seed, sampler=sampler))


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


# ---------------------------------------------------------------------------- resume and workers
def _xy():
    return Space({"x": Float(-5.0, 5.0), "y": Float(-5.0, 5.0)})


def _xy_objective(t):
    return (t.config["x"] - 1) ** 2 + (t.config["y"] + 2) ** 2


@pytest.mark.parametrize("sampler", ["random", "tpe", "qmc"])
def test_a_resumed_optuna_study_proposes_new_configs(tmp_path, sampler):
    run = tmp_path / "run"
    first = autodl.Study(_xy(), searcher="optuna", searcher_params={"sampler": sampler}, seed=0,
                         storage=run)
    first.optimize(_xy_objective, n_trials=5)
    original = [t.config for t in first.trials]
    resumed = autodl.Study.load(run)
    assert resumed.searcher.sampler_name == sampler
    resumed.optimize(_xy_objective, n_trials=5)
    new = [t.config for t in resumed.trials[5:]]
    assert len(new) == 5
    assert not [c for c in new if c in original], "the resumed sampler re-proposed the first configs"


def test_a_resumed_study_with_a_seeded_sampler_instance_proposes_new_configs(tmp_path):
    run = tmp_path / "run"

    def searcher():
        return OptunaSearcher(_xy(), sampler=optuna.samplers.RandomSampler(seed=0))

    first = autodl.Study(_xy(), searcher=searcher(), storage=run)
    first.optimize(_xy_objective, n_trials=5)
    original = [t.config for t in first.trials]
    resumed = autodl.Study.load(run, searcher=searcher())
    resumed.optimize(_xy_objective, n_trials=5)
    assert not [t.config for t in resumed.trials[5:] if t.config in original]


def test_reseeding_an_optuna_searcher_is_reproducible_and_keeps_its_history():
    a, b = (OptunaSearcher(_xy(), seed=0, sampler="random") for _ in range(2))
    for s in (a, b):
        for _ in range(3):
            t = s.ask()
            s.tell(t, 1.0)
    a.reseed([0, 3, 7])
    b.reseed([0, 3, 7])
    nxt_a, nxt_b = a.ask(), b.ask()
    assert nxt_a.config == nxt_b.config
    c = OptunaSearcher(_xy(), seed=0, sampler="random")
    c.reseed([0, 3, 8])
    assert c.ask().config != nxt_a.config
    assert len(a._study.trials) == 4  # three finished and the one just asked


def test_a_discarded_trial_is_not_left_running_in_the_optuna_study():
    s = OptunaSearcher(_xy(), seed=0, sampler="tpe")
    t = s.ask()
    s.discard(t)
    assert not s.pending
    assert [ot.state for ot in s._study.trials] == [optuna.trial.TrialState.FAIL]


# ---------------------------------------------------------------------------- module layout
def test_optuna_searcher_lives_with_the_searchers_and_is_re_exported():
    import autodl.integrations.optuna as integration
    import autodl.searchers as searchers
    import autodl.searchers.optuna as module

    assert integration.OptunaSearcher is module.OptunaSearcher is searchers.OptunaSearcher
    assert searchers.SEARCHERS["optuna"] is module.OptunaSearcher
    assert integration.make_sampler is module.make_sampler


def test_study_and_searchers_do_not_import_the_integrations(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, autodl\n"
        "from autodl import Float, Space, Study\n"
        "space = Space({'x': Float(0.0, 1.0)})\n"
        "study = Study(space, searcher='optuna', seed=0)\n"
        "study.optimize(lambda t: t.config['x'], n_trials=3)\n"
        "assert len(study.to_optuna().trials) == 3\n"
        "print(sorted(m for m in sys.modules if m.startswith('autodl.integrations')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
