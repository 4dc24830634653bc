"""Conformance suite that every autodl searcher must pass.

Use it from pytest for a new searcher::

    import pytest
    from autodl.testing import CHECKS

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_my_searcher(check):
        check(lambda space, seed: MySearcher(space, seed=seed))

or call :func:`check_searcher` to run them all. Each check raises ``AssertionError`` with a
message saying which rule was broken.
"""

from __future__ import annotations

import json
import math
from typing import Callable

import numpy as np

from autodl.errors import SearchExhausted
from autodl.searchers.base import Searcher, Trial
from autodl.space import Categorical, Float, Int, Space

SearcherFactory = Callable[[Space, int], Searcher]


def mixed_space() -> Space:
    """Float, log-float, stepped float, int, log-int, categorical and two conditional levels."""
    return Space({
        "x": Float(-5.0, 5.0),
        "lr": Float(1e-5, 1e-1, log=True),
        "frac": Float(0.0, 1.0, step=0.25),
        "n": Int(1, 10),
        "width": Int(8, 512, log=True),
        "kind": Categorical(["a", "b", "c"]),
        "a.alpha": Float(0.1, 10.0, log=True, condition={"kind": ["a"]}),
        "a.flag": Categorical([True, False], condition={"kind": ["a"]}),
        "a.flag.depth": Int(1, 4, condition={"a.flag": [True]}),
        "b.k": Int(0, 100, step=5, condition={"kind": ["b"]}),
    })


def _objective(config: dict) -> float:
    """A deterministic function of a config, used where a value is needed."""
    v = (config["x"] - 1.0) ** 2 + abs(math.log10(config["lr"]) + 3) + config["n"] * 0.1
    v += {"a": 0.0, "b": 1.0, "c": 2.0}[config["kind"]]
    return float(v)


def _ask(searcher: Searcher) -> Trial | None:
    try:
        return searcher.ask()
    except SearchExhausted:
        return None


def _run(searcher: Searcher, n: int, fail_every: int = 0) -> list[Trial]:
    trials = []
    for i in range(n):
        t = _ask(searcher)
        if t is None:
            break
        trials.append(t)
        value = None if fail_every and i % fail_every == fail_every - 1 else _objective(t.config)
        searcher.tell(t, value)
    return trials


def check_configs_in_space(factory: SearcherFactory, n: int = 40) -> None:
    """Every proposed config is valid: right parameters, values in range, plain types."""
    space = mixed_space()
    s = factory(space, 0)
    trials = _run(s, n)
    assert trials, f"{type(s).__name__} proposed nothing"
    for t in trials:
        space.validate_config(t.config)
        json.dumps(t.config)  # plain values only
        for k, v in t.config.items():
            assert type(v) in (int, float, str, bool, type(None)), (
                f"{k}={v!r} is a {type(v).__name__}, not a plain value"
            )


def check_conditionals(factory: SearcherFactory, n: int = 60) -> None:
    """Inactive conditional parameters are absent; every branch gets explored."""
    space = mixed_space()
    s = factory(space, 1)
    trials = _run(s, n)
    kinds = set()
    for t in trials:
        c = t.config
        kinds.add(c["kind"])
        assert ("a.alpha" in c) == (c["kind"] == "a"), f"a.alpha active wrongly in {c}"
        assert ("b.k" in c) == (c["kind"] == "b"), f"b.k active wrongly in {c}"
        assert ("a.flag.depth" in c) == (c.get("a.flag") is True), f"nested condition wrong in {c}"
    assert len(kinds) >= 2, f"only branch(es) {kinds} explored in {n} trials"


def check_determinism(factory: SearcherFactory, n: int = 25) -> None:
    """Same seed and same results give the same sequence; another seed gives another."""
    space = mixed_space()
    a = [t.config for t in _run(factory(space, 7), n)]
    b = [t.config for t in _run(factory(space, 7), n)]
    assert a == b, "same seed gave different sequences"
    c = [t.config for t in _run(factory(space, 8), n)]
    assert a != c, "different seeds gave identical sequences"


def check_failures_tolerated(factory: SearcherFactory, n: int = 30) -> None:
    """Failures (None, NaN, inf) are accepted and never reported as the best."""
    space = mixed_space()
    s = factory(space, 2)
    for i in range(n):
        t = _ask(s)
        if t is None:
            break
        value = [None, float("nan"), float("inf"), _objective(t.config)][i % 4]
        s.tell(t, value)
    best = s.best()
    assert best is None or math.isfinite(best.value), "a failure was taken as the best result"
    # the searcher keeps proposing valid configs after failures
    t = _ask(s)
    if t is not None:
        space.validate_config(t.config)


def check_all_failures(factory: SearcherFactory, n: int = 15) -> None:
    """A searcher whose every trial failed still proposes valid configs."""
    space = mixed_space()
    s = factory(space, 3)
    for _ in range(n):
        t = _ask(s)
        if t is None:
            break
        s.tell(t, None)
    t = _ask(s)
    if t is not None:
        space.validate_config(t.config)


