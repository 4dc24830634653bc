"""Architecture steps (first and second order) and a tiny DARTS search on digits."""

from __future__ import annotations

import copy
import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autodl.nas.architect import Architect  # noqa: E402
from autodl.nas.darts import load_model, run_darts  # noqa: E402
from autodl.nas.model_search import SearchNetwork  # noqa: E402
from autodl.nas.operations import PRIMITIVES  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_second_order_step_differs_from_first_order_and_keeps_weights():
    base = SearchNetwork(C=2, layers=2, nodes=2, seed=0)
    nets = {1: base, 2: copy.deepcopy(base)}
    weights0 = [p.detach().clone() for p in base.weight_parameters()]
    grads, alphas = {}, {}
    for order, net in nets.items():
        arch = Architect(net, order=order, arch_lr=0.01)
        for i in range(2):
            (xt, yt), (xv, yv) = _batch(seed=2 * i), _batch(seed=2 * i + 1)
            g = arch.step(xt, yt, xv, yv, xi=0.1)
            grads.setdefault(order, g)
        alphas[order] = [a.detach().clone() for a in net.arch_parameters()]
        # architecture steps change only the architecture weights
        assert all(torch.equal(p, p0) for p, p0 in zip(net.weight_parameters(), weights0))
    start = [a.detach() for a in SearchNetwork(C=2, layers=2, nodes=2, seed=0).arch_parameters()]
    for order in (1, 2):
        assert not torch.allclose(alphas[order][0], start[0])
    assert not torch.allclose(grads[1][0], grads[2][0], atol=1e-7)
    assert not torch.allclose(alphas[1][0], alphas[2][0], atol=1e-7)


def test_second_order_gradient_matches_exact_unrolled_gradient():
    """The finite-difference hypergradient agrees with autograd through the unrolled step
    (in float64 with a small finite-difference radius: this tiny net is too curved for the
    DARTS default radius 0.01 to be accurate)."""
    torch.manual_seed(3)
    net = SearchNetwork(C=2, layers=2, nodes=1, seed=3).double()
    with torch.no_grad():
        for a in net.arch_parameters():
            a.normal_()
    x_t, y_t = torch.randn(12, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (12,))
    x_v, y_v = torch.randn(12, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (12,))
    xi, wd = 0.5, 3e-4
    approx = Architect(net, order=2, weight_decay=wd, fd_radius=1e-6).gradients(x_t, y_t, x_v, y_v, xi)

    names = [n for n, p in net.named_parameters() if not n.startswith("alphas")]
    weights = [dict(net.named_parameters())[n] for n in names]
    g = torch.autograd.grad(net.loss(x_t, y_t), weights, create_graph=True)
    unrolled = {n: p - xi * (gi + wd * p) for n, p, gi in zip(names, weights, g)}
    unrolled.update(alphas_normal=net.alphas_normal, alphas_reduce=net.alphas_reduce)
    out = torch.func.functional_call(net, unrolled, (x_v,))
    exact = torch.autograd.grad(torch.nn.functional.cross_entropy(out, y_v), net.arch_parameters())
    first = Architect(net, order=1).gradients(x_t, y_t, x_v, y_v, xi)
    for a, e, f in zip(approx, exact, first):
        assert torch.allclose(a, e, rtol=1e-6, atol=1e-9), (a, e)
        assert not torch.allclose(f, e, rtol=1e-3, atol=1e-6)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def test_tiny_first_order_search_improves_validation_and_writes_run(digits, tmp_path):
    X, y = digits
    res = run_darts(X, y, C=4, layers=2, nodes=2, epochs=3, order=1, guard="darts-", batch_size=16,
                    max_rows=500, train_epochs=2, seed=0, run_dir=tmp_path)
    assert len(res.val_history) == 4
    assert res.val_history[-1] > res.val_history[0] + 0.1  # ~0.1 (chance) -> ~0.4 in 3 epochs
    assert res.test_accuracy is not None and 0.0 <= res.test_accuracy <= 1.0
    assert res.n_params == sum(p.numel() for p in res.model.parameters())
    assert res.search_seconds > 0
    # files in the report's formats
    genotype = json.loads((tmp_path / "genotype.json").read_text())
    assert genotype == res.genotype and genotype["nodes"] == 2 and len(genotype["normal"]) == 4
    alphas = json.loads((tmp_path / "alphas.json").read_text())
    assert alphas["ops"] == PRIMITIVES
    assert np.array(alphas["history"]["normal"]).shape == (3, 5, len(PRIMITIVES))
    assert np.allclose(np.array(alphas["history"]["reduce"]).sum(-1), 1.0, atol=1e-4)
    info = json.loads((tmp_path / "result.json").read_text())
    assert info["kind"] == "nas" and info["extra"]["method"] == "darts"
    assert info["test_score"] == res.test_accuracy and info["extra"]["settings"]["order"] == 1
    assert info["best_value"] == res.val_history[-1] and info["direction"] == "maximize"
    if importlib.util.find_spec("matplotlib") is not None:  # the report draws these files
        from autodl.report import alphas_figure, genotype_figure

        assert alphas_figure(alphas) and genotype_figure(genotype)
    loaded = load_model(tmp_path)
    x = torch.as_tensor(X[:7])
    with torch.no_grad():
        assert torch.allclose(loaded(x), res.model.eval()(x), atol=1e-5)


def test_bad_arguments_are_rejected(digits):
    X, y = digits
    with pytest.raises(ValueError):
        run_darts(X, y, guard="pdarts")
    with pytest.raises(ValueError):
        run_darts(X, y, order=3)


def _digits(n=300):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


def test_a_search_stopped_between_epochs_resumes_exactly_where_it_stopped(tmp_path):
    """Ctrl-C after epoch 2 of 4, then ``resume=True``: the architecture weights of every epoch,
    the genotype and the final network equal those of a search that never stopped."""
    X, y = _digits()
    kw = dict(C=4, layers=2, nodes=2, epochs=4, train_epochs=1, guard=None, seed=1)
    whole = run_darts(X, y, state_dir=tmp_path / "whole", **kw)

    def interrupt(epoch, info):
        if epoch == 3:  # the state of epoch 2 is on disk, epoch 3 is lost
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_darts(X, y, state_dir=tmp_path / "cut", on_epoch=interrupt, **kw)
    from autodl.nas.darts import load_search_state

    assert load_search_state(tmp_path / "cut")["meta"]["epochs_run"] == 2
    seen = []
    resumed = run_darts(X, y, state_dir=tmp_path / "cut", resume=True, on_epoch=lambda e, i: seen.append(e), **kw)
    assert seen == [3, 4]
    assert resumed.alphas == whole.alphas and resumed.val_history == whole.val_history
    assert resumed.genotype == whole.genotype and resumed.settings["epochs_run"] == 4
    for a, b in zip(resumed.model.state_dict().values(), whole.model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.search_seconds > 0


def test_resume_without_a_saved_state_is_one_clear_error(tmp_path):
    from autodl.errors import UserError

    X, y = _digits(100)
    with pytest.raises(UserError, match="no DARTS search state"):
        run_darts(X, y, C=4, layers=2, epochs=1, train_epochs=1, state_dir=tmp_path, resume=True)
