"""Operations, mixed ops and the supernet: shapes, weights summing to one, parameter split."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from autodl.nas.model_search import MixedOp, SearchNetwork, n_edges  # noqa: E402
from autodl.nas.operations import PARAMETER_FREE, PRIMITIVES, make_op  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.mark.parametrize("stride", [1, 2])
def test_every_operation_keeps_channels_and_scales_size(stride):
    x = torch.randn(2, 6, 8, 8)
    for name in PRIMITIVES:
        op = make_op(name, 6, stride)
        assert op(x).shape == (2, 6, 8 // stride, 8 // stride), name
        n_params = sum(p.numel() for p in op.parameters())
        if name in PARAMETER_FREE and stride == 1:
            assert n_params == 0, name
    assert torch.count_nonzero(make_op("none", 6, 2)(x)) == 0


def test_mixed_op_weights_sum_to_one_and_mix_linearly():
    net = SearchNetwork(C=4, layers=2, nodes=2, seed=0)
    with torch.no_grad():
        net.alphas_normal.normal_()
    for w in net.arch_weights().values():
        assert w.shape == (n_edges(2), len(PRIMITIVES))
        assert torch.allclose(w.sum(-1), torch.ones(w.shape[0]), atol=1e-6)
        assert (w > 0).all()
    op = MixedOp(4, 1).eval()
    x = torch.randn(2, 4, 8, 8)
    one_hot = torch.zeros(len(PRIMITIVES))
    k = PRIMITIVES.index("sep_conv_3x3")
    one_hot[k] = 1.0
    assert torch.allclose(op(x, one_hot), op._ops[k](x))
    w = torch.softmax(torch.randn(len(PRIMITIVES)), 0)
    expected = sum(w[i] * op._ops[i](x) for i in range(len(PRIMITIVES)))
    assert torch.allclose(op(x, w), expected, atol=1e-6)
    # the DARTS- auxiliary skip adds beta * x on stride-1 edges only
    assert torch.allclose(op(x, w, beta=0.5), expected + 0.5 * x, atol=1e-6)
    assert MixedOp(4, 2).eval()(x, one_hot, beta=0.5).shape == (2, 4, 4, 4)


def test_arch_parameters_are_outside_the_weight_optimizer():
    net = SearchNetwork(C=4, layers=3, nodes=2, seed=0)
    arch = {id(p) for p in net.arch_parameters()}
    weights = net.weight_parameters()
    assert len(arch) == 2 and arch.isdisjoint(id(p) for p in weights)
    assert len(weights) + 2 == len(list(net.parameters()))
    assert "alphas_normal" in net.state_dict()
    opt = torch.optim.SGD(weights, lr=0.1)
    before = [a.detach().clone() for a in net.arch_parameters()]
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    net.loss(x, y).backward()
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(net.arch_parameters(), before))
    assert net(x).shape == (8, 10)
