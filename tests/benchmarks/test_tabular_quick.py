"""The tabular benchmark runs in quick mode and reports every tool on every set."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tabular_benchmark_quick(tmp_path):
    pytest.importorskip("optuna")
    spec = importlib.util.spec_from_file_location("bench_tabular", ROOT / "benchmarks" / "tabular.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "t.json"
    # autodl's budget is a deadline and its trials run in a worker process that takes seconds
    # to start: 1 s would end with no trial complete
    result = mod.main(["--quick", "--budget", "8", "--out", str(out)])
    assert [r["dataset"] for r in result["rows"]] == ["iris", "diabetes"]
    for row in result["rows"]:
        for tool in ("autodl", "hgb_default", "hgb_optuna"):
            assert row[tool]["seconds"] > 0 and row[tool]["n_trials"] >= 1
        assert 0 <= row["autodl"]["test_score"] <= 1
    assert json.loads(out.read_text())["rows"][0]["autodl"]["test_score"] == result["rows"][0]["autodl"]["test_score"]
    assert "| iris | accuracy |" in result["markdown"]
