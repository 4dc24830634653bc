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


def _one_good_level(config: dict) -> float:
    # only level "c" of five is good; the float matters less than the level
    return (0.0 if config["k"] == "c" else 1.0) + 0.1 * (config["x"] - 0.3) ** 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finds_the_one_good_categorical_level(seed):
    space = Space({"k": Categorical(["a", "b", "c", "d", "e"]), "x": Float(0.0, 1.0),
                   "n": Int(0, 15)})
    s = _run(TPE(space, seed=seed, n_startup=10), _one_good_level, 40)
    late = [o.trial.config["k"] for o in s.observations[10:]]
    assert sum(k == "c" for k in late) >= 0.6 * len(late), late  # random: 20 %
    assert s.best().trial.config["k"] == "c"


def test_one_good_level_is_reproducible():
    space = Space({"k": Categorical(["a", "b", "c", "d", "e"]), "x": Float(0.0, 1.0)})
    a = [o.trial.config for o in _run(TPE(space, seed=5), _one_good_level, 25).observations]
    b = [o.trial.config for o in _run(TPE(space, seed=5), _one_good_level, 25).observations]
    assert a == b


def test_defaults_follow_the_kind_of_space():
    flat = TPE(_sphere_space(), seed=0)
    cond = TPE(Space({"m": Categorical(["a", "b"]), "a.x": Float(0.0, 1.0, condition={"m": ["a"]})}), seed=0)
    assert (flat._gamma, flat._n_candidates, flat._bandwidth) == (0.15, 64, "neighbor")
    assert (cond._gamma, cond._n_candidates, cond._bandwidth) == (0.10, 24, "fixed")
    # explicit values win, and get_params returns the arguments unchanged
    forced = TPE(_sphere_space(), seed=0, gamma=0.1, n_candidates=24, bandwidth="fixed")
    assert (forced._gamma, forced._n_candidates, forced._bandwidth) == (0.1, 24, "fixed")
    assert TPE(_sphere_space(), seed=0).get_params()["gamma"] is None
    with pytest.raises(ValueError, match="bandwidth is 'wide'"):
        TPE(_sphere_space(), bandwidth="wide")


def test_conditional_space_keeps_trying_other_branches():
    # five models, one clearly best: the model phase still gives the weaker models some trials
    # (the sharper unconditional defaults gave them 13-15 of 150; random search ~90)
    space = Space({"m": Categorical(["a", "b", "c", "d", "e"]),
                   **{f"{b}.x": Float(0.0, 1.0, condition={"m": [b]}) for b in "abcde"}})
    offset = {"a": 0.30, "b": 0.32, "c": 1.0, "d": 1.0, "e": 1.0}

    def objective(c):
        return offset[c["m"]] + (c[f"{c['m']}.x"] - 0.5) ** 2

    weak = best = 0
    for seed in range(3):
        s = _run(TPE(space, seed=seed), objective, 60)
        weak += sum(o.trial.config["m"] in "cde" for o in s.observations[10:])
        best += sum(o.trial.config["m"] == "a" for o in s.observations[10:])
    assert weak >= 20, weak
    assert best >= 75, best  # and still exploits the best model (random: ~30 of 150)
