"""Genotypes: the discrete cells derived from DARTS architecture weights, and the network
built from them.

A genotype is plain JSON::

    {"normal": [[op, src, dst], ...], "reduce": [[op, src, dst], ...], "nodes": N}

``dst`` is an intermediate node index ``0 .. N-1``; ``src`` 0 and 1 are the cell inputs
(``c_{k-2}``, ``c_{k-1}``) and ``src = k + 2`` is intermediate node ``k < dst`` (the format the
report draws, see :mod:`autodl.report`). A cell's output concatenates all intermediate nodes.

**Derivation** (:func:`derive_cell`, as in DARTS): for every intermediate node, keep the 2
incoming edges whose strongest non-``none`` operation weighs most (ties: the lower source), and
on each kept edge the strongest non-``none`` operation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from autodl.nas.model_search import n_edges, reduction_layers
from autodl.nas.operations import PARAMETER_FREE, PRIMITIVES, FactorizedReduce, ReLUConvBN, make_op


def derive_cell(weights, nodes: int, primitives=PRIMITIVES, k: int = 2) -> list[list]:
    """``[[op, src, dst], ...]`` from the ``[n_edges, n_ops]`` weights of one cell type."""
    w = np.asarray(weights.detach().cpu() if isinstance(weights, torch.Tensor) else weights, dtype=float)
    primitives = list(primitives)
    if w.shape != (n_edges(nodes), len(primitives)):
        raise ValueError(f"weights of shape {w.shape}; a cell with {nodes} nodes and "
                         f"{len(primitives)} ops needs {(n_edges(nodes), len(primitives))}")
    usable = [i for i, p in enumerate(primitives) if p != "none"]
    gene, offset = [], 0
    for dst in range(nodes):
        n_in = 2 + dst
        block = w[offset:offset + n_in][:, usable]
        strength = block.max(axis=1)
        keep = sorted(sorted(range(n_in), key=lambda j: (-strength[j], j))[:k])
        for src in keep:
            gene.append([primitives[usable[int(np.argmax(block[src]))]], int(src), int(dst)])
        offset += n_in
    return gene


def derive_genotype(model, k: int = 2) -> dict[str, Any]:
    """The genotype of a :class:`~autodl.nas.model_search.SearchNetwork`'s current weights."""
    w = model.arch_weights()
    return {"normal": derive_cell(w["normal"], model.nodes, model.primitives, k),
            "reduce": derive_cell(w["reduce"], model.nodes, model.primitives, k),
            "nodes": int(model.nodes)}


def cap_parameter_free(model, max_share: float, cell: str = "normal") -> dict[str, Any]:
    """The genotype of ``model`` with at most ``max_share`` parameter-free edges in ``cell``:
    derived as usual, then the parameter-free edges whose operation beats the edge's strongest
    parametric operation by the smallest weight margin get that parametric operation instead
    (the fallback of the ``pf-stop`` guard when no search epoch stayed within the limit)."""
    genotype = derive_genotype(model)
    w = np.asarray(model.arch_weights()[cell].detach().cpu(), dtype=float)
    primitives = list(model.primitives)
    param_ops = [i for i, p in enumerate(primitives) if p not in PARAMETER_FREE]
    gene = genotype[cell]
    limit = int(np.floor(max_share * len(gene) + 1e-9))
    free = [k for k, (op, _, _) in enumerate(gene) if op in PARAMETER_FREE]
    if len(free) <= limit or not param_ops:
        return genotype

    def row(src: int, dst: int) -> int:
        return sum(2 + d for d in range(dst)) + src

    def margin(k: int) -> float:
        op, src, dst = gene[k]
        r = w[row(src, dst)]
        return r[primitives.index(op)] - r[param_ops].max()

    for k in sorted(free, key=margin)[:len(free) - limit]:
        op, src, dst = gene[k]
        r = w[row(src, dst)]
        gene[k] = [primitives[param_ops[int(np.argmax(r[param_ops]))]], src, dst]
    return genotype


def parameter_free_share(genotype: dict[str, Any], cell: str = "normal") -> float:
    """Share of the edges of ``cell`` whose operation has no weights (none/skip/pools)."""
    gene = genotype[cell]
    return sum(op in PARAMETER_FREE for op, _, _ in gene) / max(len(gene), 1)


