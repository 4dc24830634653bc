"""The benchmark scripts run end to end in their quick modes."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("cocoex")
pytest.importorskip("optuna")

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bbob_quick(tmp_path, capsys):
    bbob = _load("bbob")
    out = tmp_path / "bbob.json"
    result = bbob.main(["--quick", "--workers", "1", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data["summary"] == result["summary"]
    ranks = data["summary"]["mean_rank"]["2"]
    assert set(ranks) == set(bbob.METHODS)
    # 8 methods: ranks average to 4.5 on every problem
    assert abs(sum(ranks.values()) / len(ranks) - 4.5) < 1e-9
    assert all(r["regret"] >= 0 for r in data["runs"])
    assert "autodl-gp" in capsys.readouterr().out


def test_f_opt_is_the_minimum():
    bbob = _load("bbob")
    problem = bbob._problem(1, 2)  # the sphere: f(x_opt) is the minimum
    f_opt = bbob._f_opt(problem)
    import numpy as np

    rng = np.random.default_rng(0)
    assert all(problem(x) >= f_opt for x in rng.uniform(-5, 5, size=(200, 2)))


def test_overhead_smbo_quick(tmp_path):
    overhead = _load("overhead_smbo")
    out = tmp_path / "overhead.json"
    rows = overhead.main(["--quick", "--out", str(out)])
    assert {r["searcher"] for r in rows} == {"tpe", "gp"}
    assert all(r["autodl_ms"] > 0 and r["optuna_ms"] > 0 for r in rows)
    assert json.loads(out.read_text())["rows"] == rows
