"""Build an MLP or a CNN from a config and train it deterministically, resumable epoch by epoch.

Config keys (see ``search_spaces/mlp.yaml`` and ``cnn.yaml``; every key has a default):

* architecture: ``n_layers`` (hidden dense layers; 0 allowed for CNNs), ``width``,
  ``activation`` (relu, leaky_relu, relu6, elu, tanh, sigmoid), ``dropout``, ``batch_norm``,
  ``init`` (xavier, he); CNNs also ``n_conv``, ``channels`` (doubled after every pooling),
  ``kernel_size``, ``stride``, ``padding`` (same, valid), ``pooling`` (max, avg, none);
* optimizer: ``optimizer`` (sgd, adam, adamw, rmsprop, adagrad), ``lr``, ``weight_decay``,
  ``sgd.momentum``, ``sgd.nesterov``, ``adam.beta1``, ``adam.beta2``, ``rmsprop.alpha``;
* schedule (per epoch): ``schedule`` (constant, step, exponential, cosine, plateau),
  ``step.step_size``, ``step.gamma``, ``exponential.gamma``, ``plateau.factor``,
  ``plateau.patience``, ``warmup_epochs`` (linear warm-up, multiplies the schedule);
  the cosine horizon is the trainer's ``max_epochs`` (the search's max budget), so a run
  resumed from a checkpoint follows exactly the schedule of an uninterrupted one;
* ``batch_size``, ``grad_clip`` (max gradient norm; absent or 0: no clipping).

**Small images.** A CNN layer never shrinks the map below 1x1: a ``valid`` convolution whose
kernel is larger than the map is done with ``same`` padding instead, a stride is applied only
while the map is at least 2 pixels wide, and pooling (2x2) is skipped once the map is 1x1.
So every config of ``cnn.yaml`` is valid for 8x8 digits. Larger images (up to 64x64, any
aspect) are pooled after every convolution while the map is wider than
:data:`FORCE_POOL_ABOVE`, and a final map wider than 8 is average-pooled to
:data:`HEAD_MAP` x :data:`HEAD_MAP`, so the dense head stays small whatever the image size.

**Determinism.** Weights are initialized from ``seed``; each epoch ``e`` shuffles with a
generator seeded by ``(seed, e)`` and reseeds dropout from ``(seed, e)`` (inside a forked RNG,
so the caller's global torch RNG is untouched). Training 3 epochs, saving, loading and training
6 more therefore equals 9 epochs straight.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from autodl.errors import TrialPruned, UserError
from autodl.nn import checkpoint as ckpt
from autodl.nn.data import ArrayData

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.01), "relu6": nn.ReLU6, "elu": nn.ELU,
    "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
}
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "exponential", "cosine", "plateau")

DEFAULTS: dict[str, Any] = {
    "n_layers": 2, "width": 128, "activation": "relu", "dropout": 0.0, "batch_norm": False,
    "init": "he", "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "sgd.momentum": 0.9,
    "sgd.nesterov": False, "adam.beta1": 0.9, "adam.beta2": 0.999, "rmsprop.alpha": 0.99,
    "schedule": "constant", "step.step_size": 5, "step.gamma": 0.5, "exponential.gamma": 0.9,
    "plateau.factor": 0.5, "plateau.patience": 2, "warmup_epochs": 0, "batch_size": 64,
    "grad_clip": 0.0, "n_conv": 2, "channels": 16, "kernel_size": 3, "stride": 1,
    "padding": "same", "pooling": "max",
}


def _get(config: Mapping[str, Any], key: str) -> Any:
    return config.get(key, DEFAULTS[key])


def device_default() -> torch.device:
    """The GPU when one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=4096)