def validate_genotype(genotype: dict[str, Any]) -> dict[str, Any]:
    """A normalised copy of ``genotype``; raises ``ValueError`` when malformed."""
    try:
        nodes = int(genotype["nodes"])
        out = {"nodes": nodes}
        for cell in ("normal", "reduce"):
            gene = [[str(op), int(src), int(dst)] for op, src, dst in genotype[cell]]
            for op, src, dst in gene:
                if op not in PRIMITIVES:
                    raise ValueError(f"{cell}: unknown operation {op!r}")
                if not 0 <= dst < nodes or not 0 <= src < dst + 2:
                    raise ValueError(f"{cell}: edge {src} -> {dst} is not allowed with {nodes} nodes")
            missing = set(range(nodes)) - {dst for _, _, dst in gene}
            if missing:
                raise ValueError(f"{cell}: intermediate nodes {sorted(missing)} have no input")
            out[cell] = gene
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed genotype ({exc}); expected "
                         '{"normal": [[op, src, dst], ...], "reduce": [...], "nodes": N}') from None
    return out


def random_genotype(nodes: int, rng: np.random.Generator, primitives=PRIMITIVES, k: int = 2) -> dict[str, Any]:
    """A random genotype: ``min(k, 2 + i)`` distinct inputs per node, random operations."""
    out: dict[str, Any] = {"nodes": int(nodes)}
    for cell in ("normal", "reduce"):
        gene = []
        for dst in range(nodes):
            srcs = sorted(rng.choice(2 + dst, size=min(k, 2 + dst), replace=False).tolist())
            gene += [[primitives[int(rng.integers(len(primitives)))], int(s), dst] for s in srcs]
        out[cell] = gene
    return out


class GenotypeCell(nn.Module):
    """A fixed cell: exactly the operations of its gene."""

    def __init__(self, gene, nodes: int, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool):
        super().__init__()
        self.reduction, self.nodes = bool(reduction), int(nodes)
        self.preprocess0 = (FactorizedReduce(C_prev_prev, C) if reduction_prev
                            else ReLUConvBN(C_prev_prev, C, 1, 1, 0))
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0)
        self.edges = [(int(src), int(dst)) for _, src, dst in gene]
        self._ops = nn.ModuleList(make_op(op, C, 2 if reduction and src < 2 else 1)
                                  for op, src, dst in gene)

    def forward(self, s0, s1):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.nodes):
            terms = [op(states[src]) for op, (src, dst) in zip(self._ops, self.edges) if dst == node]
            states.append(sum(terms[1:], terms[0]))
        return torch.cat(states[2:], dim=1)


def pad_to_4(x):
    """Images padded with zeros on the bottom and right to sides divisible by 4, so the two
    reduction cells (stride 2 each, factorized reductions of even maps) fit any image size."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h % 4 == 0 and w % 4 == 0:
        return x
    import torch.nn.functional as F

    return F.pad(x, (0, -w % 4, 0, -h % 4))


class NetworkFromGenotype(nn.Module):
    """The network of a genotype, with the layout of the supernet it was derived from
    (stem, ``layers`` cells with reductions at 1/3 and 2/3 depth, pooling, linear head).

    Takes ``[B, in_channels, H, W]`` images, or flat ``[B, in_channels * H * W]`` rows when
    ``image_shape`` is given (so exported ONNX files take the same rows as tabular models).
    """

    def __init__(self, genotype: dict[str, Any], C: int = 8, num_classes: int = 10, layers: int = 3,
                 in_channels: int = 1, stem_multiplier: int = 3,
                 image_shape: tuple[int, int, int] | None = None):
        super().__init__()
        self.genotype = validate_genotype(genotype)
        nodes = self.genotype["nodes"]
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        if self.image_shape is not None:
            in_channels = self.image_shape[0]
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C_curr))
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        reductions = reduction_layers(layers)
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
            gene = self.genotype["reduce" if reduction else "normal"]
            self.cells.append(GenotypeCell(gene, nodes, C_pp, C_p, C_curr, reduction, reduction_prev))
            reduction_prev = reduction
            C_pp, C_p = C_p, nodes * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)

    def forward(self, x):
        if self.image_shape is not None:
            x = x.reshape(x.shape[0], *self.image_shape)
        s0 = s1 = self.stem(pad_to_4(x))
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))
