"""Derivation of genotypes from architecture weights, the genotype network, ONNX export."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autodl.nas.genotypes import (  # noqa: E402
    NetworkFromGenotype, derive_cell, derive_genotype, parameter_free_share, random_genotype,
    validate_genotype,
)
from autodl.nas.model_search import SearchNetwork  # noqa: E402
from autodl.nas.operations import PRIMITIVES  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _row(**weights):
    row = np.full(len(PRIMITIVES), 0.01)
    for op, w in weights.items():
        row[PRIMITIVES.index(op)] = w
    return row


def test_derivation_on_hand_set_weights():
    # 3 nodes -> 2 + 3 + 4 = 9 edges, in order (node0: src 0,1), (node1: src 0,1,2), (node2: 0..3)
    w = np.array([
        _row(sep_conv_3x3=0.5),                  # 0 -> 0
        _row(none=0.9, max_pool_3x3=0.05),       # 1 -> 0: `none` is ignored, pool is the best rest
        _row(skip_connect=0.2),                  # 0 -> 1
        _row(dil_conv_5x5=0.6),                  # 1 -> 1
        _row(avg_pool_3x3=0.4, sep_conv_5x5=0.3),  # 2 -> 1
        _row(sep_conv_5x5=0.1),                  # 0 -> 2
        _row(dil_conv_3x3=0.7),                  # 1 -> 2
        _row(none=0.99),                         # 2 -> 2 (only `none`: weakest)
        _row(skip_connect=0.8, sep_conv_3x3=0.79),  # 3 -> 2
    ])
    gene = derive_cell(w, nodes=3)
    assert gene == [
        ["sep_conv_3x3", 0, 0], ["max_pool_3x3", 1, 0],
        ["dil_conv_5x5", 1, 1], ["avg_pool_3x3", 2, 1],
        ["dil_conv_3x3", 1, 2], ["skip_connect", 3, 2],
    ]
    with pytest.raises(ValueError):
        derive_cell(w[:8], nodes=3)


def test_derive_genotype_of_a_supernet_is_json_and_valid():
    net = SearchNetwork(C=4, layers=2, nodes=3, seed=1)
    with torch.no_grad():
        net.alphas_reduce.zero_()
        net.alphas_reduce[:, PRIMITIVES.index("avg_pool_3x3")] = 3.0
    g = derive_genotype(net)
    assert json.loads(json.dumps(g)) == g and g["nodes"] == 3
    assert [len(g["normal"]), len(g["reduce"])] == [6, 6]
    assert all(op == "avg_pool_3x3" for op, _, _ in g["reduce"])
    assert validate_genotype(g) == g
    assert parameter_free_share(g, "reduce") == 1.0
    with pytest.raises(ValueError):
        validate_genotype({"normal": [["conv_7x7", 0, 0]], "reduce": [], "nodes": 1})
    with pytest.raises(ValueError):
        validate_genotype({"normal": [["skip_connect", 3, 0]], "reduce": [["skip_connect", 0, 0]], "nodes": 1})


def test_network_from_genotype_has_exactly_its_operations():
    g = {"nodes": 2, "normal": [["sep_conv_3x3", 0, 0], ["skip_connect", 1, 0], ["max_pool_3x3", 2, 1]],
         "reduce": [["dil_conv_3x3", 0, 0], ["avg_pool_3x3", 1, 1]]}
    net = NetworkFromGenotype(g, C=4, layers=3, image_shape=(1, 8, 8))
    names = [type(op).__name__ for cell in net.cells for op in cell._ops]
    # cells: normal, reduce, reduce (reductions at 1/3 and 2/3 of 3 layers)
    assert names == ["SepConv", "Identity", "MaxPool2d", "DilConv", "AvgPool2d", "DilConv", "AvgPool2d"]
    assert net(torch.randn(5, 64)).shape == (5, 10)


def test_random_genotype_with_every_operation_exports_to_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from autodl.export import export_onnx, read_metadata

    rng = np.random.default_rng(0)
    g = random_genotype(4, rng)
    # put every operation in (both strides: the reduce cell strides its input edges)
    g["normal"] = [[PRIMITIVES[i % len(PRIMITIVES)], s, d] for i, (_, s, d) in enumerate(g["normal"])]
    # reduce cell: every operation on a stride-2 edge (sources 0 and 1), plus a stride-1 edge
    g["reduce"] = [[PRIMITIVES[2 * d + s], s, d] for d in range(4) for s in (0, 1)] + [["sep_conv_5x5", 2, 1]]
    assert {op for op, _, _ in g["normal"]} == set(PRIMITIVES)
    assert {op for op, s, _ in g["reduce"] if s < 2} == set(PRIMITIVES)
    net = NetworkFromGenotype(g, C=4, layers=3, image_shape=(1, 8, 8))
    # a few training-mode forwards so BatchNorm running statistics are not trivial
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 64))
    sample = np.random.default_rng(1).normal(size=(32, 64)).astype(np.float32)
    path = export_onnx(net.eval(), tmp_path / "cell.onnx", sample=sample, class_labels=list(range(10)),
                       metadata={"genotype": g})
    assert path.exists()
    assert read_metadata(path)["genotype"] == g
