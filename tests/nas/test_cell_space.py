"""The DARTS cell space declared with the choice API (what evolution and random NAS sample)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autodl.nas.cell_space import CELL_OPS, cell_space, genotype_to_sample, sample_to_genotype  # noqa: E402
from autodl.nas.choices import describe, freeze, to_space  # noqa: E402
from autodl.nas.genotypes import NetworkFromGenotype, random_genotype  # noqa: E402
from autodl.nas.operations import DilConv, SepConv  # noqa: E402
from autodl.searchers import RandomSearch  # noqa: E402


def test_description_has_one_decision_per_edge_and_node():
    desc = describe(cell_space(10, nodes=3))
    # per cell: 3 nodes x 2 op slots + inputs for nodes 1 and 2
    assert len(desc) == 2 * (3 * 2 + 2)
    assert desc["normal_node1_inputs"]["choices"] == ["0,1", "0,2", "1,2"]
    assert desc["reduce_node2_inputs"]["choices"] == ["0,1", "0,2", "0,3", "1,2", "1,3", "2,3"]
    assert desc["normal_node0_op0"]["choices"] == list(CELL_OPS)
    assert "none" not in CELL_OPS


def test_freeze_builds_exactly_the_sampled_cell():
    factory = cell_space(10, C=4, nodes=2)
    sample = {"normal_node0_op0": "sep_conv_3x3", "normal_node0_op1": "skip_connect",
              "normal_node1_inputs": "1,2", "normal_node1_op0": "dil_conv_5x5", "normal_node1_op1": "max_pool_3x3",
              "reduce_node0_op0": "avg_pool_3x3", "reduce_node0_op1": "sep_conv_5x5",
              "reduce_node1_inputs": "0,2", "reduce_node1_op0": "skip_connect", "reduce_node1_op1": "dil_conv_3x3"}
    net = freeze(factory, sample)
    assert isinstance(net, NetworkFromGenotype)
    assert net.genotype["normal"] == [["sep_conv_3x3", 0, 0], ["skip_connect", 1, 0],
                                      ["dil_conv_5x5", 1, 1], ["max_pool_3x3", 2, 1]]
    normal_cell = net.cells[0]
    assert [type(op).__name__ for op in normal_cell._ops][0] == "SepConv"
    assert isinstance(normal_cell._ops[2], DilConv) and not any(isinstance(o, SepConv) for o in normal_cell._ops[1:])
    assert net(torch.randn(3, 64)).shape == (3, 10)
    assert genotype_to_sample(sample_to_genotype(sample, 2)) == sample


def test_every_random_sample_freezes_and_round_trips():
    factory = cell_space(10, C=2, layers=2, nodes=3)
    searcher = RandomSearch(to_space(factory), seed=3)
    for _ in range(10):
        config = searcher.ask().config
        net = freeze(factory, config)
        assert net(torch.randn(2, 64)).shape == (2, 10)
        assert genotype_to_sample(net.genotype) == config


def test_genotypes_darts_derives_are_in_the_space():
    g = random_genotype(3, np.random.default_rng(0), primitives=CELL_OPS)
    sample = genotype_to_sample(g)
    assert sample_to_genotype(sample, 3)["normal"] == sorted(g["normal"], key=lambda e: (e[2], e[1]))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="ops"):
        cell_space(10, ops=["none"])
    with pytest.raises(ValueError, match="nodes"):
        cell_space(10, nodes=0)
