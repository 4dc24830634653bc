"""The ONNX latency benchmark runs in quick mode."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_onnx_latency_quick(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("skl2onnx")
    spec = importlib.util.spec_from_file_location("bench_onnx", ROOT / "benchmarks" / "onnx_latency.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    result = mod.main(["--quick", "--out", str(tmp_path / "o.json")])
    assert len(result["rows"]) == 9 and (tmp_path / "o.json").is_file()
    for r in result["rows"]:
        assert r["max_abs_diff"] <= 1e-4
        assert r["onnx_ms_b1"] > 0 and r["orig_ms_b64"] > 0
        if r["kind"] == "torch":  # the tolerance autodl.export_onnx holds torch outputs to
            assert r["within_export_tolerance"] and r["max_proba_diff"] <= 1e-5
