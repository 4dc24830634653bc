"""benchmarks/multiobjective.py: the quick run, its JSON, and the problems against their
published Pareto fronts."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("optuna")

PACKAGES = ("optuna",)


@pytest.mark.slow
def test_multiobjective_quick(tmp_path, bench, meta_ok):
    mo = bench("multiobjective")
    out = tmp_path / "mo.json"
    result = mo.main(["--quick", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(result))
    meta_ok(data["meta"], "multiobjective", PACKAGES)
    assert data["config"]["optuna_default_sampler"] == "TPESampler"
    assert sorted((r["problem"], r["method"]) for r in data["runs"]) == sorted(
        (p, m) for p in ("zdt1", "dtlz2") for m in mo.METHODS)
    from autodl.searchers.pareto import hypervolume

    for r in data["runs"]:
        assert r["n_trials"] == 20 and r["seed"] == 0
        hv = r["hypervolume"]
        # more trials never shrink the dominated region, and no method passes the true front
        assert 0 < hv["10"] <= hv["20"] <= data["max_hypervolume"][r["problem"]] + 1e-9
    # the stated normalization and reference point reproduce the true front's hypervolume
    p = "zdt1"
    lo, hi = np.array(data["normalization"]["bounds"][p]).T
    front = np.array([[f, 1 - np.sqrt(f)] for f in np.linspace(0, 1, 2000)])
    assert hypervolume((front - lo) / (hi - lo), data["normalization"]["reference_point"][p]) == pytest.approx(
        data["max_hypervolume"][p])
    for p in ("zdt1", "dtlz2"):
        for c in ("10", "20"):
            means = {m: np.mean([r["hypervolume"][c] for r in data["runs"]
                                 if r["problem"] == p and r["method"] == m]) for m in mo.METHODS}
            for m in mo.METHODS:
                assert data["summary"]["hypervolume"][p][m][c]["mean"] == pytest.approx(means[m])


def test_problems_match_their_published_fronts(bench):
    """On g = 1 (distance variables at their optimum) ZDT1 gives f2 = 1 - sqrt(f1), ZDT2
    f2 = 1 - f1^2, ZDT3 f2 = 1 - sqrt(f1) - f1 sin(10 pi f1), and DTLZ2 lies on the unit
    sphere; elsewhere the points are dominated by or off the front."""
    mo = bench("multiobjective")
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.random(6)
        x[1:] = 0.0
        f1 = x[0]
        assert mo.zdt1(x) == pytest.approx([f1, 1 - np.sqrt(f1)])
        assert mo.zdt2(x) == pytest.approx([f1, 1 - f1 ** 2])
        assert mo.zdt3(x) == pytest.approx([f1, 1 - np.sqrt(f1) - f1 * np.sin(10 * np.pi * f1)])
        y = rng.random(6)
        y[2:] = 0.5
        assert np.sum(np.square(mo.dtlz2(y))) == pytest.approx(1.0)
        z = rng.random(6)
        assert np.sum(np.square(mo.dtlz2(z))) >= 1.0 - 1e-12
        g = 1 + 9 * np.mean(z[1:])
        assert mo.zdt1(z)[1] == pytest.approx(g * (1 - np.sqrt(z[0] / g)))
