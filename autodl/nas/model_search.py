"""The DARTS supernet: mixed operations, search cells and a small network for 8x8 images.

* :class:`MixedOp` -- one edge of a cell: every candidate of :data:`~autodl.nas.operations.PRIMITIVES`
  applied to the input and summed with the softmax of that edge's architecture weights (pools
  are followed by a non-affine BatchNorm, as in DARTS).
* :class:`SearchCell` -- two inputs (the outputs of the two previous cells, preprocessed to
  ``C`` channels; a factorized reduce when the previous cell halved the size), ``nodes``
  intermediate nodes, node ``i`` summing a mixed op on each of its ``2 + i`` predecessors; the
  output concatenates all intermediate nodes (``nodes * C`` channels). Reduction cells use
  stride 2 on the edges from the two inputs.
* :class:`SearchNetwork` -- stem conv, ``layers`` cells (reduction cells at ``layers // 3`` and
  ``2 * layers // 3``, channels doubled there), global average pooling, a linear classifier.

The architecture weights ``alphas_normal`` / ``alphas_reduce`` (``[n_edges, n_ops]``, shared by
all cells of a kind) are ``nn.Parameter``s registered on the network (so they are in the
``state_dict``) but kept out of the weight optimizer: build it from :meth:`weight_parameters`,
and the architecture optimizer from :meth:`arch_parameters`.

**Collapse guard (DARTS-, Chu et al. 2021, "DARTS-: Robustly Stepping out of Performance
Collapse Without Indicators").** Plain DARTS drifts toward parameter-free operations, above all
``skip_connect``: a skip connection eases gradient flow through the supernet (the residual
effect), so its weight grows for an optimisation reason, not because the derived network is
better. DARTS- adds an *auxiliary* skip connection ``beta * x`` to every stride-1 mixed op,
outside the softmax, with ``beta`` decaying linearly from ``beta0`` to 0 over the search
(:attr:`SearchNetwork.aux_skip_beta`, set by :func:`autodl.nas.darts.run_darts` each epoch). The
auxiliary path supplies the residual gradient flow itself, so the candidate skip no longer wins
by that advantage; at the end ``beta = 0`` and the supernet is the plain one again, so there is
no train/derive mismatch. We chose it over early stopping (needs a threshold that is
data-dependent) and over capping skips in the derived cell (P-DARTS: it hides the symptom
after the fact, and the alphas themselves stay collapsed). Stride-2 edges have no identity and
get no auxiliary path.

*Measured effect on digits* (8x8, 1437 search rows split half/half, 360 test rows; C=8, 3 cells,
2 nodes, first order, 20 epochs, arch lr 0.02, derived net trained 20 epochs): plain DARTS did
**not** collapse here -- the normal cell had a parameter-free share of 0.0 for seeds 0 and 1
(all separable/dilated convs; the mean skip weight fell from 0.13 to 0.09), test accuracy
98.9% / 98.9%. With the guard the share was 0.5 and 0.75 (skip and avg-pool edges) and test
accuracy 98.6% / 97.8%: the skip weight rose late in the search, as the auxiliary path faded
(beta -> 0) and the candidate skip took over its role. So on this small problem this guard does
not help; the default guard of :func:`~autodl.nas.darts.run_darts` is early stopping on
parameter-free dominance (``"pf-stop"``, see :mod:`autodl.nas.darts`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autodl.nas.operations import PRIMITIVES, FactorizedReduce, ReLUConvBN, make_op


class MixedOp(nn.Module):
    """``sum_k softmax(alpha)_k * op_k(x)`` (plus the DARTS- auxiliary skip when ``beta > 0``)."""

    def __init__(self, C: int, stride: int, primitives=PRIMITIVES):
        super().__init__()
        self.stride = int(stride)
        self.primitives = list(primitives)
        ops = []
        for name in self.primitives:
            op = make_op(name, C, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
            ops.append(op)
        self._ops = nn.ModuleList(ops)

    def forward(self, x, weights, beta: float = 0.0):
        out = sum(w * op(x) for w, op in zip(weights, self._ops))
        if beta and self.stride == 1:
            out = out + beta * x
        return out


def n_edges(nodes: int) -> int:
    """Number of edges of a cell with ``nodes`` intermediate nodes (node i has 2 + i inputs)."""
    return sum(2 + i for i in range(nodes))


class SearchCell(nn.Module):
    def __init__(self, nodes: int, C_prev_prev: int, C_prev: int, C: int, reduction: bool,
                 reduction_prev: bool, primitives=PRIMITIVES):
        super().__init__()
        self.reduction = bool(reduction)
        self.nodes = int(nodes)
        self.preprocess0 = (FactorizedReduce(C_prev_prev, C, affine=False) if reduction_prev
                            else ReLUConvBN(C_prev_prev, C, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(C_prev, C, 1, 1, 0, affine=False)
        self._ops = nn.ModuleList()
        for i in range(self.nodes):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(MixedOp(C, stride, primitives))

    def forward(self, s0, s1, weights, beta: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.nodes):
            s = sum(self._ops[offset + j](h, weights[offset + j], beta) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[2:], dim=1)


def reduction_layers(layers: int) -> set[int]:
    """Indices of the reduction cells among ``layers`` cells (DARTS: at 1/3 and 2/3 depth)."""
    if layers < 3:
        return {layers - 1} if layers == 2 else set()
    return {layers // 3, 2 * layers // 3}


class SearchNetwork(nn.Module):
    """The supernet (see the module docstring).

    Args:
        C: channels of the first cells (doubled at each reduction cell).
        num_classes: output logits.
        layers: number of cells.
        nodes: intermediate nodes per cell.
        in_channels: image channels.
        stem_multiplier: stem output channels = ``stem_multiplier * C``.
        primitives: candidate operation names.
        seed: when given, the architecture weights are initialised from this seed
            (``1e-3 * N(0, 1)``, as in DARTS); otherwise from torch's global generator.
    """

    def __init__(self, C: int = 8, num_classes: int = 10, layers: int = 3, nodes: int = 2,
                 in_channels: int = 1, stem_multiplier: int = 3, primitives=PRIMITIVES,
                 seed: int | None = None):
        super().__init__()
        self.C, self.num_classes, self.layers, self.nodes = int(C), int(num_classes), int(layers), int(nodes)
        self.in_channels, self.stem_multiplier = int(in_channels), int(stem_multiplier)
        self.primitives = list(primitives)
        self.aux_skip_beta = 0.0
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
            self.cells.append(SearchCell(nodes, C_pp, C_p, C_curr, reduction, reduction_prev,
                                         self.primitives))
            reduction_prev = reduction
            C_pp, C_p = C_p, nodes * C_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_p, num_classes)
        k, n_ops = n_edges(nodes), len(self.primitives)
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(k, n_ops, generator=gen))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(k, n_ops, generator=gen))

    # ------------------------------------------------------------ parameters
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Softmax of the architecture weights, ``{"normal": [n_edges, n_ops], "reduce": ...}``."""
        return {"normal": F.softmax(self.alphas_normal.detach(), dim=-1),
                "reduce": F.softmax(self.alphas_reduce.detach(), dim=-1)}

    # ------------------------------------------------------------ forward
    def forward(self, x):
        from autodl.nas.genotypes import pad_to_4

        s0 = s1 = self.stem(pad_to_4(x))
        w_normal = F.softmax(self.alphas_normal, dim=-1)
        w_reduce = F.softmax(self.alphas_reduce, dim=-1)
        for cell in self.cells:
            weights = w_reduce if cell.reduction else w_normal
            s0, s1 = s1, cell(s0, s1, weights, self.aux_skip_beta)
        return self.classifier(self.global_pooling(s1).flatten(1))

    def loss(self, x, y):
        return F.cross_entropy(self(x), y)
