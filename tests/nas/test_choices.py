"""The model-space API: describe, to_space, freeze (factories and modules), shared labels."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from autodl.nas.choices import (  # noqa: E402
    InputChoice, LayerChoice, SelectInputs, ValueChoice, describe, freeze, to_space,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.inp = nn.Linear(6, width)
        self.act = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh(),
                                "dense": nn.Sequential(nn.Linear(width, width), nn.ReLU())}, label="act")
        self.act2 = LayerChoice({"relu": nn.ReLU(), "tanh": nn.Tanh(),
                                 "dense": nn.Sequential(nn.Linear(width, width), nn.ReLU())}, label="act")
        self.skip = InputChoice(3, n_chosen=2, label="skip")
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        h = self.inp(x)
        a = self.act(h)
        b = self.act2(a)
        return self.head(self.skip([h, a, b]))


def factory():
    return Block(ValueChoice([4, 16], label="width"))


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_describe_factory_gives_flat_json_description():
    desc = describe(factory)
    assert desc == {
        "width": {"type": "value", "choices": [4, 16]},
        "act": {"type": "layer", "choices": ["relu", "tanh", "dense"]},  # shared by act and act2
        "skip": {"type": "input", "choices": ["0,1", "0,2", "1,2"]},
    }
    assert json.loads(json.dumps(desc)) == desc


def test_freeze_factory_builds_exactly_the_chosen_operations():
    m = freeze(factory, {"width": 16, "act": "dense", "skip": "0,2"})
    kinds = [type(x).__name__ for x in m.modules()]
    assert "LayerChoice" not in kinds and "InputChoice" not in kinds
    assert "Tanh" not in kinds
    assert isinstance(m.act, nn.Sequential) and isinstance(m.skip, SelectInputs) and m.skip.indices == [0, 2]
    # inp 6*16+16, two dense 16*16+16, head 16*3+3
    assert _n_params(m) == (6 * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 3 + 3)
    assert m(torch.randn(5, 6)).shape == (5, 3)
    small = freeze(factory, {"width": 4, "act": "tanh", "skip": "1,2"})
    assert _n_params(small) == (6 * 4 + 4) + (4 * 3 + 3)
    assert sum(isinstance(x, nn.Tanh) for x in small.modules()) == 2
    with pytest.raises(KeyError):
        freeze(factory, {"width": 4, "act": "tanh"})
    with pytest.raises(ValueError):
        freeze(factory, {"width": 5, "act": "tanh", "skip": "0,1"})


def test_freeze_module_replaces_choices_and_drops_unused_candidates():
    space = Block(8)
    assert describe(space) == {"act": {"type": "layer", "choices": ["relu", "tanh", "dense"]},
                               "skip": {"type": "input", "choices": ["0,1", "0,2", "1,2"]}}
    with pytest.raises(RuntimeError):
        space(torch.randn(2, 6))
    m = freeze(space, {"act": "relu", "skip": "0,1"})
    assert [type(x).__name__ for x in m.modules()] == ["Block", "Linear", "ReLU", "ReLU", "SelectInputs", "Linear"]
    assert _n_params(m) == (6 * 8 + 8) + (8 * 3 + 3)
    assert isinstance(space.act, LayerChoice)  # the space itself is untouched
    single = InputChoice(4, label="x")
    assert describe(nn.Sequential(single)) == {"x": {"type": "input", "choices": [0, 1, 2, 3]}}
    assert freeze(single, {"x": 2}).indices == [2]


def test_to_space_samples_are_freezable_and_evolution_can_mutate_them():
    from autodl.searchers.evolution import mutate

    space = to_space(factory)
    assert space.names == ["width", "act", "skip"]
    rng = np.random.default_rng(0)
    for _ in range(5):
        config = space.sample(rng)
        child = mutate(config, space, rng)
        for c in (config, child):
            assert freeze(factory, c)(torch.randn(2, 6)).shape == (2, 3)


def test_conflicting_shared_labels_are_rejected():
    def bad():
        return nn.Sequential(LayerChoice([nn.ReLU(), nn.Tanh()], label="a"),
                             LayerChoice([nn.ReLU()], label="a"))

    with pytest.raises(ValueError, match="shared label"):
        describe(bad)


def test_import_autodl_does_not_import_torch():
    code = "import sys, autodl, autodl.nas; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
