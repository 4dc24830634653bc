"""Model spaces declared with the choice API (:mod:`autodl.nas.choices`).

:func:`mlp_space` -- a factory for an MLP space: depth, a width per layer, activation, dropout,
batch norm and residual connections. Every decision is declared on every call (widths of all
``max_layers`` layers, even those a small depth leaves unused), so :func:`~autodl.nas.choices.describe`
sees the whole space; unused width decisions are inert, like inactive conditional parameters.

:func:`rnn_space` -- a factory for sequence classifiers: the recurrent cell (vanilla RNN, LSTM,
GRU), layers, hidden size, bidirectional, dropout.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
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


RNN_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RNNNet(nn.Module):
    """A recurrent encoder over ``[batch, time, features]`` and a linear head on its summary.

    The summary is the last layer's final hidden state, both directions concatenated when the
    encoder is bidirectional (for the backward direction that is the state after reading the
    whole sequence backwards, which ``output[:, -1]`` is not). ``dropout`` acts between the
    recurrent layers (when there are several) and on the summary before the head.
    """

    def __init__(self, encoder: nn.Module, hidden_size: int, bidirectional: bool, n_classes: int, dropout: float):
        super().__init__()
        self.encoder = encoder  # an nn.RNN / LSTM / GRU (batch_first), or a LayerChoice of them
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(self.directions * hidden_size, n_classes)

    def forward(self, x):
        _, state = self.encoder(x)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        summary = torch.cat(list(h_n[-self.directions:]), dim=1)  # [batch, directions * hidden]
        return self.head(self.dropout(summary))


def rnn_space(n_features: int, n_classes: int, *, cells: Sequence[str] = ("rnn", "lstm", "gru"),
              layers: Sequence[int] = (1, 2), hidden_sizes: Sequence[int] = (16, 32, 64),
              bidirectional: Sequence[bool] = (False, True),
              dropouts: Sequence[float] = (0.0, 0.2)) -> Callable[[], nn.Module]:
    """A factory of the RNN space for sequences ``[batch, time, n_features]`` -> ``[batch, n_classes]``
    logits (see :class:`RNNNet`).

    Labels: ``cell`` (a LayerChoice among ``cells``: ``rnn`` (tanh), ``lstm``, ``gru``),
    ``layers``, ``hidden_size``, ``bidirectional`` and ``dropout`` (ValueChoices).

    Example:
        >>> factory = rnn_space(2, 2)
        >>> model = freeze(factory, {"cell": "gru", "layers": 2, "hidden_size": 32,
        ...                          "bidirectional": True, "dropout": 0.2})
    """
    unknown = set(cells) - set(RNN_CELLS)
    if unknown or not cells:
        raise ValueError(f"unknown cells {sorted(unknown)}; choose from {', '.join(RNN_CELLS)}")
    if not layers or min(layers) < 1:
        raise ValueError(f"layers must be positive integers, got {list(layers)}")
    if n_features < 1 or n_classes < 1:
        raise ValueError(f"n_features and n_classes must be positive, got {n_features}, {n_classes}")

    def factory() -> nn.Module:
        n_layers = ValueChoice(list(layers), label="layers")
        hidden = ValueChoice(list(hidden_sizes), label="hidden_size")
        bidi = ValueChoice(list(bidirectional), label="bidirectional")
        dropout = ValueChoice(list(dropouts), label="dropout")
        between = dropout if n_layers > 1 else 0.0  # torch warns on dropout with one layer
        encoder = LayerChoice({name: RNN_CELLS[name](n_features, hidden, num_layers=n_layers, batch_first=True,
                                                     bidirectional=bidi, dropout=between)
                               for name in cells}, label="cell")
        return RNNNet(encoder, hidden, bidi, n_classes, dropout)

    return factory
