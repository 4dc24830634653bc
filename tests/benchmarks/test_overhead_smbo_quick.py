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
    # autodl's GP fits a small model per trial, Optuna's GPSampler optimizes with torch: 30-100x
    # apart in every measurement so far, so a factor 2 holds on a loaded machine too
    assert rows[("gp", 2, 30)]["autodl_ms"] < rows[("gp", 2, 30)]["optuna_ms"] / 2
