"""Multivariate tree-structured Parzen estimator (TPE) on the unit-cube encoding.

TPE (Bergstra et al. 2011) splits the observations into a *good* group (the best ``gamma``
fraction) and a *bad* group, fits a kernel density to each, draws candidates from the good
density ``l(x)`` and proposes the candidate maximizing ``l(x) / g(x)``.

This implementation is **multivariate** (Falkner et al. 2018): each density is a mixture of
kernels, one per observation, and every kernel is a *product* over the coordinates, so
interactions between parameters are kept. Coordinates are the space's unit-cube encoding
(log scales are therefore handled by the encoding):

* continuous and integer coordinates use Gaussian kernels truncated to ``[0, 1]`` with one
  bandwidth per coordinate and group (Scott's rule on the group's spread, clipped from below by
  a "magic clip" that shrinks with the number of observations and never drops below half an
  integer cell);
* categorical coordinates use Aitchison-Aitken kernels: probability ``1 - eps`` on the
  observed category, ``eps / (k - 1)`` on each other one;
* a coordinate that was inactive (NaN) in an observation contributes the uniform density,
  i.e. the observation carries no information about it; a coordinate inactive in the
  candidate is skipped for every kernel (conditional spaces need no separate trees);
* a prior kernel (uniform over the cube) is part of both mixtures.

Failed trials and pending trials (constant liar) join the bad group, so parallel asks spread
out; a hard check also rejects candidates equal to an observed or pending configuration.
Densities are evaluated as one ``(candidates x kernels x coordinates)`` numpy computation, so
the cost per ask grows only linearly with the number of observations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import logsumexp, ndtr, ndtri

from autodl.searchers._unit import DedupeSet, GrowingMatrix, UnitCodec
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.space import Config, Space

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class _Parzen:
    """A product-kernel mixture over unit-cube rows (NaN = inactive / uninformative)."""

    def __init__(self, codec: UnitCodec, centers: np.ndarray, weights: np.ndarray,
                 prior_weight: float, bandwidth_factor: float, n_total: int):
        self.codec = codec
        self.centers = centers  # (m, d)
        m, d = centers.shape
        self.num = codec.numeric
        self.cat = codec.categorical
        w = np.append(weights, prior_weight)
        self.log_w = np.log(w / w.sum())
        # numeric bandwidths: Scott's rule on the group's spread, magic clip from below
        c_num = centers[:, self.num]
        finite = np.isfinite(c_num)
        count = finite.sum(axis=0)
        mean = np.where(count > 0, np.nansum(c_num, axis=0) / np.maximum(count, 1), 0.5) \
            if m else np.full(len(self.num), 0.5)
        dev = np.where(finite, c_num - mean, 0.0) if m else np.zeros((0, len(self.num)))
        std = np.sqrt((dev ** 2).sum(axis=0) / np.maximum(count - 1, 1)) if m else np.full(len(self.num), 0.3)
        std = np.where(count > 1, std, 0.3)
        n_eff = max(m, 1)
        scott = bandwidth_factor * std * n_eff ** (-1.0 / (d + 4))
        magic = 1.0 / min(100.0, 1.0 + n_total)
        floor = np.maximum(magic, 0.5 * codec.cell[self.num])
        self.sigma = np.clip(scott, floor, 1.0)
        # truncation normalizer of each numeric kernel: log(Phi((1-c)/s) - Phi(-c/s))
        mu = np.where(finite, c_num, 0.5)
        z = ndtr((1.0 - mu) / self.sigma) - ndtr(-mu / self.sigma)
        self.log_norm = np.log(np.maximum(z, 1e-300)) + np.log(self.sigma) + _LOG_SQRT_2PI
        self.mu = mu
        self.num_finite = finite
        # categorical kernels
        self.cat_idx = np.stack([codec.category_index(centers[:, j], j) for j in self.cat], axis=1) \
            if len(self.cat) else np.zeros((m, 0), dtype=int)
        k = codec.levels[self.cat].astype(float)
        self.k = k
        self.eps = np.minimum((k - 1.0) / k, np.maximum(0.1, 1.0 / math.sqrt(n_eff + 1.0))) \
            if len(self.cat) else np.zeros(0)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` raw (unsnapped) points from the mixture."""
        m, d = self.centers.shape
        comp = rng.choice(m + 1, size=n, p=np.exp(self.log_w))
        out = rng.random((n, d))  # prior component and uninformative coordinates: uniform
        from_kernel = comp < m
        rows = comp[from_kernel]
        if len(rows) and len(self.num):
            mu = self.mu[rows]
            sig = np.broadcast_to(self.sigma, mu.shape)
            lo, hi = ndtr(-mu / sig), ndtr((1.0 - mu) / sig)
            p = lo + rng.random(mu.shape) * (hi - lo)
            val = mu + sig * ndtri(np.clip(p, 1e-300, 1.0 - 1e-16))
            val = np.where(self.num_finite[rows], np.clip(val, 0.0, 1.0), out[from_kernel][:, self.num])
            sub = out[from_kernel]
            sub[:, self.num] = val
            out[from_kernel] = sub
        if len(rows) and len(self.cat):
            idx = self.cat_idx[rows]
            k = self.k.astype(int)
            keep = rng.random(idx.shape) >= self.eps
            other = (idx + 1 + np.floor(rng.random(idx.shape) * (k - 1))).astype(int) % k
            new_idx = np.where(keep, idx, other)
            val = (new_idx + 0.5) / k
            sub = out[from_kernel]
            sub[:, self.cat] = np.where(idx >= 0, val, sub[:, self.cat])
            out[from_kernel] = sub
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density at snapped rows ``x`` (n x d), NaN coordinates of ``x`` skipped."""
        n = len(x)
        m = len(self.centers)
        total = np.zeros((n, m + 1))
        if len(self.num):
            xn = x[:, self.num]
            xf = np.isfinite(xn)
            z = (np.where(xf, xn, 0.5)[:, None, :] - self.mu[None, :, :]) / self.sigma
            lk = -0.5 * z * z - self.log_norm[None, :, :]
            lk = np.where(xf[:, None, :] & self.num_finite[None, :, :], lk, 0.0)
            total[:, :m] += lk.sum(axis=2)
        if len(self.cat):
            xi = np.stack([self.codec.category_index(x[:, j], j) for j in self.cat], axis=1)
            same = xi[:, None, :] == self.cat_idx[None, :, :]
            lk = np.where(same, np.log1p(-self.eps), np.log(self.eps / (self.k - 1.0)))
            lk = np.where(self.cat_idx[None, :, :] < 0, -np.log(self.k), lk)
            lk = np.where((xi < 0)[:, None, :], 0.0, lk)
            total[:, :m] += lk.sum(axis=2)
            prior = np.where(xi >= 0, -np.log(self.k), 0.0).sum(axis=1)
            total[:, m] += prior
        return logsumexp(total + self.log_w[None, :], axis=1)


class TPE(Searcher):
    """Multivariate tree-structured Parzen estimator (see the module docstring).

    Args:
        space: the search space.
        seed: seed of the searcher's generator.
        n_startup: number of random trials before the model is used.
        gamma: fraction of successful trials forming the good group.
        max_good: upper bound on the size of the good group.
        n_candidates: candidates drawn from the good density per ask.
        prior_weight: weight of the uniform prior kernel relative to one observation.
        bandwidth_factor: multiplier of Scott's rule bandwidths.

    Example:
        >>> searcher = TPE(space, seed=0)
        >>> trial = searcher.ask(); searcher.tell(trial, loss)
    """

    name = "tpe"

    def __init__(self, space: Space, seed: int | None = None, n_startup: int = 10,
                 gamma: float = 0.15, max_good: int = 25, n_candidates: int = 64,
                 prior_weight: float = 1.0, bandwidth_factor: float = 1.0):
        super().__init__(space, seed)
        if n_startup < 1 or not 0.0 < gamma < 1.0 or n_candidates < 1 or max_good < 1:
            raise ValueError("TPE needs n_startup >= 1, 0 < gamma < 1, n_candidates >= 1, max_good >= 1")
        self.n_startup = int(n_startup)
        self.gamma = float(gamma)
        self.max_good = int(max_good)
        self.n_candidates = int(n_candidates)
        self.prior_weight = float(prior_weight)
        self.bandwidth_factor = float(bandwidth_factor)
        self._codec = UnitCodec(space)
        self._x = GrowingMatrix(space.dim)
        self._y: list[float] = []
        self._seen = DedupeSet()

    def get_params(self) -> dict[str, Any]:
        return {"n_startup": self.n_startup, "gamma": self.gamma, "max_good": self.max_good,
                "n_candidates": self.n_candidates, "prior_weight": self.prior_weight,
                "bandwidth_factor": self.bandwidth_factor}

    def _observe(self, obs: Observation) -> None:
        self._x.append(self._codec.snap(self.space.encode(obs.trial.config))[0])
        self._y.append(math.inf if obs.value is None else obs.value)
        self._seen.add(obs.trial.config)

    # ------------------------------------------------------------------ asking
    def _is_new(self, config: Config, pending_keys: DedupeSet) -> bool:
        return config not in self._seen and config not in pending_keys

    def _random_config(self, pending_keys: DedupeSet, tries: int = 50) -> Config:
        config = self.space.sample(self.rng)
        for _ in range(tries):
            if self._is_new(config, pending_keys):
                break
            config = self.space.sample(self.rng)
        return config

    def ask(self) -> Trial:
        pending_keys = DedupeSet()
        for t in self.pending.values():
            pending_keys.add(t.config)
        if len(self._y) < self.n_startup:
            return self._new_trial(self._random_config(pending_keys))
        x = self._x.values
        y = np.asarray(self._y)
        ok = np.flatnonzero(np.isfinite(y))
        order = ok[np.argsort(y[ok], kind="stable")]
        n_good = min(self.max_good, int(math.ceil(self.gamma * len(ok)))) if len(ok) else 0
        good = order[:n_good]
        bad_mask = np.ones(len(y), dtype=bool)
        bad_mask[good] = False
        bad_rows = x[bad_mask]
        if self.pending:  # constant liar: pending points count as bad observations
            pend = self._codec.snap(self._codec.encode(t.config for t in self.pending.values()))
            bad_rows = np.vstack([bad_rows, pend])
        n_total = len(y) + len(self.pending)
        good_rows = x[good]
        l_model = _Parzen(self._codec, good_rows, np.ones(len(good_rows)), self.prior_weight,
                          self.bandwidth_factor, n_total)
        g_model = _Parzen(self._codec, bad_rows, np.ones(len(bad_rows)), self.prior_weight,
                          self.bandwidth_factor, n_total)
        cand = self._codec.snap(l_model.sample(self.rng, self.n_candidates))
        score = l_model.log_pdf(cand) - g_model.log_pdf(cand)
        for i in np.argsort(-score, kind="stable"):
            config = self._codec.decode(cand[i])
            if self._is_new(config, pending_keys):
                return self._new_trial(config)
        return self._new_trial(self._random_config(pending_keys))