def _seed_of(seed: int, *parts: int) -> int:
    """A 63-bit seed derived from ``seed`` and ``parts`` (independent streams per epoch;
    cached: a SeedSequence costs more than a small model's epoch of batches is worth)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *parts]).generate_state(2, np.uint64)[0] >> 1)


# ---------------------------------------------------------------------- models
def _activation(config: Mapping[str, Any]) -> nn.Module:
    name = _get(config, "activation")
    if name not in ACTIVATIONS:
        raise UserError(f"activation is {name!r}, but must be one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _dense_stack(config: Mapping[str, Any], n_in: int, n_classes: int, n_layers: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    width = int(_get(config, "width"))
    dropout = float(_get(config, "dropout"))
    for _ in range(n_layers):
        layers.append(nn.Linear(n_in, width))
        if _get(config, "batch_norm"):
            layers.append(nn.BatchNorm1d(width))
        layers.append(_activation(config))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = width
    layers.append(nn.Linear(n_in, n_classes))
    return layers


#: maps wider than this are pooled (2x2 max) after a convolution even when the config says no
#: pooling, so large images (up to 64x64) cost no more than small ones by the last layer
FORCE_POOL_ABOVE = 16
#: a final map wider than 8 is average-pooled (k x k, stride k) to at most HEAD_MAP x HEAD_MAP before the head
HEAD_MAP = 4


def conv_plan(config: Mapping[str, Any], image_shape: tuple[int, int, int]) -> list[dict[str, Any]]:
    """The CNN's convolution layers after the image-size rules (see the module docstring):
    ``[{"in", "out", "kernel", "stride", "padding", "pool", "h", "w"}]``, ``h``/``w`` being the
    map size after the layer. Never goes below 1x1."""
    c, h, w = image_shape
    k = int(_get(config, "kernel_size"))
    stride = int(_get(config, "stride"))
    padding = _get(config, "padding")
    pooling = _get(config, "pooling")
    if padding not in ("same", "valid") or pooling not in ("max", "avg", "none") or k < 1 or stride < 1:
        raise UserError(f"invalid CNN settings: kernel {k}, stride {stride}, padding {padding!r}, "
                        f"pooling {pooling!r}")
    plan = []
    channels = int(_get(config, "channels"))
    for _ in range(int(_get(config, "n_conv"))):
        size = min(h, w)
        pad = k // 2 if (padding == "same" or size < k) else 0
        s = stride if size >= 2 else 1
        h, w = (max(1, (n + 2 * pad - k) // s + 1) for n in (h, w))
        pool = pooling if (pooling != "none" and min(h, w) >= 2) else "none"
        if pool == "none" and min(h, w) > FORCE_POOL_ABOVE:
            pool = "max"
        if pool != "none":
            h, w = h // 2, w // 2
        plan.append({"in": c, "out": channels, "kernel": k, "stride": s, "padding": pad, "pool": pool,
                     "h": h, "w": w})
        c = channels
        if pool != "none":
            channels *= 2
    return plan


class _CNN(nn.Module):
    def __init__(self, config: Mapping[str, Any], image_shape: tuple[int, int, int], n_classes: int):
        super().__init__()
        self.image_shape = tuple(image_shape)
        blocks: list[nn.Module] = []
        plan = conv_plan(config, image_shape)
        for layer in plan:
            blocks.append(nn.Conv2d(layer["in"], layer["out"], layer["kernel"], layer["stride"], layer["padding"]))
            if _get(config, "batch_norm"):
                blocks.append(nn.BatchNorm2d(layer["out"]))
            blocks.append(_activation(config))
            if layer["pool"] == "max":
                blocks.append(nn.MaxPool2d(2))
            elif layer["pool"] == "avg":
                blocks.append(nn.AvgPool2d(2))
        h, w = (plan[-1]["h"], plan[-1]["w"]) if plan else image_shape[1:]
        if max(h, w) > 8:  # a plain average pool: adaptive pooling to sizes that do not divide exports to no ONNX
            kh, kw = -(-h // HEAD_MAP), -(-w // HEAD_MAP)
            h, w = h // kh, w // kw
            blocks.append(nn.AvgPool2d((kh, kw)))
        self.features = nn.Sequential(*blocks)
        n_flat = (plan[-1]["out"] if plan else image_shape[0]) * h * w
        self.head = nn.Sequential(*_dense_stack(config, n_flat, n_classes, int(_get(config, "n_layers"))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(x.shape[0], *self.image_shape)
        return self.head(torch.flatten(self.features(x), 1))


def _initialize(model: nn.Module, config: Mapping[str, Any]) -> None:
    init = _get(config, "init")
    if init not in ("xavier", "he"):
        raise UserError(f"init is {init!r}, but must be 'xavier' or 'he'")
    act = _get(config, "activation")
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if init == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_uniform_(m.weight, a=0.01 if act == "leaky_relu" else 0.0,
                                         nonlinearity="leaky_relu" if act == "leaky_relu" else "relu")
            nn.init.zeros_(m.bias)


def build_model(config: Mapping[str, Any], kind: str, n_features: int, n_classes: int,
                image_shape: tuple[int, int, int] | None = None, seed: int = 0) -> nn.Module:
    """An MLP (``kind="mlp"``) or CNN (``"cnn"``, needs ``image_shape``) initialized from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(_seed_of(seed, 0))
        if kind == "mlp":
            model: nn.Module = nn.Sequential(*_dense_stack(config, n_features, n_classes,
                                                           int(_get(config, "n_layers"))))
        elif kind == "cnn":
            if image_shape is None:
                raise UserError("--model cnn needs image data (e.g. --dataset digits)")
            model = _CNN(config, image_shape, n_classes)
        else:
            raise UserError(f"model is {kind!r}, but must be 'mlp' or 'cnn'")
        _initialize(model, config)
    return model


