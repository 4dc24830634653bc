"""Candidate operations of DARTS-style cells (Liu et al. 2019, "DARTS: Differentiable
Architecture Search"), keyed by name in :data:`OPS`.

Every factory is ``OPS[name](C, stride, affine) -> nn.Module`` mapping ``[B, C, H, W]`` to
``[B, C, H / stride, W / stride]`` (stride 1 or 2; even sizes when stride is 2). Convolutions
use the ReLU-Conv-BN ordering of DARTS; separable convolutions are applied twice (the second
time with stride 1), dilated convolutions once (dilation 2). ``skip_connect`` is the identity at
stride 1 and a :class:`FactorizedReduce` (two offset 1x1 convs with stride 2, concatenated) at
stride 2. ``none`` is the zero operation (the output is zeros of the right shape).

:data:`PARAMETER_FREE` are the operations without learnable weights (``none``, skip at stride
1, the pools): the ones DARTS tends to collapse to (see :mod:`autodl.nas.model_search`).
"""

from __future__ import annotations

import torch
from torch import nn

#: operation names in the order the architecture weights use
PRIMITIVES = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
]

#: operations without learnable parameters (skip counted as such: it is at stride 1)
PARAMETER_FREE = frozenset({"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"})


class Zero(nn.Module):
    """The ``none`` operation: zeros with the output shape (the input subsampled at stride)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = int(stride)

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Identity(nn.Module):
    def forward(self, x):
        return x


class ReLUConvBN(nn.Module):
    """ReLU, a (possibly strided) convolution, BatchNorm."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class DilConv(nn.Module):
    """ReLU, depthwise dilated conv, pointwise conv, BatchNorm."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 dilation: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride=stride, padding=padding, dilation=dilation,
                      groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    """Two depthwise-separable ReLU-Conv-BN blocks (the first one carries the stride)."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(
            DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine),
        )

    def forward(self, x):
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halve the spatial size with two 1x1 stride-2 convs on offset grids, concatenated."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


OPS = {
    "none": lambda C, stride, affine: Zero(stride),
    "max_pool_3x3": lambda C, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1,
                                                           count_include_pad=False),
    "skip_connect": lambda C, stride, affine: (Identity() if stride == 1
                                               else FactorizedReduce(C, C, affine)),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine),
}


def make_op(name: str, C: int, stride: int, affine: bool = True) -> nn.Module:
    """The operation ``name`` on ``C`` channels (see the module docstring)."""
    if name not in OPS:
        raise ValueError(f"unknown operation {name!r}; choose one of: {', '.join(OPS)}")
    return OPS[name](C, stride, affine)
