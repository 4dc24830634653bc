"""Multivariate tree-structured Parzen estimator (TPE) on the unit-cube encoding.

TPE (Bergstra et al. 2011) splits the observations into a *good* group (the best ``gamma``
fraction) and a *bad* group, fits a kernel density to each, draws candidates from the good
density ``l(x)`` and proposes the candidate maximizing ``l(x) / g(x)``.

This implementation is **multivariate** (Falkner et al. 2018): each density is a mixture of
kernels, one per observation, and every kernel is a *product* over the coordinates, so
interactions between parameters are kept. Coordinates are the space's unit-cube encoding
(log scales are therefore handled by the encoding):

* continuous and integer coordinates use Gaussian kernels truncated to ``[0, 1]``; each kernel
  has its own bandwidth per coordinate, the larger gap to its neighbours along that coordinate
  (as in the original TPE; adapts to clusters), clipped from below by the "magic clip"
  ``1 / min(100, kernels + 1)`` and by half an integer cell (``bandwidth="scott"`` instead uses
  Scott's rule on the group's spread with a floor);
* categorical coordinates use Aitchison-Aitken kernels: probability ``1 - eps`` on the
  observed category, ``eps / (k - 1)`` on each other one;
* a coordinate that was inactive (NaN) in an observation contributes the uniform density,
  i.e. the observation carries no information about it; a coordinate inactive in the
  candidate is skipped for every kernel (conditional spaces need no separate trees);
* a prior kernel (uniform over the cube) is part of both mixtures.

Failed trials and pending trials (constant liar) join the bad group, so parallel asks spread
out; a hard check also rejects candidates equal to an observed or pending configuration.
Densities are evaluated with a few ``(candidates x coordinates) @ (coordinates x kernels)``
matrix products (the squared distances expanded), so the cost per ask grows only linearly with
the number of observations and no Python loop runs over past trials.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy.special import ndtr, ndtri

from autodl.searchers._unit import (
    DedupeSet, GrowingMatrix, UnitCodec, fresh_sample, pending_keys, single_threaded_blas,
)
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.space import Config, Space

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _neighbor_gaps(c: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Per kernel and coordinate, the larger gap to its sorted neighbours (the cube's ends
    count as neighbours only for groups of one), as in the original TPE."""
    sig = np.ones_like(c)
    for j in range(c.shape[1]):
        rows = np.flatnonzero(finite[:, j])
        if len(rows) == 0:
            continue
        order = np.argsort(c[rows, j], kind="stable")
        v = np.concatenate([[0.0], c[rows[order], j], [1.0]])
        left, right = v[1:-1] - v[:-2], v[2:] - v[1:-1]
        if len(rows) >= 2:
            left[0] = right[0]
            right[-1] = left[-1]
        sig[rows[order], j] = np.maximum(left, right)
    return sig


