"""The MLP space declared with the choice API, and evolutionary NAS with a random baseline."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from autodl.nas.choices import InputChoice, LayerChoice, describe, freeze  # noqa: E402
from autodl.nas.spaces import mlp_space  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def test_mlp_space_description_and_freeze():
    factory = mlp_space(64, 10, max_layers=3)
    desc = describe(factory)
    assert set(desc) == {"depth", "width_0", "width_1", "width_2", "dropout", "batch_norm", "residual",
                         "activation"}
    assert desc["activation"] == {"type": "layer", "choices": ["relu", "tanh", "gelu"]}
    config = {"depth": 2, "width_0": 16, "width_1": 32, "width_2": 128, "dropout": 0.1, "batch_norm": True,
              "residual": True, "activation": "tanh"}
    m = freeze(factory, config)
    assert not any(isinstance(x, (LayerChoice, InputChoice)) for x in m.modules())
    assert len(m.blocks) == 2 and sum(isinstance(x, nn.Tanh) for x in m.modules()) == 2
    assert sum(isinstance(x, nn.Dropout) for x in m.modules()) == 2
    # block0: 64*16+16 + BN 32 + projection 64*16; block1: 16*32+32 + BN 64 + projection 16*32; head 32*10+10
    expected = (64 * 16 + 16 + 32 + 64 * 16) + (16 * 32 + 32 + 64 + 16 * 32) + (32 * 10 + 10)
    assert sum(p.numel() for p in m.parameters()) == expected
    assert m(torch.randn(4, 64)).shape == (4, 10)
    plain = freeze(factory, {**config, "depth": 1, "batch_norm": False, "residual": False, "dropout": 0.0})
    assert sum(p.numel() for p in plain.parameters()) == (64 * 16 + 16) + (16 * 10 + 10)


@pytest.mark.parametrize("searcher", ["evolution", "random"])
def test_evolutionary_nas_on_digits_runs_and_returns_the_best(searcher):
    from autodl.nas.evolution import evolutionary_nas
    from autodl.nn.data import load_dataset

    data = load_dataset("digits", seed=0)
    factory = mlp_space(64, 10, max_layers=2, widths=(16, 32))
    res = evolutionary_nas(factory, data, n_trials=5, searcher=searcher, population=3, sample_size=2,
                           epochs=2, seed=0)
    assert len(res.history) == 5
    assert res.best_val_accuracy == max(h["val_accuracy"] for h in res.history)
    assert res.best_val_accuracy > 0.5  # ten classes: chance is 0.1
    assert set(res.best_config) == set(describe(factory))
    assert res.test_accuracy is not None and res.test_accuracy > 0.5
    assert res.n_params == sum(p.numel() for p in res.model.parameters())
    with pytest.raises(ValueError):
        evolutionary_nas(factory, data, n_trials=1, searcher="grid")
