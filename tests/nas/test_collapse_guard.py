"""The pf-stop collapse guard: early stopping on parameter-free dominance, and its fallback cap."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autodl.nas import darts  # noqa: E402
from autodl.nas.darts import run_darts  # noqa: E402
from autodl.nas.genotypes import cap_parameter_free, derive_genotype, parameter_free_share  # noqa: E402
from autodl.nas.model_search import SearchNetwork  # noqa: E402
from autodl.nas.operations import PRIMITIVES  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _set(net, normal):
    with torch.no_grad():
        net.alphas_normal.copy_(torch.as_tensor(normal, dtype=torch.float32))


def test_cap_replaces_the_weakest_parameter_free_edges_with_their_best_parametric_op():
    net = SearchNetwork(C=2, layers=2, nodes=2, seed=0)
    ops = list(net.primitives)
    w = np.zeros((5, len(ops)))  # nodes=2: 2 + 3 incoming edges
    # node 0 (edges 0, 1): skip strongly on edge 0, max-pool weakly (margin 0.1) over sep_conv_3x3 on edge 1
    w[0, ops.index("skip_connect")] = 5.0
    w[0, ops.index("dil_conv_3x3")] = 1.0
    w[1, ops.index("max_pool_3x3")] = 2.1
    w[1, ops.index("sep_conv_3x3")] = 2.0
    # node 1 (edges 2, 3, 4): avg-pool on edge 2 (margin 3 over dil_conv_5x5), sep_conv_5x5 on edge 4
    w[2, ops.index("avg_pool_3x3")] = 4.0
    w[2, ops.index("dil_conv_5x5")] = 1.0
    w[4, ops.index("sep_conv_5x5")] = 3.0
    _set(net, w)
    plain = derive_genotype(net)
    assert parameter_free_share(plain) == 0.75
    capped = cap_parameter_free(net, 0.5)
    assert parameter_free_share(capped) == 0.5
    # the smallest margin (max-pool, 0.1) goes first, to the edge's best parametric op
    assert ["sep_conv_3x3", 1, 0] in capped["normal"] and ["max_pool_3x3", 1, 0] not in capped["normal"]
    assert ["skip_connect", 0, 0] in capped["normal"] and ["avg_pool_3x3", 0, 1] in capped["normal"]
    assert capped["reduce"] == plain["reduce"]
    assert parameter_free_share(cap_parameter_free(net, 0.0)) == 0.0
    assert cap_parameter_free(net, 1.0) == plain


# ---------------------------------------------------------------------- the guard in run_darts
# The tests steer the architecture weights: ``arch_lr=0`` keeps them exactly where the test puts
# them (before the first epoch, and after each epoch for the next), so the normal cell derived
# at every epoch, and its parameter-free share, are known in advance.
OPS = list(PRIMITIVES)


def _alphas(kind: str) -> np.ndarray:
    """Normal-cell weights (nodes=2: edges 0-1 into node 0, 2-4 into node 1) whose derived cell is
    all ``sep_conv_3x3`` ("parametric", share 0), all ``skip_connect`` with ``sep_conv_3x3`` second
    on every edge ("collapsed", share 1), or skips into node 0 and convolutions into node 1
    ("half", share 0.5)."""
    w = np.zeros((5, len(OPS)))
    skip, conv = OPS.index("skip_connect"), OPS.index("sep_conv_3x3")
    if kind == "parametric":
        w[:, conv] = 5.0
    elif kind == "collapsed":
        w[:, skip], w[:, conv] = 5.0, 4.0
    elif kind == "half":
        w[:2, skip], w[2:, conv] = 5.0, 5.0
    return w


SHARE = {"parametric": 0.0, "collapsed": 1.0, "half": 0.5}


def _steered_darts(monkeypatch, schedule, **kwargs):
    """``run_darts`` on 200 digits rows whose epoch ``e`` derives its cell from ``_alphas(schedule(e))``;
    returns the result and the parameter-free share reported after each epoch."""
    from sklearn.datasets import load_digits

    nets = []
    real = darts.SearchNetwork

    def make(*args, **kw):
        net = real(*args, **kw)
        _set(net, _alphas(schedule(1)))
        nets.append(net)
        return net

    monkeypatch.setattr(darts, "SearchNetwork", make)
    shares = []

    def on_epoch(epoch, info):
        shares.append(info["parameter_free_share"])
        _set(nets[0], _alphas(schedule(epoch + 1)))

    X, y = load_digits(return_X_y=True)
    res = darts.run_darts(X / 16.0, y, C=2, layers=2, nodes=2, arch_lr=0.0, batch_size=64, train_epochs=1,
                          max_rows=200, seed=0, on_epoch=on_epoch, **kwargs)
    assert len(nets) == 1
    return res, shares


@pytest.mark.slow
def test_pf_stop_stops_at_the_first_epoch_over_the_limit_and_keeps_the_last_cell_within_it(monkeypatch):
    schedule = lambda e: "parametric" if e <= 3 else "collapsed"  # noqa: E731
    res, shares = _steered_darts(monkeypatch, schedule, epochs=6, guard="pf-stop", max_param_free=0.5,
                                 guard_warmup=1)
    assert shares == [0.0, 0.0, 0.0, 1.0]  # stopped after epoch 4, the first over the limit
    s = res.settings
    assert s["epochs_run"] == 4 and s["stopped_by"].startswith("pf-stop at epoch 4")
    assert s["genotype_epoch"] == 3
    assert [op for op, _, _ in res.genotype["normal"]] == ["sep_conv_3x3"] * 4  # epoch 3's cell
    assert res.parameter_free_share == 0.0


@pytest.mark.slow
def test_pf_stop_does_not_fire_while_the_cell_stays_within_the_limit(monkeypatch):
    res, shares = _steered_darts(monkeypatch, lambda e: "half", epochs=4, guard="pf-stop", max_param_free=0.5,
                                 guard_warmup=0)
    assert shares == [0.5] * 4  # at the limit, never over it
    assert res.settings["epochs_run"] == 4 and res.settings["stopped_by"] is None
    assert res.settings["genotype_epoch"] == 4
    assert [op for op, _, _ in res.genotype["normal"]] == ["skip_connect"] * 2 + ["sep_conv_3x3"] * 2


@pytest.mark.slow
def test_pf_stop_waits_for_the_warmup_then_caps_a_cell_that_was_never_within_the_limit(monkeypatch):
    res, shares = _steered_darts(monkeypatch, lambda e: "collapsed", epochs=5, guard="pf-stop",
                                 max_param_free=0.5, guard_warmup=2)
    assert shares == [1.0, 1.0, 1.0]  # epochs 1 and 2 are the warm-up; epoch 3 is over the limit
    assert res.settings["epochs_run"] == 3 and res.settings["stopped_by"].startswith("pf-stop at epoch 3")
    # no epoch after the warm-up to fall back to: half of the 4 edges get their best parametric op
    ops = sorted(op for op, _, _ in res.genotype["normal"])
    assert ops == ["sep_conv_3x3", "sep_conv_3x3", "skip_connect", "skip_connect"]
    assert res.parameter_free_share == 0.5


@pytest.mark.slow
def test_plain_darts_ignores_the_limit(monkeypatch):
    res, shares = _steered_darts(monkeypatch, lambda e: "collapsed", epochs=3, guard=None, max_param_free=0.5)
    assert shares == [1.0] * 3
    assert res.settings["epochs_run"] == 3 and res.settings["stopped_by"] is None
    assert res.parameter_free_share == 1.0


def test_time_budget_is_a_deadline_for_search_and_final_training():
    """``time_budget`` covers the whole call: the search stops (mid-epoch if it must) to leave
    the final training its time, and the final training runs the epochs that still fit."""
    import time

    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    t0 = time.monotonic()
    res = run_darts(X / 16.0, y, C=4, layers=2, nodes=2, epochs=500, guard=None, batch_size=16, train_epochs=500,
                    max_rows=600, seed=0, time_budget=6.0)
    took = time.monotonic() - t0
    assert took < 6.0 + 2.0  # the final training's first epoch and the test scoring may overrun a little
    assert res.settings["epochs_run"] < 500 and res.settings["stopped_by"].startswith("deadline")
    assert 1 <= res.settings["train_epochs_run"] < 500  # shortened to fit
    assert len(res.train_losses) == res.settings["train_epochs_run"]
    assert res.search_seconds < 6.0