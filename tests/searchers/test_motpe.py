"""Multi-objective TPE: conformance, the Pareto scores that split good from bad, and that it
learns (beats random search on ZDT1)."""

from __future__ import annotations

import numpy as np
import pytest

from autodl.searchers import MOTPE, RandomSearch, make_searcher
from autodl.searchers.motpe import pareto_scores
from autodl.searchers.pareto import hypervolume
from autodl.space import Float, Space
from autodl.testing import CHECKS, mixed_space


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_conformance(check):
    check(lambda space, seed: MOTPE(space, seed=seed, n_startup=5))


def test_registered_with_tpe_arguments():
    s = make_searcher("motpe", mixed_space(), seed=0, n_startup=7, gamma=0.2)
    assert isinstance(s, MOTPE) and s.multi_objective
    assert s.get_params()["n_startup"] == 7 and s.get_params()["gamma"] == 0.2


def _brute_contribution(y, i, ref):
    """Exclusive hypervolume of point i: the leave-one-out difference of a 2-D sweep written
    out here (independent of autodl.searchers.pareto)."""
    def hv2(p):
        p = sorted(map(tuple, p))
        total, best = 0.0, ref[1]
        for a, b in p:
            if b < best:
                total += (ref[0] - a) * (best - b)
                best = b
        return total
    return hv2(y) - hv2(np.delete(y, i, axis=0))


@pytest.mark.parametrize("seed", range(5))
def test_pareto_scores_follow_fronts_then_contribution(seed):
    rng = np.random.default_rng(seed)
    y = rng.random((30, 2))
    viol = np.where(rng.random(30) < 0.2, rng.random(30) + 0.1, 0.0)
    n_good = 6
    s = pareto_scores(y, viol, n_good)
    feas = [i for i in range(30) if viol[i] == 0]
    # front of each feasible point from the definition (peeling)
    left, front_of, k = set(feas), {}, 0
    while left:
        f = {i for i in left if not any(np.all(y[j] <= y[i]) and np.any(y[j] < y[i]) for j in left)}
        for i in f:
            front_of[i] = k
        left -= f
        k += 1
    for i in feas:
        assert front_of[i] <= s[i] < front_of[i] + 1
    # infeasible after every feasible one, ordered by violation
    inf = [i for i in range(30) if viol[i] > 0]
    assert min(s[inf]) > max(s[feas])
    assert all(s[a] <= s[b] for a in inf for b in inf if viol[a] < viol[b])
    # in the front that straddles the split, larger hypervolume contribution ranks first
    sizes = np.bincount([front_of[i] for i in feas])
    k = int(np.searchsorted(np.cumsum(sizes), n_good, side="right"))
    if k < len(sizes) and np.cumsum(sizes)[k] - sizes[k] < n_good:
        members = [i for i in feas if front_of[i] == k]
        lo, hi = y[feas].min(axis=0), y[feas].max(axis=0)  # the scaling pareto_scores uses
        z = (y[members] - lo) / (hi - lo)
        contrib = [_brute_contribution(z, j, [1.1, 1.1]) for j in range(len(members))]
        by_score = [members[j] for j in np.argsort([s[i] for i in members], kind="stable")]
        by_contrib = [members[j] for j in np.argsort(-np.array(contrib), kind="stable")]
        assert by_score == by_contrib


def _zdt1_hv(searcher, n=120):
    ys = []
    for _ in range(n):
        t = searcher.ask()
        x = np.array([t.config[f"x{i}"] for i in range(5)])
        g = 1 + 9 * np.mean(x[1:])
        y = [x[0], g * (1 - np.sqrt(x[0] / g))]
        searcher.tell(t, y)
        ys.append(y)
    return hypervolume(np.array(ys), [1.1, 11.0])


@pytest.mark.slow
def test_beats_random_search_on_zdt1():
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(5)})
    motpe = [_zdt1_hv(MOTPE(space, seed=s)) for s in range(3)]
    rand = [_zdt1_hv(RandomSearch(space, seed=s)) for s in range(3)]
    assert np.mean(motpe) > np.mean(rand)
