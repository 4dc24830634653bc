"""NSGA-II-style evolution: conformance, survivor selection against a brute-force oracle,
constraint handling, and that it beats random search on a two-objective problem."""

from __future__ import annotations

import numpy as np
import pytest

from autodl.searchers import NSGA2, TPE, RandomSearch, make_searcher
from autodl.searchers.nsga2 import select_population
from autodl.searchers.pareto import hypervolume
from autodl.space import Float, Space
from autodl.testing import CHECKS, mixed_space


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_conformance(check):
    check(lambda space, seed: NSGA2(space, seed=seed, population=8))


def test_registered_and_rebuildable():
    s = make_searcher("nsga2", mixed_space(), seed=0, population=10)
    assert isinstance(s, NSGA2) and s.multi_objective
    assert make_searcher("nsga2", mixed_space(), seed=0, **s.get_params()).get_params() == s.get_params()


def _mixed_values(config):
    x = config["x"]
    kind = {"a": 0.0, "b": 0.5, "c": 1.0}[config["kind"]]
    return [(x - 1) ** 2 + kind, (x + 1) ** 2 + config["n"] * 0.1]


def test_children_are_valid_configs_of_a_mixed_conditional_space_and_reproducible():
    space = mixed_space()

    def run(seed):
        s = NSGA2(space, seed=seed, population=6)
        out = []
        for _ in range(60):
            t = s.ask()
            assert space.contains(t.config), t.config
            s.tell(t, _mixed_values(t.config))
            out.append(t.config)
        return out

    a = run(1)
    assert a == run(1)
    assert a != run(2)
    # evolution reached the conditional branches
    assert any("a.flag.depth" in c for c in a[6:]) and any("b.k" in c for c in a[6:])


def _brute_survivors(y, viol, size):
    """Front by front from the definition; the front that does not fit entirely keeps its
    members with the largest crowding distance computed by hand."""
    left = list(range(len(y)))
    chosen = []
    while left and len(chosen) < size:
        feas = [i for i in left if viol[i] <= 0]
        if feas:
            front = [i for i in feas if not any(np.all(y[j] <= y[i]) and np.any(y[j] < y[i]) for j in feas)]
        else:
            low = min(viol[i] for i in left)
            front = [i for i in left if viol[i] == low]
        left = [i for i in left if i not in front]
        if len(chosen) + len(front) <= size:
            chosen += front
            continue
        if viol[front[0]] > 0:
            return chosen, front  # ties in violation: any of them may be kept
        d = {i: 0.0 for i in front}
        for k in range(y.shape[1]):
            srt = sorted(front, key=lambda i: (y[i, k], front.index(i)))
            d[srt[0]] = d[srt[-1]] = np.inf
            span = y[srt[-1], k] - y[srt[0], k]
            for p in range(1, len(srt) - 1):
                if span > 0:
                    d[srt[p]] += (y[srt[p + 1], k] - y[srt[p - 1], k]) / span
        return chosen, sorted(front, key=lambda i: -d[i])[: size - len(chosen)]
    return chosen, []


@pytest.mark.parametrize("seed", range(6))
def test_select_population_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.random((30, 2))
    viol = np.where(rng.random(30) < 0.3, rng.integers(1, 4, 30).astype(float), 0.0)
    idx, rank, crowd = select_population(y, viol, 12)
    whole, partial = _brute_survivors(y, viol, 12)
    assert len(idx) == 12
    assert set(whole) <= set(idx.tolist())
    rest = set(idx.tolist()) - set(whole)
    if partial and viol[partial[0]] <= 0:
        assert rest == set(partial)
    assert np.all(np.diff(rank) >= 0)


def _zdt1(x):
    g = 1 + 9 * np.mean(x[1:])
    return [x[0], g * (1 - np.sqrt(x[0] / g))]


def _hv_after(searcher, n):
    space = searcher.space
    ys = []
    for _ in range(n):
        t = searcher.ask()
        x = np.array([t.config[f"x{i}"] for i in range(len(space.names))])
        y = _zdt1(x)
        searcher.tell(t, y)
        ys.append(y)
    return hypervolume(np.array(ys), [1.1, 11.0])


def test_beats_random_search_on_zdt1():
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(4)})
    nsga = [_hv_after(NSGA2(space, seed=s, population=16), 200) for s in range(4)]
    rand = [_hv_after(RandomSearch(space, seed=s), 200) for s in range(4)]
    assert np.mean(nsga) > np.mean(rand)


def test_infeasible_children_are_outranked_by_feasible_ones():
    """With constraint x0 <= 0.3, the survivors are all feasible once enough are."""
    space = Space({"x0": Float(0.0, 1.0), "x1": Float(0.0, 1.0)})
    s = NSGA2(space, seed=0, population=8)
    for _ in range(80):
        t = s.ask()
        x = np.array([t.config["x0"], t.config["x1"]])
        s.tell(t, _zdt1(x), constraints=[t.config["x0"] - 0.3])
    ok = [o for o in s.observations if o.ok]
    y = np.array([o.values for o in ok])
    viol = np.array([o.violation for o in ok])
    assert (viol == 0).sum() >= 8
    idx, _, _ = select_population(y, viol, 8)
    assert np.all(viol[idx] == 0)
    late = [o.trial.config["x0"] for o in s.observations[40:]]
    assert np.mean(np.array(late) <= 0.3) > 0.5


def test_single_objective_searchers_refuse_several_values():
    s = TPE(Space({"x": Float(0, 1)}), seed=0)
    t = s.ask()
    with pytest.raises(TypeError, match="nsga2"):
        s.tell(t, [1.0, 2.0])
