"""The DARTS-style CNN cell space declared with the choice API, for sample-based NAS.

:func:`cell_space` is a factory of the space DARTS searches by gradient
(:mod:`autodl.nas.model_search`), written as discrete decisions so that evolution and random
search sample the *same* architectures DARTS derives. Per cell type (``normal``, ``reduce``) and
intermediate node ``d``:

* ``{cell}_node{d}_inputs`` -- which two of the node's ``2 + d`` predecessors feed it (an input
  choice written ``"0,2"``; node 0 has exactly two predecessors, so it has no such decision);
* ``{cell}_node{d}_op0`` / ``_op1`` -- the operation on the first / second chosen input, one of
  :data:`~autodl.nas.operations.PRIMITIVES` except ``none`` (DARTS' derivation never keeps
  ``none`` either).

:func:`~autodl.nas.choices.freeze` of a sample is a plain
:class:`~autodl.nas.genotypes.NetworkFromGenotype` with exactly those operations;
:func:`sample_to_genotype` gives the genotype JSON (the format DARTS runs write), so a sampled
architecture is stored, drawn and exported like a DARTS-derived one.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping, Sequence

from torch import nn

from autodl.nas.choices import ValueChoice
from autodl.nas.genotypes import NetworkFromGenotype, validate_genotype
from autodl.nas.operations import PRIMITIVES

CELLS = ("normal", "reduce")
#: operations a sampled edge may carry (every primitive but ``none``)
CELL_OPS = tuple(p for p in PRIMITIVES if p != "none")


def _input_choices(d: int) -> list[str]:
    return [",".join(map(str, c)) for c in itertools.combinations(range(2 + d), 2)]


def sample_to_genotype(sample: Mapping[str, Any], nodes: int) -> dict[str, Any]:
    """The genotype (``{"normal": [[op, src, dst], ...], "reduce": ..., "nodes": N}``) of a
    :func:`cell_space` sample."""
    out: dict[str, Any] = {"nodes": int(nodes)}
    for cell in CELLS:
        gene = []
        for d in range(nodes):
            srcs = "0,1" if d == 0 else sample[f"{cell}_node{d}_inputs"]
            a, b = (int(s) for s in str(srcs).split(","))
            gene.append([str(sample[f"{cell}_node{d}_op0"]), a, d])
            gene.append([str(sample[f"{cell}_node{d}_op1"]), b, d])
        out[cell] = gene
    return validate_genotype(out)


def genotype_to_sample(genotype: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`cell_space` sample of a genotype with two inputs per node (e.g. a DARTS one)."""
    g = validate_genotype(dict(genotype))
    sample: dict[str, Any] = {}
    for cell in CELLS:
        for d in range(g["nodes"]):
            edges = sorted(((src, op) for op, src, dst in g[cell] if dst == d))
            if len(edges) != 2 or edges[0][0] == edges[1][0]:
                raise ValueError(f"{cell} node {d} needs two distinct inputs, has {edges}")
            if d > 0:
                sample[f"{cell}_node{d}_inputs"] = f"{edges[0][0]},{edges[1][0]}"
            sample[f"{cell}_node{d}_op0"] = edges[0][1]
            sample[f"{cell}_node{d}_op1"] = edges[1][1]
    return sample


def cell_space(n_classes: int, *, C: int = 8, layers: int = 3, nodes: int = 2,
               image_shape: tuple[int, int, int] = (1, 8, 8),
               ops: Sequence[str] = CELL_OPS) -> Callable[[], nn.Module]:
    """A factory of the cell space (see the module doc); networks take flat rows of
    ``prod(image_shape)`` values (or images) and output ``n_classes`` logits.

    Example:
        >>> from autodl.nas import cell_space, describe, freeze
        >>> space = cell_space(10, nodes=2)
        >>> sorted(describe(space))[:2]
        ['normal_node0_op0', 'normal_node0_op1']
    """
    ops = list(ops)
    unknown = set(ops) - set(CELL_OPS)
    if unknown or not ops:
        raise ValueError(f"ops {sorted(unknown) or ops} not usable; choose from {', '.join(CELL_OPS)}")
    if nodes < 1:
        raise ValueError(f"nodes is {nodes}, but must be >= 1")
    if layers < 1:
        raise ValueError(f"layers is {layers}, but must be >= 1")

    def factory() -> nn.Module:
        sample: dict[str, Any] = {}
        for cell in CELLS:
            for d in range(nodes):
                if d > 0:
                    sample[f"{cell}_node{d}_inputs"] = ValueChoice(_input_choices(d), label=f"{cell}_node{d}_inputs")
                for slot in (0, 1):
                    label = f"{cell}_node{d}_op{slot}"
                    sample[label] = ValueChoice(ops, label=label)
        return NetworkFromGenotype(sample_to_genotype(sample, nodes), C=C, num_classes=n_classes,
                                   layers=layers, image_shape=tuple(image_shape))

    return factory
