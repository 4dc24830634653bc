"""TPE and GP beat random search on classic test functions.

For each function the median (over seeds) of the best regret after ``N`` evaluations must be
well below random search's. The margins are set from measured behaviour, not to be lenient:
on these budgets both model-based searchers are usually far below half of random's regret.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from autodl.searchers import make_searcher
from autodl.space import Float, Space

SEEDS = range(5)


def branin(x: np.ndarray) -> float:
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return float((x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10)


_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x: np.ndarray) -> float:
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def rosenbrock(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


PROBLEMS = {
    # name: (function, bounds, optimum value, evaluations)
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], 0.397887, 30),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6, -3.32237, 60),
    "rosenbrock5": (rosenbrock, [(-2.048, 2.048)] * 5, 0.0, 60),
}


def best_regret(searcher_name: str, problem: str, seed: int) -> float:
    fn, bounds, f_opt, n = PROBLEMS[problem]
    names = [f"x{i}" for i in range(len(bounds))]
    space = Space({k: Float(lo, hi) for k, (lo, hi) in zip(names, bounds)})
    s = make_searcher(searcher_name, space, seed=seed)
    for _ in range(n):
        t = s.ask()
        s.tell(t, fn(np.array([t.config[k] for k in names])))
    return s.best().value - f_opt


def _median(name: str, problem: str) -> float:
    return float(np.median([best_regret(name, problem, seed) for seed in SEEDS]))


@pytest.mark.parametrize("searcher", ["tpe", "gp"])
@pytest.mark.parametrize("problem", [
    "branin",
    pytest.param("hartmann6", marks=pytest.mark.slow),
    pytest.param("rosenbrock5", marks=pytest.mark.slow),
])
def test_beats_random(searcher, problem):
    ours = _median(searcher, problem)
    random = _median("random", problem)
    assert ours < 0.5 * random, f"{searcher} median regret {ours:.4g} vs random {random:.4g}"


def test_gp_nearly_solves_branin():
    regrets = [best_regret("gp", "branin", seed) for seed in SEEDS]
    assert np.median(regrets) < 0.05, regrets
