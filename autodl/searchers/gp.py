"""Gaussian-process Bayesian optimization with log expected improvement.

The searcher works on the space's unit-cube encoding, snapped so the model sees exactly what
is evaluated: integers and stepped floats sit at the centre of their cell, and each categorical
becomes a one-hot block inside the GP. Inactive conditional coordinates are imputed (0.5 for
numbers, an all-zero one-hot block for categories).

Each ask:

1. the targets are warped (``log1p`` of the gap to the best value, which tames the huge
   ranges of ill-conditioned objectives while keeping the order) and standardized; failed
   trials take the worst observed value;
2. the hyperparameters of an ARD Matérn-5/2 GP (length scales, signal and noise variance) are
   refitted by maximizing the log marginal likelihood (L-BFGS-B, analytic gradients), warm
   started from the previous fit, with random restarts every few trials;
3. pending trials are added as fantasies at their posterior mean floored at the mean target
   (kriging believer with a constant-liar floor), so parallel asks spread out;
4. log-EI is evaluated on many uniform candidates plus Gaussian perturbations of the best
   points, and the best few are refined by one batched L-BFGS-B on their continuous coordinates
   (integer and categorical coordinates stay at the enumerated values);
5. the best candidate that is neither observed nor pending is proposed.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy.optimize import minimize

from autodl.searchers._gp_model import MaternGP
from autodl.searchers._unit import (
    CATEGORICAL, CONTINUOUS, DedupeSet, GrowingMatrix, UnitCodec, fresh_sample, pending_keys,
    single_threaded_blas,
)
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.space import Config, Space


class GaussianProcess(Searcher):
    """GP-based Bayesian optimization (see the module docstring).

    Args:
        space: the search space.
        seed: seed of the searcher's generator.
        n_startup: random trials before the GP is used.
        n_candidates: uniform candidates scored per ask.
        n_local: candidates refined by L-BFGS-B per ask.
        restart_every: refit with random restarts every this many asks (warm start otherwise).
        max_fit_points: above this many observations, hyperparameters are refitted only every
            ``refit_every_large`` asks (the model is still conditioned on all points).
        output_warp: ``"log"`` (log1p of the gap to the best value) or ``"none"``.
        warp_quantile: the gap is measured in units of this quantile of the gaps (smaller is a
            stronger warp).

    Example:
        >>> searcher = GaussianProcess(space, seed=0)
        >>> trial = searcher.ask(); searcher.tell(trial, loss)
    """

    name = "gp"
    #: whether pending trials are fantasized (kriging believer); ``benchmarks/hpo_parallel.py``
    #: switches it off in a subclass to measure what that information is worth
    models_pending: ClassVar[bool] = True

    def __init__(self, space: Space, seed: int | None = None, n_startup: int = 8,
                 n_candidates: int = 1024, n_local: int = 8, restart_every: int = 10,
                 max_fit_points: int = 200, refit_every_large: int = 5, output_warp: str = "log",
                 warp_quantile: float = 0.5):
        super().__init__(space, seed)
        if output_warp not in ("log", "none"):
            raise ValueError(f"output_warp is {output_warp!r}, but must be 'log' or 'none'")
        if n_startup < 1 or n_candidates < 1 or n_local < 0:
            raise ValueError("GaussianProcess needs n_startup >= 1, n_candidates >= 1, n_local >= 0")
        self.n_startup = int(n_startup)
        self.n_candidates = int(n_candidates)
        self.n_local = int(n_local)
        self.restart_every = int(restart_every)
        self.max_fit_points = int(max_fit_points)
        self.refit_every_large = int(refit_every_large)
        self.output_warp = output_warp
        self.warp_quantile = float(warp_quantile)
        self._codec = UnitCodec(space)
        self._x = GrowingMatrix(space.dim)
        self._y: list[float] = []
        self._seen = DedupeSet()
        self._n_asks_modelled = 0
        # feature layout: one column per numeric coordinate, a one-hot block per categorical
        col = 0
        self._feature_col = np.zeros(space.dim, dtype=int)
        for j in range(space.dim):
            self._feature_col[j] = col
            col += int(self._codec.levels[j]) if self._codec.kinds[j] == CATEGORICAL else 1
        self._n_features = col
        self._gp = MaternGP(col)

    def get_params(self) -> dict[str, Any]:
        return {"n_startup": self.n_startup, "n_candidates": self.n_candidates,
                "n_local": self.n_local, "restart_every": self.restart_every,
                "max_fit_points": self.max_fit_points, "refit_every_large": self.refit_every_large,
                "output_warp": self.output_warp, "warp_quantile": self.warp_quantile}

    def _observe(self, obs: Observation) -> None:
        self._x.append(self._codec.snap(self.space.encode(obs.trial.config))[0])
        self._y.append(math.nan if obs.value is None else obs.value)
        self._seen.add(obs.trial.config)

    # ------------------------------------------------------------------ encoding
    def _features(self, u: np.ndarray) -> np.ndarray:
        u = np.atleast_2d(u)
        f = np.zeros((len(u), self._n_features))
        for j in range(self._codec.dim):
            c = self._feature_col[j]
            if self._codec.kinds[j] == CATEGORICAL:
                idx = self._codec.category_index(u[:, j], j)
                rows = np.flatnonzero(idx >= 0)
                f[rows, c + idx[rows]] = 1.0
            else:
                f[:, c] = np.where(np.isfinite(u[:, j]), u[:, j], 0.5)
        return f

    def _targets(self) -> np.ndarray | None:
        y = np.asarray(self._y, dtype=float)
        ok = np.isfinite(y)
        if not ok.any():
            return None
        y = np.where(ok, y, y[ok].max())
        if self.output_warp == "log":
            gap = y - y.min()
            scale = np.quantile(gap, self.warp_quantile)
            if scale <= 0.0:
                scale = gap.max() if gap.max() > 0.0 else 1.0
            y = np.log1p(gap / scale)
        sd = y.std()
        return (y - y.mean()) / (sd if sd > 0.0 else 1.0)

    # ------------------------------------------------------------------ asking
    def _random_config(self, pending: DedupeSet, tries: int = 50) -> Config:
        return fresh_sample(self.space, self.rng, self._seen, pending, tries)

    def ask(self) -> Trial:
        with single_threaded_blas():
            return self._ask()

    def _ask(self) -> Trial:
        pending = pending_keys([t.config for t in self.pending.values()])
        y = self._targets() if len(self._y) >= self.n_startup else None
        if y is None:
            return self._new_trial(self._random_config(pending))
        u_obs = self._x.values
        x_obs = self._features(u_obs)
        n = len(y)
        self._n_asks_modelled += 1
        if n <= self.max_fit_points or self._n_asks_modelled % self.refit_every_large == 0:
            restarts = 3 if self._n_asks_modelled % self.restart_every == 1 else 0
            self._gp.fit(x_obs, y, self.rng, n_restarts=restarts)
        else:
            self._gp.condition(x_obs, y)
        best = float(y.min())
        if self.pending and self.models_pending:
            # fantasize pending points at their posterior mean, floored at the mean target
            # (a constant liar): EI there drops to ~0 and the next ask moves away
            u_pend = self._codec.snap(self._codec.encode(t.config for t in self.pending.values()))
            x_pend = self._features(u_pend)
            mu_pend, _ = self._gp.predict(x_pend)
            lie = np.maximum(mu_pend, float(np.mean(y)))
            self._gp.condition(np.vstack([x_obs, x_pend]), np.concatenate([y, lie]))
        cand = self._candidates(u_obs, y)
        score = self._gp.log_ei(self._features(cand), best)
        cand, score = self._refine(cand, score, best)
        for i in np.argsort(-score, kind="stable"):
            config = self._codec.decode(cand[i])
            if config not in self._seen and config not in pending:
                return self._new_trial(config)
        return self._new_trial(self._random_config(pending))

    def _candidates(self, u_obs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Uniform points plus Gaussian perturbations of the best observed points."""
        d = self._codec.dim
        uniform = self.rng.random((self.n_candidates, d))
        top = np.argsort(y, kind="stable")[: min(5, len(y))]
        n_each = max(self.n_candidates // (2 * len(top)), 1)
        local = []
        for i in top:
            center = np.where(np.isfinite(u_obs[i]), u_obs[i], self.rng.random(d))
            scales = self.rng.choice([0.005, 0.02, 0.08, 0.25], size=(n_each, 1))
            pts = center + scales * self.rng.normal(size=(n_each, d))
            # move only a random subset of coordinates in half of the points
            mask = self.rng.random((n_each, d)) < max(1.0 / d, 0.5)
            mask[: n_each // 2] = True
            pts = np.where(mask, pts, center)
            # categorical coordinates: resample with a small probability
            cat = self._codec.categorical
            if len(cat):
                flip = self.rng.random((n_each, len(cat))) < 0.2
                pts[:, cat] = np.where(flip, self.rng.random((n_each, len(cat))), center[cat])
            local.append(np.clip(pts, 0.0, 1.0))
        return self._codec.snap(np.vstack([uniform] + local))

    def _refine(self, cand: np.ndarray, score: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
        """Batched L-BFGS-B on the continuous coordinates of the best few candidates."""
        cont = np.flatnonzero(self._codec.kinds == CONTINUOUS)
        if self.n_local == 0 or len(cont) == 0:
            return cand, score
        top = np.argsort(-score, kind="stable")[: self.n_local]
        start = cand[top]
        free = np.isfinite(start[:, cont])  # active continuous coordinates
        if not free.any():
            return cand, score
        base = self._features(start)
        cols = self._feature_col[cont]
        x0 = np.where(free, start[:, cont], 0.5)
        b = len(top)

        def neg_acq(flat: np.ndarray) -> tuple[float, np.ndarray]:
            xs = base.copy()
            vals = flat.reshape(b, len(cont))
            xs[:, cols] = np.where(free, vals, xs[:, cols])
            v, g = self._gp.log_ei_and_grad(xs, best)
            grad = np.where(free, g[:, cols], 0.0)
            return -float(v.sum()), -grad.ravel()

        bounds = [(0.0, 1.0) if f else (0.5, 0.5) for f in free.ravel()]
        res = minimize(neg_acq, x0.ravel(), jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 60})
        refined = start.copy()
        refined[:, cont] = np.where(free, res.x.reshape(b, len(cont)), start[:, cont])
        refined = self._codec.snap(refined)
        new_score = self._gp.log_ei(self._features(refined), best)
        return np.vstack([cand, refined]), np.concatenate([score, new_score])
