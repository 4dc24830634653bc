"""The overhead benchmark runs in quick mode and measures both tools on both storages."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("bench_overhead", ROOT / "benchmarks" / "overhead.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_overhead_quick(tmp_path):
    pytest.importorskip("optuna")
    result = _load().main(["--quick", "--out", str(tmp_path / "o.json")])
    rows = {(r["tool"], r["storage"]): r for r in result["rows"]}
    assert set(rows) == {("autodl", "memory"), ("autodl", "sqlite"), ("optuna", "memory"), ("optuna", "sqlite")}
    for r in rows.values():
        assert r["ms_per_trial"] > 0
    # the study loop itself must stay cheap: well under a millisecond per trial in memory
    assert rows[("autodl", "memory")]["ms_per_trial"] < 1.0
    assert rows[("autodl", "sqlite")]["ms_per_trial"] < rows[("optuna", "sqlite")]["ms_per_trial"]
    assert (tmp_path / "o.json").is_file()
