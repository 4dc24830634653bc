"""Strong defaults first (the portfolio through Study.enqueue), class weights in the space, and a
warning for an imbalanced target scored by accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import autodl
from autodl.errors import SpaceError
from autodl.tabular.portfolio import PORTFOLIO, portfolio


def test_enqueued_configs_run_first_and_the_searcher_learns_from_them():
    space = autodl.Space({"x": autodl.Float(0.0, 10.0)})
    study = autodl.Study(space, searcher="tpe", seed=0)
    study.enqueue({"x": 7.5})
    study.enqueue({"x": 2.5})
    seen = []
    study.optimize(lambda t: seen.append(t.config["x"]) or (t.config["x"] - 3) ** 2, n_trials=6)
    assert seen[:2] == [7.5, 2.5]
    assert study.trials[0].info.get("enqueued") is True
    # the searcher was told: its observations hold the enqueued points and their results
    told = {o.trial.config["x"]: o.value for o in study.searcher.observations}
    assert told[7.5] == pytest.approx(4.5 ** 2) and told[2.5] == pytest.approx(0.25)
    with pytest.raises(SpaceError):
        study.enqueue({"x": 11.0})


def test_ask_tell_takes_the_queue_too():
    space = autodl.Space({"x": autodl.Float(0.0, 1.0)})
    study = autodl.Study(space, searcher="random", seed=0)
    study.enqueue({"x": 0.25})
    trial = study.ask()
    assert trial.config == {"x": 0.25}
    study.tell(trial, 1.0)
    assert study.ask().config != {"x": 0.25}


def test_every_portfolio_config_is_in_the_built_in_space_and_large_tables_put_forests_last():
    space = autodl.Space.load("tabular")
    assert portfolio(space, 1000) == PORTFOLIO
    big = [c["model"] for c in portfolio(space, 100_000)]
    assert big[-2:] == ["random_forest", "extra_trees"] and big[0] == "hist_gb"
    # many classes: boosting grows a tree per class, so the linear model goes first
    assert [c["model"] for c in portfolio(space, 1000, n_classes=10)][:2] == ["linear", "hist_gb"]
    assert portfolio(space, 1000, n_classes=2) == PORTFOLIO
    narrow = autodl.Space({"model": autodl.Categorical(["knn"]), "knn.n_neighbors": autodl.Int(1, 9)})
    assert portfolio(narrow, 1000) == []  # nothing of it is a point of that space


@pytest.mark.slow
def test_a_tabular_search_starts_with_the_portfolio_unless_told_otherwise():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True, as_frame=True)
    res = autodl.search(X, y, n_trials=len(PORTFOLIO) + 1, cv=2, seed=0, show_progress=False)
    configs = [t.config for t in sorted(res.study.trials, key=lambda t: t.id)]
    assert configs[:len(PORTFOLIO)] == portfolio(autodl.Space.load("tabular"), len(X), n_classes=3)
    assert configs[-1] not in PORTFOLIO  # then the searcher
    off = autodl.search(X, y, n_trials=3, cv=2, seed=0, portfolio=False, show_progress=False)
    assert [t.config for t in off.study.trials][0] not in PORTFOLIO


def test_balanced_class_weights_reach_the_classifiers():
    from autodl.tabular.pipeline import CLASS_WEIGHT_MODELS, build_model

    space = autodl.Space.load("tabular")
    assert set(space["class_weight"].choices) == {"none", "balanced"}
    for model in CLASS_WEIGHT_MODELS:
        config = next(c for c in PORTFOLIO + [{"model": model}] if c["model"] == model)
        est = build_model({**config, "class_weight": "balanced"}, "classification")
        assert est.get_params()["class_weight"] == "balanced", model
        assert "class_weight" not in build_model({**config, "class_weight": "balanced"}, "regression").get_params() \
            or build_model({**config, "class_weight": "balanced"}, "regression").get_params()["class_weight"] is None


def test_an_imbalanced_target_with_the_default_metric_gets_one_warning(capsys):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = np.where(np.arange(400) < 8, "rare", "common")  # 2 %
    autodl.search(X, y, n_trials=1, cv=2, seed=0, show_progress=False, test_size=0)
    err = capsys.readouterr().err
    assert err.count("imbalanced") == 1 and "'rare' is 2.0%" in err and "roc_auc" in err
    autodl.search(X, y, n_trials=1, cv=2, seed=0, show_progress=False, test_size=0, metric="balanced_accuracy")
    assert "imbalanced" not in capsys.readouterr().err


def test_cv_auto_uses_three_folds_on_large_tables_under_a_time_budget_and_holdout_is_one_split():
    from autodl.tabular.pipeline import make_cv, resolve_cv

    assert resolve_cv("auto", 20_000, 30.0) == 3
    assert resolve_cv("auto", 20_000, None) == 5  # trials without a deadline: the usual 5 folds
    assert resolve_cv("auto", 2_000, 30.0) == 5
    assert resolve_cv("holdout", 50, None) == "holdout" and resolve_cv(7, 50, 1.0) == 7
    y = np.array(["a"] * 90 + ["b"] * 10)
    (train, val), = list(make_cv("classification", y, "holdout", 0).split(np.zeros((100, 1)), y))
    assert len(val) == 20 and sorted(np.concatenate([train, val])) == list(range(100))
    assert (y[val] == "b").sum() == 2  # stratified


@pytest.mark.parametrize("cv, ok", [("holdout", True), ("3", True), ("x", False), ("1", False)])
def test_cli_cv_flag(tmp_path, capsys, cv, ok):
    from autodl.cli.main import main

    code = main(["search", "--dataset", "iris", "--trials", "1", "--cv", cv, "--quiet", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    if ok:
        assert code == 0, err
        import json

        spec = json.loads((tmp_path / "r" / "run.json").read_text())
        assert spec["cv"] == (cv if cv == "holdout" else int(cv))
    else:
        assert code == 2 and len(err.splitlines()) == 1 and "--cv" in err, err
