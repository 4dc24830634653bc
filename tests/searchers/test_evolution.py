"""Tests of regularized (aging) evolution and its public mutation operator."""

from __future__ import annotations

import numpy as np
import pytest

from autodl.searchers import RegularizedEvolution, make_searcher
from autodl.searchers.evolution import mutate
from autodl.space import Categorical, Float, Int, Space, config_key
from autodl.testing import CHECKS, mixed_space


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_conformance(check):
    check(lambda space, seed: RegularizedEvolution(space, seed=seed))


def test_registered_and_rebuildable():
    s = make_searcher("evolution", mixed_space(), seed=0, population=10, sample_size=3)
    assert isinstance(s, RegularizedEvolution)
    assert s.get_params() == {"population": 10, "sample_size": 3, "sigma": 0.1}


def test_mutate_gives_valid_different_configs():
    space = mixed_space()
    rng = np.random.default_rng(0)
    for _ in range(300):
        parent = space.sample(rng)
        child = mutate(parent, space, rng)
        space.validate_config(child)
        assert child != parent


def test_mutate_handles_conditional_children():
    space = Space({
        "kind": Categorical(["a", "b"]),
        "a.x": Float(0.0, 1.0, condition={"kind": ["a"]}),
        "b.n": Int(1, 8, condition={"kind": ["b"]}),
    })
    rng = np.random.default_rng(1)
    parent = {"kind": "a", "a.x": 0.5}
    child = mutate(parent, space, rng, n_mutations=2)  # both active params change
    assert child["kind"] == "b" and "a.x" not in child and 1 <= child["b.n"] <= 8


def test_mutate_moves_integers_and_log_floats_locally():
    space = Space({"n": Int(0, 100), "lr": Float(1e-5, 1e-1, log=True), "flag": Int(0, 1)})
    rng = np.random.default_rng(2)
    parent = {"n": 50, "lr": 1e-3, "flag": 0}
    steps_n, ratios = [], []
    for _ in range(200):
        child = mutate(parent, space, rng, n_mutations=3)
        assert child["flag"] == 1  # a two-valued integer always flips
        steps_n.append(abs(child["n"] - 50))
        ratios.append(abs(np.log10(child["lr"] / 1e-3)))
    assert min(steps_n) >= 1 and np.median(steps_n) < 20
    assert 0 < np.median(ratios) < 1.0  # multiplicative steps, well under a decade


def test_aging_and_tournament_improve_over_random():
    space = Space({f"x{i}": Float(-1, 1) for i in range(4)})

    def sphere(c):
        return float(sum(v * v for v in c.values()))

    bests = {"evolution": [], "random": []}
    for seed in range(5):
        for name in bests:
            s = make_searcher(name, space, seed=seed)
            for _ in range(150):
                t = s.ask()
                s.tell(t, sphere(t.config))
            bests[name].append(s.best().value)
    assert np.median(bests["evolution"]) < 0.5 * np.median(bests["random"])


def test_pending_children_avoid_exact_duplicates():
    space = Space({"a": Int(0, 5), "b": Categorical(["x", "y", "z"])})  # 18 configs
    s = RegularizedEvolution(space, seed=0, population=4, sample_size=2)
    for _ in range(4):
        t = s.ask()
        s.tell(t, t.config["a"])
    pending = [s.ask() for _ in range(6)]
    keys = [config_key(t.config) for t in pending]
    assert len(set(keys)) == len(keys)
