"""Gaussian-process regression with an ARD Matérn-5/2 kernel, and the log expected improvement.

Pure numpy/scipy, used by :mod:`autodl.searchers.gp`. Hyperparameters (log length scales, log
signal variance, log noise variance) are fitted by maximizing the log marginal likelihood plus
weak log-normal priors with L-BFGS-B and analytic gradients.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import erfcx, log_ndtr

_SQRT5 = math.sqrt(5.0)
_LOG_2PI = math.log(2.0 * math.pi)
_NOISE_MIN = 1e-6
_LS_BOUNDS = (math.log(5e-3), math.log(50.0))
_SIG_BOUNDS = (math.log(0.05), math.log(20.0))
_NOISE_BOUNDS = (math.log(_NOISE_MIN), math.log(0.5))


def _matern(r: np.ndarray) -> np.ndarray:
    return (1.0 + _SQRT5 * r + (5.0 / 3.0) * r * r) * np.exp(-_SQRT5 * r)


def _matern_grad_factor(r: np.ndarray) -> np.ndarray:
    """``-(dM/dr) / r`` = (5/3)(1 + sqrt5 r) exp(-sqrt5 r) (finite at r = 0)."""
    return (5.0 / 3.0) * (1.0 + _SQRT5 * r) * np.exp(-_SQRT5 * r)


def log_h(z: np.ndarray) -> np.ndarray:
    """``log(phi(z) + z * Phi(z))``, accurate for very negative ``z`` (the log-EI core)."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    big = z > -1.0
    zb = z[big]
    pdf = np.exp(-0.5 * zb * zb) / math.sqrt(2.0 * math.pi)
    out[big] = np.log(pdf + zb * np.exp(log_ndtr(zb)))
    small = ~big
    zs = np.maximum(z[small], -1e3)
    log_pdf = -0.5 * zs * zs - 0.5 * _LOG_2PI
    tail = np.log1p(zs * math.sqrt(math.pi / 2.0) * erfcx(-zs / math.sqrt(2.0)))
    asymptotic = log_pdf - 2.0 * np.log(-zs)
    val = np.where(zs > -1e3, log_pdf + tail, asymptotic)
    # extrapolate beyond the clamp with the asymptotic form
    zz = z[small]
    val = np.where(zz < -1e3, -0.5 * zz * zz - 0.5 * _LOG_2PI - 2.0 * np.log(-zz), val)
    out[small] = val
    return out


