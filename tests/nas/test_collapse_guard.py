"""The pf-stop collapse guard: early stopping on parameter-free dominance, and its fallback cap."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autodl.nas.darts import run_darts  # noqa: E402
from autodl.nas.genotypes import cap_parameter_free, derive_genotype, parameter_free_share  # noqa: E402
from autodl.nas.model_search import SearchNetwork  # noqa: E402


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


@pytest.mark.slow
def test_pf_stop_stops_at_the_first_epoch_over_the_limit_and_keeps_a_cell_within_it():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    shares = []
    res = run_darts(X / 16.0, y, C=4, layers=2, nodes=2, epochs=5, guard="pf-stop", max_param_free=0.25,
                    guard_warmup=1, batch_size=32, train_epochs=1, max_rows=300, seed=0,
                    on_epoch=lambda e, info: shares.append(info["parameter_free_share"]))
    s = res.settings
    assert res.parameter_free_share <= 0.25
    over = [e for e, share in enumerate(shares, start=1) if e > 1 and share > 0.25]
    if over:
        assert s["stopped_by"].startswith(f"pf-stop at epoch {over[0]}")
        assert s["epochs_run"] == over[0] == len(shares)
        kept = [e for e in range(2, over[0]) if shares[e - 1] <= 0.25]
        assert s["genotype_epoch"] == (kept[-1] if kept else over[0])
    else:
        assert s["stopped_by"] is None and s["epochs_run"] == 5
    # plain DARTS on the same run is unchanged by the limit
    plain = run_darts(X / 16.0, y, C=4, layers=2, nodes=2, epochs=2, guard=None, batch_size=32, train_epochs=1,
                      max_rows=300, seed=0)
    assert plain.settings["stopped_by"] is None and plain.settings["epochs_run"] == 2


def test_time_budget_stops_the_search_after_the_epoch_that_crosses_it():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    res = run_darts(X / 16.0, y, C=2, layers=2, nodes=2, epochs=50, guard=None, batch_size=64, train_epochs=1,
                    max_rows=200, seed=0, time_budget=1e-3)
    assert res.settings["epochs_run"] == 1
    assert res.settings["stopped_by"] == "time budget after epoch 1"
