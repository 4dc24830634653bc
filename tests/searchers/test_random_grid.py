"""RandomSearch and GridSearch: the conformance suite, determinism, grid coverage, registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

import autodl
from autodl import Categorical, Float, Int, SearchExhausted, Space, UserError
from autodl.searchers import GridSearch, RandomSearch, Trial, make_searcher, searcher_names
from autodl.testing import CHECKS, mixed_space

FACTORIES = {
    "random": lambda space, seed: RandomSearch(space, seed=seed),
    "grid": lambda space, seed: GridSearch(space, seed=seed, points=3),
}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_conformance(name, check):
    check(FACTORIES[name])


def small_space() -> Space:
    return Space({
        "model": Categorical(["lin", "rf"]),
        "lin.alpha": Float(1e-3, 1.0, log=True, condition={"model": ["lin"]}),
        "rf.depth": Int(1, 3, condition={"model": ["rf"]}),
        "scale": Categorical([True, False]),
    })


def key(config) -> str:
    return json.dumps(config, sort_keys=True)


def ask_all(searcher, n):
    out = []
    for _ in range(n):
        t = searcher.ask()
        searcher.tell(t, 0.0)
        out.append(t)
    return out


# ---------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_same_seed_same_sequence(name):
    space = mixed_space()
    a = [t.config for t in ask_all(FACTORIES[name](space, 11), 20)]
    b = [t.config for t in ask_all(FACTORIES[name](space, 11), 20)]
    c = [t.config for t in ask_all(FACTORIES[name](space, 12), 20)]
    assert a == b
    assert a != c


def test_random_search_ids_are_sequential_and_unique():
    s = RandomSearch(mixed_space(), seed=0)
    trials = [s.ask() for _ in range(5)]
    assert [t.id for t in trials] == [0, 1, 2, 3, 4]
    assert set(s.pending) == {0, 1, 2, 3, 4}
    s.tell(trials[2], 1.0)
    assert 2 not in s.pending and s.best().value == 1.0


def test_random_search_restore_does_not_repeat_the_first_configs():
    space = mixed_space()
    first = ask_all(RandomSearch(space, seed=0), 5)
    resumed = RandomSearch(space, seed=0)
    resumed.restore([(t, 1.0) for t in first])
    nxt = [resumed.ask() for _ in range(5)]
    assert {key(t.config) for t in nxt}.isdisjoint({key(t.config) for t in first})
    assert min(t.id for t in nxt) >= 5


def test_best_ignores_failures_and_minimizes():
    s = RandomSearch(small_space(), seed=0)
    values = [3.0, None, float("nan"), 1.0, float("-inf"), 2.0]
    for v in values:
        s.tell(s.ask(), v)
    assert s.best().value == 1.0
    assert len(s.successes) == 3


# ---------------------------------------------------------------------------- grid
def test_grid_covers_every_point_exactly_once_then_raises():
    space = small_space()
    expected = [key(c) for c in space.grid(points=3)]
    assert len(expected) == (3 + 3) * 2
    s = GridSearch(space, seed=0, points=3)
    assert s.size == len(expected) and s.remaining == len(expected)
    got = [key(t.config) for t in ask_all(s, len(expected))]
    assert sorted(got) == sorted(expected)
    assert len(set(got)) == len(got)
    assert s.remaining == 0
    with pytest.raises(SearchExhausted) as info:
        s.ask()
    msg = str(info.value)
    assert "grid" in msg and str(len(expected)) in msg
    # it keeps saying so
    with pytest.raises(SearchExhausted):
        s.ask()


def test_grid_search_exhausted_is_exported_from_autodl():
    assert autodl.SearchExhausted is SearchExhausted
    assert not issubclass(SearchExhausted, UserError)


def test_grid_without_shuffle_follows_grid_order():
    space = small_space()
    s = GridSearch(space, seed=0, points=3, shuffle=False)
    got = [t.config for t in ask_all(s, s.size)]
    assert got == list(space.grid(points=3))


def test_grid_shuffle_is_seeded():
    space = small_space()
    a = [t.config for t in ask_all(GridSearch(space, seed=1, points=3), 12)]
    b = [t.config for t in ask_all(GridSearch(space, seed=1, points=3), 12)]
    c = [t.config for t in ask_all(GridSearch(space, seed=2, points=3), 12)]
    assert a == b and a != c
    assert sorted(map(key, a)) == sorted(map(key, c))


def test_grid_restore_skips_told_points_and_finishes_the_grid():
    space = small_space()
    grid = [key(c) for c in space.grid(points=3)]
    first = GridSearch(space, seed=0, points=3)
    done = ask_all(first, 5)
    resumed = GridSearch(space, seed=0, points=3)
    resumed.restore([(t, 0.0) for t in done])
    assert resumed.remaining == len(grid) - 5
    rest = []
    while True:
        try:
            t = resumed.ask()
        except SearchExhausted:
            break
        resumed.tell(t, 0.0)
        rest.append(t)
    all_configs = [key(t.config) for t in done + rest]
    assert sorted(all_configs) == sorted(grid)
    # new ids do not collide with the restored ones
    assert min(t.id for t in rest) > max(t.id for t in done)


def test_grid_skips_points_told_by_others():
    space = small_space()
    s = GridSearch(space, seed=0, points=3)
    foreign = list(space.grid(points=3))[:4]
    for i, c in enumerate(foreign):
        s.tell(Trial(100 + i, c), 1.0)
    asked = [key(t.config) for t in ask_all(s, s.remaining)]
    assert len(asked) == s.size - 4
    assert set(asked).isdisjoint(key(c) for c in foreign)
    with pytest.raises(SearchExhausted):
        s.ask()


def test_grid_pending_points_are_not_asked_twice():
    space = small_space()
    s = GridSearch(space, seed=0, points=3)
    pending = [s.ask() for _ in range(s.size)]
    assert len({key(t.config) for t in pending}) == s.size
    with pytest.raises(SearchExhausted):
        s.ask()


# ---------------------------------------------------------------------------- registry
def test_make_searcher_by_name():
    space = small_space()
    assert isinstance(make_searcher("random", space, seed=0), RandomSearch)
    assert isinstance(make_searcher("RANDOM", space, seed=0), RandomSearch)
    g = make_searcher("grid", space, seed=0, points=2)
    assert isinstance(g, GridSearch) and g.points == 2
    assert {"random", "grid"} <= set(searcher_names())


def test_make_searcher_unknown_name_lists_names():
    with pytest.raises(UserError) as info:
        make_searcher("simulated_annealing", small_space())
    msg = str(info.value)
    assert "simulated_annealing" in msg
    for name in searcher_names():
        assert name in msg


def test_make_searcher_bad_argument_is_a_user_error():
    with pytest.raises(UserError, match="grid"):
        make_searcher("grid", small_space(), pointz=3)


def test_searcher_needs_a_space():
    with pytest.raises(TypeError):
        RandomSearch({"x": Float(0, 1)})


def test_random_configs_are_plain_values():
    s = RandomSearch(mixed_space(), seed=0)
    for t in ask_all(s, 50):
        for v in t.config.values():
            assert not isinstance(v, np.generic)


def test_every_searcher_class_is_exported_by_its_name():
    import autodl.searchers as searchers

    for name in ("TPE", "GaussianProcess", "RegularizedEvolution", "RandomSearch", "GridSearch",
                 "OptunaSearcher", "SuccessiveHalving", "Hyperband", "ASHA", "BOHB"):
        assert name in searchers.__all__, f"{name} missing from autodl.searchers.__all__"
        cls = getattr(searchers, name)
        assert issubclass(cls, searchers.Searcher) and searchers.SEARCHERS[cls.name] is cls
    assert {getattr(searchers, n) for n in searchers.__all__ if isinstance(getattr(searchers, n), type)
            and issubclass(getattr(searchers, n), searchers.Searcher)} >= set(searchers.SEARCHERS.values())


# ---------------------------------------------------------------------------- reseed / discard
def test_a_discarded_grid_point_is_asked_again_and_the_grid_still_covered_once():
    space = small_space()
    s = GridSearch(space, seed=0, points=3)
    first = s.ask()
    s.discard(first)  # e.g. the study-wide limit refused it: it never ran
    assert s.remaining == s.size
    again = s.ask()
    assert again.config == first.config and again.id != first.id
    s.tell(again, 0.0)
    rest = ask_all(s, s.remaining)
    assert sorted(key(t.config) for t in [again, *rest]) == sorted(key(c) for c in space.grid(3))
    with pytest.raises(SearchExhausted):
        s.ask()


def test_an_adopted_grid_point_is_not_asked_while_it_runs():
    space = small_space()
    s = GridSearch(space, seed=0, points=3)
    retry = s.adopt(list(space.grid(3))[0])
    asked = [s.ask() for _ in range(s.size - 1)]
    assert key(retry.config) not in {key(t.config) for t in asked}
    with pytest.raises(SearchExhausted):
        s.ask()


def test_reseed_reshuffles_the_rest_of_a_shuffled_grid_only():
    space = small_space()
    a, b = GridSearch(space, seed=0, points=3), GridSearch(space, seed=0, points=3)
    head = [key(t.config) for t in ask_all(a, 3)]
    assert head == [key(t.config) for t in ask_all(b, 3)]
    b.reseed([0, 3, 99])  # another worker process
    rest_a, rest_b = ([key(t.config) for t in ask_all(s, s.remaining)] for s in (a, b))
    assert rest_a != rest_b and sorted(rest_a) == sorted(rest_b)
    assert set(rest_b).isdisjoint(head)
    ordered = GridSearch(space, seed=0, points=3, shuffle=False)
    ordered.reseed([5])
    assert [t.config for t in ask_all(ordered, ordered.size)] == list(space.grid(points=3))


def test_reseed_is_reproducible_and_keeps_the_history():
    space = mixed_space()
    a, b = RandomSearch(space, seed=0), RandomSearch(space, seed=0)
    for s in (a, b):
        ask_all(s, 4)
        s.reseed([0, 4, 1])
    assert [t.config for t in ask_all(a, 3)] == [t.config for t in ask_all(b, 3)]
    assert len(a.observations) == 7
    c = RandomSearch(space, seed=0)
    ask_all(c, 4)
    c.reseed([0, 4, 2])
    assert c.ask().config != a.observations[4].trial.config


@pytest.mark.parametrize("entropy", [-1.5, "7", [1, "x"], [], True])
def test_reseed_refuses_what_is_not_ints(entropy):
    with pytest.raises((TypeError, ValueError), match="entropy"):
        RandomSearch(mixed_space(), seed=0).reseed(entropy)