class MaternGP:
    """An ARD Matérn-5/2 GP on standardized targets.

    Args:
        n_features: input dimension.
        ls_prior_mean: mean of the log-normal prior on each length scale (in log space).
    """

    def __init__(self, n_features: int, ls_prior_mean: float | None = None):
        self.p = n_features
        self.ls_prior_mean = (math.log(0.5 * math.sqrt(max(n_features, 1))) if ls_prior_mean is None
                              else ls_prior_mean)
        self.theta = self.default_theta()
        self.x = np.zeros((0, n_features))
        self.y = np.zeros(0)

    def default_theta(self) -> np.ndarray:
        return np.concatenate([np.full(self.p, self.ls_prior_mean), [0.0, math.log(1e-3)]])

    def bounds(self) -> list[tuple[float, float]]:
        return [_LS_BOUNDS] * self.p + [_SIG_BOUNDS, _NOISE_BOUNDS]

    # ------------------------------------------------------------------ fitting
    def _log_prior(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        ls, sig, noise = theta[: self.p], theta[self.p], theta[self.p + 1]
        grad = np.zeros_like(theta)
        s_ls, s_sig, s_noise = 1.5, 1.0, 2.0
        lp = -0.5 * np.sum(((ls - self.ls_prior_mean) / s_ls) ** 2)
        grad[: self.p] = -(ls - self.ls_prior_mean) / s_ls ** 2
        lp += -0.5 * (sig / s_sig) ** 2
        grad[self.p] = -sig / s_sig ** 2
        mu_noise = math.log(1e-4)
        lp += -0.5 * ((noise - mu_noise) / s_noise) ** 2
        grad[self.p + 1] = -(noise - mu_noise) / s_noise ** 2
        return float(lp), grad

    def _neg_objective(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray,
                       diff2: np.ndarray) -> tuple[float, np.ndarray]:
        n = len(y)
        ls2 = np.exp(2.0 * theta[: self.p])
        s2 = math.exp(theta[self.p])
        noise = math.exp(theta[self.p + 1])
        scaled = diff2 / ls2  # (n, n, p)
        r = np.sqrt(scaled.sum(axis=2))
        k_sig = s2 * _matern(r)
        k = k_sig + (noise + 1e-9) * np.eye(n)
        try:
            chol = cho_factor(k, lower=True, check_finite=False)
        except LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve(chol, y, check_finite=False)
        lml = -0.5 * y @ alpha - np.log(np.diag(chol[0])).sum() - 0.5 * n * _LOG_2PI
        k_inv = cho_solve(chol, np.eye(n), check_finite=False)
        w = np.outer(alpha, alpha) - k_inv
        grad = np.empty_like(theta)
        a = s2 * _matern_grad_factor(r) * w  # (n, n)
        grad[: self.p] = 0.5 * np.einsum("ij,ijk->k", a, scaled)
        grad[self.p] = 0.5 * np.sum(w * k_sig)
        grad[self.p + 1] = 0.5 * noise * np.trace(w)
        lp, lp_grad = self._log_prior(theta)
        value = -(lml + lp) / n
        if not math.isfinite(value):
            return 1e10, np.zeros_like(theta)
        return value, -(grad + lp_grad) / n

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_restarts: int = 0,
            maxiter: int = 80) -> None:
        """Fit hyperparameters from the current ``theta`` (warm start) plus random restarts."""
        diff2 = (x[:, None, :] - x[None, :, :]) ** 2
        starts = [self.theta.copy()]
        if n_restarts:
            starts.append(self.default_theta())
            lo = np.array([b[0] for b in self.bounds()])
            hi = np.array([b[1] for b in self.bounds()])
            for _ in range(n_restarts - 1):
                t = self.default_theta()
                t[: self.p] += rng.normal(0.0, 1.0, self.p)
                t[self.p] += rng.normal(0.0, 0.5)
                starts.append(np.clip(t, lo, hi))
        best_val, best_theta = math.inf, self.theta
        for t0 in starts:
            res = minimize(self._neg_objective, t0, args=(x, y, diff2), jac=True, method="L-BFGS-B",
                           bounds=self.bounds(), options={"maxiter": maxiter})
            if res.fun < best_val and np.all(np.isfinite(res.x)):
                best_val, best_theta = float(res.fun), res.x
        self.theta = np.asarray(best_theta, dtype=float)
        self.condition(x, y)

    def condition(self, x: np.ndarray, y: np.ndarray) -> None:
        """Factorize the kernel matrix for prediction at the current hyperparameters."""
        self.x, self.y = x, y
        self._ls2 = np.exp(2.0 * self.theta[: self.p])
        self._s2 = math.exp(self.theta[self.p])
        noise = math.exp(self.theta[self.p + 1]) + 1e-9
        k = self._s2 * _matern(self._dist(x, x)) + noise * np.eye(len(x))
        jitter = 0.0
        for _ in range(6):
            try:
                self._chol = cho_factor(k + jitter * np.eye(len(x)), lower=True, check_finite=False)
                break
            except LinAlgError:
                jitter = max(1e-8, jitter * 10.0)
        self._alpha = cho_solve(self._chol, y, check_finite=False)

    def _dist(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a_s, b_s = a / np.sqrt(self._ls2), b / np.sqrt(self._ls2)
        d2 = (a_s * a_s).sum(1)[:, None] + (b_s * b_s).sum(1)[None, :] - 2.0 * a_s @ b_s.T
        return np.sqrt(np.maximum(d2, 0.0))

    # ------------------------------------------------------------------ prediction
    def predict(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance (latent, without noise) at rows ``xs``."""
        ks = self._s2 * _matern(self._dist(xs, self.x))
        mu = ks @ self._alpha
        v = solve_triangular(self._chol[0], ks.T, lower=True, check_finite=False)
        var = np.maximum(self._s2 - (v * v).sum(axis=0), 1e-12)
        return mu, var

    def log_ei(self, xs: np.ndarray, best: float) -> np.ndarray:
        mu, var = self.predict(xs)
        sd = np.sqrt(var)
        return np.log(sd) + log_h((best - mu) / sd)

    def log_ei_and_grad(self, xs: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
        """Log EI at rows ``xs`` and its gradient with respect to ``xs``."""
        diff = xs[:, None, :] - self.x[None, :, :]  # (b, n, p)
        r = np.sqrt(np.maximum((diff * diff / self._ls2).sum(axis=2), 0.0))
        ks = self._s2 * _matern(r)
        g = -self._s2 * _matern_grad_factor(r)  # dk/dx_j = g * diff_j / ls2_j
        mu = ks @ self._alpha
        beta = cho_solve(self._chol, ks.T, check_finite=False).T  # (b, n)
        var_raw = self._s2 - (ks * beta).sum(axis=1)
        var = np.maximum(var_raw, 1e-12)
        sd = np.sqrt(var)
        z = (best - mu) / sd
        lh = log_h(z)
        value = np.log(sd) + lh
        ratio = np.exp(log_ndtr(z) - lh)
        d_mu = np.einsum("bn,bnp->bp", g * self._alpha[None, :], diff) / self._ls2
        d_var = -2.0 * np.einsum("bn,bnp->bp", g * beta, diff) / self._ls2
        d_var = np.where((var_raw > 1e-12)[:, None], d_var, 0.0)
        d_sd = d_var / (2.0 * sd[:, None])
        grad = (-ratio / sd)[:, None] * d_mu + ((1.0 - z * ratio) / sd)[:, None] * d_sd
        return value, grad
