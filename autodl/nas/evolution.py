"""Evolutionary NAS: regularized evolution over the flat decisions of a model space, with a
random-architecture baseline under the same budget.

The space's description (:func:`autodl.nas.choices.describe`) becomes an :class:`autodl.Space`
with one Categorical per decision; :class:`~autodl.searchers.RegularizedEvolution` (mutation by
:func:`autodl.searchers.evolution.mutate`) or :class:`~autodl.searchers.RandomSearch` proposes
samples; each is frozen (:func:`autodl.nas.choices.freeze`), trained from scratch on the training
split and scored on the validation split (the value minimised is the validation error). The
best architecture is retrained on train + validation and scored on the held-out test split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autodl.nas.choices import freeze, to_space


@dataclass
class NasResult:
    best_config: dict[str, Any]
    best_val_accuracy: float
    test_accuracy: float | None
    model: nn.Module
    n_params: int
    history: list[dict[str, Any]] = field(default_factory=list)  # per trial: config, val_accuracy, n_params
    seconds: float = 0.0


def train_classifier(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int = 10, lr: float = 3e-3,
                     batch_size: int = 64, seed: int = 0) -> nn.Module:
    """Adam, fixed learning rate, shuffled mini-batches (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


def evolutionary_nas(factory: Callable[[], nn.Module], data, *, n_trials: int = 20, searcher: str = "evolution",
                     population: int = 8, sample_size: int = 3, epochs: int = 10, seed: int = 0) -> NasResult:
    """Search ``factory``'s space on ``data`` (an :class:`autodl.nn.ArrayData`-like object with
    ``X_train, y_train, X_val, y_val, X_test, y_test``).

    Args:
        searcher: ``"evolution"`` (regularized evolution) or ``"random"`` (the baseline).
        population, sample_size: regularized-evolution settings.
        epochs: training epochs of every candidate (and of the final retraining).
    """
    from autodl.searchers import RandomSearch, RegularizedEvolution

    space = to_space(factory)
    if searcher == "evolution":
        s = RegularizedEvolution(space, seed=seed, population=population, sample_size=sample_size)
    elif searcher == "random":
        s = RandomSearch(space, seed=seed)
    else:
        raise ValueError(f"searcher must be 'evolution' or 'random', got {searcher!r}")
    t = lambda a, dt=torch.float32: torch.as_tensor(np.asarray(a), dtype=dt)  # noqa: E731
    X_tr, X_va = t(data.X_train), t(data.X_val)
    y_tr, y_va = t(data.y_train, torch.int64), t(data.y_val, torch.int64)
    start = time.perf_counter()
    history = []
    for i in range(n_trials):
        trial = s.ask()
        torch.manual_seed(seed + i)
        model = freeze(factory, trial.config)
        train_classifier(model, X_tr, y_tr, epochs=epochs, seed=seed + i)
        acc = accuracy(model, X_va, y_va)
        s.tell(trial, 1.0 - acc)
        history.append({"config": dict(trial.config), "val_accuracy": acc,
                        "n_params": int(sum(p.numel() for p in model.parameters()))})
    best = max(history, key=lambda h: h["val_accuracy"])
    torch.manual_seed(seed)
    final = freeze(factory, best["config"])
    train_classifier(final, torch.cat([X_tr, X_va]), torch.cat([y_tr, y_va]), epochs=epochs, seed=seed)
    test_acc = None
    if getattr(data, "X_test", None) is not None and len(data.X_test):
        test_acc = accuracy(final, t(data.X_test), t(data.y_test, torch.int64))
    return NasResult(best["config"], best["val_accuracy"], test_acc, final,
                     int(sum(p.numel() for p in final.parameters())), history, time.perf_counter() - start)
