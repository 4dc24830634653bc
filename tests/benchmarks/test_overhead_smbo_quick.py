"""benchmarks/overhead_smbo.py: the quick run measures both searchers against Optuna."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("optuna")
pytest.importorskip("torch")  # Optuna's GPSampler


@pytest.mark.slow
def test_overhead_smbo_quick(tmp_path, bench, meta_ok):
    out = tmp_path / "overhead_smbo.json"
    result = bench("overhead_smbo").main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    meta_ok(result["meta"], "overhead_smbo", ("optuna", "torch"))
    rows = {(r["searcher"], r["dim"], r["trial"]): r for r in result["rows"]}
    assert set(rows) == {("tpe", 2, 50), ("gp", 2, 30)}  # the quick grid
    for r in rows.values():
        assert r["autodl_ms"] > 0 and r["optuna_ms"] > 0
        assert r["ratio"] == pytest.approx(r["autodl_ms"] / r["optuna_ms"])
    # autodl's GP is cheaper per ask than Optuna's GPSampler; by how much depends on torch's thread
    # pool (Optuna's GP runs on torch): 10-30x standalone, ~2x inside the test process where torch
    # runs one thread (a CI run measured 24 vs 47 ms), so only the order is asserted here
    assert rows[("gp", 2, 30)]["autodl_ms"] < rows[("gp", 2, 30)]["optuna_ms"]
