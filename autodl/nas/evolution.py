"""Evolutionary NAS: regularized evolution over the flat decisions of a model space, with a
random-architecture baseline under the same budget.

The space's description (:func:`autodl.nas.choices.describe`) becomes an :class:`autodl.Space`
with one Categorical per decision; :class:`~autodl.searchers.RegularizedEvolution` (mutation by
:func:`autodl.searchers.evolution.mutate`, one decision at a time) or
:class:`~autodl.searchers.RandomSearch` proposes samples through a :class:`~autodl.Study`, so
candidates train in parallel on the study's executors (``n_workers``) and a stored study resumes.
Each candidate is frozen (:func:`autodl.nas.choices.freeze`), trained from scratch on the
training split and scored on the validation split (validation accuracy, maximised).

With ``min_epochs`` early candidates train only briefly: successive halving over epochs
(``min_epochs`` .. ``epochs``, eta 3) decides which are trained longer (from scratch: the cosine
schedule depends on the epoch count), and the evolution (or random) searcher proposes the new
candidates of each bracket.

The best architecture at the largest budget is retrained on train + validation and scored on
the held-out test split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from autodl.nas.choices import freeze, to_space


@dataclass
class NasResult:
    best_config: dict[str, Any]
    best_val_accuracy: float
    test_accuracy: float | None
    model: nn.Module
    n_params: int
    history: list[dict[str, Any]] = field(default_factory=list)  # per trial: config, val_accuracy, n_params, epochs
    seconds: float = 0.0  # search wall time
    cpu_seconds: float = 0.0  # sum of the trials' durations
    train_seconds: float = 0.0  # the final retraining
    train_losses: list[float] = field(default_factory=list)
    study: Any = None


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, task: str = "classification") -> float:
    """Accuracy, or R² for a regression network (:func:`autodl.nn.data.score`)."""
    from autodl.nn.data import score

    model.eval()
    with torch.no_grad():
        return score(model(X), y, task)


def _label_dtype(task: str):
    return torch.float32 if task == "regression" else torch.int64


def _tensors(data, task: str = "classification"):
    t = lambda a, dt=torch.float32: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
    label = _label_dtype(task)
    return (t(data.X_train), t(data.y_train, label), t(data.X_val), t(data.y_val, label))


class ArchObjective:
    """``objective(trial)``: freeze ``trial.config`` from ``factory``, train it from scratch for
    ``trial.budget`` epochs (``epochs`` without a budget) with
    :func:`autodl.nas.darts.train_network`, return its validation accuracy.

    ``targets`` (:class:`~autodl.nn.objectives.NetObjectives`): the frozen network is measured
    before it trains (parameters; ONNX latency and size, cached per architecture); the trial
    returns ``(accuracy, latency, ...)`` and gets the latency constraint."""

    def __init__(self, factory: Callable[[], nn.Module], data, *, epochs: int = 10, seed: int = 0,
                 targets=None):
        self.targets = targets
        self.factory = factory
        self.X_train, self.y_train = np.asarray(data.X_train), np.asarray(data.y_train)
        self.X_val, self.y_val = np.asarray(data.X_val), np.asarray(data.y_val)
        self.epochs, self.seed = int(epochs), int(seed)
        from autodl.nn.data import task_of

        self.task = task_of(data)

    def __call__(self, trial) -> float:
        from autodl.nas.darts import train_network

        if trial.should_stop():  # the deadline came while the trial waited
            from autodl.errors import TrialPruned

            raise TrialPruned("stopped at the deadline before it began")
        X_tr, y_tr, X_va, y_va = _tensors(self, self.task)
        epochs = int(round(trial.budget)) if trial.budget is not None else self.epochs
        torch.manual_seed(self.seed)
        model = freeze(self.factory, trial.config)
        targets = self.targets if self.targets is not None and self.targets.active else None
        measured: dict[str, float] = {}
        if targets is not None:  # before training: the graph, not its weights, decides these
            measured = targets.measure(model, trial.config)
            targets.record(trial, measured)
        train_network(model, X_tr, y_tr, epochs=epochs, seed=self.seed, task=self.task,
                      should_stop=trial.should_stop if getattr(trial, "stop_at", None) is not None else None)
        trial.set_user_attr("n_params", int(sum(p.numel() for p in model.parameters())))
        trial.set_user_attr("epochs", epochs)
        value = accuracy(model, X_va, y_va, self.task)
        return value if targets is None else targets.values(value, measured)


def make_study(factory: Callable[[], nn.Module], *, searcher: str = "evolution", population: int = 8,
               sample_size: int = 3, epochs: int = 10, min_epochs: int | None = None, seed: int = 0,
               storage=None, n_objectives: int = 1):
    """The :class:`~autodl.Study` an evolutionary (or random) architecture search runs in.

    With ``n_objectives > 1`` (accuracy, then objectives to minimize such as latency) the
    evolution is NSGA-II's (:class:`~autodl.searchers.NSGA2`, ``population`` survivors), and with
    ``min_epochs`` multi-objective ASHA (:class:`~autodl.searchers.MOASHA`) prunes by Pareto rank,
    NSGA-II (or random search) proposing its new candidates.
    """
    from autodl.study import Study

    if searcher not in ("evolution", "random"):
        raise ValueError(f"searcher must be 'evolution' or 'random', got {searcher!r}")
    if min_epochs is not None and not 1 <= min_epochs < epochs:
        raise ValueError(f"min_epochs is {min_epochs}, but must be in 1..{epochs - 1} (below epochs)")
    several = n_objectives > 1
    goal: dict[str, Any] = ({"directions": ["maximize"] + ["minimize"] * (n_objectives - 1)} if several
                            else {"direction": "maximize"})
    if several:
        name = "nsga2" if searcher == "evolution" else "random"
        params: dict[str, Any] = {"population": max(2, population)} if name == "nsga2" else {}
        if min_epochs is not None:
            name, params = "moasha", {"min_budget": float(min_epochs), "max_budget": float(epochs), "eta": 3.0,
                                      "searcher": "nsga2" if searcher == "evolution" else None}
        return Study(to_space(factory), searcher=name, storage=storage, seed=seed, searcher_params=params, **goal)
    params = ({"population": population, "sample_size": sample_size}
              if searcher == "evolution" else {})
    name = searcher
    if min_epochs is not None:
        name, params = "sh", {"min_budget": float(min_epochs), "max_budget": float(epochs), "eta": 3.0,
                              "searcher": searcher}
    return Study(to_space(factory), searcher=name, storage=storage, seed=seed, searcher_params=params, **goal)


def evolutionary_nas(factory: Callable[[], nn.Module], data, *, n_trials: int | None = 20,
                     timeout: float | None = None, searcher: str = "evolution", population: int = 8,
                     sample_size: int = 3, epochs: int = 10, min_epochs: int | None = None,
                     train_epochs: int | None = None, n_workers: int = 1, seed: int = 0, storage=None,
                     study=None, callbacks: Sequence[Callable] = (), deadline=None, targets=None,
                     **executor: Any) -> NasResult:
    """Search ``factory``'s space on ``data`` (an object with ``X_train, y_train, X_val, y_val``
    and optionally ``X_test, y_test``; flat rows or images, integer labels ``0..K-1``).

    Args:
        searcher: ``"evolution"`` (regularized evolution) or ``"random"`` (the baseline).
        n_trials, timeout: when to stop (trials finished by this call; seconds of searching).
        deadline: a :class:`~autodl.runs.Deadline` for the whole call instead of ``timeout``: the
            search ends early enough for the final training (estimated from the best candidate's
            time per epoch), a candidate still training then is stopped (PRUNED), and the final
            training is shortened to the epochs that still fit.
        population, sample_size: regularized-evolution settings.
        epochs: training epochs of a candidate (the largest, with ``min_epochs``).
        min_epochs: train early candidates this long and halve (see the module doc).
        train_epochs: epochs of the final retraining (default ``epochs``).
        n_workers: candidates trained at once (worker processes); ``executor``: the other
            :meth:`~autodl.Study.optimize` arguments choosing where (executor, dask_scheduler,
            trial_timeout, max_retries).
        storage: a SQLite path for the study (resumable); ``study``: continue this one instead.
        targets: a :class:`~autodl.nn.objectives.NetObjectives` (several objectives, a latency
            limit); the kept architecture is then the front member with the best accuracy.

    Example:
        >>> from autodl.nas import mlp_space, evolutionary_nas  # doctest: +SKIP
        >>> res = evolutionary_nas(mlp_space(64, 10), data, n_trials=30, n_workers=2)  # doctest: +SKIP
    """
    from autodl.nn.search import best_trial, in_process_if_one  # best: at the largest budget reached

    if study is None:
        study = make_study(factory, searcher=searcher, population=population, sample_size=sample_size,
                           epochs=epochs, min_epochs=min_epochs, seed=seed, storage=storage,
                           n_objectives=len(targets.objectives) if targets is not None and targets.multi else 1)
    start = time.perf_counter()
    stop: dict[str, Any] = {}
    if deadline is not None and deadline.is_set:
        # the final training runs train_epochs on train + validation (twice the rows) where a
        # candidate ran `epochs` on train: reserve that multiple of the best candidate's time
        final_ratio = 1.2 * 2.0 * (train_epochs or epochs) / epochs
        timeout = deadline.remaining()
        stop = {"stop_at_timeout": True, "reserve_ratio": final_ratio}
    if (n_trials is None or n_trials > 0) and (timeout is None or timeout > 0):
        if stop:  # candidates check the deadline before every batch
            executor = {**executor, "executor": in_process_if_one(
                executor.get("executor"), n_workers, executor.get("trial_timeout"), executor.get("trial_memory"))}
        study.optimize(ArchObjective(factory, data, epochs=epochs, seed=seed, targets=targets), n_trials=n_trials,
                       timeout=timeout, n_workers=n_workers, callbacks=callbacks, show_progress=False,
                       **stop, **executor)
    seconds = time.perf_counter() - start
    best = best_trial(study)
    from autodl.nn.data import task_of

    task = task_of(data)
    t0 = time.perf_counter()
    losses: list[float] = []
    final = final_network(factory, data, best.config, epochs=train_epochs or epochs, seed=seed, losses=losses,
                          deadline=deadline)
    train_seconds = time.perf_counter() - t0
    test_acc = None
    if getattr(data, "X_test", None) is not None and len(data.X_test):
        test_acc = accuracy(final, torch.as_tensor(np.asarray(data.X_test), dtype=torch.float32),
                            torch.as_tensor(np.asarray(data.y_test), dtype=_label_dtype(task)), task)
    finished = [t for t in study.trials if t.state.finished]
    history = [{"trial": t.id, "config": dict(t.config), "val_accuracy": _accuracy_of(t), "state": t.state.value,
                "epochs": t.user_attrs.get("epochs"), "n_params": t.user_attrs.get("n_params")}
               for t in sorted(finished, key=lambda t: t.id)]
    return NasResult(dict(best.config), float(_accuracy_of(best)), test_acc, final,
                     int(sum(p.numel() for p in final.parameters())), history, seconds,
                     float(sum(t.duration or 0.0 for t in finished)), train_seconds, losses, study)


def final_network(factory: Callable[[], nn.Module], data, config, *, epochs: int, seed: int = 0,
                  losses: list[float] | None = None, deadline=None) -> nn.Module:
    """The network of ``config`` trained as a search's final model: on training and validation
    rows, ``epochs`` epochs, seeded (the same network for the same inputs)."""
    from autodl.nas.darts import train_network
    from autodl.nn.data import task_of

    task = task_of(data)
    X_tr, y_tr, X_va, y_va = _tensors(data, task)
    torch.manual_seed(seed)
    final = freeze(factory, config)
    train_network(final, torch.cat([X_tr, X_va]), torch.cat([y_tr, y_va]), epochs=epochs, seed=seed,
                  losses=losses, deadline=deadline, task=task)
    return final


def _accuracy_of(trial) -> float | None:
    """A trial's validation accuracy: its value, or its first value with several objectives."""
    if trial.value is not None:
        return trial.value
    return trial.values[0] if trial.values else None
