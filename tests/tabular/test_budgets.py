"""Budgets of multi-fidelity searchers on tables: a trial with budget b fits b / max_budget of
the full work (iterations or rows), the winner is chosen at the top budget and refit in full."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

import autodl
from autodl import Space, UserError
from autodl.study import Study
from autodl.tabular.metrics import get_metric
from autodl.tabular.pipeline import MIN_ROWS, CVObjective, build_pipeline, make_cv, subsample_rows


pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def cancer():
    return load_breast_cancer(return_X_y=True, as_frame=True)


class FakeTrial:
    """What CVObjective uses of a running trial."""

    def __init__(self, config, budget=None):
        self.config, self.budget, self.user_attrs = dict(config), budget, {}

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value


@pytest.fixture
def fits(monkeypatch):
    """Record every fit of the given estimator classes: rows, targets and iterations done."""
    seen = []

    def watch(*classes):
        for cls in classes:
            original = cls.fit

            def fit(self, X, y, *args, _original=original, **kwargs):
                out = _original(self, X, y, *args, **kwargs)
                done = getattr(self, "n_iter_", None)
                if done is None and hasattr(self, "estimators_"):
                    done = len(self.estimators_)
                seen.append({"cls": type(self).__name__, "rows": len(X), "y": np.asarray(y).copy(),
                             "iterations": None if done is None else int(np.max(done))})
                return out

            monkeypatch.setattr(cls, "fit", fit)
        return seen

    return watch


def objective(X, y, task="classification", metric=None, **kwargs):
    return CVObjective(X, y, task, get_metric(metric, task), folds=3, seed=0, **kwargs)


HIST_GB = {"model": "hist_gb", "hist_gb.max_iter": 90, "hist_gb.learning_rate": 0.1, "impute": "mean",
           "scaler": "standard", "encoder": "onehot"}
KNN = {"model": "knn", "knn.n_neighbors": 5, "impute": "mean", "scaler": "standard", "encoder": "onehot"}


# ------------------------------------------------------------------------- iterations
def test_low_budget_hist_gb_fits_a_ninth_of_the_iterations(iris, fits):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = iris
    seen = fits(HistGradientBoostingClassifier)
    trial = FakeTrial(HIST_GB, budget=1.0)
    objective(X, y, max_budget=9.0)(trial)
    assert [f["iterations"] for f in seen] == [10, 10, 10]  # 90 / 9 in each of the 3 folds
    assert trial.user_attrs["budget_fraction"] == pytest.approx(1 / 9)
    assert trial.user_attrs["budget_resource"] == "iterations"
    assert trial.user_attrs["hist_gb.max_iter"] == 10
    seen.clear()
    objective(X, y, max_budget=9.0)(FakeTrial(HIST_GB, budget=3.0))
    assert [f["iterations"] for f in seen] == [30, 30, 30]


@pytest.mark.parametrize("config", [HIST_GB, KNN], ids=["iterations", "rows"])
def test_full_budget_is_exactly_the_fit_without_a_budget(cancer, config):
    X, y = cancer
    full = objective(X, y, max_budget=9.0)(FakeTrial(config, budget=9.0))
    plain = objective(X, y)(FakeTrial(config))  # a full-budget searcher: no budget
    low = objective(X, y, max_budget=9.0)(FakeTrial(config, budget=1.0))
    assert full == plain
    assert low != full  # the low budget really changed the fit


def test_forest_and_mlp_iterations_scale(iris, fits):
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    X, y = iris
    seen = fits(RandomForestClassifier, ExtraTreesClassifier)
    for model in ("random_forest", "extra_trees"):
        objective(X, y, max_budget=27.0)(FakeTrial({"model": model, f"{model}.n_estimators": 54}, budget=1.0))
    assert [f["iterations"] for f in seen] == [2] * 6
    trial = FakeTrial({"model": "mlp", "mlp.max_epochs": 60, "mlp.hidden_size": 8}, budget=1.0)
    objective(X, y, max_budget=9.0)(trial)
    assert trial.user_attrs["mlp.max_epochs"] == 7  # round(60 / 9), at least 1


# ------------------------------------------------------------------------------- rows
def test_rows_budget_subsamples_each_training_fold_and_validates_on_the_whole_fold(cancer, fits, monkeypatch):
    from sklearn.neighbors import KNeighborsClassifier

    X, y = cancer
    seen = fits(KNeighborsClassifier)
    predicted = []
    original = KNeighborsClassifier.predict
    monkeypatch.setattr(KNeighborsClassifier, "predict",
                        lambda self, X: predicted.append(len(X)) or original(self, X))
    trial = FakeTrial(KNN, budget=1.0)
    objective(X, y, max_budget=9.0)(trial)  # "auto": k-NN has no iteration count -> rows
    folds = [len(train) for train, _ in make_cv("classification", y, 3, 0).split(X, y)]
    assert [f["rows"] for f in seen] == [math.ceil(n / 9) for n in folds]
    share = np.mean(y)
    for f in seen:  # stratified: the classes keep their share
        assert abs(f["y"].mean() - share) < 0.05
    assert sum(predicted) == len(X)  # every row is validated once, in full folds
    assert trial.user_attrs["budget_resource"] == "rows"
    assert trial.user_attrs["fit_rows"] == pytest.approx(np.mean([math.ceil(n / 9) for n in folds]))


def test_rows_resource_applies_to_iterative_models_too(iris, fits):
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = iris
    seen = fits(HistGradientBoostingClassifier)
    objective(X, y, max_budget=4.0, budget_resource="rows")(FakeTrial(HIST_GB, budget=1.0))
    assert [f["iterations"] for f in seen] == [90] * 3
    assert [f["rows"] for f in seen] == [25] * 3  # a quarter of 100 training rows per fold


def test_rows_keep_every_class_and_enough_neighbours(iris, fits):
    from sklearn.neighbors import KNeighborsClassifier

    X, y = iris
    seen = fits(KNeighborsClassifier)
    objective(X, y, max_budget=100.0)(FakeTrial({**KNN, "knn.n_neighbors": 20}, budget=1.0))
    for f in seen:
        assert f["rows"] == 20  # k-NN's 20 neighbours, although 1 % of 100 rows is 1
        assert set(np.unique(f["y"])) == {0, 1, 2}


def test_subsample_rows():
    y = np.array([0] * 90 + [1] * 10)
    half = subsample_rows(y, 0.5, seed=3, fold=1)
    assert len(half) == 50 and np.all(np.diff(half) > 0)
    assert np.bincount(y[half]).tolist() == [45, 5]
    assert np.array_equal(half, subsample_rows(y, 0.5, seed=3, fold=1))  # seeded
    assert not np.array_equal(half, subsample_rows(y, 0.5, seed=4, fold=1))
    tenth = subsample_rows(y, 0.1, seed=3, fold=1)
    assert set(tenth) <= set(half)  # a larger budget sees the smaller one's rows and more
    assert np.bincount(y[tenth]).tolist() == [8, 2]  # at least 2 of every class
    tiny = subsample_rows(y, 0.01, seed=3, fold=1)
    assert len(tiny) == MIN_ROWS
    assert len(subsample_rows(np.arange(100.0), 0.3, seed=0, stratify=False)) == 30
    assert np.array_equal(subsample_rows(y, 1.0, seed=0), np.arange(100))


def test_iterations_resource_refuses_a_model_without_iterations(iris):
    X, y = iris
    with pytest.raises(ValueError, match="has no iteration count"):
        objective(X, y, max_budget=9.0, budget_resource="iterations")(FakeTrial(KNN, budget=1.0))


# ------------------------------------------------------------------------- whole search
SMALL_SPACE = {"parameters": {
    "model": {"type": "categorical", "choices": ["hist_gb", "random_forest"]},
    "hist_gb.max_iter": {"type": "categorical", "choices": [27], "condition": {"model": ["hist_gb"]}},
    "hist_gb.learning_rate": {"type": "float", "low": 0.01, "high": 0.5, "log": True,
                              "condition": {"model": ["hist_gb"]}},
    "random_forest.n_estimators": {"type": "categorical", "choices": [27], "condition": {"model": ["random_forest"]}},
    "random_forest.max_features": {"type": "float", "low": 0.2, "high": 1.0,
                                   "condition": {"model": ["random_forest"]}},
}}
ROWS_SPACE = {"parameters": {
    "model": {"type": "categorical", "choices": ["linear", "knn"]},
    "linear.alpha": {"type": "float", "low": 1e-3, "high": 10.0, "log": True, "condition": {"model": ["linear"]}},
    "knn.n_neighbors": {"type": "int", "low": 1, "high": 8, "condition": {"model": ["knn"]}},
}}


def test_hyperband_ends_at_the_max_budget_and_refits_the_full_config(iris):
    X, y = iris
    # (1, 9, 3): the first bracket runs 9 configs at 1, 3 at 3 and 1 at 9 = 13 trials
    result = autodl.search(X, y, searcher="hyperband", n_trials=13, cv=3, seed=0,
                           space=Space.from_dict(SMALL_SPACE))
    budgets = sorted(t.budget for t in result.study.trials)
    assert budgets == [1.0] * 9 + [3.0] * 3 + [9.0]
    best = result.study.best_trial
    assert best.budget == 9.0 and result.summary()["best_budget"] == 9.0
    assert result.best_config == best.config
    fitted = result.best_model.named_steps["model"]
    full = build_pipeline(best.config, X, "classification", 0).named_steps["model"]
    assert fitted.get_params() == full.get_params()
    name = {"hist_gb": "max_iter", "random_forest": "n_estimators"}[best.config["model"]]
    assert fitted.get_params()[name] == 27  # not the 3 of budget 1
    for t in result.study.trials:
        assert t.user_attrs["budget_fraction"] == pytest.approx(t.budget / 9)


@pytest.mark.parametrize("space, classes, resource", [
    (SMALL_SPACE, "trees", "auto"),
    (ROWS_SPACE, "rows", "rows"),
], ids=["iterations", "rows"])
def test_hyperband_fits_less_than_as_many_full_trials(iris, fits, space, classes, resource):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    X, y = iris
    if classes == "trees":
        seen = fits(HistGradientBoostingClassifier, RandomForestClassifier)
        key = "iterations"
    else:
        seen = fits(LogisticRegression, KNeighborsClassifier)
        key = "rows"
    work = {}
    for searcher in ("random", "hyperband"):
        seen.clear()
        autodl.search(X, y, searcher=searcher, n_trials=13, cv=3, seed=0, test_size=0,
                      space=Space.from_dict(space), budget_resource=resource if searcher == "hyperband" else "auto")
        work[searcher] = sum(f[key] for f in seen)
    # 13 full trials: 13 x 3 folds x (27 iterations | 100 rows) + the refit; hyperband's
    # bracket costs 9/9 + 3/3 + 1 = 3 full trials (plus minimum sizes) + the refit
    assert work["hyperband"] < 0.4 * work["random"], work


@pytest.mark.parametrize("searcher", ["sh", "asha", "bohb"])
def test_other_multi_fidelity_searchers_use_budgets(iris, searcher):
    X, y = iris
    result = autodl.search(X, y, searcher=searcher, n_trials=5, cv=3, seed=1, test_size=0,
                           space=Space.from_dict(SMALL_SPACE), searcher_params={"max_budget": 3, "eta": 3})
    for t in result.study.trials:
        assert t.budget in (1.0, 3.0)
        assert t.user_attrs["budget_fraction"] == pytest.approx(t.budget / 3)
    assert any(t.budget == 1.0 for t in result.study.trials)


@pytest.mark.parametrize("kwargs, message", [
    ({"searcher": "hyperband", "budget_resource": "foo"}, "budget resource is 'foo'"),
    ({"searcher": "hyperband", "searcher_params": {"min_budget": 10, "max_budget": 5}},
     "--max-budget is 5, but must be >= --min-budget (10)"),
    ({"searcher": "tpe", "budget_resource": "rows"}, "only applies with a multi-fidelity searcher"),
    ({"searcher": "hyperband", "budget_resource": "iterations"}, "linear, knn, svm have no iteration count"),
])
def test_api_budget_mistakes(iris, tmp_path, kwargs, message):
    X, y = iris
    with pytest.raises(UserError, match=None) as info:
        autodl.search(X, y, n_trials=2, out=tmp_path / "r", **kwargs)
    assert message in str(info.value)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("args, message", [
    (["--searcher", "hyperband", "--budget-resource", "foo"], "invalid choice: 'foo'"),
    (["--searcher", "hyperband", "--min-budget", "10", "--max-budget", "5"],
     "--max-budget is 5, but must be >= --min-budget (10)"),
    (["--searcher", "asha", "--eta", "1"], "--eta is 1, but must be > 1"),
    (["--searcher", "hyperband", "--min-budget", "0"], "--min-budget is 0, but must be > 0"),
    (["--max-budget", "9"], "--max-budget only apply with a multi-fidelity --searcher"),
    (["--searcher", "random", "--budget-resource", "rows"],
     "--budget-resource only applies with a multi-fidelity --searcher"),
    (["--searcher", "hyperband", "--budget-resource", "iterations"], "have no iteration count"),
    (["--model", "mlp", "--budget-resource", "rows"], "--budget-resource does not apply to --model"),
])
def test_cli_budget_mistakes_are_one_line(tmp_path, capsys, args, message):
    from autodl.cli.main import main

    try:
        code = main(["search", "--dataset", "iris", "--trials", "2", "--out", str(tmp_path / "r"), *args])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r").exists()


def test_cli_budgets_are_kept_by_resume(tmp_path, capsys):
    from autodl.cli.main import main

    run = tmp_path / "r"
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SMALL_SPACE))
    assert main(["search", "--dataset", "iris", "--searcher", "hyperband", "--budget-resource", "rows",
                 "--max-budget", "3", "--space", str(space), "--cv", "3", "--trials", "3",
                 "--out", str(run), "--quiet"]) == 0
    spec = json.loads((run / "run.json").read_text())
    assert spec["budget_resource"] == "rows"
    assert spec["searcher_params"] == {"min_budget": 1, "max_budget": 3, "eta": 3.0}
    assert main(["resume", str(run), "--trials", "6", "--quiet"]) == 0
    capsys.readouterr()
    assert json.loads((run / "run.json").read_text())["budget_resource"] == "rows"
    trials = Study.load(run).trials
    assert len(trials) == 6
    for t in trials:  # every trial, before and after the resume, cut rows (not iterations)
        assert t.user_attrs["budget_resource"] == "rows"
        assert t.user_attrs["budget_fraction"] == pytest.approx(t.budget / 3)
        assert (t.user_attrs["fit_rows"] < 50) == (t.budget == 1.0)  # 80 training rows per fold
    result = json.loads((run / "result.json").read_text())
    assert result["best_budget"] == 3.0


def test_time_kept_for_the_refit_counts_a_full_fit():
    """With budgets, the best trial so far may have run 1/9 of the fit; the time kept free for
    the winner's refit scales its duration to the full budget."""
    from autodl.space import Float, Space
    from autodl.study import Study

    space = Space({"x": Float(0.0, 1.0)})
    study = Study(space, searcher="hyperband", searcher_params={"min_budget": 1, "max_budget": 9, "eta": 3})
    assert study._full_budget_time(1, 2.0) == pytest.approx(18.0)
    assert study._full_budget_time(9, 2.0) == pytest.approx(2.0)
    assert Study(space, searcher="random")._full_budget_time(None, 2.0) == pytest.approx(2.0)


def test_cli_says_when_no_trial_reached_the_max_budget(tmp_path, capsys):
    from autodl.cli.main import main

    space = tmp_path / "space.json"
    space.write_text(json.dumps(SMALL_SPACE))
    assert main(["search", "--dataset", "iris", "--searcher", "hyperband", "--max-budget", "3", "--space",
                 str(space), "--cv", "3", "--trials", "2", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "no trial reached the max budget 3; the best ran at budget 1" in " ".join(out.split())
