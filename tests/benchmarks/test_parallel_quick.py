"""benchmarks/parallel.py: the quick run reports throughput and busy fractions."""

from __future__ import annotations

import json
import math

import pytest


def successive_halving_trials(n: int, eta: int, rungs: int) -> int:
    """Trials of one synchronous successive-halving bracket: n, n // eta, n // eta**2, ..."""
    return sum(max(1, n // eta ** k) for k in range(rungs))


@pytest.mark.slow
def test_parallel_quick(tmp_path, bench, meta_ok):
    out = tmp_path / "p.json"
    result = bench("parallel").main(["--quick", "--no-dask", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    meta_ok(result["meta"], "parallel", ("dask", "distributed"))
    rows = {(r["executor"], r["workers"]): r for r in result["throughput"]}
    assert set(rows) == {("local", 1), ("local", 2)}
    for r in rows.values():
        assert r["trials"] == 4 and r["trials_per_min"] > 0  # quick: 4 trials per row
        assert r["wall_s"] > 0 and r["mean_trial_s"] > 0
    assert result["goals"]["local_speedup"] == pytest.approx(
        rows[("local", 2)]["trials_per_min"] / rows[("local", 1)]["trials_per_min"])
    assert result["goals"]["dask_speedup"] is None  # --no-dask: not measured, not made up
    busy = {b["schedule"].split(" ")[0]: b for b in result["busy"]}
    # quick: 12 sleeping trials through Study.optimize; synchronous SH on 9 configs, eta 3,
    # budgets 1, 3, 9 runs 9 + 3 + 1 trials
    assert busy["asha"]["trials"] == 12 and busy["sh"]["trials"] == 12
    assert busy["synchronous"]["trials"] == successive_halving_trials(9, 3, 3) == 13
    for b in result["busy"]:  # time inside trials / (2 workers x wall): above 1 would mean a third worker
        assert 0 < b["busy"] <= 1.0 + 1e-6 and math.isfinite(b["wall_s"])
    assert "| local | 2 |" in result["markdown"]
