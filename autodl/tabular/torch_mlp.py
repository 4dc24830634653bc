"""A multi-layer perceptron trained with PyTorch, as a scikit-learn estimator.

Training runs in torch (Adam written out in :class:`_Adam`, mini-batches, weight decay, early stopping on a held-out
fraction with the best weights restored; ``sample_weight`` weights each row's loss). The fitted weights are then
kept as NumPy arrays (``coefs_``, ``intercepts_``, like scikit-learn's ``MLPClassifier``) and prediction is plain
NumPy in float64, so a fitted model needs no torch at prediction time, is stored by skops like
any scikit-learn model, and exports to ONNX as MatMul/Add/activation nodes (see
:mod:`autodl.export.sklearn_onnx`). Inputs are standardized inside the model (``x_mean_``,
``x_scale_``); regression targets are standardized for training (``y_mean_``, ``y_scale_``).

torch is imported only by ``fit``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

ACTIVATIONS = ("relu", "tanh")


def _act(z: np.ndarray, name: str) -> np.ndarray:
    return np.maximum(z, 0.0) if name == "relu" else np.tanh(z)


class _TorchMLP(BaseEstimator):
    """Shared training code; see :class:`TorchMLPClassifier` and :class:`TorchMLPRegressor`."""

    _classifier = False

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (64,), activation: str = "relu",
                 alpha: float = 1e-4, learning_rate: float = 1e-3, batch_size: int = 64,
                 max_epochs: int = 60, early_stopping: bool = True, validation_fraction: float = 0.1,
                 n_iter_no_change: int = 8, random_state: int | None = None, n_threads: int = 1):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.n_threads = n_threads

    def _check_params(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation is '{self.activation}', but must be one of {ACTIVATIONS}")
        sizes = tuple(self.hidden_layer_sizes)
        if any(int(s) < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes {sizes} must be positive")
        if int(self.max_epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError("max_epochs and batch_size must be at least 1")

    def _fit(self, X: np.ndarray, target: np.ndarray, n_out: int, sample_weight=None):
        import torch
        from sklearn.utils.validation import _check_sample_weight

        self._check_params()
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        self.x_mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.x_scale_ = np.where(scale > 1e-12, scale, 1.0)
        Z = (X - self.x_mean_) / self.x_scale_
        n = len(Z)
        order = rng.permutation(n)
        n_val = int(round(self.validation_fraction * n)) if self.early_stopping else 0
        if n_val < 2 or n - n_val < 2:
            n_val = 0
        val, train = order[:n_val], order[n_val:]
        threads = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.n_threads)))
        try:
            gen = torch.Generator().manual_seed(seed)
            # the layers draw their initial weights from torch's global generator: seed it
            # before building them (and leave the caller's global state as it was), so a fit
            # does not depend on what ran before it in the process
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                layers, width = [], Z.shape[1]
                for size in self.hidden_layer_sizes:
                    layers += [torch.nn.Linear(width, int(size)),
                               torch.nn.ReLU() if self.activation == "relu" else torch.nn.Tanh()]
                    width = int(size)
                layers.append(torch.nn.Linear(width, n_out))
            net = torch.nn.Sequential(*layers).double()
            opt = _Adam(list(net.parameters()), lr=float(self.learning_rate), weight_decay=float(self.alpha))
            per_row = (torch.nn.CrossEntropyLoss if self._classifier else torch.nn.MSELoss)(reduction="none")
            wt = None
            if sample_weight is not None:  # scaled to mean 1, so the step size means the same as unweighted
                w = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
                wt = torch.from_numpy(w / w.mean())

            def loss_fn(out, y, idx):
                loss = per_row(out, y).reshape(len(idx), -1).mean(dim=1)
                return loss.mean() if wt is None else (loss * wt[idx]).mean()

            xt = torch.from_numpy(Z)
            yt = torch.from_numpy(target)
            best, best_state, stale = np.inf, None, 0
            bs = max(1, min(int(self.batch_size), len(train)))
            self.n_epochs_ = 0
            for _epoch in range(int(self.max_epochs)):
                net.train()
                perm = torch.from_numpy(train)[torch.randperm(len(train), generator=gen)]
                total = 0.0
                for i in range(0, len(perm), bs):
                    idx = perm[i:i + bs]
                    loss = loss_fn(net(xt[idx]), yt[idx], idx)
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                self.n_epochs_ += 1
                if n_val:
                    net.eval()
                    with torch.no_grad():
                        score = float(loss_fn(net(xt[val]), yt[val], val))
                else:
                    score = total / len(train)
                if score < best - 1e-6:
                    best, stale = score, 0
                    best_state = [p.detach().clone() for p in net.parameters()]
                else:
                    stale += 1
                    if self.early_stopping and stale >= int(self.n_iter_no_change):
                        break
            if best_state is not None:
                with torch.no_grad():
                    for p, b in zip(net.parameters(), best_state):
                        p.copy_(b)
            linear = [m for m in net if isinstance(m, torch.nn.Linear)]
            self.coefs_ = [m.weight.detach().numpy().T.astype(np.float64).copy() for m in linear]
            self.intercepts_ = [m.bias.detach().numpy().astype(np.float64).copy() for m in linear]
            self.best_loss_ = float(best)
        finally:
            torch.set_num_threads(threads)
        return self

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        h = (X - self.x_mean_) / self.x_scale_
        for i, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            h = h @ w + b
            if i < len(self.coefs_) - 1:
                h = _act(h, self.activation)
        return h


class _Adam:
    """Adam with L2 weight decay (as ``torch.optim.Adam(weight_decay=...)``), written out:
    creating a ``torch.optim`` optimizer imports ``torch._dynamo`` (and sympy), several seconds
    per process, which a search with many short trials cannot afford."""

    def __init__(self, params, lr: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
        import torch

        self.params, self.lr, self.wd, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    def step(self) -> None:
        import torch

        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                g = p.grad if not self.wd else p.grad.add(p, alpha=self.wd)
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.sub_(self.lr * (m / c1) / ((v / c2).sqrt() + self.eps))
                p.grad = None


class TorchMLPClassifier(ClassifierMixin, _TorchMLP):
    """An MLP classifier trained with PyTorch (softmax over one output per class).

    Args:
        hidden_layer_sizes: width of each hidden layer.
        activation: ``"relu"`` or ``"tanh"``.
        alpha: weight decay (L2) of Adam.
        learning_rate: Adam's step size.
        batch_size: rows per mini-batch.
        max_epochs: passes over the training rows at most.
        early_stopping: stop when the loss on ``validation_fraction`` of the rows has not
            improved for ``n_iter_no_change`` epochs (the best weights are kept).
        validation_fraction, n_iter_no_change: see ``early_stopping``.
        random_state: seeds the initialization, the split and the batches.
        n_threads: torch threads while training.

    Attributes:
        classes_, coefs_, intercepts_, x_mean_, x_scale_, n_epochs_, n_features_in_.
    """

    _classifier = True

    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)``, each row's loss weighted by ``sample_weight`` when given."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        return self._fit(X, codes.astype(np.int64), len(self.classes_), sample_weight)

    def predict_proba(self, X) -> np.ndarray:
        z = self._forward(X)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class TorchMLPRegressor(RegressorMixin, _TorchMLP):
    """An MLP regressor trained with PyTorch (mean squared error on the standardized target);
    arguments as :class:`TorchMLPClassifier`. Attributes add ``y_mean_`` and ``y_scale_``."""

    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)``, each row's loss weighted by ``sample_weight`` when given."""
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        y = np.asarray(y, dtype=np.float64).ravel()
        self.y_mean_ = float(y.mean())
        sd = float(y.std())
        self.y_scale_ = sd if sd > 1e-12 else 1.0
        return self._fit(X, ((y - self.y_mean_) / self.y_scale_).reshape(-1, 1), 1, sample_weight)

    def predict(self, X) -> np.ndarray:
        return self._forward(X)[:, 0] * self.y_scale_ + self.y_mean_