class _Parzen:
    """A product-kernel mixture over unit-cube rows (NaN = inactive / uninformative)."""

    def __init__(self, codec: UnitCodec, centers: np.ndarray, weights: np.ndarray,
                 prior_weight: float, bandwidth: str, bandwidth_factor: float, min_bandwidth: float,
                 extra: np.ndarray | None = None, extra_sigma: np.ndarray | None = None):
        self.codec = codec
        m, d = centers.shape
        self.num = codec.numeric
        self.cat = codec.categorical
        w = np.append(weights, prior_weight)
        self.log_w = np.log(w / w.sum())
        # numeric bandwidths, one per kernel and coordinate
        c_num = centers[:, self.num]
        finite = np.isfinite(c_num)
        n_eff = max(m, 1)
        magic = 1.0 / min(100.0, 2.0 + m)
        floor = np.maximum(magic, 0.5 * codec.cell[self.num])
        if bandwidth == "neighbor":
            raw = bandwidth_factor * _neighbor_gaps(c_num, finite)
        elif bandwidth == "fixed":
            # Optuna's multivariate rule (TPESampler, multivariate=True): 0.2 of the range
            # times n ** (-1 / (d + 4)), the same for every kernel and coordinate
            raw = np.full(c_num.shape, bandwidth_factor * 0.2 * n_eff ** (-1.0 / (d + 4)))
        else:  # Scott's rule on the group's spread, floored so the kernels do not collapse
            count = finite.sum(axis=0)
            mean = np.nansum(np.where(finite, c_num, 0.0), axis=0) / np.maximum(count, 1)
            dev = np.where(finite, c_num - mean, 0.0)
            std = np.sqrt((dev ** 2).sum(axis=0) / np.maximum(count - 1, 1))
            std = np.where(count > 1, std, 0.3)
            scott = bandwidth_factor * std * n_eff ** (-1.0 / (d + 4))
            raw = np.broadcast_to(np.maximum(scott, min_bandwidth * n_eff ** (-1.0 / (d + 4))), c_num.shape)
        sig = np.clip(raw, floor, 1.0)
        #: typical bandwidth per coordinate (used for the constant-liar kernels of another group)
        self.sigma = np.median(sig, axis=0) if m else np.full(len(self.num), 0.2)
        if extra is not None and len(extra):
            # pending trials (constant liar) get the good group's typical, narrow bandwidth
            centers = np.vstack([centers, extra])
            w = np.concatenate([w[:m], np.ones(len(extra)), w[m:]])
            self.log_w = np.log(w / w.sum())
            extra_sig = np.minimum(extra_sigma, np.median(sig, axis=0) if m else 1.0)
            sig = np.vstack([sig, np.broadcast_to(extra_sig, (len(extra), len(self.num)))])
            c_num = centers[:, self.num]
            finite = np.isfinite(c_num)
            m = len(centers)
        self.centers = centers  # (m, d)
        self.kernel_sigma = sig  # (m, numeric dims)
        # truncation normalizer of each numeric kernel: log(Phi((1-c)/s) - Phi(-c/s))
        mu = np.where(finite, c_num, 0.5)
        z = ndtr((1.0 - mu) / sig) - ndtr(-mu / sig)
        self.log_norm = np.log(np.maximum(z, 1e-300)) + np.log(sig) + _LOG_SQRT_2PI
        self.mu = mu
        self.num_finite = finite
        # categorical kernels
        self.cat_idx = np.stack([codec.category_index(centers[:, j], j) for j in self.cat], axis=1) \
            if len(self.cat) else np.zeros((m, 0), dtype=int)
        k = codec.levels[self.cat].astype(float)
        self.k = k
        self.eps = np.minimum((k - 1.0) / k, np.maximum(0.1, 1.0 / math.sqrt(n_eff + 1.0))) \
            if len(self.cat) else np.zeros(0)
        self._weights_matrix = self._kernel_matrix()

    def _kernel_matrix(self) -> np.ndarray:
        """Kernel-side matrix ``W`` (kernels + prior) x features, such that the log of each
        weighted kernel at ``x`` is ``-(features(x) @ W.T)``.

        Numeric coordinates: ``a x^2 - 2 a mu x + (a mu^2 + log norm)`` with ``a = 1/(2 s^2)``;
        categorical coordinates: a one-hot of ``x`` times the kernel's log probabilities; the
        last feature is a constant 1 carrying ``-log(weight)``.
        """
        m = len(self.centers)
        blocks = []
        if len(self.num):
            mc = self.num_finite
            a2 = np.where(mc, 0.5 / (self.kernel_sigma * self.kernel_sigma), 0.0)
            mu0 = np.where(mc, self.mu, 0.0)
            const = mu0 * mu0 * a2 + np.where(mc, self.log_norm, 0.0)
            zero = np.zeros((1, len(self.num)))  # the prior kernel: uniform density 1
            blocks += [np.vstack([a2, zero]), np.vstack([-2.0 * mu0 * a2, zero]), np.vstack([const, zero])]
        for c in range(len(self.cat)):
            k = int(self.k[c])
            if k == 1:  # a single choice carries no information
                continue
            ci = self.cat_idx[:, c]
            log_same, log_other = math.log1p(-self.eps[c]), math.log(self.eps[c] / (k - 1.0))
            logp = np.full((m + 1, k), log_other)
            logp[np.flatnonzero(ci >= 0), ci[ci >= 0]] = log_same
            logp[np.append(ci < 0, True)] = -math.log(k)  # inactive centre and prior: uniform
            blocks.append(-logp)
        blocks.append(-self.log_w[:, None])
        return np.hstack(blocks)

    def _features(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        blocks = []
        if len(self.num):
            xn = x[:, self.num]
            active = np.isfinite(xn)
            x0 = np.where(active, xn, 0.0)
            blocks += [x0 * x0, x0, active.astype(float)]
        for c, j in enumerate(self.cat):
            k = int(self.k[c])
            if k == 1:
                continue
            xi = self.codec.category_index(x[:, j], j)
            onehot = np.zeros((n, k))
            rows = np.flatnonzero(xi >= 0)
            onehot[rows, xi[rows]] = 1.0  # inactive coordinate: all zeros, contributes nothing
            blocks.append(onehot)
        blocks.append(np.ones((n, 1)))
        return np.hstack(blocks)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` raw (unsnapped) points from the mixture."""
        m, d = self.centers.shape
        comp = rng.choice(m + 1, size=n, p=np.exp(self.log_w))
        out = rng.random((n, d))  # prior component and uninformative coordinates: uniform
        from_kernel = comp < m
        rows = comp[from_kernel]
        if len(rows) and len(self.num):
            mu = self.mu[rows]
            sig = self.kernel_sigma[rows]
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
        """Log density at snapped rows ``x`` (n x d), NaN coordinates of ``x`` skipped.

        The squared distances are expanded, so all kernels are evaluated by one
        ``(n x features) @ (features x kernels)`` product followed by a log-sum-exp.
        """
        total = self._features(x) @ self._weights_matrix.T
        np.negative(total, out=total)
        top = total.max(axis=1, keepdims=True)
        np.subtract(total, top, out=total)
        np.exp(total, out=total)
        return np.log(total.sum(axis=1)) + top[:, 0]


class TPE(Searcher):
    """Multivariate tree-structured Parzen estimator (see the module docstring).

    Args:
        space: the search space.
        seed: seed of the searcher's generator.
        n_startup: number of random trials before the model is used.
        gamma: fraction of successful trials forming the good group (None: 0.1 on conditional
            spaces, else 0.15).
        max_good: upper bound on the size of the good group.
        n_candidates: candidates drawn from the good density per ask (None: 24 on conditional
            spaces, else 64).
        prior_weight: weight of the uniform prior kernel relative to one observation.
        bandwidth_factor: multiplier of Scott's rule bandwidths.
        min_bandwidth: floor of the bandwidths is ``min_bandwidth * n ** (-1 / (d + 4))`` (the
            spread of the good group alone would collapse the kernels too early).
        weighting: ``"uniform"`` good kernels, or ``"ei"``: weighted by their improvement over
            the split value.
        bandwidth: numeric kernel widths: ``"neighbor"`` (gap to the neighbours), ``"scott"``,
            ``"fixed"`` (Optuna's multivariate ``0.2 * n ** (-1 / (d + 4))``) or ``"auto"``
            (``"fixed"`` on conditional spaces, else ``"neighbor"``).

    Example:
        >>> searcher = TPE(space, seed=0)
        >>> trial = searcher.ask(); searcher.tell(trial, loss)
    """

    name = "tpe"
    #: whether pending trials join the bad group (the constant liar); ``benchmarks/hpo_parallel.py``
    #: switches it off in a subclass to measure what that information is worth
    models_pending: ClassVar[bool] = True

    def __init__(self, space: Space, seed: int | None = None, n_startup: int = 10,
                 gamma: float | None = None, max_good: int = 25, n_candidates: int | None = None,
                 prior_weight: float = 1.0, bandwidth_factor: float = 1.0,
                 min_bandwidth: float = 0.1, weighting: str = "uniform", bandwidth: str = "auto"):
        super().__init__(space, seed)
        if bandwidth not in ("auto", "neighbor", "scott", "fixed"):
            raise ValueError(
                f"bandwidth is {bandwidth!r}, but must be 'auto', 'neighbor', 'scott' or 'fixed'")
        # Defaults by the kind of space, as measured by benchmarks/hpo_suite.py. On conditional
        # spaces (a model choice with its own children) the sharp settings lock onto one branch
        # early; there TPE follows Optuna 5's published multivariate defaults (gamma 0.1,
        # 24 candidates as in Bergstra et al. 2011, bandwidth 0.2 n^(-1/(d+4))), which explore
        # more. On unconditional spaces the adaptive neighbour bandwidths, gamma 0.15 and 64
        # candidates rank better (continuous and mixed families).
        conditional = space.is_conditional
        self._gamma = (0.10 if conditional else 0.15) if gamma is None else gamma
        self._n_candidates = (24 if conditional else 64) if n_candidates is None else n_candidates
        self._bandwidth = ("fixed" if conditional else "neighbor") if bandwidth == "auto" else bandwidth
        if n_startup < 1 or not 0.0 < self._gamma < 1.0 or self._n_candidates < 1 or max_good < 1:
            raise ValueError("TPE needs n_startup >= 1, 0 < gamma < 1, n_candidates >= 1, max_good >= 1")
        self.n_startup = int(n_startup)
        self.gamma = gamma
        self.max_good = int(max_good)
        self.n_candidates = n_candidates
        self.prior_weight = float(prior_weight)
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)
        if weighting not in ("uniform", "ei"):
            raise ValueError(f"weighting is {weighting!r}, but must be 'uniform' or 'ei'")
        self.weighting = weighting
        self.bandwidth = bandwidth
        self._codec = UnitCodec(space)
        self._x = GrowingMatrix(space.dim)
        self._y: list[float] = []
        self._seen = DedupeSet()

    def get_params(self) -> dict[str, Any]:
        return {"n_startup": self.n_startup, "gamma": self.gamma, "max_good": self.max_good,
                "n_candidates": self.n_candidates, "prior_weight": self.prior_weight,
                "bandwidth_factor": self.bandwidth_factor, "min_bandwidth": self.min_bandwidth,
                "weighting": self.weighting, "bandwidth": self.bandwidth}

    def _observe(self, obs: Observation) -> None:
        self._x.append(self._codec.snap(self.space.encode(obs.trial.config))[0])
        self._y.append(math.inf if obs.value is None else obs.value)
        self._seen.add(obs.trial.config)

    # ------------------------------------------------------------------ asking
    def _is_new(self, config: Config, pending: DedupeSet) -> bool:
        return config not in self._seen and config not in pending

    def _random_config(self, pending: DedupeSet, tries: int = 50) -> Config:
        return fresh_sample(self.space, self.rng, self._seen, pending, tries)

    def ask(self) -> Trial:
        with single_threaded_blas():
            return self._ask()

    def _ask(self) -> Trial:
        pending = pending_keys([t.config for t in self.pending.values()])
        if len(self._y) < self.n_startup:
            return self._new_trial(self._random_config(pending))
        x = self._x.values
        y = np.asarray(self._y)
        ok = np.flatnonzero(np.isfinite(y))
        order = ok[np.argsort(y[ok], kind="stable")]
        n_good = min(self.max_good, int(math.ceil(self._gamma * len(ok)))) if len(ok) else 0
        good = order[:n_good]
        bad_mask = np.ones(len(y), dtype=bool)
        bad_mask[good] = False
        bad_rows = x[bad_mask]
        good_rows = x[good]
        if self.weighting == "ei" and len(good) > 1:
            # weight good points by their improvement over the split value (more exploitation)
            threshold = y[order[n_good]] if n_good < len(order) else y[good].max()
            gain = threshold - y[good]
            good_w = 0.5 + gain / max(gain.mean(), 1e-300) * 0.5
        else:
            good_w = np.ones(len(good_rows))
        l_model = _Parzen(self._codec, good_rows, good_w, self.prior_weight, self._bandwidth,
                          self.bandwidth_factor, self.min_bandwidth)
        pend = None
        if self.pending and self.models_pending:
            # constant liar: pending points are bad observations, with the good group's
            # (narrow) bandwidth so that they push the next proposals away from them
            pend = self._codec.snap(self._codec.encode(t.config for t in self.pending.values()))
        g_model = _Parzen(self._codec, bad_rows, np.ones(len(bad_rows)), self.prior_weight,
                          self._bandwidth, self.bandwidth_factor, self.min_bandwidth,
                          extra=pend, extra_sigma=l_model.sigma)
        cand = self._codec.snap(l_model.sample(self.rng, self._n_candidates))
        score = l_model.log_pdf(cand) - g_model.log_pdf(cand)
        for i in np.argsort(-score, kind="stable"):
            config = self._codec.decode(cand[i])
            if self._is_new(config, pending):
                return self._new_trial(config)
        return self._new_trial(self._random_config(pending))
