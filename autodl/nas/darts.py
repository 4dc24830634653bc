"""``run_darts``: a DARTS search on image arrays, then the derived network trained from scratch.

Data: ``test_size`` of the rows are held out (stratified, seeded) and only used for the final
test accuracy; the rest is split in half into the search's *train* split (weight steps) and
*validation* split (architecture steps), as in DARTS. The derived network is then trained from
scratch on train + validation and scored on the test split.

The search alternates, per training batch, one architecture step on the next validation batch
(:class:`~autodl.nas.architect.Architect`, first or second order) and one SGD step on the
weights (momentum 0.9, weight decay 3e-4, cosine learning rate, gradient norm clipped at 5).
``guard="darts-"`` adds the DARTS- auxiliary skip connection with a coefficient decaying
linearly from ``beta0`` to 0 over the search steps (see :mod:`autodl.nas.model_search` for why);
``guard=None`` is plain DARTS.

Files written to ``run_dir`` (when given): ``genotype.json``, ``alphas.json`` (softmax
architecture weights after each epoch, the format of :mod:`autodl.report`), ``result.json``
(scores, sizes, timings, settings) and ``model.pt`` (the final network's ``state_dict``, plain
tensors: load it with :func:`load_model`, which uses ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autodl.nas.architect import Architect
from autodl.nas.genotypes import NetworkFromGenotype, derive_genotype, parameter_free_share
from autodl.nas.model_search import SearchNetwork

GUARDS = (None, "darts-")


@dataclass
class DartsResult:
    genotype: dict[str, Any]
    model: nn.Module
    test_accuracy: float | None
    n_params: int
    search_seconds: float
    train_seconds: float
    val_history: list[float]  # supernet validation accuracy: before the search, then per epoch
    alphas: dict[str, Any]  # {"ops": [...], "history": {"normal": ..., "reduce": ...}}
    parameter_free_share: float  # in the derived normal cell
    classes: list = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"test_accuracy": self.test_accuracy, "n_params": self.n_params,
                "search_seconds": round(self.search_seconds, 3),
                "train_seconds": round(self.train_seconds, 3),
                "val_history": self.val_history, "parameter_free_share": self.parameter_free_share,
                "genotype": self.genotype, "classes": self.classes, "settings": self.settings}


def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    was = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(X), batch):
            correct += int((model(X[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    model.train(was)
    return correct / max(len(X), 1)


def _batches(n: int, batch_size: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def _split(X, y, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    X_rest, X_te, y_rest, y_te = (train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
                                  if test_size > 0 else (X, X[:0], y, y[:0]))
    X_tr, X_va, y_tr, y_va = train_test_split(X_rest, y_rest, test_size=0.5, random_state=seed,
                                              stratify=y_rest)
    return X_tr, y_tr, X_va, y_va, X_te, y_te


def train_network(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float = 0.05,
                  batch_size: int = 64, weight_decay: float = 3e-4, seed: int = 0) -> nn.Module:
    """Train ``model`` from its current weights: SGD (momentum 0.9), cosine learning rate."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    model.train()
    for _ in range(epochs):
        for idx in _batches(len(X), batch_size, gen):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        sched.step()
    model.eval()
    return model


