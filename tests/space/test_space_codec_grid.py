"""The unit-cube codec and grid enumeration of autodl.Space."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autodl import Categorical, Float, Int, Space, SpaceError
from autodl.testing import mixed_space


def assert_same_config(a: dict, b: dict) -> None:
    assert list(a) == list(b), (a, b)
    for k in a:
        if isinstance(a[k], float) and not isinstance(b[k], bool):
            assert type(b[k]) is float
            assert b[k] == pytest.approx(a[k], rel=1e-9, abs=1e-12), k
        else:
            assert type(a[k]) is type(b[k]) and a[k] == b[k], (k, a[k], b[k])


# ---------------------------------------------------------------------------- codec
def test_encode_decode_round_trip_for_many_samples():
    space = mixed_space()
    rng = np.random.default_rng(0)
    for _ in range(1000):
        config = space.sample(rng)
        x = space.encode(config)
        assert x.shape == (space.dim,)
        active = ~np.isnan(x)
        assert np.all((x[active] >= 0) & (x[active] <= 1))
        # NaN exactly where the parameter is inactive
        assert [n for n, a in zip(space.names, active) if a] == list(config)
        assert_same_config(config, space.decode(x))


def test_round_trip_of_edge_values():
    space = Space({
        "f": Float(0.1, 1.0, step=0.1),
        "g": Float(1e-5, 1.0, log=True),
        "i": Int(1, 1000, log=True),
        "j": Int(0, 100, step=7),
        "c": Categorical([True, False, None, "x", 3]),
    })
    for f in (0.1, 1.0):
        for g in (1e-5, 1.0):
            for i in (1, 2, 999, 1000):
                for j in (0, 98):
                    for c in space["c"].choices:
                        config = {"f": f, "g": g, "i": i, "j": j, "c": c}
                        space.validate_config(config)
                        assert_same_config(config, space.decode(space.encode(config)))


def test_decode_of_any_point_is_a_valid_config():
    space = mixed_space()
    rng = np.random.default_rng(1)
    points = list(rng.random((2000, space.dim)))
    points += [np.zeros(space.dim), np.ones(space.dim), np.full(space.dim, 0.5),
               np.full(space.dim, np.nan), np.full(space.dim, 1 - 1e-12)]
    kinds = set()
    for x in points:
        config = space.decode(x)
        space.validate_config(config)
        json.dumps(config)
        kinds.add(config["kind"])
    assert kinds == {"a", "b", "c"}


def test_decode_clips_points_outside_the_cube():
    space = mixed_space()
    for x in (np.full(space.dim, -3.0), np.full(space.dim, 7.0)):
        space.validate_config(space.decode(x))


def test_decode_wrong_length_is_an_error():
    with pytest.raises(ValueError, match="length"):
        mixed_space().decode(np.zeros(3))


def test_categorical_encodes_to_slot_centres():
    space = Space({"c": Categorical(["a", "b", "c", "d"])})
    assert [space.encode({"c": v})[0] for v in "abcd"] == [0.125, 0.375, 0.625, 0.875]


def test_log_encoding_is_linear_in_log_space():
    space = Space({"lr": Float(1e-4, 1.0, log=True)})
    assert space.encode({"lr": 1e-2})[0] == pytest.approx(0.5)
    assert space.decode([0.25])["lr"] == pytest.approx(1e-3)


# ---------------------------------------------------------------------------- grid
def test_grid_counts_of_a_flat_space():
    space = Space({
        "c": Categorical(["a", "b", "c"]),
        "i": Int(1, 4),
        "f": Float(0.0, 1.0),
    })
    grid = list(space.grid(points=5))
    assert len(grid) == 3 * 4 * 5 == space.grid_size(5)
    assert {g["i"] for g in grid} == {1, 2, 3, 4}
    assert sorted({g["f"] for g in grid}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len({json.dumps(g, sort_keys=True) for g in grid}) == len(grid)


def test_grid_log_float_is_log_spaced():
    space = Space({"lr": Float(1e-4, 1.0, log=True)})
    values = [g["lr"] for g in space.grid(points=5)]
    assert values == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])


def test_grid_large_int_range_gets_points_values_including_ends():
    values = [g["n"] for g in Space({"n": Int(1, 100)}).grid(points=5)]
    assert len(values) == 5 and len(set(values)) == 5
    assert values[0] == 1 and values[-1] == 100
    assert all(type(v) is int for v in values)


def test_grid_small_stepped_ranges_are_enumerated_fully():
    space = Space({"f": Float(0.0, 1.0, step=0.25), "k": Int(0, 20, step=5)})
    grid = list(space.grid(points=5))
    assert len(grid) == 5 * 5
    assert {g["f"] for g in grid} == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert {g["k"] for g in grid} == {0, 5, 10, 15, 20}


def test_grid_large_stepped_ranges_stay_on_the_step_grid():
    space = Space({"f": Float(0.0, 1.0, step=0.1), "k": Int(0, 100, step=5)})
    grid = list(space.grid(points=3))
    assert len(grid) == 3 * 3
    for g in grid:
        space.validate_config(g)
    assert {g["f"] for g in grid} >= {0.0, 1.0}
    assert {g["k"] for g in grid} >= {0, 100}


def test_grid_conditional_expansion():
    space = Space({
        "model": Categorical(["lin", "rf"]),
        "lin.alpha": Float(1e-3, 1.0, log=True, condition={"model": ["lin"]}),
        "rf.depth": Int(1, 3, condition={"model": ["rf"]}),
    })
    grid = list(space.grid(points=4))
    lin = [g for g in grid if g["model"] == "lin"]
    rf = [g for g in grid if g["model"] == "rf"]
    # conditional parameters vary only where active: 4 + 3, not 2 * 4 * 3
    assert len(lin) == 4 and len(rf) == 3 and len(grid) == 7
    assert all("rf.depth" not in g for g in lin)
    assert all("lin.alpha" not in g for g in rf)
    for g in grid:
        space.validate_config(g)


def test_grid_nested_conditions_have_no_duplicates():
    space = Space({
        "kind": Categorical(["a", "b"]),
        "a.flag": Categorical([True, False], condition={"kind": ["a"]}),
        "a.flag.depth": Int(1, 2, condition={"a.flag": [True]}),
        "x": Categorical(["u", "v"]),
    })
    grid = list(space.grid())
    # kind=a: flag True x depth 2 + flag False = 3; kind=b: 1; times x (2)
    assert len(grid) == (3 + 1) * 2
    keys = [json.dumps(g, sort_keys=True) for g in grid]
    assert len(set(keys)) == len(keys)
    for g in grid:
        space.validate_config(g)


def test_grid_of_mixed_space_is_valid_and_unique():
    space = mixed_space()
    grid = list(space.grid(points=2))
    keys = {json.dumps(g, sort_keys=True) for g in grid}
    assert len(keys) == len(grid) == space.grid_size(2)
    for g in grid:
        space.validate_config(g)


def test_grid_points_must_be_positive():
    with pytest.raises(SpaceError, match="points"):
        list(Space({"x": Float(0, 1)}).grid(points=0))
