"""The feature-engineering examples run as written (quick mode) and show their point.

They run in this process (``runpy`` as ``__main__``, so exactly the script's code): in a
subprocess most of each test went to importing autodl, tsfresh and featuretools again.
"""

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_example(monkeypatch, capsys, tmp_path):
    from threadpoolctl import threadpool_limits

    def run(name: str, *args: str) -> str:
        script = ROOT / "examples" / name
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", [str(script), *args])
        capsys.readouterr()
        with threadpool_limits(limits=1, user_api="openmp"):
            runpy.run_path(str(script), run_name="__main__")
        return capsys.readouterr().out

    return run


def _accuracy(out: str, label: str) -> float:
    line = next(ln for ln in out.splitlines() if ln.startswith(label))
    return float(line.split("test accuracy ")[1].split()[0])


@pytest.mark.slow
def test_timeseries_tsfresh_beats_raw_values(run_example):
    pytest.importorskip("tsfresh")
    out = run_example("timeseries_tsfresh.py", "--quick")
    raw, fe = _accuracy(out, "raw values"), _accuracy(out, "tsfresh features")
    assert fe >= 0.9, out
    # the measured portfolio tries a 1-nearest-neighbour early, which compares whole series: on the
    # quick run's 72 series it reaches 0.91 on raw values (0.64 on the full run), so the features'
    # lead is smaller than the 0.2 asked before the portfolio; they must still be ahead
    assert fe - raw >= 0.05, out


@pytest.mark.slow
def test_relational_featuretools(run_example):
    pytest.importorskip("featuretools")
    out = run_example("relational_featuretools.py", "--quick")
    raw, fe = _accuracy(out, "customers table only"), _accuracy(out, "deep feature synthesis")
    assert fe >= 0.85 and fe > raw + 0.2, out
    assert "SUM(transactions.amount)" in out or "COUNT(" in out
