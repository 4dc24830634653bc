"""The multi-fidelity benchmark runs in quick mode and reports every method."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("bench_multifidelity", ROOT / "benchmarks" / "multifidelity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_multifidelity_quick(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("optuna")
    out = tmp_path / "mf.json"
    result = _load().main(["--quick", "--out", str(out)])
    block = result["spaces"]["mlp"]
    assert set(block["runs"]) == {"hyperband", "bohb", "asha", "optuna"}
    target = block["random"][0]["target"]
    assert 0 < target <= 1
    for m, runs in block["runs"].items():
        r = runs[0]
        assert r["trained"] > 0
        assert r["epochs"] is None or r["epochs"] <= r["trained"]
    assert block["checkpoints"]["hyperband"]["from_scratch"] >= block["checkpoints"]["hyperband"]["trained"]
    assert result["overhead"][0]["bare_ms_per_epoch"] > 0
    assert {o["writes"] for o in result["overhead"]} == {"background", "synchronous"}
    saved = json.loads(out.read_text())
    assert "| hyperband |" in saved["markdown"]
