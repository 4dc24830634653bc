"""benchmarks/multiobjective_tabular.py: the quick run, and its JSON's summary recomputed from its
records with a 2-D hypervolume written here (not autodl's)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("optuna")
pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

PACKAGES = ("optuna", "onnxruntime", "onnx", "skl2onnx")


def sweep_hypervolume(points: np.ndarray, reference: list[float]) -> float:
    """Area dominated by ``points`` (2 minimized objectives) and bounded by ``reference``."""
    r1, r2 = reference
    inside = sorted((float(a), float(b)) for a, b in points if a < r1 and b < r2)
    area, level = 0.0, r2
    for f1, f2 in inside:  # by the first objective; each point adds the strip below the last level
        if f2 < level:
            area += (r1 - f1) * (level - f2)
            level = f2
    return area


def test_sweep_hypervolume_by_hand():
    assert sweep_hypervolume(np.array([[0.0, 0.0]]), [1.0, 1.0]) == pytest.approx(1.0)
    assert sweep_hypervolume(np.array([[0.5, 0.0], [0.0, 0.5], [0.6, 0.6]]), [1.0, 1.0]) == pytest.approx(0.75)
    assert sweep_hypervolume(np.array([[1.5, 0.0]]), [1.0, 1.0]) == 0.0


def normalized(data: dict, table: str, front: list) -> np.ndarray:
    """``(accuracy, latency_ms)`` rows as the JSON states its objectives and bounds."""
    assert data["normalization"]["objectives"] == ["1 - accuracy", "log10(latency_ms)"]
    (lo1, hi1), (lo2, hi2) = data["normalization"]["bounds"][table]
    f = np.array(front, dtype=float).reshape(-1, 2)
    return np.column_stack([(1 - f[:, 0] - lo1) / (hi1 - lo1), (np.log10(f[:, 1]) - lo2) / (hi2 - lo2)])


@pytest.mark.slow
def test_multiobjective_tabular_quick(tmp_path, bench, meta_ok):
    mt = bench("multiobjective_tabular")
    out, cache = tmp_path / "mot.json", tmp_path / "table.json"
    result = mt.main(["--quick", "--out", str(out), "--cache", str(cache)])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(result))
    meta_ok(data["meta"], "multiobjective_tabular", PACKAGES)
    assert data["config"]["optuna_default_sampler"] == "TPESampler"
    tables, methods, seeds = data["config"]["tables"], data["config"]["methods"], data["config"]["seeds"]
    assert tables == ["breast_cancer", "digits"] and seeds == [0, 1] and methods == mt.METHODS
    assert sorted((r["problem"], r["method"], r["seed"]) for r in data["runs"]) == sorted(
        (t, m, s) for t in tables for m in methods for s in seeds)

    # every front point is a tabulated measurement; the bounds are the grid's best and median
    tabulated = json.loads(cache.read_text())["tables"]
    for t in tables:
        entries = tabulated[t].values()
        assert len(tabulated[t]) == data["tabulation"][t]["configurations"] == 11
        grid = normalized(data, t, [[e["accuracy"], e["latency_ms"]] for e in entries])
        assert grid.min(axis=0) == pytest.approx([0, 0]) and np.median(grid, axis=0) == pytest.approx([1, 1])
        reference = data["normalization"]["reference_point"][t]
        assert data["max_hypervolume"][t] == pytest.approx(sweep_hypervolume(grid, reference))

    hv = {}
    for r in data["runs"]:
        t = r["problem"]
        measured = {(e["accuracy"], e["latency_ms"]) for e in tabulated[t].values()}
        assert r["n_trials"] == 20
        for c in ("10", "20"):
            assert {tuple(p) for p in r["front"][c]} <= measured
            own = sweep_hypervolume(normalized(data, t, r["front"][c]), data["normalization"]["reference_point"][t])
            assert r["hypervolume"][c] == pytest.approx(own, abs=1e-12)
            hv[t, r["method"], c, r["seed"]] = own
        assert 0 <= r["hypervolume"]["10"] <= r["hypervolume"]["20"] <= data["max_hypervolume"][t] + 1e-12

    # the summary: mean and standard error over seeds, and the goal from the means
    for t in tables:
        for c in ("10", "20"):
            means = {}
            for m in methods:
                v = [hv[t, m, c, s] for s in seeds]
                cell = data["summary"]["hypervolume"][t][m][c]
                means[m] = float(np.mean(v))
                assert cell["mean"] == pytest.approx(means[m]) and cell["n"] == len(seeds)
                assert cell["se"] == pytest.approx(np.std(v, ddof=1) / math.sqrt(len(v)))
            ours = max(means[m] for m in ("autodl-motpe", "autodl-nsga2"))
            theirs = max(means[m] for m in ("optuna-default", "optuna-nsga2"))
            goal = data["summary"]["goal"][t][c]
            assert goal["autodl_hv"] == pytest.approx(ours) and goal["optuna_hv"] == pytest.approx(theirs)
            assert goal["met"] == (ours >= theirs)
