"""benchmarks/hpo_suite.py: the quick run, its cache and JSON, and the problems' lookups, checked
against independent evaluations (training the model of a grid point, evaluating a test function)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

PACKAGES = ("optuna", "cmaes", "torch")


def _ranks(values: dict[str, float]) -> dict[str, float]:
    """1 = smallest, ties share the mean of their ranks (computed here, not by the script)."""
    out = {}
    for m, v in values.items():
        below = sum(o < v for o in values.values())
        ties = sum(o == v for o in values.values())
        out[m] = below + (ties + 1) / 2
    return out


@pytest.mark.slow
def test_hpo_suite_quick(tmp_path, bench, meta_ok):
    suite = bench("hpo_suite")
    hp = suite.hp
    tables, cache, out = tmp_path / "tables", tmp_path / "cache.json", tmp_path / "suite.json"
    argv = ["--quick", "--workers", "1", "--tables-dir", str(tables), "--cache", str(cache), "--out", str(out)]
    result = suite.main(argv)
    data = json.loads(out.read_text())
    assert data == result
    meta_ok(data["meta"], "hpo_suite", PACKAGES)
    assert data["meta"]["versions"]["optuna"] == optuna.__version__
    assert data["config"]["method_versions"]["optuna-tpe"] == f"optuna {optuna.__version__}"

    # the tiny table: every grid point once, and a looked-up loss is what training gives
    table = json.loads(hp.table_path("cash", "tiny-wine", tables).read_text())
    assert sorted(json.dumps(r["config"], sort_keys=True) for r in table["rows"]) == sorted(
        json.dumps(c, sort_keys=True) for c in hp.grid_points(table["params"]))
    problem = hp.make_problem("cash-tiny-wine", tables)
    point = {"model": "knn", "knn.k": 5}
    assert problem.loss(point) == pytest.approx(hp.evaluate_cash("wine", point), abs=1e-12)
    # an off-grid value snaps to the nearest level (log scale): C = 0.5 -> 1.0, k = 3 -> 5 (not 1)
    assert problem.loss({"model": "linear", "linear.C": 0.5}) == problem.loss({"model": "linear", "linear.C": 1.0})
    assert problem.loss({"model": "knn", "knn.k": 3}) == problem.loss(point)

    # the sphere: the loss is the squared distance to the instance's optimum
    sphere = hp.make_problem("cont-sphere-d2")
    x = {"x0": 1.5, "x1": -2.0}
    opt = sphere.info["optimum"]
    assert sphere.loss(x) == pytest.approx((1.5 - opt["x0"]) ** 2 + (-2.0 - opt["x1"]) ** 2)
    assert sphere.loss(opt) == 0.0

    # every method on both problems (CMA-ES only on the all-numeric sphere), 15 trials each
    runs = data["runs"]
    expected = {(m, "cont-sphere-d2") for m in suite.METHODS} | {
        (m, "cash-tiny-wine") for m in suite.METHODS if m != "optuna-cmaes"}
    assert {(r["method"], r["problem"]) for r in runs} == expected and len(runs) == len(expected)
    assert "optuna-cmaes|cash-tiny-wine" in data["skipped"]
    stored = json.loads(cache.read_text())["runs"]
    for r in runs:
        losses = next(v["losses"] for v in stored.values()
                      if (v["method"], v["problem"], v["seed"]) == (r["method"], r["problem"], r["seed"]))
        assert len(losses) == len(r["curve"]) == r["n_trials"] == 15
        assert all(b <= a for a, b in zip(r["curve"], r["curve"][1:]))
        assert r["curve"][-1] == min(losses) == r["best"]
        assert r["curve"] == np.minimum.accumulate(losses).tolist()
        assert r["best"] >= data["problems"][r["problem"]]["f_opt"] - 1e-12

    # ranks: recomputed here per family; mean ranks lie in [1, n] and sum to n(n+1)/2
    for family, problem_name in (("continuous", "cont-sphere-d2"), ("cash", "cash-tiny-wine")):
        s = data["summary"][family]
        best = {r["method"]: r["best"] for r in runs if r["problem"] == problem_name}
        assert set(s["methods"]) == set(best)
        assert s["mean_rank"] == pytest.approx(_ranks(best), abs=1e-9)
        n = len(s["methods"])
        assert all(1 <= v <= n for v in s["mean_rank"].values())
        assert sum(s["mean_rank"].values()) == pytest.approx(n * (n + 1) / 2)
        for m, (lo, hi) in s["rank_ci95"].items():
            assert lo <= s["mean_rank"][m] <= hi
        half = s["at_half_budget"]
        assert half["trials"] == 7
        at_half = {r["method"]: r["curve"][6] for r in runs if r["problem"] == problem_name}
        assert half["mean_rank"] == pytest.approx(_ranks(at_half), abs=1e-9)
    assert "optuna-cmaes" not in data["summary"]["overall"]["methods"]

    # a second run computes nothing and pools the same runs
    again = suite.main(argv)
    assert again["config"]["new_runs"] == 0
    assert again["runs"] == data["runs"] and again["summary"] == data["summary"]


def test_mixed_problem_spaces_match_between_libraries(bench):
    """A mixed problem declares the same parameters to autodl and Optuna, and its categorical
    values carry no order (the shuffled levels differ from the declared order somewhere)."""
    hp = bench("hpo_suite").hp  # imported as a module (its dataclass needs sys.modules)
    problem = hp.make_problem("mix-rastrigin-d10")
    space = problem.autodl_space()
    kind_names = {"float": "float", "int": "int", "cat": "categorical"}
    assert list(space.names) == list(problem.params)
    assert [space.params[n].kind for n in space.names] == [kind_names[k] for k in problem.info["kinds"]]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    config = problem.suggest_optuna(trial)
    assert list(config) == list(space.names)
    assert math.isfinite(problem.loss(config))
    to_x = problem.info["to_x"]
    base = dict(problem.info["optimum"])
    orders = []
    for j, kind in enumerate(problem.info["kinds"]):
        if kind == "cat":
            orders.append([to_x({**base, f"x{j}": c})[j] for c in hp.CAT_CHOICES])
    assert any(o != sorted(o) for o in orders)


def test_conditional_parameters_are_suggested_only_when_active(bench):
    hp = bench("hpo_suite").hp  # imported as a module (its dataclass needs sys.modules)
    params = hp.cash_params()
    problem = hp.Problem("t", "cash", params, lambda c: 0.0, 0.0, "x")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        trial = study.ask()
        config = problem.suggest_optuna(trial)
        assert set(trial.params) == set(config)
        assert all(k == "model" or k.startswith(config["model"] + ".") for k in config)
        study.tell(trial, 0.0)
