"""benchmarks/nas.py: both parts run in quick mode; the guarded cells keep the guard's promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
PARAMETER_FREE = {"none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"}  # ops without weights


def _share(genotype: dict) -> float:
    normal = genotype["normal"]
    return sum(op in PARAMETER_FREE for op, _, _ in normal) / len(normal)


@pytest.mark.slow
@pytest.mark.parametrize("part, methods", [
    ("main", ["DARTS + pf-stop guard", "DARTS (no guard)", "random architectures", "regularized evolution"]),
    ("stress", ["S2: DARTS (no guard)", "S2: DARTS + pf-stop guard"]),
])
def test_nas_benchmark_quick(tmp_path, part, methods, meta_ok):
    out = tmp_path / "nas.json"
    args = ["--quick", "--part", part, "--out", str(out)]
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "nas.py"), *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    meta_ok(result["meta"], "nas", ("torch",))
    assert result["meta"]["argv"] == args
    assert [s["method"] for s in result["summary"]] == methods
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == methods and all(r["seed"] == 0 for r in rows.values())  # quick: seed 0 only
    for row in rows.values():
        assert 0 <= row["test_accuracy"] <= 1 and row["n_params"] > 0 and row["search_cpu_s"] >= 0
        assert len(row["genotype"]["normal"]) == 2 * 2  # quick: 2 nodes, 2 inputs each
        assert row["parameter_free_share"] == _share(row["genotype"])
    settings = result["settings"]
    if part == "main":
        guarded, plain = rows["DARTS + pf-stop guard"], rows["DARTS (no guard)"]
        for name in ("random architectures", "regularized evolution"):
            assert rows[name]["n_architectures"] >= 1
            assert rows[name]["search_cpu_s"] >= guarded["search_cpu_s"] * settings["budget_multiple"] * 0.99
    else:
        guarded, plain = rows["S2: DARTS + pf-stop guard"], rows["S2: DARTS (no guard)"]
        assert {op for op, _, _ in plain["genotype"]["normal"]} <= {"skip_connect", "sep_conv_3x3"}  # space S2
        for row in (guarded, plain):
            assert len(row["share_per_epoch"]) == row["epochs_run"]
        assert plain["parameter_free_share"] == plain["share_per_epoch"][-1]  # plain keeps its last cell
    epochs = settings["epochs"] if part == "main" else settings["stress_epochs"]
    # plain DARTS runs every epoch; the guarded cell is at most half parameter-free (the default limit)
    assert plain["epochs_run"] == epochs and plain["stopped_by"] is None
    assert guarded["parameter_free_share"] <= 0.5
    assert "| method |" in proc.stdout
