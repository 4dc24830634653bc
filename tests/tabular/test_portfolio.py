"""Strong defaults first (the portfolio through Study.enqueue), class weights in the space, and a
warning for an imbalanced target scored by accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import autodl
from autodl.errors import SpaceError
from autodl.tabular.portfolio import PORTFOLIO, portfolio  # PORTFOLIO: the stored list


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


def test_the_shipped_portfolio_loads_and_every_config_builds_a_pipeline():
    import json
    from pathlib import Path

    import tomllib

    from autodl.tabular.pipeline import build_pipeline
    from autodl.tabular.portfolio import PORTFOLIO_FILE, load_portfolio

    stored = json.loads(PORTFOLIO_FILE.read_text())
    configs = load_portfolio()
    assert configs == stored["configs"] == PORTFOLIO and 5 <= len(configs) <= 15
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == len(configs)  # no config twice
    space = autodl.Space.load("tabular")
    X = pd.DataFrame({"a": np.arange(40.0), "b": np.tile(["u", "v"], 20)})
    for config in configs:
        assert space.contains(config), config
        for task, y in (("classification", np.tile([0, 1], 20)), ("regression", np.arange(40.0))):
            pipe = build_pipeline(config, X, task, seed=0)
            assert pipe.named_steps["model"] is not None
    # shipped with the package: setuptools' package data names the file
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert "portfolio.json" in pyproject["tool"]["setuptools"]["package-data"]["autodl.tabular"]


def test_portfolio_returns_the_stored_order_for_a_table_shape():
    from autodl.tabular.portfolio import load_portfolio, rules

    space = autodl.Space.load("tabular")
    stored = load_portfolio()
    assert portfolio(space, 1000) == stored  # regression: no rule applies
    assert portfolio(space, 1000, n_classes=2) == stored
    multi = portfolio(space, 1000, n_classes=10)
    if rules()["multiclass_linear_first"]:
        n_linear = sum(c["model"] == "linear" for c in stored)
        assert [c["model"] for c in multi[:n_linear]] == ["linear"] * n_linear
        assert sorted(map(str, multi)) == sorted(map(str, stored))
    else:
        assert multi == stored
    if rules()["forests_last_rows"] is None:
        assert portfolio(space, 100_000) == stored
    narrow = autodl.Space({"model": autodl.Categorical(["knn"]), "knn.n_neighbors": autodl.Int(1, 9)})
    assert portfolio(narrow, 1000) == []  # nothing of it is a point of that space


@pytest.mark.parametrize("multiclass, rows", [(True, None), (False, 5000), (True, 5000)])
def test_the_shape_rules_reorder_when_the_stored_portfolio_keeps_them(monkeypatch, multiclass, rows):
    from autodl.tabular import portfolio as module

    configs = module.HAND_PICKED
    monkeypatch.setattr(module, "_stored", lambda: {"configs": configs,
                                                   "rules": {"multiclass_linear_first": multiclass,
                                                             "forests_last_rows": rows}})
    space = autodl.Space.load("tabular")
    assert module.portfolio(space, 1000) == configs
    models = [c["model"] for c in module.portfolio(space, 1000, n_classes=10)]
    assert models == (["linear", "hist_gb", "random_forest", "extra_trees", "hist_gb"] if multiclass
                      else [c["model"] for c in configs])
    big = [c["model"] for c in module.portfolio(space, 100_000)]
    assert big == (["hist_gb", "linear", "hist_gb", "random_forest", "extra_trees"] if rows
                   else [c["model"] for c in configs])


def _oracle_step(scores, costs, alpha, chosen):
    """Brute force: the objective after adding each remaining column, per unit of cost."""
    best = scores[:, chosen].max(axis=1) if chosen else np.zeros(len(scores))
    values = {}
    for j in range(scores.shape[1]):
        if j in chosen:
            continue
        gain = np.maximum(best, scores[:, j]).mean() - best.mean()
        price = 1.0 if costs is None or alpha == 0 else float(np.mean(costs[:, j] ** alpha))
        values[j] = (gain, gain / price)
    return values


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_greedy_portfolio_agrees_with_a_brute_force_oracle(alpha):
    import itertools

    from autodl.tabular.portfolio import greedy_portfolio

    # 4 tables x 5 candidates: 0 is good everywhere but never best, 1-3 each win on some tables,
    # 4 is best on table 3 but expensive
    scores = np.array([[0.7, 1.0, 0.0, 0.2, 0.0],
                       [0.7, 0.0, 1.0, 0.1, 0.3],
                       [0.5, 0.2, 0.0, 1.0, 0.0],
                       [0.6, 0.0, 0.4, 0.0, 1.0]])
    costs = np.array([[1.0, 0.5, 2.0, 1.0, 8.0]] * 4)
    order = greedy_portfolio(scores, 5, costs, alpha=alpha)
    chosen: list[int] = []
    while len(chosen) < 5:
        values = _oracle_step(scores, costs, alpha, chosen)
        j = max(values, key=lambda k: (values[k][1], -k))
        if values[j][0] <= 1e-12:
            break
        chosen.append(j)
    assert order == chosen
    # the first pick is the best single column by brute force over all columns (per cost)
    singles = {j: scores[:, j].mean() / (1.0 if alpha == 0 else np.mean(costs[:, j] ** alpha)) for j in range(5)}
    assert order[0] == max(singles, key=singles.get)
    if alpha == 0:
        # this matrix is one where greedy is also optimal for two: brute force over all pairs
        pairs = {p: scores[:, list(p)].max(axis=1).mean() for p in itertools.combinations(range(5), 2)}
        assert set(order[:2]) == set(max(pairs, key=pairs.get))
        assert order == [0, 3, 4, 1, 2]  # 1 and 2 then add the same: the lower index first
    with pytest.raises(ValueError, match="must be"):
        greedy_portfolio(scores[0], 2)


def test_greedy_portfolio_stops_when_nothing_improves():
    from autodl.tabular.portfolio import greedy_portfolio

    scores = np.array([[1.0, 0.5, 1.0], [1.0, 0.0, 0.2]])
    assert greedy_portfolio(scores, 3) == [0]  # column 0 is best on every table: nothing adds
    assert greedy_portfolio(np.zeros((2, 3)), 3) == []


@pytest.mark.slow
def test_a_tabular_search_starts_with_the_portfolio_unless_told_otherwise():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True, as_frame=True)
    res = autodl.search(X, y, n_trials=len(PORTFOLIO) + 1, cv=2, seed=0, show_progress=False)
    configs = [t.config for t in sorted(res.study.trials, key=lambda t: t.id)]
    assert configs[:len(PORTFOLIO)] == portfolio(autodl.Space.load("tabular"), len(X), n_classes=3)
    assert configs[-1] not in PORTFOLIO  # then the searcher
    off = autodl.search(X, y, n_trials=3, cv=2, seed=0, portfolio=False, show_progress=False)
    assert next(t.config for t in off.study.trials) not in PORTFOLIO


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
    assert resolve_cv("auto", 10_000, 30.0) == 3 and resolve_cv("auto", 9_000, 30.0) == 5
    assert resolve_cv("auto", 15_000, 10.0) == "holdout"  # 3 folds completed one trial in 10 s
    assert resolve_cv("auto", 7_500, 10.0) == 3
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
