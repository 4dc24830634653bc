"""Parallel suggestions: pending trials inform TPE (constant liar) and the GP (kriging believer).

The oracle is geometric and computed here: the minimum pairwise distance between asks made while
the earlier ones are still pending. Each searcher is compared with its *blind* twin, the same
class with ``models_pending = False`` (pending configurations are still never proposed twice, but
the model ignores them), so the tests fail if the pending information stops reaching the model.
"""

from __future__ import annotations

import numpy as np
import pytest

from autodl.searchers import TPE, GaussianProcess
from autodl.searchers.base import Trial
from autodl.space import Categorical, Float, Int, Space


def _space(dim: int = 3) -> Space:
    return Space({f"x{i}": Float(-2.0, 2.0) for i in range(dim)})


def _sphere(config: dict) -> float:
    return float(sum((v - 0.5) ** 2 for v in config.values()))


def _blind(cls: type) -> type:
    return type(f"Blind{cls.__name__}", (cls,), {"models_pending": False})


def _told(searcher, n: int):
    for _ in range(n):
        t = searcher.ask()
        searcher.tell(t, _sphere(t.config))
    return searcher


def _min_pairwise_distance(trials: list[Trial], names: list[str]) -> float:
    pts = np.array([[t.config[n] for n in names] for t in trials])
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(pts), 1)].min())


def _pending_spread(cls: type, seed: int, n_told: int, n_pending: int) -> float:
    space = _space()
    s = _told(cls(space, seed=seed), n_told)
    pending = [s.ask() for _ in range(n_pending)]
    assert len(s.pending) == n_pending
    return _min_pairwise_distance(pending, list(space.names))


@pytest.mark.parametrize("cls, n_told", [(TPE, 20), (GaussianProcess, 15)], ids=["tpe", "gp"])
def test_pending_asks_spread_more_than_without_the_pending_information(cls, n_told):
    # eight asks in a row after the startup, no tell in between: a searcher that models its
    # pending trials keeps them apart; its blind twin proposes near-copies of its favourite
    seeds = range(6)
    informed = [_pending_spread(cls, s, n_told, 8) for s in seeds]
    blind = [_pending_spread(_blind(cls), s, n_told, 8) for s in seeds]
    assert np.mean(informed) > 2.0 * np.mean(blind)
    assert sum(a > b for a, b in zip(informed, blind)) >= 5
    assert min(informed) > 0.05  # on a cube of side 4: no two asks on the same point


def test_tpe_pending_information_only_lasts_while_pending():
    # once the pending trials are told, TPE's model is the one of a searcher that was simply told
    # the same results: the lie leaves no trace (same random stream on both sides via reseed)
    a = _told(TPE(_space(), seed=2), 20)
    for t in [a.ask() for _ in range(5)]:
        a.tell(t, _sphere(t.config))
    b = TPE(_space(), seed=2)
    for o in a.observations:
        b.tell(Trial(o.trial.id, o.trial.config), o.value)
    a.reseed(7)
    b.reseed(7)
    assert [a.ask().config for _ in range(3)] == [b.ask().config for _ in range(3)]


@pytest.mark.parametrize("cls", [TPE, GaussianProcess], ids=["tpe", "gp"])
def test_asynchronous_asks_are_reproducible(cls):
    # four workers finishing in a fixed shuffled order: the same seed gives the same asks
    space = Space({"x": Float(-2.0, 2.0), "n": Int(1, 32, log=True), "c": Categorical(["a", "b", "c"])})

    def run(seed: int) -> list[dict]:
        s, order = cls(space, seed=seed), np.random.default_rng(0)
        running = [s.ask() for _ in range(4)]
        asked = [t.config for t in running]
        while len(asked) < 30:
            t = running.pop(int(order.integers(len(running))))
            s.tell(t, (t.config["x"] - 0.3) ** 2 + abs(np.log2(t.config["n"]) - 3) + (t.config["c"] != "b"))
            running.append(s.ask())
            asked.append(running[-1].config)
        return asked

    first = run(5)
    assert first == run(5)
    assert first != run(6)
