"""JSON and YAML round trips, YAML files, built-in spaces and YAML error messages."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import autodl.space
from autodl import Categorical, Float, Int, Space, SpaceError
from autodl.testing import mixed_space


def same_samples(a: Space, b: Space, n: int = 50) -> None:
    ra, rb = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(n):
        assert a.sample(ra) == b.sample(rb)


def special_space() -> Space:
    return Space({
        "flag": Categorical([True, False]),
        "opt": Categorical([None, "x", 1, 2.5]),
        "child": Float(0.5, 2.0, step=0.5, condition={"flag": [True]}),
        "grand": Int(2, 64, log=True, condition={"child": [1.0, 2.0]}),
        "none_child": Int(0, 9, step=3, condition={"opt": [None]}),
    }, name="special")


@pytest.mark.parametrize("make", [mixed_space, special_space])
def test_json_round_trip(make):
    space = make()
    text = space.to_json()
    json.loads(text)
    back = Space.from_json(text)
    assert back == space
    assert back.to_dict() == space.to_dict()
    assert back.name == space.name
    same_samples(space, back)


@pytest.mark.parametrize("make", [mixed_space, special_space])
def test_yaml_round_trip_through_a_file(make, tmp_path):
    space = make()
    path = tmp_path / "space.yaml"
    text = space.to_yaml(path)
    assert path.read_text() == text
    back = Space.from_yaml(path)
    assert back == space
    assert back.to_dict() == space.to_dict()
    same_samples(space, back)


def test_bool_and_none_choices_survive_yaml():
    original = special_space()
    text = original.to_yaml()
    assert "null" in text and "true" in text
    for rt in ("json", "yaml"):
        if rt == "json":
            back = Space.from_json(original.to_json())
        else:
            import yaml
            back = Space.from_dict(yaml.safe_load(text))
        choices = back["opt"].choices
        assert choices[0] is None and type(choices[2]) is int and type(choices[3]) is float
        assert back["flag"].choices == (True, False)
        assert all(type(c) is bool for c in back["flag"].choices)
        assert back["child"].condition == {"flag": (True,)}


def test_from_yaml_handwritten_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent("""\
        name: mine
        parameters:
          lr: {type: float, low: 1e-5, high: 1e-1, log: true}
          layers: {type: int, low: 1, high: 4}
          act:
            type: categorical
            choices: [relu, tanh]
          tanh.gain:
            type: float
            low: 0.5
            high: 2
            condition: {act: [tanh]}
          use_bn: {type: categorical, choices: [true, false, null]}
        """))
    space = Space.from_yaml(path)
    assert space.name == "mine"
    assert space.names == ["lr", "layers", "act", "tanh.gain", "use_bn"]
    # YAML 1.1 reads 1e-5 as a string; it must still be a number here
    assert space["lr"].low == pytest.approx(1e-5) and space["lr"].log
    assert space["use_bn"].choices == (True, False, None)
    assert space["tanh.gain"].condition == {"act": ("tanh",)}
    assert Space.load(path) == space
    assert Space.load(str(path)) == space


def test_load_json_path(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(mixed_space().to_json())
    assert Space.load(path) == mixed_space()


def test_builtin_spaces_load_by_name():
    names = autodl.space.builtin_space_names()
    assert "tabular" in names
    for name in names:
        space = Space.load(name)
        assert isinstance(space, Space) and len(space) > 0
        rng = np.random.default_rng(0)
        for _ in range(20):
            space.validate_config(space.sample(rng))
    tab = Space.load("tabular")
    assert tab.name == "tabular"
    assert "model" in tab and set(tab["model"].choices) >= {"linear", "random_forest", "hist_gb"}


def test_load_passes_a_space_through():
    s = mixed_space()
    assert Space.load(s) is s


def test_load_unknown_name_lists_builtins():
    with pytest.raises(SpaceError) as info:
        Space.load("no_such_space")
    assert "no_such_space" in str(info.value) and "tabular" in str(info.value)


def test_missing_yaml_file_is_a_space_error(tmp_path):
    with pytest.raises(SpaceError, match="does not exist"):
        Space.from_yaml(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------- YAML errors
def write(tmp_path, text: str):
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("text, line", [
    ("parameters:\n  x: {type: float, low: 0\n  y: 1\n", 3),
    ("parameters:\n  x:\n    type: float\n   low: 0\n", 4),
    ("parameters:\n  x: [a, b\n", 3),
])
def test_malformed_yaml_is_one_line_with_the_line_number(tmp_path, text, line):
    path = write(tmp_path, text)
    with pytest.raises(SpaceError) as info:
        Space.from_yaml(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert "malformed YAML" in msg
    assert f"line {line}" in msg
    assert str(path) in msg


def test_unknown_type_in_yaml_names_parameter_and_type(tmp_path):
    path = write(tmp_path, """\
        parameters:
          good: {type: int, low: 1, high: 3}
          bad: {type: floaty, low: 0, high: 1}
        """)
    with pytest.raises(SpaceError) as info:
        Space.from_yaml(path)
    msg = str(info.value)
    assert "'bad'" in msg and "floaty" in msg and "\n" not in msg


def test_missing_type_in_yaml_names_parameter(tmp_path):
    path = write(tmp_path, "parameters:\n  bad: {low: 0, high: 1}\n")
    with pytest.raises(SpaceError, match="'bad'.*type"):
        Space.from_yaml(path)


@pytest.mark.parametrize("spec, pattern", [
    ("{type: float, low: 1, high: 0}", "low"),
    ("{type: int, low: 0, high: 5, log: true}", "log"),
    ("{type: float, low: 0, high: 1, step: 0}", "step"),
    ("{type: categorical, choices: []}", "empty"),
    ("{type: categorical, choices: [a, a]}", "twice"),
    ("{type: categorical}", "choices"),
    ("{type: float, low: 0}", "high"),
    ("{type: float, low: 0, high: 1, lgo: true}", "lgo"),
    ("{type: float, low: 0, high: 1, condition: {ghost: [a]}}", "ghost"),
    ("{type: float, low: zero, high: 1}", "number"),
])
def test_invalid_yaml_parameter_names_it(tmp_path, spec, pattern):
    path = write(tmp_path, f"parameters:\n  other: {{type: int, low: 1, high: 3}}\n  bad_one: {spec}\n")
    with pytest.raises(SpaceError, match=pattern) as info:
        Space.from_yaml(path)
    msg = str(info.value)
    assert "'bad_one'" in msg and "\n" not in msg
    assert str(path) in msg


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "parameters: {}\n", "name: x\n"])
def test_yaml_without_parameters_is_an_error(tmp_path, text):
    with pytest.raises(SpaceError, match="parameters|mapping"):
        Space.from_yaml(write(tmp_path, text))


def test_from_json_malformed():
    with pytest.raises(SpaceError, match="malformed"):
        Space.from_json("{not json")


def test_equality_is_by_parameters():
    assert Space({"x": Float(0, 1)}) == Space({"x": Float(0.0, 1.0)})
    assert Space({"x": Float(0, 1)}) != Space({"x": Float(0, 2)})
    assert Space({"x": Int(0, 1)}) != Space({"x": Float(0, 1)})