def check_many_asks_before_tells(factory: SearcherFactory, n: int = 16) -> None:
    """Many asks before any tell (parallel workers): unique ids, all pending, valid configs,
    then tells in reverse order are accepted."""
    space = mixed_space()
    s = factory(space, 4)
    _run(s, 10)  # some history first, so model-based searchers are past their start-up
    asked = [t for t in (_ask(s) for _ in range(n)) if t is not None]
    ids = [t.id for t in asked]
    assert len(set(ids)) == len(ids), f"duplicate trial ids among pending: {ids}"
    for t in asked:
        space.validate_config(t.config)
    for t in reversed(asked):
        s.tell(t, _objective(t.config))
    assert not s.pending, f"trials still pending after all were told: {list(s.pending)}"


def check_foreign_tells(factory: SearcherFactory, n: int = 20) -> None:
    """Results the searcher did not ask for (restored from storage) are accepted, and later
    trial ids do not collide with them."""
    space = mixed_space()
    rng = np.random.default_rng(0)
    history = [(Trial(i, space.sample(rng), None), float(i % 5)) for i in range(n)]
    s = factory(space, 5)
    s.restore(history)
    t = _ask(s)
    if t is not None:
        space.validate_config(t.config)
        assert t.id >= n, f"new trial id {t.id} collides with restored ids 0..{n - 1}"


def check_budgets(factory: SearcherFactory, n: int = 30) -> None:
    """Full-budget searchers leave ``budget`` None; multi-fidelity ones give positive budgets."""
    space = mixed_space()
    s = factory(space, 6)
    for t in _run(s, n):
        if s.uses_budget:
            assert t.budget is not None and t.budget > 0, f"bad budget {t.budget!r}"
        else:
            assert t.budget is None, f"full-budget searcher gave budget {t.budget!r}"


def _proposal(t: Trial) -> str:
    return json.dumps([t.config, t.budget], sort_keys=True)


def check_restore_does_not_repeat(factory: SearcherFactory, n: int = 8) -> None:
    """A searcher restored from a run's results (a resumed study) does not propose that run's
    trials again: its random stream is reseeded, Optuna samplers and inner searchers included."""
    space = mixed_space()
    first = _run(factory(space, 11), n)
    history = [(t, _objective(t.config)) for t in first]
    resumed = factory(space, 11)
    resumed.restore(history)
    again = [t for t in (_ask(resumed) for _ in range(n)) if t is not None]
    repeated = {_proposal(t) for t in again} & {_proposal(t) for t in first}
    assert not repeated, f"the resumed searcher proposed {len(repeated)} of the first run's trials again"


def check_reseed(factory: SearcherFactory, n: int = 12) -> None:
    """``reseed(entropy)``: the same entropy gives the same continuation, and what was learnt
    (observations, pending trials) is kept."""
    space = mixed_space()
    runs = []
    for _ in range(2):
        s = factory(space, 13)
        _run(s, n)
        held = _ask(s)
        s.reseed([13, 1, 2])
        assert len(s.observations) == n, "reseed() changed the observations"
        if held is not None:
            assert held.id in s.pending, "reseed() dropped a pending trial"
        runs.append([t.config for t in _run(s, n)])
    assert runs[0] == runs[1], "the same reseed entropy gave different sequences"


def check_adopt_and_discard(factory: SearcherFactory, n: int = 10) -> None:
    """``discard(trial)`` forgets a pending trial; ``adopt(config, budget, info)`` makes a given
    trial pending (a retry): not proposed again while it runs, learnt from when told."""
    space = mixed_space()
    s = factory(space, 12)
    _run(s, n)
    t = _ask(s)
    if t is None:
        return
    s.discard(t)
    assert t.id not in s.pending, "a discarded trial is still pending"
    s.discard(t)  # not pending any more: ignored
    a = s.adopt(t.config, t.budget, t.info)
    assert (a.config, a.budget, dict(a.info)) == (t.config, t.budget, dict(t.info)), (
        f"adopt() changed the trial: {a} instead of {t}")
    others = [x for x in (_ask(s) for _ in range(5)) if x is not None]
    ids = [a.id] + [x.id for x in others]
    assert len(set(ids)) == len(ids), f"adopted trial id collides with asked ones: {ids}"
    assert a.id in s.pending, "an adopted trial is not pending"
    assert _proposal(a) not in {_proposal(x) for x in others}, (
        "the adopted trial was proposed again while it was pending")
    for x in [a, *others]:
        space.validate_config(x.config)
        s.tell(x, _objective(x.config))
    assert not s.pending, f"trials still pending after all were told: {list(s.pending)}"
    assert any(o.trial.id == a.id for o in s.observations), "the adopted trial's result was lost"


CHECKS = [
    check_configs_in_space,
    check_conditionals,
    check_determinism,
    check_failures_tolerated,
    check_all_failures,
    check_many_asks_before_tells,
    check_foreign_tells,
    check_budgets,
    check_restore_does_not_repeat,
    check_reseed,
    check_adopt_and_discard,
]


def check_searcher(factory: SearcherFactory) -> None:
    """Run every conformance check on searchers built by ``factory(space, seed)``."""
    for check in CHECKS:
        check(factory)


__all__ = ["CHECKS", "check_searcher", "mixed_space", "SearcherFactory"] + [c.__name__ for c in CHECKS]