def build_optimizer(config: Mapping[str, Any], params) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam, AdamW, RMSprop or Adagrad with the config's settings."""
    name = _get(config, "optimizer")
    lr = float(_get(config, "lr"))
    wd = float(_get(config, "weight_decay"))
    if name == "sgd":
        momentum = float(_get(config, "sgd.momentum"))
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=wd,
                               nesterov=bool(_get(config, "sgd.nesterov")) and momentum > 0)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, weight_decay=wd,
                   betas=(float(_get(config, "adam.beta1")), float(_get(config, "adam.beta2"))))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=float(_get(config, "rmsprop.alpha")), weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    raise UserError(f"optimizer is {name!r}, but must be one of {', '.join(OPTIMIZERS)}")


class LRSchedule:
    """Per-epoch learning-rate factor: warm-up times step / exponential / cosine / plateau.

    Its state (plateau's best loss, bad epochs and factor) is a plain dict saved with the
    checkpoint.
    """

    def __init__(self, config: Mapping[str, Any], max_epochs: int):
        self.kind = _get(config, "schedule")
        if self.kind not in SCHEDULES:
            raise UserError(f"schedule is {self.kind!r}, but must be one of {', '.join(SCHEDULES)}")
        self.config = dict(config)
        self.max_epochs = max(1, int(max_epochs))
        self.warmup = int(_get(config, "warmup_epochs"))
        self.state: dict[str, float] = {"best": math.inf, "bad": 0, "factor": 1.0}

    def factor(self, epoch: int) -> float:
        """Multiplier of the base learning rate during ``epoch`` (0-based)."""
        f = 1.0
        if self.warmup > 0 and epoch < self.warmup:
            f = (epoch + 1) / (self.warmup + 1)
        c = self.config
        if self.kind == "step":
            f *= float(_get(c, "step.gamma")) ** (epoch // max(1, int(_get(c, "step.step_size"))))
        elif self.kind == "exponential":
            f *= float(_get(c, "exponential.gamma")) ** epoch
        elif self.kind == "cosine":
            f *= 0.5 * (1.0 + math.cos(math.pi * min(epoch, self.max_epochs) / self.max_epochs))
        elif self.kind == "plateau":
            f *= self.state["factor"]
        return f

    def step(self, val_loss: float) -> None:
        """After an epoch: plateau lowers its factor when the loss stopped improving."""
        if self.kind != "plateau":
            return
        if val_loss < self.state["best"] - 1e-4:
            self.state["best"], self.state["bad"] = float(val_loss), 0
        else:
            self.state["bad"] += 1
            if self.state["bad"] > int(_get(self.config, "plateau.patience")):
                self.state["factor"] *= float(_get(self.config, "plateau.factor"))
                self.state["bad"] = 0


# ---------------------------------------------------------------------- training
def _mean_batch_loss(losses: list[torch.Tensor], n_rows: int, batch_size: int) -> float:
    """The mean loss per row of an epoch from its batch means (only the last batch may be short)."""
    if not losses:
        return float("nan")
    total = torch.stack(losses).sum() * batch_size
    last = n_rows - batch_size * (len(losses) - 1)
    if last != batch_size:
        total = total - losses[-1] * (batch_size - last)
    return float(total) / n_rows


@dataclass
class TrainOutcome:
    """What :func:`train_config` returns."""

    val_accuracy: float
    val_loss: float
    epochs: int  # total epochs of the model (resumed ones included)
    epochs_trained: int  # trained in this call
    epochs_resumed: int  # taken from the checkpoint instead of retrained
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    trainer: "Trainer | None" = None


class Trainer:
    """A model, its optimizer and schedule, trained epoch by epoch on :class:`ArrayData`.

    Args:
        config: the hyperparameters (see the module docstring).
        data: the split arrays.
        kind: ``"mlp"`` or ``"cnn"``.
        seed: seeds initialization, shuffling and dropout.
        max_epochs: horizon of the cosine schedule (the search's max budget).
        patience: early stopping after this many epochs without a lower validation loss
            (None: off).
        device: a torch device; default the GPU when present, else the CPU.
    """

    def __init__(self, config: Mapping[str, Any], data: ArrayData, kind: str = "mlp", *, seed: int = 0,
                 max_epochs: int = 27, patience: int | None = None, device: torch.device | str | None = None):
        self.config = dict(config)
        self.kind = kind
        self.seed = int(seed)
        self.max_epochs = int(max_epochs)
        self.patience = patience
        self.device = torch.device(device) if device is not None else device_default()
        self.model = build_model(config, kind, data.n_features, data.n_classes, data.image_shape, seed).to(self.device)
        self.optimizer = build_optimizer(config, self.model.parameters())
        self.base_lr = [g["lr"] for g in self.optimizer.param_groups]
        self.schedule = LRSchedule(config, max_epochs)
        self.batch_size = int(_get(config, "batch_size"))
        clip = self.config.get("grad_clip", 0.0)
        self.grad_clip = float(clip) if clip else 0.0
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.best_val_loss = math.inf
        self.bad_epochs = 0
        self.stopped = False
        dev = self.device
        self._Xtr = torch.as_tensor(data.X_train, device=dev)
        self._ytr = torch.as_tensor(data.y_train, device=dev)
        self._Xva = torch.as_tensor(data.X_val, device=dev)
        self._yva = torch.as_tensor(data.y_val, device=dev)
        from autodl.nn.data import loss_function, task_of

        self.task = task_of(data)
        self._loss = loss_function(self.task)

    # ------------------------------------------------------------------ epochs
    def train_epochs(self, n: int, on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> int:
        """Train up to ``n`` more epochs (fewer if early stopping triggers); returns how many ran.

        ``on_epoch(epoch, metrics)`` is called after each, ``epoch`` counting from 1.
        ``should_stop()`` is asked before every batch (e.g. ``trial.should_stop``, the study's
        deadline); when it says yes, :class:`~autodl.TrialPruned` is raised.
        """
        done = 0
        n_train = len(self._ytr)
        bs = max(1, min(self.batch_size, n_train))
        # batch norm needs two rows: a last batch of one row is dropped
        n_used = n_train - 1 if (n_train % bs == 1 and n_train > 1 and self._has_batch_norm()) else n_train
        starts = range(0, n_used, bs)
        with torch.random.fork_rng(devices=[]):
            while done < n and not self.stopped:
                e = self.epoch
                self._seed_dropout(_seed_of(self.seed, 1, e))
                g = torch.Generator().manual_seed(_seed_of(self.seed, 2, e))
                perm = torch.randperm(n_train, generator=g).to(self.device)
                # one gather per epoch, then each batch is a view: the same rows as indexing
                # every batch with perm[start:start + bs], without a copy per batch
                X, y = self._Xtr[perm], self._ytr[perm]
                f = self.schedule.factor(e)
                for group, lr in zip(self.optimizer.param_groups, self.base_lr):
                    group["lr"] = lr * f
                self.model.train()
                losses = []  # batch losses kept as tensors: no sync (and no extra op) per batch
                for start in starts:
                    if should_stop is not None and should_stop():
                        raise TrialPruned(f"stopped at the deadline in epoch {self.epoch + 1}")
                    xb, yb = X[start:start + bs], y[start:start + bs]
                    self.optimizer.zero_grad(set_to_none=True)
                    loss = self._loss(self.model(xb), yb)
                    loss.backward()
                    if self.grad_clip > 0:
                        nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                    self.optimizer.step()
                    losses.append(loss.detach())
                train_loss = _mean_batch_loss(losses, n_used, bs)
                val_loss, val_acc = self.evaluate(self._Xva, self._yva)
                self.schedule.step(val_loss)
                self.epoch += 1
                done += 1
                metrics = {"epoch": self.epoch, "train_loss": train_loss, "val_loss": val_loss,
                           "val_accuracy": val_acc, "lr": lr * f}
                self.history.append(metrics)
                if not math.isfinite(val_loss):
                    self.stopped = True
                elif self.patience is not None:
                    if val_loss < self.best_val_loss - 1e-6:
                        self.best_val_loss, self.bad_epochs = val_loss, 0
                    else:
                        self.bad_epochs += 1
                        self.stopped = self.bad_epochs >= self.patience
                if on_epoch is not None:
                    on_epoch(self.epoch, metrics)
        return done

    def _seed_dropout(self, seed: int) -> None:
        # the CPU generator directly: torch.manual_seed also (lazily) seeds every accelerator,
        # which costs more than a small epoch's batches
        torch.default_generator.manual_seed(seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(seed)

    def _has_batch_norm(self) -> bool:
        return bool(_get(self.config, "batch_norm"))

    @torch.no_grad()
    def evaluate(self, X, y) -> tuple[float, float]:
        """``(mean loss, score)`` on ``X, y`` (arrays or tensors) in eval mode: cross-entropy and
        accuracy, or for regression mean squared error and R² (:func:`autodl.nn.data.score`)."""
        from autodl.nn.data import score

        X = torch.as_tensor(X, device=self.device)
        y = torch.as_tensor(y, device=self.device)
        self.model.eval()
        out = self.model(X)
        return float(self._loss(out, y)), score(out, y, self.task)

    @torch.no_grad()
    def predict(self, X) -> np.ndarray:
        self.model.eval()
        return self.model(torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device)).argmax(1).cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training: tensors and plain values only."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": dict(self.schedule.state),
            "rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "early_stopping": {"best": self.best_val_loss, "bad": self.bad_epochs, "stopped": self.stopped},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.state = dict(state["schedule"])
        self.epoch = int(state["epoch"])
        es = state["early_stopping"]
        self.best_val_loss, self.bad_epochs, self.stopped = float(es["best"]), int(es["bad"]), bool(es["stopped"])

    def save(self, folder: str | Path, background: bool = False) -> None:
        """Checkpoint to ``folder`` (atomic; see :mod:`autodl.nn.checkpoint`)."""
        meta = {"config": self.config, "kind": self.kind, "seed": self.seed, "max_epochs": self.max_epochs,
                "patience": self.patience, "epoch": self.epoch, "history": self.history,
                "stopped": self.stopped, "saved": time.time()}
        ckpt.save_checkpoint(folder, self.state_dict(), meta, background=background)

    def compatible(self, meta: Mapping[str, Any] | None) -> bool:
        """Whether a checkpoint's metadata was written by a trainer with the same setup."""
        return (meta is not None and meta.get("config") == self.config and meta.get("kind") == self.kind
                and meta.get("seed") == self.seed and meta.get("max_epochs") == self.max_epochs
                and meta.get("patience") == self.patience)

    def restore(self, folder: str | Path, max_epoch: int | None = None) -> bool:
        """Load the checkpoint in ``folder`` if it fits this trainer (and holds at most
        ``max_epoch`` epochs); returns whether it did. A damaged or foreign file counts as no
        checkpoint. Raises :class:`~autodl.nn.checkpoint.CheckpointError` when a file that
        looked right fails half-way into the model: this trainer is then unusable."""
        try:
            state, meta = ckpt.load_checkpoint(folder, self.device)
        except (OSError, ckpt.CheckpointError):
            return False
        return self._apply(state, meta, max_epoch, folder)

    def _apply(self, state: Any, meta: dict[str, Any], max_epoch: int | None, where: Any) -> bool:
        """:meth:`restore` with the checkpoint already read."""
        epoch = _meta_epoch(meta)
        if (epoch is None or not self.compatible(meta) or not isinstance(state, dict)
                or state.get("epoch") != epoch or (max_epoch is not None and epoch > max_epoch)):
            return False
        try:
            history = list(meta.get("history", []))
            self.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ckpt.CheckpointError(f"{where}: does not fit this model ({type(exc).__name__}: {exc})") from None
        self.history = history
        return True


def _meta_epoch(meta: Any) -> int | None:
    """The epoch a checkpoint's metadata names, or None if it names none."""
    epoch = meta.get("epoch") if isinstance(meta, dict) else None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else None


def budget_to_epochs(budget: float | None, default: int) -> int:
    """Epochs for a trial's budget: ``max(1, round(budget))`` (``default`` without a budget)."""
    if budget is None:
        return int(default)
    return max(1, int(round(float(budget))))


def train_config(config: Mapping[str, Any], data: ArrayData, kind: str, epochs: int, *, seed: int = 0,
                 max_epochs: int = 27, checkpoint_root: str | Path | None = None, patience: int | None = None,
                 on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                 device: torch.device | str | None = None, background_save: bool = False,
                 keep_checkpoint: Callable[[float], bool] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> TrainOutcome:
    """Train ``config`` to ``epochs`` epochs in total, resuming from its checkpoint if any.

    With ``checkpoint_root`` (a run folder), the checkpoint lives in
    ``checkpoint_root/checkpoints/<config_key>/``: when it holds ``e <= epochs`` epochs of the
    same config (and seed, kind, horizon), training continues from it and only ``epochs - e``
    epochs run; the new state is saved at the end. A checkpoint with more epochs than asked is
    left alone and the model is trained from scratch in memory. ``background_save`` writes the
    checkpoint from a writer thread (call :func:`autodl.nn.checkpoint.flush` before exiting).
    ``keep_checkpoint(val_accuracy)`` returning False skips the save (the searcher will not
    continue this config, see :meth:`autodl.study.RunningTrial.worth_keeping`).
    ``should_stop``: see :meth:`Trainer.train_epochs` (nothing is saved when it stops the training).
    """
    trainer = Trainer(config, data, kind, seed=seed, max_epochs=max_epochs, patience=patience, device=device)
    resumed = 0
    folder = None
    if checkpoint_root is not None:
        folder = ckpt.checkpoint_dir(checkpoint_root, config)
        try:  # read once: the same bytes give the epoch and the state
            state, meta = ckpt.load_checkpoint(folder, trainer.device)
        except (OSError, ckpt.CheckpointError):  # none, or damaged: trained anew and replaced
            state = meta = None
        have = _meta_epoch(meta)
        if have is not None and have > epochs:
            folder = None  # a checkpoint further along is left alone; train from scratch in memory
        elif have is not None:
            try:
                if trainer._apply(state, meta, epochs, folder):
                    resumed = trainer.epoch
            except ckpt.CheckpointError:  # half-loaded: start clean; the file is replaced below
                trainer = Trainer(config, data, kind, seed=seed, max_epochs=max_epochs, patience=patience,
                                  device=device)
    trained = trainer.train_epochs(epochs - trainer.epoch, on_epoch=on_epoch, should_stop=should_stop)
    last = trainer.history[-1] if trainer.history else {"val_accuracy": float("nan"), "val_loss": float("nan")}
    if folder is not None and trained > 0 and (keep_checkpoint is None or keep_checkpoint(float(last["val_accuracy"]))):
        trainer.save(folder, background=background_save)
    return TrainOutcome(float(last["val_accuracy"]), float(last["val_loss"]), trainer.epoch, trained, resumed,
                        trainer.stopped, list(trainer.history), trainer)


__all__ = ["Trainer", "TrainOutcome", "LRSchedule", "build_model", "build_optimizer", "conv_plan",
           "train_config", "budget_to_epochs", "device_default", "ACTIVATIONS", "OPTIMIZERS", "SCHEDULES"]
