"""benchmarks/bbob.py: the quick run, its JSON, and what its numbers must say on the sphere."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

pytest.importorskip("cocoex")  # the bench extra
pytest.importorskip("optuna")

PACKAGES = ("optuna", "coco-experiment", "cmaes", "torch")


def _mean_ranks(runs: list[dict], methods: list[str]) -> dict[str, float]:
    """Mean rank per method (1 = smallest regret, ties share the mean of their ranks), computed
    here from the runs, independently of the script's ``summarize``."""
    problems: dict[tuple, dict[str, float]] = {}
    for r in runs:
        problems.setdefault((r["function"], r["seed"]), {})[r["method"]] = r["regret"]
    ranks: dict[str, list[float]] = {m: [] for m in methods}
    for regrets in problems.values():
        for m in methods:
            below = sum(regrets[o] < regrets[m] for o in methods)
            ties = sum(regrets[o] == regrets[m] for o in methods)  # itself included
            ranks[m].append(below + (ties + 1) / 2)
    return {m: sum(v) / len(v) for m, v in ranks.items()}


@pytest.mark.slow
def test_bbob_quick(tmp_path, bench, meta_ok):
    bbob = bench("bbob")
    out = tmp_path / "bbob.json"
    result = bbob.main(["--quick", "--workers", "1", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == result
    meta_ok(data["meta"], "bbob", PACKAGES)
    assert data["meta"]["argv"] == ["--quick", "--workers", "1", "--out", str(out)]
    # every (function, method) of the quick run exactly once, with the quick run's budget
    assert sorted((r["function"], r["method"]) for r in data["runs"]) == sorted(
        (f, m) for f in (1, 8, 15, 21) for m in bbob.METHODS)
    for r in data["runs"]:
        assert r["dim"] == 2 and r["seed"] == 0 and r["n_evals"] == 25
        # the best of 25 evaluations is at least as good as the first one, and never below f_opt
        assert 0 <= r["regret"] <= r["first_regret"]
    want = _mean_ranks(data["runs"], bbob.METHODS)
    assert data["summary"]["mean_rank"]["2"] == pytest.approx(want, abs=1e-9)


@pytest.mark.slow
def test_model_based_searchers_beat_random_search_on_the_sphere(tmp_path, bench):
    """On the 2-d sphere (BBOB f1) with 25 evaluations, over seeds 0-4: GP's median regret is
    100x below random search's and TPE's at most half of it. A searcher that ignored its
    history would not get there."""
    bbob = bench("bbob")
    methods = ["autodl-random", "autodl-tpe", "autodl-gp"]
    result = bbob.main(["--functions", "1", "--dims", "2", "--evals", "25", "--seeds", "0", "1", "2", "3", "4",
                        "--methods", *methods, "--workers", "1", "--out", str(tmp_path / "sphere.json")])
    median = {m: statistics.median(r["regret"] for r in result["runs"] if r["method"] == m) for m in methods}
    assert median["autodl-gp"] < median["autodl-random"] / 100
    assert median["autodl-tpe"] < median["autodl-random"] / 2
    # and the ranks say so: GP first on every seed, random last on average
    ranks = result["summary"]["mean_rank"]["2"]
    assert ranks["autodl-gp"] == 1.0 and ranks["autodl-random"] == max(ranks.values())


def test_f_opt_is_the_minimum(bench):
    bbob = bench("bbob")
    problem = bbob._problem(1, 2)  # the sphere: f(x_opt) is the minimum
    f_opt = bbob._f_opt(problem)
    rng = np.random.default_rng(0)
    assert all(problem(x) >= f_opt for x in rng.uniform(-5, 5, size=(200, 2)))
