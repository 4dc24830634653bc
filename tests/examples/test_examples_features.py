"""The feature-engineering examples run as written (quick mode) and show their point."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args, cwd):
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _accuracy(out: str, label: str) -> float:
    line = next(ln for ln in out.splitlines() if ln.startswith(label))
    return float(line.split("test accuracy ")[1].split()[0])


@pytest.mark.slow
def test_timeseries_tsfresh_beats_raw_values(tmp_path):
    pytest.importorskip("tsfresh")
    out = _run([str(ROOT / "examples" / "timeseries_tsfresh.py"), "--quick"], tmp_path)
    raw, fe = _accuracy(out, "raw values"), _accuracy(out, "tsfresh features")
    assert fe >= 0.9, out
    assert raw <= 0.75 and fe - raw >= 0.2, out


@pytest.mark.slow
def test_relational_featuretools(tmp_path):
    pytest.importorskip("featuretools")
    out = _run([str(ROOT / "examples" / "relational_featuretools.py"), "--quick"], tmp_path)
    raw, fe = _accuracy(out, "customers table only"), _accuracy(out, "deep feature synthesis")
    assert fe >= 0.85 and fe > raw + 0.2, out
    assert "SUM(transactions.amount)" in out or "COUNT(" in out
