"""Every architecture the NAS spaces can produce exports to ONNX and matches torch
(autodl.export_onnx: onnx.checker, then onnxruntime at batch 1, 7 and 64)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from autodl.export import export_onnx  # noqa: E402
from autodl.nas.cell_space import CELL_OPS  # noqa: E402
from autodl.nas.choices import freeze  # noqa: E402
from autodl.nas.genotypes import NetworkFromGenotype  # noqa: E402
from autodl.nas.spaces import mlp_space  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _rows(n_features, n=80, seed=0):
    return np.random.default_rng(seed).random((n, n_features), dtype=np.float32)


def _trained(model, n_features, steps=3):
    """A few SGD steps so BatchNorm statistics and weights are not at their initial values."""
    x = torch.as_tensor(_rows(n_features, 64, seed=1))
    y = torch.randint(0, model(x[:2]).shape[1], (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("op", CELL_OPS)
def test_every_cell_operation_exports(tmp_path, op):
    gene = [[op, 0, 0], [op, 1, 0], [op, 1, 1], [op, 2, 1]]
    net = _trained(NetworkFromGenotype({"normal": gene, "reduce": gene, "nodes": 2}, C=4, num_classes=10,
                                       layers=3, image_shape=(1, 8, 8)), 64)
    path = export_onnx(net, tmp_path / f"{op}.onnx", sample=_rows(64), class_labels=list(range(10)))
    assert path.is_file()


@pytest.mark.slow
def test_every_mlp_space_option_exports(tmp_path):
    factory = mlp_space(13, 3, max_layers=2, widths=(8, 16))
    for i, (act, bn, res, depth) in enumerate(itertools.product(["relu", "tanh", "gelu"], [False, True],
                                                                [False, True], [1, 2])):
        config = {"depth": depth, "width_0": 16, "width_1": 8, "dropout": 0.1, "batch_norm": bn,
                  "residual": res, "activation": act}
        net = _trained(freeze(factory, config), 13)
        export_onnx(net, tmp_path / f"mlp{i}.onnx", sample=_rows(13), class_labels=[0, 1, 2])
