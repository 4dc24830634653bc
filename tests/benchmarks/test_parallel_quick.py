"""The parallel benchmark runs in quick mode and reports throughput and busy fractions."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("bench_parallel", ROOT / "benchmarks" / "parallel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_parallel_quick(tmp_path):
    out = tmp_path / "p.json"
    result = _load().main(["--quick", "--no-dask", "--out", str(out)])
    rows = {(r["executor"], r["workers"]): r for r in result["throughput"]}
    assert set(rows) == {("local", 1), ("local", 2)}
    for r in rows.values():
        assert r["trials"] == 4 and r["trials_per_min"] > 0
    schedules = [b["schedule"] for b in result["busy"]]
    assert schedules[0].startswith("asha") and schedules[1].startswith("synchronous")
    for b in result["busy"]:
        assert 0 < b["busy"] <= 1.0 + 1e-6
    assert "| local | 2 |" in result["markdown"]
    assert out.is_file()
