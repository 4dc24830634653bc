"""benchmarks/overhead.py: the quick run measures both tools on both storages."""

from __future__ import annotations

import json
import statistics

import pytest

pytest.importorskip("optuna")


@pytest.mark.slow
def test_overhead_quick(tmp_path, bench, meta_ok):
    out = tmp_path / "o.json"
    result = bench("overhead").main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    meta_ok(result["meta"], "overhead", ("optuna", "sqlalchemy"))
    rows = {(r["tool"], r["storage"]): r for r in result["rows"]}
    assert set(rows) == {("autodl", "memory"), ("autodl", "sqlite"), ("optuna", "memory"), ("optuna", "sqlite")}
    for (_, storage), r in rows.items():
        assert r["trials"] == {"memory": 200, "sqlite": 50}[storage]  # the quick sizes
        assert len(r["runs"]) == result["repeats"] == 1
        assert r["ms_per_trial"] == statistics.median(r["runs"]) > 0
    # the study loop itself must stay cheap: well under a millisecond per trial in memory, and
    # SQLite through autodl cheaper than through Optuna (~150x apart on a quiet machine)
    assert rows[("autodl", "memory")]["ms_per_trial"] < 1.0
    assert rows[("autodl", "sqlite")]["ms_per_trial"] < rows[("optuna", "sqlite")]["ms_per_trial"]
