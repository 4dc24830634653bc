"""``run_darts``: a DARTS search on image arrays, then the derived network trained from scratch.

Data: ``test_size`` of the rows are held out (stratified, seeded) and only used for the final
test accuracy; the rest is split in half into the search's *train* split (weight steps) and
*validation* split (architecture steps), as in DARTS. The derived network is then trained from
scratch on train + validation and scored on the test split.

The search alternates, per training batch, one architecture step on the next validation batch
(:class:`~autodl.nas.architect.Architect`, first or second order) and one SGD step on the
weights (momentum 0.9, weight decay 3e-4, cosine learning rate, gradient norm clipped at 5).

**Collapse guard ``"pf-stop"`` (the default): early stopping on parameter-free dominance**, the
remedy of DARTS+ (Liang et al. 2019, "DARTS+: Improved Differentiable Architecture Search with
Early Stopping"). The longer DARTS searches, the more its derived cell fills with
parameter-free operations (skip connections, pools): they win the softmax because they ease the
supernet's optimisation, not because the derived network is better. After every epoch the
genotype is derived; once ``guard_warmup`` epochs have passed (default a quarter of the epochs:
the first cells are decided by barely trained weights), the search stops at the first epoch
whose derived normal cell has a parameter-free share above ``max_param_free`` (0.5), and the
genotype of the last epoch within the limit is kept. If no epoch after the warm-up stayed
within it, the final cell is capped instead (:func:`~autodl.nas.genotypes.cap_parameter_free`:
the parameter-free edges with the smallest margin over their best parametric operation take that
operation). Besides keeping the cell sound, stopping early saves the rest of the search.

*Measured on digits* (1,437 search rows split half/half, 360 test rows; C=8, 3 cells, 2 nodes,
first order, arch lr 0.02): a 40-epoch plain search drifts, the normal cell going from 0.25
parameter-free at epochs 5-9 to 0.75 (a skip and two max-pools among four edges) from epoch 16;
``benchmarks/nas.py`` reports the guard's effect on share, test accuracy and search cost
(README, "Neural architecture search").

``guard="darts-"`` adds the DARTS- auxiliary skip connection with a coefficient decaying
linearly from ``beta0`` to 0 over the search steps (see :mod:`autodl.nas.model_search`; on
digits it made the cell *more* parameter-free); ``guard=None`` is plain DARTS.

Files written to ``run_dir`` (when given): ``genotype.json``, ``alphas.json`` (softmax
architecture weights after each epoch, the format of :mod:`autodl.report`), ``result.json``
(scores, sizes, timings, settings) and ``model.pt`` (the final network's ``state_dict``, plain
tensors: load it with :func:`load_model`, which uses ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from autodl.nas.architect import Architect
from autodl.nas.genotypes import NetworkFromGenotype, cap_parameter_free, derive_genotype, parameter_free_share
from autodl.nas.model_search import SearchNetwork

GUARDS = (None, "pf-stop", "darts-")


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
    train_losses: list[float] = field(default_factory=list)  # final training, mean loss per epoch

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


#: a final-training epoch of the derived network (train + validation rows) costs about this share
#: of a supernet search epoch (measured on digits: 0.2; kept higher for safety)
FINAL_EPOCH_RATIO = 0.3
#: under a deadline the search leaves at most this share of the budget to the final training
FINAL_SHARE = 0.4
#: seconds kept after the final training for scoring and writing the run folder
FINISH_SECONDS = 1.0


def train_network(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float = 0.05,
                  batch_size: int = 64, weight_decay: float = 3e-4, seed: int = 0,
                  losses: list[float] | None = None, deadline=None,
                  should_stop: Callable[[], bool] | None = None, task: str = "classification") -> nn.Module:
    """Train ``model`` from its current weights: SGD (momentum 0.9), cosine learning rate, on
    cross-entropy (``task="regression"``: mean squared error of a single output against float
    targets, :func:`autodl.nn.data.loss_function`).
    ``losses`` (a list) receives the mean training loss of each epoch.

    ``deadline`` (a :class:`~autodl.runs.Deadline`): after the first epoch, the training is
    shortened to the epochs that fit before it (the cosine schedule then ends there); the
    number of epochs run is ``len(losses)``. ``should_stop()`` is asked before every batch
    (``trial.should_stop`` of a candidate); when it says yes, :class:`~autodl.TrialPruned` is raised.
    """
    from autodl.nn.data import loss_function

    criterion = loss_function(task)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(epochs, 1))
    model.train()
    started = time.perf_counter()
    epoch = 0
    while epoch < epochs:
        epoch += 1
        total, rows = 0.0, 0
        for idx in _batches(len(X), batch_size, gen):
            if should_stop is not None and should_stop():
                from autodl.errors import TrialPruned

                raise TrialPruned(f"stopped at the deadline in epoch {epoch}")
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            opt.zero_grad(set_to_none=True)
            loss = criterion(model(X[idx]), y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total, rows = total + float(loss.detach()) * len(idx), rows + len(idx)
        sched.step()
        if losses is not None:
            losses.append(round(total / max(rows, 1), 6))
        if epoch == 1 and deadline is not None and deadline.is_set:
            fit = deadline.epochs_that_fit(epochs, time.perf_counter() - started) if epochs > 1 else 1
            if fit < epochs:  # the schedule ends at the new last epoch
                epochs = fit
                sched.T_max = max(fit, 1)
    model.eval()
    return model


def run_darts(X, y, *, image_shape: tuple[int, int, int] = (1, 8, 8), C: int = 8, layers: int = 3,
              nodes: int = 2, epochs: int = 10, order: int = 1, guard: str | None = "pf-stop",
              beta0: float = 1.0, batch_size: int = 64, w_lr: float = 0.05, w_lr_min: float = 1e-3,
              arch_lr: float = 0.02, train_epochs: int = 20, train_C: int | None = None,
              test_size: float = 0.2, seed: int = 0, run_dir: str | Path | None = None,
              max_rows: int | None = None, max_param_free: float = 0.5, guard_warmup: int | None = None,
              time_budget: float | None = None, primitives: list[str] | None = None,
              on_epoch: Callable[[int, dict[str, Any]], None] | None = None,
              splits: tuple | None = None, deadline=None, state_dir: str | Path | None = None,
              resume: bool = False) -> DartsResult:
    """Search a cell with DARTS, derive its genotype, train that network from scratch.

    Args:
        X: ``[n, prod(image_shape)]`` rows (or ``[n, *image_shape]`` images), float.
        y: ``[n]`` class labels (any values; mapped to ``0..K-1`` in sorted order).
        image_shape: ``(channels, height, width)``; any size (padded to sides divisible by 4 inside the network).
        C, layers, nodes: supernet size (channels, cells, intermediate nodes per cell).
        epochs: search epochs.
        order: 1 (first-order) or 2 (second-order) architecture gradient.
        guard: the collapse guard: ``"pf-stop"`` (early stopping on parameter-free dominance,
            see the module doc), ``"darts-"`` (auxiliary skip, decaying; see
            :mod:`autodl.nas.model_search`) or None (plain DARTS).
        beta0: initial auxiliary-skip coefficient of the ``"darts-"`` guard.
        max_param_free: the ``"pf-stop"`` limit on the derived normal cell's parameter-free share.
        guard_warmup: epochs during which ``"pf-stop"`` does not act (default ``epochs // 4``):
            the first epochs' cells are decided by barely trained weights.
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
        time_budget: seconds for the whole call from now, final training included (see
            ``deadline``).
        deadline: a :class:`~autodl.runs.Deadline` for the whole call (instead of
            ``time_budget``): the search stops before an epoch that would leave too little time
            for the final training (estimated at :data:`FINAL_EPOCH_RATIO` of a search epoch per
            final epoch, at most :data:`FINAL_SHARE` of the budget), and the final training is
            shortened to the epochs that still fit.
        primitives: candidate operations (default all of
            :data:`~autodl.nas.operations.PRIMITIVES`; e.g. RobustDARTS' reduced space S2,
            ``["skip_connect", "sep_conv_3x3"]``, where plain DARTS is known to collapse).
        on_epoch: ``on_epoch(epoch, info)`` after each search epoch (progress display); ``info``
            has ``val_accuracy``, ``parameter_free_share``, ``seconds``, ``genotype``.
        splits: ``(X_tr, y_tr, X_va, y_va, X_te, y_te)`` already made (labels ``0..K-1``, rows
            flat or images); then ``X``/``y`` only give the classes and ``test_size``/``max_rows``
            are not used.
        state_dir: a folder where the search's state (supernet and architecture weights, both
            optimizers, the schedule, the batch-order generator, histories) is written after
            every epoch, in autodl's checkpoint format (:mod:`autodl.nn.checkpoint`, no pickle).
        resume: continue from the state in ``state_dir``: the search goes on from the epoch
            after the last one saved (a search stopped between epochs goes on exactly as if
            it had not stopped); a search that had ended (all epochs, or
            ``pf-stop``) is not continued, only the final network is trained again.

    Returns:
        A :class:`DartsResult`.
    """
    if guard not in GUARDS:
        raise ValueError(f"guard must be one of {GUARDS}, got {guard!r}")
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    if not 0 < max_param_free <= 1:
        raise ValueError(f"max_param_free is {max_param_free}, but must be in (0, 1]")
    from autodl.runs import Deadline

    if deadline is None:
        deadline = Deadline.after(time_budget)
    classes = np.unique(np.asarray(y))
    if splits is None:
        X = np.asarray(X, dtype=np.float32)
        _, y_idx = np.unique(np.asarray(y), return_inverse=True)
        if max_rows is not None and max_rows < len(X):
            keep = np.random.default_rng(seed).permutation(len(X))[:max_rows]
            X, y_idx = X[keep], y_idx[keep]
        X_tr, y_tr, X_va, y_va, X_te, y_te = _split(X, y_idx, test_size, seed)
    else:
        X_tr, y_tr, X_va, y_va, X_te, y_te = splits
    X_tr, X_va, X_te = (np.asarray(a, dtype=np.float32).reshape(len(a), *image_shape) for a in (X_tr, X_va, X_te))
    t = lambda a, dt=torch.float32: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
    X_tr, X_va, X_te = t(X_tr), t(X_va), t(X_te)
    y_tr, y_va, y_te = t(y_tr, torch.int64), t(y_va, torch.int64), t(y_te, torch.int64)

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = SearchNetwork(C=C, num_classes=len(classes), layers=layers, nodes=nodes,
                          in_channels=image_shape[0], seed=seed,
                          **({"primitives": list(primitives)} if primitives else {}))
    architect = Architect(model, order=order, arch_lr=arch_lr)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=w_lr, momentum=0.9, weight_decay=3e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, max(epochs, 1), eta_min=w_lr_min)
    steps_per_epoch = math.ceil(len(X_tr) / batch_size)
    total_steps = max(epochs * steps_per_epoch, 1)
    history: dict[str, list] = {"normal": [], "reduce": []}
    start, cpu_start = time.perf_counter(), time.process_time()
    step = 0
    stopped_by = None
    warmup = epochs // 4 if guard_warmup is None else int(guard_warmup)
    kept = None  # pf-stop: (epoch, genotype) of the last epoch whose cell was within the limit
    epochs_run = 0
    done = False  # the search has ended for good (all epochs, or pf-stop)
    before = (0.0, 0.0)  # search seconds and CPU seconds of earlier processes (resume)
    if resume:
        saved = load_search_state(state_dir)
        model.load_state_dict(saved["model"])
        w_opt.load_state_dict(saved["w_opt"])
        architect.optimizer.load_state_dict(saved["arch_opt"])
        sched.load_state_dict(saved["sched"])
        gen.set_state(saved["gen"])
        torch.set_rng_state(saved["torch_rng"])
        m = saved["meta"]
        history, val_history, step, epochs_run = m["history"], m["val_history"], m["step"], m["epochs_run"]
        kept = (m["kept"][0], m["kept"][1]) if m["kept"] is not None else None
        done, stopped_by, before = m["done"], m["stopped_by"], (m["search_seconds"], m["search_cpu_seconds"])
    else:
        val_history = [_accuracy(model, X_va, y_va)]

    def save_state() -> None:
        if state_dir is None:
            return
        from autodl.nn.checkpoint import save_checkpoint

        meta = {"history": history, "val_history": val_history, "step": step, "epochs_run": epochs_run,
                "kept": list(kept) if kept is not None else None, "done": done, "stopped_by": stopped_by,
                "search_seconds": before[0] + time.perf_counter() - start,
                "search_cpu_seconds": before[1] + time.process_time() - cpu_start}
        save_checkpoint(state_dir, {"model": model.state_dict(), "w_opt": w_opt.state_dict(),
                                    "arch_opt": architect.optimizer.state_dict(), "sched": sched.state_dict(),
                                    "gen": gen.get_state(), "torch_rng": torch.get_rng_state()},
                        {"darts_search": 1, **meta})

    def final_reserve() -> float:
        """Seconds the final training is estimated to need (from the search's speed so far)."""
        epoch_seconds = (time.perf_counter() - start) / max(step - steps_before, 1) * steps_per_epoch
        return min(train_epochs * FINAL_EPOCH_RATIO * epoch_seconds, FINAL_SHARE * deadline.budget) + FINISH_SECONDS

    cut = False
    epochs_before, steps_before = epochs_run, step
    for epoch in range(epochs_run + 1, 0 if done else epochs + 1):
        model.train()
        val_batches = _batches(len(X_va), batch_size, gen)
        for i, idx in enumerate(_batches(len(X_tr), batch_size, gen)):
            if deadline.is_set and step and deadline.remaining() < final_reserve():
                cut = True  # mid-epoch: the rest of the time is the final training's
                break
            model.aux_skip_beta = beta0 * (1.0 - step / total_steps) if guard == "darts-" else 0.0
            vidx = val_batches[i % len(val_batches)]
            lr = w_opt.param_groups[0]["lr"]
            architect.step(X_tr[idx], y_tr[idx], X_va[vidx], y_va[vidx], xi=lr if order == 2 else 0.0)
            w_opt.zero_grad(set_to_none=True)
            model.loss(X_tr[idx], y_tr[idx]).backward()
            nn.utils.clip_grad_norm_(model.weight_parameters(), 5.0)
            w_opt.step()
            step += 1
        if cut and i == 0:  # not one step of this epoch ran
            stopped_by = f"deadline before epoch {epoch} (time left kept for the final training)"
            break
        sched.step()
        model.aux_skip_beta = beta0 * (1.0 - step / total_steps) if guard == "darts-" else 0.0
        weights = model.arch_weights()
        for cell in ("normal", "reduce"):
            history[cell].append([[round(float(v), 6) for v in row] for row in weights[cell]])
        val_history.append(_accuracy(model, X_va, y_va))
        epochs_run = epoch
        derived = derive_genotype(model)
        share = parameter_free_share(derived)
        if on_epoch is not None:
            on_epoch(epoch, {"val_accuracy": val_history[-1], "parameter_free_share": share,
                             "seconds": time.perf_counter() - start, "genotype": derived})
        stopped_by = None
        if guard == "pf-stop" and epoch > warmup and share > max_param_free:
            stopped_by = f"pf-stop at epoch {epoch}: parameter-free share {share:.2f} > {max_param_free:g}"
            done = True
        elif guard == "pf-stop" and epoch > warmup:
            kept = (epoch, derived)
        if stopped_by is None and cut:
            stopped_by = f"deadline during epoch {epoch} (time left kept for the final training)"
        elif stopped_by is None and deadline.is_set and epoch < epochs:
            # stop before an epoch that would leave too little time for the final training
            epoch_seconds = (time.perf_counter() - start) / (epoch - epochs_before)
            if deadline.remaining() - epoch_seconds < final_reserve():
                stopped_by = f"deadline after epoch {epoch} (time left kept for the final training)"
        done = done or (stopped_by is None and epoch == epochs)
        save_state()
        if stopped_by is not None:
            break
    search_seconds = before[0] + time.perf_counter() - start
    search_cpu_seconds = before[1] + time.process_time() - cpu_start
    model.aux_skip_beta = 0.0

    genotype = derive_genotype(model)
    if guard == "pf-stop" and parameter_free_share(genotype) > max_param_free:
        genotype = kept[1] if kept is not None else cap_parameter_free(model, max_param_free)
    start = time.perf_counter()
    torch.manual_seed(seed)
    final = NetworkFromGenotype(genotype, C=train_C or C, num_classes=len(classes), layers=layers,
                                image_shape=image_shape)
    train_losses: list[float] = []
    train_network(final, torch.cat([X_tr, X_va]), torch.cat([y_tr, y_va]), epochs=train_epochs,
                  batch_size=batch_size, seed=seed, losses=train_losses, deadline=deadline.minus(FINISH_SECONDS))
    train_seconds = time.perf_counter() - start
    test_acc = _accuracy(final, X_te, y_te) if len(X_te) else None
    settings = {"C": C, "layers": layers, "nodes": nodes, "epochs": epochs, "order": order, "guard": guard,
                "beta0": beta0, "batch_size": batch_size, "w_lr": w_lr, "w_lr_min": w_lr_min,
                "arch_lr": arch_lr, "train_epochs": train_epochs, "train_C": train_C or C,
                "test_size": test_size, "seed": seed, "image_shape": list(image_shape),
                "n_train": len(X_tr), "n_val": len(X_va), "n_test": len(X_te),
                "max_param_free": max_param_free, "guard_warmup": warmup, "epochs_run": epochs_run, "stopped_by": stopped_by,
                "genotype_epoch": kept[0] if guard == "pf-stop" and kept is not None else epochs_run,
                "search_cpu_seconds": round(search_cpu_seconds, 3),
                "primitives": list(model.primitives),
                "time_budget": deadline.budget, "train_epochs_run": len(train_losses)}
    result = DartsResult(
        genotype=genotype, model=final, test_accuracy=test_acc,
        n_params=int(sum(p.numel() for p in final.parameters())),
        search_seconds=search_seconds, train_seconds=train_seconds, val_history=val_history,
        alphas={"ops": list(model.primitives), "history": history},
        parameter_free_share=parameter_free_share(genotype),
        classes=[c.item() if hasattr(c, "item") else c for c in classes], settings=settings,
        train_losses=train_losses)
    if run_dir is not None:
        write_run(result, run_dir)
    return result


#: the folder (in a run folder) of the search state written after every epoch
STATE_DIR = "darts_state"


def load_search_state(state_dir: str | Path | None) -> dict[str, Any]:
    """The search state :func:`run_darts` saved in ``state_dir`` (its ``meta`` key holds the
    histories, counters and whether the search had ended). Raises :class:`~autodl.UserError`
    when there is none."""
    from autodl.errors import UserError
    from autodl.nn.checkpoint import CheckpointError, load_checkpoint

    try:
        state, meta = load_checkpoint(state_dir)
    except (FileNotFoundError, TypeError):
        raise UserError(f"{state_dir} holds no DARTS search state (the search stopped before its first epoch "
                        "ended, or was run by an older autodl); start a new run") from None
    except CheckpointError as exc:
        raise UserError(f"the DARTS search state is damaged ({exc}); start a new run") from None
    if not meta.get("darts_search"):
        raise UserError(f"{state_dir} holds no DARTS search state; start a new run")
    return {**state, "meta": meta}


def write_run(result: DartsResult, run_dir: str | Path) -> Path:
    """Write ``genotype.json``, ``alphas.json``, ``result.json`` and ``model.pt`` to ``run_dir``
    (a folder of :func:`run_darts` alone). ``result.json`` is the run envelope every kind writes
    (:func:`autodl.runs.result_envelope`, kind ``nas``): the supernet's last validation accuracy
    as ``best_value``, the final network's test accuracy as ``test_score``, the rest in ``extra``."""
    from autodl.nn.checkpoint import save_weights
    from autodl.runs import result_envelope, write_json, write_result

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "genotype.json", result.genotype)
    write_json(run_dir / "alphas.json", result.alphas)
    summary = result.summary()
    write_result(run_dir, result_envelope(
        "nas", metric="accuracy", direction="maximize",
        best_value=result.val_history[-1] if result.val_history else None, best_config=None,
        test_score=summary.pop("test_accuracy"), extra={"method": "darts", **summary}))
    save_weights(run_dir / "model.pt", result.model, {"genotype": result.genotype, "settings": result.settings})
    return run_dir


def load_model(run_dir: str | Path) -> NetworkFromGenotype:
    """The final network of a :func:`run_darts` run folder (weights loaded with ``weights_only``)."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "result.json").read_text())
    info = info.get("extra", info)  # the run envelope of `autodl search --nas darts`, or run_darts' own
    genotype = json.loads((run_dir / "genotype.json").read_text())
    s = info["settings"]
    model = NetworkFromGenotype(genotype, C=s["train_C"], num_classes=len(info["classes"]),
                                layers=s["layers"], image_shape=tuple(s["image_shape"]))
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True, map_location="cpu"))
    return model.eval()
