"""Pareto helpers against brute-force oracles written from the definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from autodl.searchers.pareto import (
    crowding_distance, dominates, hypervolume, hypervolume_contributions, non_dominated_sort,
    pareto_mask, violation,
)


def _brute_fronts(y: np.ndarray) -> list[set[int]]:
    """Peel fronts: a point is in the current front if no remaining point dominates it."""
    left = set(range(len(y)))
    fronts = []
    while left:
        front = {i for i in left
                 if not any(np.all(y[j] <= y[i]) and np.any(y[j] < y[i]) for j in left if j != i)}
        fronts.append(front)
        left -= front
    return fronts


def _grid_hypervolume(y: np.ndarray, ref: np.ndarray) -> float:
    """Exact measure of the union of boxes [p, ref] by coordinate compression: every cell of
    the grid spanned by all coordinates is either covered by some box or not."""
    y = y[np.all(y < ref, axis=1)]
    if len(y) == 0:
        return 0.0
    axes = [np.unique(np.append(y[:, k], ref[k])) for k in range(y.shape[1])]
    total = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        lo = np.array([axes[k][i] for k, i in enumerate(cell)])
        hi = np.array([axes[k][i + 1] for k, i in enumerate(cell)])
        if np.any(np.all(y <= lo, axis=1)):
            total += float(np.prod(hi - lo))
    return total


def _brute_crowding(y: np.ndarray) -> np.ndarray:
    n, m = y.shape
    d = np.zeros(n)
    for k in range(m):
        lo, hi = y[:, k].min(), y[:, k].max()
        order = sorted(range(n), key=lambda i: (y[i, k], i))
        d[order[0]] = d[order[-1]] = np.inf
        for pos in range(1, n - 1):
            if hi > lo:
                d[order[pos]] += (y[order[pos + 1], k] - y[order[pos - 1], k]) / (hi - lo)
    return d


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("m", [2, 3])
def test_non_dominated_sort_matches_peeling(seed, m):
    rng = np.random.default_rng(seed)
    # integers make ties and duplicates common
    y = rng.integers(0, 6, size=(40, m)).astype(float)
    fronts = non_dominated_sort(y)
    assert [set(f.tolist()) for f in fronts] == _brute_fronts(y)
    assert sorted(np.concatenate(fronts).tolist()) == list(range(40))
    mask = pareto_mask(y)
    assert set(np.flatnonzero(mask).tolist()) == _brute_fronts(y)[0]


def test_constraint_domination_puts_feasible_first_then_by_violation():
    y = np.array([[0.0, 0.0], [5.0, 5.0], [1.0, 9.0], [9.0, 1.0], [0.5, 0.5]])
    v = np.array([2.0, 0.0, 0.0, 0.0, 0.5])
    fronts = [set(f.tolist()) for f in non_dominated_sort(y, v)]
    assert fronts == [{1, 2, 3}, {4}, {0}]
    assert violation([-1.0, 0.3, 2.0]) == pytest.approx(2.3)
    assert violation(None) == 0.0


def test_dominates():
    assert dominates([1, 2], [1, 3])
    assert not dominates([1, 2], [1, 2])
    assert not dominates([1, 3], [2, 2])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("m", [2, 3])
def test_crowding_distance_matches_definition(seed, m):
    rng = np.random.default_rng(seed)
    y = rng.random((12, m))
    np.testing.assert_allclose(crowding_distance(y), _brute_crowding(y))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_exact_against_grid_oracle(seed, m):
    rng = np.random.default_rng(seed)
    n = {2: 30, 3: 15, 4: 7}[m]
    y = rng.random((n, m))
    if seed % 2:
        y = np.round(y * 4) / 4  # ties, duplicates and points on the reference boundary
    ref = np.full(m, 1.0)
    assert hypervolume(y, ref) == pytest.approx(_grid_hypervolume(y, ref), rel=1e-12, abs=1e-12)


def test_hypervolume_simple_cases():
    assert hypervolume([[1, 2], [2, 1]], [3, 3]) == pytest.approx(3.0)
    assert hypervolume([[1, 1, 1]], [2, 3, 4]) == pytest.approx(6.0)
    assert hypervolume([[5, 0]], [3, 3]) == 0.0  # outside the reference box
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0


def test_hypervolume_contributions_are_leave_one_out():
    rng = np.random.default_rng(3)
    y = rng.random((8, 3))
    ref = np.ones(3)
    c = hypervolume_contributions(y, ref)
    for i in range(len(y)):
        expected = _grid_hypervolume(y, ref) - _grid_hypervolume(np.delete(y, i, axis=0), ref)
        assert c[i] == pytest.approx(max(expected, 0.0), abs=1e-12)
