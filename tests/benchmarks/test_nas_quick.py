"""The NAS benchmark runs in quick mode (both parts) and reports every method."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("part, methods", [
    ("main", {"DARTS + pf-stop guard", "DARTS (no guard)", "random architectures", "regularized evolution"}),
    ("stress", {"S2: DARTS (no guard)", "S2: DARTS + pf-stop guard"}),
])
def test_nas_benchmark_quick(tmp_path, part, methods):
    pytest.importorskip("torch")
    out = tmp_path / "nas.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "nas.py"), "--quick", "--part", part,
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert {s["method"] for s in result["summary"]} == methods
    for row in result["rows"]:
        assert 0 <= row["test_accuracy"] <= 1 and row["n_params"] > 0 and row["search_cpu_s"] >= 0
        assert 0 <= row["parameter_free_share"] <= 1
    if part == "main":
        darts = next(r for r in result["rows"] if r["method"] == "DARTS + pf-stop guard")
        rnd = next(r for r in result["rows"] if r["method"] == "random architectures")
        assert rnd["search_cpu_s"] >= darts["search_cpu_s"] * result["settings"]["budget_multiple"] * 0.99
    assert "| method |" in proc.stdout