def run_darts(X, y, *, image_shape: tuple[int, int, int] = (1, 8, 8), C: int = 8, layers: int = 3,
              nodes: int = 2, epochs: int = 10, order: int = 1, guard: str | None = None,
              beta0: float = 1.0, batch_size: int = 64, w_lr: float = 0.05, w_lr_min: float = 1e-3,
              arch_lr: float = 0.02, train_epochs: int = 20, train_C: int | None = None,
              test_size: float = 0.2, seed: int = 0, run_dir: str | Path | None = None,
              max_rows: int | None = None) -> DartsResult:
    """Search a cell with DARTS, derive its genotype, train that network from scratch.

    Args:
        X: ``[n, prod(image_shape)]`` rows (or ``[n, *image_shape]`` images), float.
        y: ``[n]`` class labels (any values; mapped to ``0..K-1`` in sorted order).
        image_shape: ``(channels, height, width)``; height and width divisible by 4.
        C, layers, nodes: supernet size (channels, cells, intermediate nodes per cell).
        epochs: search epochs.
        order: 1 (first-order) or 2 (second-order) architecture gradient.
        guard: ``"darts-"`` (auxiliary skip, decaying) or None (plain DARTS, the default: see
            :mod:`autodl.nas.model_search` for what the guard did on digits).
        beta0: initial auxiliary-skip coefficient of the guard.
        batch_size, w_lr, w_lr_min, arch_lr: search optimisation settings. ``arch_lr`` is
            larger than DARTS' 3e-4 because a digits epoch has ~12 steps, not ~390: with 3e-3 the
            softmax weights stay within ~0.01 of uniform after 25 epochs, and the derived cell
            is decided by noise.
        train_epochs: epochs to train the derived network from scratch.
        train_C: channels of the derived network (default ``C``).
        test_size: held-out fraction for the test accuracy (0: no test score).
        seed: seeds the splits, initialisations and batch order.
        run_dir: folder to write the result files into (created when missing).
        max_rows: use only the first ``max_rows`` rows after a seeded shuffle (quick runs).

    Returns:
        A :class:`DartsResult`.
    """
    if guard not in GUARDS:
        raise ValueError(f"guard must be one of {GUARDS}, got {guard!r}")
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    X = np.asarray(X, dtype=np.float32)
    classes, y_idx = np.unique(np.asarray(y), return_inverse=True)
    if max_rows is not None and max_rows < len(X):
        keep = np.random.default_rng(seed).permutation(len(X))[:max_rows]
        X, y_idx = X[keep], y_idx[keep]
    X = X.reshape(len(X), *image_shape)
    X_tr, y_tr, X_va, y_va, X_te, y_te = _split(X, y_idx, test_size, seed)
    t = lambda a, dt=torch.float32: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
    X_tr, X_va, X_te = t(X_tr), t(X_va), t(X_te)
    y_tr, y_va, y_te = t(y_tr, torch.int64), t(y_va, torch.int64), t(y_te, torch.int64)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SearchNetwork(C=C, num_classes=len(classes), layers=layers, nodes=nodes,
                          in_channels=image_shape[0], seed=seed)
    architect = Architect(model, order=order, arch_lr=arch_lr)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=w_lr, momentum=0.9, weight_decay=3e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, max(epochs, 1), eta_min=w_lr_min)
    steps_per_epoch = math.ceil(len(X_tr) / batch_size)
    total_steps = max(epochs * steps_per_epoch, 1)
    history: dict[str, list] = {"normal": [], "reduce": []}
    val_history = [_accuracy(model, X_va, y_va)]

    start = time.perf_counter()
    step = 0
    for _ in range(epochs):
        model.train()
        val_batches = _batches(len(X_va), batch_size, gen)
        for i, idx in enumerate(_batches(len(X_tr), batch_size, gen)):
            model.aux_skip_beta = beta0 * (1.0 - step / total_steps) if guard == "darts-" else 0.0
            vidx = val_batches[i % len(val_batches)]
            lr = w_opt.param_groups[0]["lr"]
            architect.step(X_tr[idx], y_tr[idx], X_va[vidx], y_va[vidx], xi=lr if order == 2 else 0.0)
            w_opt.zero_grad(set_to_none=True)
            model.loss(X_tr[idx], y_tr[idx]).backward()
            nn.utils.clip_grad_norm_(model.weight_parameters(), 5.0)
            w_opt.step()
            step += 1
        sched.step()
        model.aux_skip_beta = beta0 * (1.0 - step / total_steps) if guard == "darts-" else 0.0
        weights = model.arch_weights()
        for cell in ("normal", "reduce"):
            history[cell].append([[round(float(v), 6) for v in row] for row in weights[cell]])
        val_history.append(_accuracy(model, X_va, y_va))
    search_seconds = time.perf_counter() - start
    model.aux_skip_beta = 0.0

    genotype = derive_genotype(model)
    start = time.perf_counter()
    torch.manual_seed(seed)
    final = NetworkFromGenotype(genotype, C=train_C or C, num_classes=len(classes), layers=layers,
                                image_shape=image_shape)
    train_network(final, torch.cat([X_tr, X_va]), torch.cat([y_tr, y_va]), epochs=train_epochs,
                  batch_size=batch_size, seed=seed)
    train_seconds = time.perf_counter() - start
    test_acc = _accuracy(final, X_te, y_te) if len(X_te) else None
    settings = {"C": C, "layers": layers, "nodes": nodes, "epochs": epochs, "order": order, "guard": guard,
                "beta0": beta0, "batch_size": batch_size, "w_lr": w_lr, "w_lr_min": w_lr_min,
                "arch_lr": arch_lr, "train_epochs": train_epochs, "train_C": train_C or C,
                "test_size": test_size, "seed": seed, "image_shape": list(image_shape),
                "n_train": len(X_tr), "n_val": len(X_va), "n_test": len(X_te)}
    result = DartsResult(
        genotype=genotype, model=final, test_accuracy=test_acc,
        n_params=int(sum(p.numel() for p in final.parameters())),
        search_seconds=search_seconds, train_seconds=train_seconds, val_history=val_history,
        alphas={"ops": list(model.primitives), "history": history},
        parameter_free_share=parameter_free_share(genotype),
        classes=[c.item() if hasattr(c, "item") else c for c in classes], settings=settings)
    if run_dir is not None:
        write_run(result, run_dir)
    return result


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def write_run(result: DartsResult, run_dir: str | Path) -> Path:
    """Write ``genotype.json``, ``alphas.json``, ``result.json`` and ``model.pt`` to ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / "genotype.json", result.genotype)
    _write_json(run_dir / "alphas.json", result.alphas)
    _write_json(run_dir / "result.json", result.summary())
    tmp = run_dir / "model.pt.tmp"
    torch.save({k: v.detach().cpu() for k, v in result.model.state_dict().items()}, tmp)
    os.replace(tmp, run_dir / "model.pt")
    return run_dir


def load_model(run_dir: str | Path) -> NetworkFromGenotype:
    """The final network of a :func:`run_darts` run folder (weights loaded with ``weights_only``)."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "result.json").read_text())
    genotype = json.loads((run_dir / "genotype.json").read_text())
    s = info["settings"]
    model = NetworkFromGenotype(genotype, C=s["train_C"], num_classes=len(info["classes"]),
                                layers=s["layers"], image_shape=tuple(s["image_shape"]))
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True, map_location="cpu"))
    return model.eval()
