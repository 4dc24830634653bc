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


# ---------------------------------------------------------------------- part (c): pruning
def _table(curves: dict[str, list[float]], latency: dict[str, float]) -> dict:
    """A hand-made table: configs {"i": name} with accuracies per epoch and a latency."""
    import json as _json

    return {"grid": {"i": list(curves)}, "epochs": len(next(iter(curves.values()))), "dataset": "hand",
            "bounds": [(0.0, 0.5), (0.0, 1.0)],
            "rows": {_json.dumps({"i": k}): {"accuracy": v, "latency_ms": latency[k]} for k, v in curves.items()}}


def test_part_c_counts_epochs_as_trained_and_hypervolume_of_full_trainings(bench):
    """Random search pays every full training; the hypervolume after each one is the dominated
    area of the (error, latency) points trained so far, normalized by the stated bounds: with
    bounds (0, 0.5) x (0, 1) and reference 1.1, error 0.1 (0.2 normalized) at latency 0.5 covers
    (1.1 - 0.2) * (1.1 - 0.5) = 0.54."""
    mp = bench("_mo_pruning")
    table = _table({"a": [0.5, 0.8, 0.9], "b": [0.6, 0.7, 0.75], "c": [0.2, 0.3, 0.95]},
                   {"a": 0.5, "b": 0.1, "c": 0.9})
    run = mp.simulate(table, "random-full", seed=0, budget=9)
    assert run["epochs_used"] == 9 and run["n_full"] == 3 and [e for e, _ in run["curve"]] == [0, 3, 6, 9]
    first = run["full"][0]
    err = 1 - table["rows"][first]["accuracy"][-1]
    lat = table["rows"][first]["latency_ms"]
    assert run["curve"][1][1] == pytest.approx((1.1 - err / 0.5) * (1.1 - lat))
    # all three: a at (0.2, 0.5), b at (0.5, 0.1), c at (0.1, 0.9) normalized, all non-dominated
    pts = sorted([(0.2, 0.5), (0.5, 0.1), (0.1, 0.9)])
    area, top = 0.0, 1.1
    for x, y in pts:  # sweep by the first objective
        area += (1.1 - x) * max(top - y, 0.0)
        top = min(top, y)
    assert run["final_hypervolume"] == pytest.approx(area)


def test_part_c_a_promotion_costs_only_the_extra_epochs(bench):
    """MO-ASHA with budgets 1 and 3 (eta 3): three configs at 1 epoch, then the best of them is
    promoted and continued from its checkpoint: 1 + 1 + 1 + 2 = 5 epochs for one full training."""
    mp = bench("_mo_pruning")
    table = _table({"a": [0.5, 0.8, 0.9], "b": [0.6, 0.7, 0.75], "c": [0.2, 0.3, 0.95]},
                   {"a": 0.5, "b": 0.1, "c": 0.9})
    run = mp.simulate(table, "moasha-hv", seed=0, budget=5)
    assert run["epochs_used"] == 5 and run["n_full"] == 1 and run["jobs"] == 4
    # after one epoch b (error 0.4, latency 0.1) dominates a (0.5, 0.5) and c (0.8, 0.9): it is
    # the first rung's front alone, and floor(3 / 3) = 1 config is promoted
    assert run["full"] == ['{"i": "b"}']


@pytest.mark.slow
def test_part_c_quick(tmp_path, bench, meta_ok):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    mo = bench("multiobjective")
    out, table = tmp_path / "c.json", tmp_path / "table.json"
    result = mo.main(["--part", "c", "--quick", "--out", str(out), "--table", str(table)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(result))
    meta_ok(data["meta"], "multiobjective", ("torch", "onnx", "onnxruntime"))
    rows = json.loads(table.read_text())["rows"]
    assert len(rows) == 8 and all(len(r["accuracy"]) == 3 and r["latency_ms"] > 0 for r in rows.values())
    norm = data["normalization"]
    assert norm["reference_point"] == [1.1, 1.1] and norm["bounds"][0] == [0.0, 0.1]
    # latency from 0 to twice the median latency, rounded up to two significant digits
    twice = 2 * float(np.median([r["latency_ms"] for r in rows.values()]))
    assert norm["bounds"][1][0] == 0.0 and twice <= norm["bounds"][1][1] <= twice * 1.1
    from autodl.searchers.pareto import hypervolume

    lo, hi = np.array(norm["bounds"]).T
    runs = data["cnn"]["runs"]
    assert sorted(r["method"] for r in runs) == sorted(data["config"]["methods"])
    for r in runs:
        epochs = [e for e, _ in r["curve"]]
        hv = [h for _, h in r["curve"]]
        assert epochs == sorted(epochs) and hv == sorted(hv)  # hypervolume never shrinks
        # the final hypervolume, recomputed from the table and the stated bounds
        pts = np.array([[1 - rows[k]["accuracy"][-1], rows[k]["latency_ms"]] for k in r["full"]])
        assert r["final_hypervolume"] == pytest.approx(hypervolume((pts - lo) / (hi - lo), [1.1, 1.1]))
    assert set(data["tie_breaks"]["cnn"]) == {"moasha-hv", "moasha-crowding", "moasha-random"}
