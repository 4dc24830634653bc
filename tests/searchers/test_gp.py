"""Tests of the Gaussian-process searcher and its model."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.stats import norm

from autodl.searchers import GaussianProcess, make_searcher
from autodl.searchers._gp_model import MaternGP, log_h
from autodl.searchers.base import Trial
from autodl.space import Categorical, Float, Int, Space, config_key
from autodl.testing import CHECKS


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_conformance(check):
    check(lambda space, seed: GaussianProcess(space, seed=seed))


def _run(searcher, objective, n):
    for _ in range(n):
        t = searcher.ask()
        searcher.tell(t, objective(t.config))
    return searcher


def _sphere(config: dict) -> float:
    return float(sum((v - 0.5) ** 2 for v in config.values()))


def test_log_h_matches_the_direct_formula_and_stays_finite():
    z = np.linspace(-8.0, 6.0, 57)
    direct = np.log(norm.pdf(z) + z * norm.cdf(z))
    assert np.allclose(log_h(z), direct, rtol=1e-9, atol=1e-12)
    far = log_h(np.array([-50.0, -1e3, -1e6]))
    assert np.all(np.isfinite(far)) and np.all(np.diff(far) < 0)
    # asymptotically log h(z) ~ log phi(z) - 2 log|z|
    assert abs(far[0] - (norm.logpdf(-50.0) - 2 * np.log(50.0))) < 1e-2


def test_marginal_likelihood_and_log_ei_gradients():
    rng = np.random.default_rng(0)
    x = rng.random((25, 3))
    y = np.sin(4 * x).sum(1)
    y = (y - y.mean()) / y.std()
    gp = MaternGP(3)
    diff2 = (x[:, None] - x[None]) ** 2
    theta = gp.default_theta() + rng.normal(0, 0.3, 5)
    _, grad = gp._neg_objective(theta, x, y, diff2)
    fd = approx_fprime(theta, lambda t: gp._neg_objective(t, x, y, diff2)[0], 1e-6)
    assert np.allclose(grad, fd, rtol=1e-3, atol=1e-4)
    gp.fit(x, y, rng, n_restarts=2)
    xs = rng.random((3, 3))
    best = float(y.min())
    value, grad = gp.log_ei_and_grad(xs, best)
    assert np.allclose(value, gp.log_ei(xs, best))
    for i in range(3):
        fd = approx_fprime(xs[i], lambda z: gp.log_ei(z[None], best)[0], 1e-7)
        assert np.allclose(grad[i], fd, rtol=1e-3, atol=1e-3 * (1 + np.abs(fd).max()))


def test_gp_interpolates_a_smooth_function():
    rng = np.random.default_rng(1)
    x = rng.random((40, 2))
    f = lambda a: np.sin(3 * a[:, 0]) + a[:, 1] ** 2  # noqa: E731
    y = f(x)
    gp = MaternGP(2)
    gp.fit(x, (y - y.mean()) / y.std(), rng, n_restarts=2)
    xt = rng.random((200, 2))
    mu, var = gp.predict(xt)
    err = np.abs(mu * y.std() + y.mean() - f(xt))
    assert np.median(err) < 0.02
    assert np.all(var >= 0)


def test_registered_and_rebuildable():
    space = Space({"x": Float(0, 1)})
    s = make_searcher("gp", space, seed=0, n_candidates=256)
    assert isinstance(s, GaussianProcess)
    assert make_searcher("gp", space, seed=0, **s.get_params()).get_params() == s.get_params()


def test_determinism_past_startup():
    space = Space({"x": Float(-2, 2), "y": Float(-2, 2)})
    a = [o.trial.config for o in _run(GaussianProcess(space, seed=3), _sphere, 20).observations]
    b = [o.trial.config for o in _run(GaussianProcess(space, seed=3), _sphere, 20).observations]
    assert a == b


def test_converges_on_a_sphere():
    space = Space({f"x{i}": Float(-2, 2) for i in range(4)})
    s = _run(GaussianProcess(space, seed=0), _sphere, 40)
    assert s.best().value < 1e-2


def test_integers_and_categoricals():
    space = Space({
        "n": Int(1, 20),
        "w": Int(1, 1024, log=True),
        "act": Categorical(["relu", "tanh", "gelu", "silu"]),
        "x": Float(0.0, 1.0),
    })

    def objective(c):
        return ((c["n"] - 13) / 20) ** 2 + (np.log2(c["w"]) - 5) ** 2 / 50 \
            + (0.0 if c["act"] == "gelu" else 0.5) + (c["x"] - 0.7) ** 2

    s = _run(GaussianProcess(space, seed=0), objective, 45)
    best = s.best().trial.config
    assert best["act"] == "gelu"
    assert abs(best["n"] - 13) <= 2
    assert 16 <= best["w"] <= 64
    for o in s.observations:
        space.validate_config(o.trial.config)


def test_pending_asks_are_distinct_and_spread():
    space = Space({"x": Float(-2, 2), "y": Float(-2, 2)})
    s = _run(GaussianProcess(space, seed=1), _sphere, 15)
    pending = [s.ask() for _ in range(6)]
    pts = np.array([[t.config["x"], t.config["y"]] for t in pending])
    dists = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))[np.triu_indices(6, 1)]
    assert dists.min() > 1e-3, "kriging believer failed to move the next ask away"


def test_pending_asks_in_a_small_discrete_space_never_repeat():
    space = Space({"a": Int(0, 3), "b": Categorical(["x", "y", "z"])})  # 12 configs
    s = GaussianProcess(space, seed=0, n_startup=4)
    _run(s, lambda c: c["a"] + (c["b"] == "y"), 4)
    pending = [s.ask() for _ in range(8)]
    keys = [config_key(t.config) for t in pending]
    assert len(set(keys)) == len(keys)
    assert not {config_key(o.trial.config) for o in s.observations} & set(keys)


def test_ask_cost_at_200_observations():
    space = Space({f"x{i}": Float(-1, 1) for i in range(6)})
    rng = np.random.default_rng(0)
    history = []
    for i in range(200):
        c = space.sample(rng)
        history.append((Trial(i, c), _sphere(c)))
    s = GaussianProcess(space, seed=0)
    s.restore(history)
    start = time.perf_counter()
    for _ in range(5):
        s.tell(s.ask(), 0.5)
    per_ask = (time.perf_counter() - start) / 5
    assert per_ask < 1.5, f"GP ask+tell takes {per_ask:.2f} s at 200 observations"


def test_single_choice_categorical_and_tiny_integer_ranges():
    space = Space({"only": Categorical(["x"]), "bit": Int(0, 1), "v": Float(0.0, 1.0, step=0.5)})
    s = GaussianProcess(space, seed=0, n_startup=2)
    seen = set()
    for _ in range(6):  # exactly 6 distinct configs exist
        t = s.ask()
        space.validate_config(t.config)
        seen.add(config_key(t.config))
        s.tell(t, t.config["bit"] + t.config["v"])
    assert len(seen) == 6
