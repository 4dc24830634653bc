"""Model spaces declared with the choice API (:mod:`autodl.nas.choices`).

:func:`mlp_space` -- a factory for an MLP space: depth, a width per layer, activation, dropout,
batch norm and residual connections. Every decision is declared on every call (widths of all
``max_layers`` layers, even those a small depth leaves unused), so :func:`~autodl.nas.choices.describe`
sees the whole space; unused width decisions are inert, like inactive conditional parameters.
"""

from __future__ import annotations

from typing import Callable, Sequence

from torch import nn

from autodl.nas.choices import LayerChoice, ValueChoice

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


class MLPBlock(nn.Module):
    """Linear -> [BatchNorm] -> activation -> [Dropout], plus a residual path when asked
    (identity when the widths match, a bias-free linear projection otherwise)."""

    def __init__(self, n_in: int, n_out: int, activation: nn.Module, dropout: float, batch_norm: bool,
                 residual: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(activation)
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.shortcut = None
        if residual:
            self.shortcut = nn.Identity() if n_in == n_out else nn.Linear(n_in, n_out, bias=False)

    def forward(self, x):
        out = self.body(x)
        return out if self.shortcut is None else out + self.shortcut(x)


class MLPNet(nn.Module):
    def __init__(self, blocks: list[nn.Module], n_last: int, n_classes: int):
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(n_last, n_classes)

    def forward(self, x):
        return self.head(self.blocks(x.flatten(1)))


def mlp_space(n_features: int, n_classes: int, *, max_layers: int = 3,
              widths: Sequence[int] = (16, 32, 64, 128), activations: Sequence[str] = ("relu", "tanh", "gelu"),
              dropouts: Sequence[float] = (0.0, 0.1, 0.3)) -> Callable[[], nn.Module]:
    """A factory of the MLP space (labels ``depth``, ``width_0`` .. ``width_{max_layers-1}``,
    ``activation`` (a LayerChoice shared by all blocks), ``dropout``, ``batch_norm``, ``residual``)."""
    unknown = set(activations) - set(ACTIVATIONS)
    if unknown:
        raise ValueError(f"unknown activations {sorted(unknown)}; choose from {', '.join(ACTIVATIONS)}")
    if max_layers < 1:
        raise ValueError("max_layers must be at least 1")

    def factory() -> nn.Module:
        depth = ValueChoice(list(range(1, max_layers + 1)), label="depth")
        layer_widths = [ValueChoice(list(widths), label=f"width_{k}") for k in range(max_layers)]
        dropout = ValueChoice(list(dropouts), label="dropout")
        batch_norm = ValueChoice([False, True], label="batch_norm")
        residual = ValueChoice([False, True], label="residual")
        blocks, n_in = [], n_features
        for k in range(depth):
            act = LayerChoice({name: ACTIVATIONS[name]() for name in activations}, label="activation")
            blocks.append(MLPBlock(n_in, layer_widths[k], act, dropout, batch_norm, residual))
            n_in = layer_widths[k]
        return MLPNet(blocks, n_in, n_classes)

    return factory
