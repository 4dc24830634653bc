"""Parameter types, conditions and validation errors of autodl.Space."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autodl import Categorical, Float, Int, Space, SpaceError, UserError
from autodl.testing import mixed_space


def draws(param, n=2000, seed=0):
    space = Space({"p": param})
    rng = np.random.default_rng(seed)
    return [space.sample(rng)["p"] for _ in range(n)]


# ---------------------------------------------------------------------------- Float
def test_float_samples_in_range_and_are_python_floats():
    values = draws(Float(-2.0, 3.0))
    assert all(type(v) is float for v in values)
    assert all(-2.0 <= v <= 3.0 for v in values)
    # spread over the whole range, not stuck in a corner
    assert min(values) < -1.5 and max(values) > 2.5
    assert abs(np.mean(values) - 0.5) < 0.2


def test_float_log_is_log_uniform():
    values = np.array(draws(Float(1e-4, 1.0, log=True)))
    assert np.all((values >= 1e-4) & (values <= 1.0))
    # half the mass below the geometric midpoint 1e-2 (a linear sampler puts 1% there)
    below = np.mean(values < 1e-2)
    assert 0.44 < below < 0.56, below


def test_float_linear_is_not_log():
    values = np.array(draws(Float(1e-4, 1.0)))
    assert np.mean(values < 1e-2) < 0.05


def test_float_step_values_lie_on_the_step_grid_and_reach_both_ends():
    values = draws(Float(0.0, 1.0, step=0.25), n=500)
    assert set(values) == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_float_step_not_dividing_range_stays_below_high():
    values = set(draws(Float(0.0, 1.0, step=0.3), n=500))
    assert values == {0.0, 0.3, 0.6, 0.9}


def test_float_accepts_numeric_strings_as_yaml_gives_them():
    space = Space({"lr": Float("1e-4", "1e-1", log=True)})
    assert space["lr"].low == pytest.approx(1e-4)
    assert space["lr"].high == pytest.approx(1e-1)


# ---------------------------------------------------------------------------- Int
def test_int_samples_are_python_ints_and_cover_both_ends():
    values = draws(Int(1, 10), n=1000)
    assert all(type(v) is int for v in values)
    assert set(values) == set(range(1, 11))


def test_int_log_is_log_uniform_and_integral():
    values = draws(Int(1, 1000, log=True), n=3000)
    assert all(type(v) is int and 1 <= v <= 1000 for v in values)
    assert min(values) == 1 and max(values) > 700
    below = np.mean(np.array(values) <= 31)
    assert 0.4 < below < 0.6, below


def test_int_step():
    values = set(draws(Int(0, 100, step=5), n=2000))
    assert values == set(range(0, 101, 5))
    assert set(draws(Int(0, 10, step=3), n=500)) == {0, 3, 6, 9}


def test_int_float_bounds_that_are_integral_become_ints():
    space = Space({"n": Int(1.0, 5.0)})
    assert type(space["n"].low) is int and type(space["n"].high) is int


def test_int_rounding_from_unit_gives_ints_in_range():
    p = Space({"n": Int(2, 7)})["n"]
    for u in np.linspace(0, 1, 101):
        v = p.from_unit(u)
        assert type(v) is int and 2 <= v <= 7
    assert p.from_unit(0.0) == 2 and p.from_unit(1.0) == 7


@pytest.mark.parametrize("low, high", [(1.5, 4), (1, 4.5)])
def test_int_non_integral_bound_is_an_error_naming_the_parameter(low, high):
    with pytest.raises(SpaceError, match="'depth'.*integer"):
        Space({"depth": Int(low, high)})


# ---------------------------------------------------------------------------- Categorical
def test_categorical_samples_every_choice():
    values = draws(Categorical(["a", "b", "c"]), n=300)
    assert set(values) == {"a", "b", "c"}


def test_categorical_bool_and_none_choices_keep_their_types():
    values = draws(Categorical([True, False, None, 1, 0]), n=1000)
    kinds = {(type(v), v) for v in values}
    assert kinds == {(bool, True), (bool, False), (type(None), None), (int, 1), (int, 0)}
    p = Space({"p": Categorical([True, None])})["p"]
    assert p.contains(True) and p.contains(None)
    assert not p.contains(1), "1 must not count as the choice True"
    assert not p.contains(False)


def test_categorical_numbers_are_distinct_from_bools():
    # [1, True] is two different choices; [0, False] too
    Space({"p": Categorical([1, True, 0, False])})


# ---------------------------------------------------------------------------- conditions
def test_inactive_parameters_are_absent_from_samples():
    space = mixed_space()
    rng = np.random.default_rng(0)
    seen_kinds, seen_depth = set(), 0
    for _ in range(400):
        c = space.sample(rng)
        seen_kinds.add(c["kind"])
        assert ("a.alpha" in c) == (c["kind"] == "a")
        assert ("a.flag" in c) == (c["kind"] == "a")
        assert ("b.k" in c) == (c["kind"] == "b")
        # nested: depth needs kind == a AND a.flag is True
        assert ("a.flag.depth" in c) == (c["kind"] == "a" and c["a.flag"] is True)
        seen_depth += "a.flag.depth" in c
        space.validate_config(c)
    assert seen_kinds == {"a", "b", "c"}
    assert seen_depth > 0


def test_sample_keeps_declaration_order():
    space = Space({
        "child": Int(1, 3, condition={"parent": ["on"]}),
        "parent": Categorical(["on", "off"]),
    })
    rng = np.random.default_rng(1)
    configs = [space.sample(rng) for _ in range(50)]
    on = [c for c in configs if c["parent"] == "on"]
    assert on and all(list(c) == ["child", "parent"] for c in on)


def test_condition_on_a_bool_parent_does_not_match_an_int():
    space = Space({
        "flag": Categorical([True, False, 1]),
        "x": Float(0, 1, condition={"flag": [True]}),
    })
    assert space.is_active("x", {"flag": True})
    assert not space.is_active("x", {"flag": 1})
    assert not space.is_active("x", {"flag": False})


def test_condition_on_a_none_choice():
    space = Space({
        "penalty": Categorical(["l2", None]),
        "x": Float(0, 1, condition={"penalty": [None]}),
    })
    rng = np.random.default_rng(0)
    for _ in range(100):
        c = space.sample(rng)
        assert ("x" in c) == (c["penalty"] is None)


def test_condition_with_several_parents_needs_all_of_them():
    space = Space({
        "a": Categorical(["x", "y"]),
        "b": Categorical(["u", "v"]),
        "c": Int(1, 3, condition={"a": ["x"], "b": ["v"]}),
    })
    assert space.is_active("c", {"a": "x", "b": "v"})
    assert not space.is_active("c", {"a": "x", "b": "u"})
    assert not space.is_active("c", {"a": "y", "b": "v"})


class TestValidateConfig:
    space = mixed_space()

    def good(self):
        return {"x": 0.5, "lr": 1e-3, "frac": 0.25, "n": 3, "width": 64, "kind": "a",
                "a.alpha": 1.0, "a.flag": True, "a.flag.depth": 2}

    def test_good_config_passes(self):
        self.space.validate_config(self.good())
        assert self.space.contains(self.good())

    def test_missing_active_parameter_is_named(self):
        c = self.good()
        del c["a.flag.depth"]
        with pytest.raises(SpaceError, match="'a.flag.depth'"):
            self.space.validate_config(c)
        assert not self.space.contains(c)

    def test_inactive_parameter_present_is_named(self):
        c = self.good()
        c["b.k"] = 5
        with pytest.raises(SpaceError, match="'b.k'.*inactive"):
            self.space.validate_config(c)

    def test_nested_inactive_present_is_named(self):
        c = self.good()
        c["a.flag"] = False
        with pytest.raises(SpaceError, match="'a.flag.depth'"):
            self.space.validate_config(c)

    def test_unknown_parameter_is_named(self):
        c = self.good()
        c["bogus"] = 1
        with pytest.raises(SpaceError, match="'bogus'"):
            self.space.validate_config(c)

    @pytest.mark.parametrize("name, value", [
        ("x", 6.0), ("lr", 1.0), ("frac", 0.3), ("n", 11), ("n", 2.5), ("kind", "d"),
        ("a.flag", 1), ("x", "0.5"), ("n", True),
    ])
    def test_value_outside_its_range_is_named(self, name, value):
        c = self.good()
        c[name] = value
        with pytest.raises(SpaceError, match=f"'{name}'"):
            self.space.validate_config(c)


# ---------------------------------------------------------------------------- validation errors
@pytest.mark.parametrize("param, pattern", [
    (Float(1.0, 1.0), "low"),
    (Float(2.0, 1.0), "low"),
    (Int(5, 5), "low"),
    (Int(5, 1), "low"),
    (Float(0.0, 1.0, log=True), "log"),
    (Float(-1.0, 1.0, log=True), "log"),
    (Int(0, 10, log=True), "log"),
    (Float(0.0, 1.0, step=0), "step"),
    (Float(0.0, 1.0, step=-0.1), "step"),
    (Int(0, 10, step=0), "step"),
    (Int(0, 10, step=-2), "step"),
    (Float(0.1, 1.0, log=True, step=0.1), "step"),
    (Int(1, 10, log=True, step=2), "step"),
    (Float(0.0, float("inf")), "finite"),
    (Float(0.0, "abc"), "number"),
    (Categorical([]), "empty"),
    (Categorical(["a", "b", "a"]), "twice"),
    (Categorical([1, 1]), "twice"),
    (Categorical([None, None]), "twice"),
    (Categorical("abc"), "list"),
    (Categorical([[1, 2]]), "choice"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_invalid_parameter_raises_space_error_naming_it(param, pattern):
    with pytest.raises(SpaceError, match=pattern) as info:
        Space({"ok": Int(1, 3), "my_param": param})
    assert "'my_param'" in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, UserError)


def test_condition_on_missing_parent_names_both():
    with pytest.raises(SpaceError) as info:
        Space({"x": Float(0, 1, condition={"ghost": ["a"]})})
    msg = str(info.value)
    assert "'x'" in msg and "'ghost'" in msg


def test_condition_value_not_a_parent_value_is_an_error():
    with pytest.raises(SpaceError, match="'x'.*'d'"):
        Space({"m": Categorical(["a", "b"]), "x": Float(0, 1, condition={"m": ["d"]})})


def test_condition_cycle_is_an_error():
    with pytest.raises(SpaceError, match="cycle"):
        Space({
            "a": Categorical(["x", "y"], condition={"b": ["x"]}),
            "b": Categorical(["x", "y"], condition={"a": ["x"]}),
        })


def test_self_condition_is_an_error():
    with pytest.raises(SpaceError, match="'a'"):
        Space({"a": Categorical(["x", "y"], condition={"a": ["x"]})})


def test_empty_space_and_bad_param_objects_are_errors():
    with pytest.raises(SpaceError):
        Space({})
    with pytest.raises(SpaceError, match="'x'"):
        Space({"x": (0, 1)})


def test_space_mapping_interface():
    space = mixed_space()
    assert len(space) == 10 and space.dim == 10
    assert "kind" in space and "nope" not in space
    assert list(space) == space.names
    assert isinstance(space["x"], Float)
    assert space.is_conditional
    assert not Space({"x": Float(0, 1)}).is_conditional
    assert math.isfinite(space["lr"].low)
