"""Tests of the multivariate TPE searcher."""

from __future__ import annotations

import time

import numpy as np
import pytest

from autodl.searchers import TPE, make_searcher
from autodl.searchers.base import Trial
from autodl.space import Categorical, Float, Int, Space, config_key
from autodl.testing import CHECKS


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_conformance(check):
    check(lambda space, seed: TPE(space, seed=seed))


def _sphere_space(dim: int = 3) -> Space:
    return Space({f"x{i}": Float(-2.0, 2.0) for i in range(dim)})


def _sphere(config: dict) -> float:
    return float(sum((v - 0.5) ** 2 for v in config.values()))


def _run(searcher, objective, n):
    for _ in range(n):
        t = searcher.ask()
        searcher.tell(t, objective(t.config))
    return searcher


def test_registered_and_rebuildable():
    s = make_searcher("tpe", _sphere_space(), seed=0, gamma=0.2)
    assert isinstance(s, TPE)
    again = make_searcher("tpe", _sphere_space(), seed=0, **s.get_params())
    assert again.get_params() == s.get_params()


def test_determinism_past_startup():
    a = [t.trial.config for t in _run(TPE(_sphere_space(), seed=3), _sphere, 40).observations]
    b = [t.trial.config for t in _run(TPE(_sphere_space(), seed=3), _sphere, 40).observations]
    c = [t.trial.config for t in _run(TPE(_sphere_space(), seed=4), _sphere, 40).observations]
    assert a == b
    assert a[20:] != c[20:]


def test_model_phase_concentrates_near_optimum():
    s = _run(TPE(_sphere_space(), seed=0), _sphere, 80)
    late = [_sphere(o.trial.config) for o in s.observations[-20:]]
    early = [_sphere(o.trial.config) for o in s.observations[:10]]
    assert np.median(late) < 0.2 * np.median(early)


def test_pending_asks_are_distinct_in_a_small_discrete_space():
    space = Space({"a": Int(0, 4), "b": Categorical(["x", "y", "z"])})  # 15 configs
    s = TPE(space, seed=0, n_startup=5)
    _run(s, lambda c: c["a"] + (c["b"] == "y"), 5)
    pending = [s.ask() for _ in range(10)]
    keys = [config_key(t.config) for t in pending]
    assert len(set(keys)) == len(keys)
    observed = {config_key(o.trial.config) for o in s.observations}
    assert not observed & set(keys), "re-proposed an observed config while others were free"


def test_constant_liar_spreads_parallel_asks():
    s = _run(TPE(_sphere_space(2), seed=1), _sphere, 30)
    pending = [s.ask() for _ in range(8)]
    pts = np.array([[t.config["x0"], t.config["x1"]] for t in pending])
    dists = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))[np.triu_indices(8, 1)]
    assert dists.min() > 1e-6
    assert np.median(dists) > 0.05


def test_learns_the_good_branch_of_a_conditional_space():
    space = Space({
        "kind": Categorical(["a", "b", "c"]),
        "a.x": Float(0.0, 1.0, condition={"kind": ["a"]}),
        "b.n": Int(1, 64, log=True, condition={"kind": ["b"]}),
        "b.x": Float(0.0, 1.0, condition={"kind": ["b"]}),
        "c.x": Float(-1.0, 1.0, condition={"kind": ["c"]}),
    })

    def objective(c):
        if c["kind"] == "b":
            return abs(np.log2(c["b.n"]) - 3.0) * 0.1 + (c["b.x"] - 0.3) ** 2
        return 1.0 + c.get("a.x", 0.0) + abs(c.get("c.x", 0.0))

    s = _run(TPE(space, seed=0), objective, 60)
    late = [o.trial.config for o in s.observations[-20:]]
    assert sum(c["kind"] == "b" for c in late) >= 12
    assert s.best().trial.config["kind"] == "b"
    assert 4 <= s.best().trial.config["b.n"] <= 16  # the log-int optimum, within an octave


def test_avoids_a_failing_region():
    space = _sphere_space(2)

    def objective(c):
        return None if c["x0"] < -1.0 else _sphere(c)  # a quarter of the space fails

    s = _run(TPE(space, seed=2), objective, 60)
    late_fail = sum(o.value is None for o in s.observations[-30:])
    assert late_fail <= 3, f"{late_fail} of the last 30 trials failed (random: ~7.5)"


def test_ask_cost_at_500_observations():
    dim = 8
    space = _sphere_space(dim)
    rng = np.random.default_rng(0)
    history = []
    for i in range(500):
        cfg = space.sample(rng)
        history.append((Trial(i, cfg), _sphere(cfg)))
    s = TPE(space, seed=0)
    s.restore(history)
    s.tell(s.ask(), 1.0)  # warm-up
    start = time.perf_counter()
    for _ in range(20):
        s.tell(s.ask(), 1.0)
    ms = 1000 * (time.perf_counter() - start) / 20
    assert ms < 25.0, f"TPE ask+tell takes {ms:.1f} ms at 500 observations"


def test_single_choice_categorical_and_tiny_integer_ranges():
    space = Space({"only": Categorical(["x"]), "bit": Int(0, 1), "v": Float(0.0, 1.0, step=0.5)})
    s = TPE(space, seed=0, n_startup=2)
    seen = set()
    for _ in range(6):  # exactly 6 distinct configs exist
        t = s.ask()
        space.validate_config(t.config)
        seen.add(config_key(t.config))
        s.tell(t, t.config["bit"] + t.config["v"])
    assert len(seen) == 6
