"""benchmarks/onnx_latency.py: the quick run exports every model within tolerance and times it."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_onnx_latency_quick(tmp_path, bench, meta_ok):
    out = tmp_path / "o.json"
    result = bench("onnx_latency").main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    meta_ok(result["meta"], "onnx_latency", ("torch", "onnx", "onnxruntime", "skl2onnx"))
    assert result["quick"] and result["repeats"] == 30 and result["threads"] == 1
    kinds = [r["kind"] for r in result["rows"]]
    assert kinds == ["sklearn"] * 4 + ["torch"] * 5  # search winner, RF, HGB, logistic; MLP, CNN, DARTS, LSTM, GRU
    for r in result["rows"]:
        assert r["max_abs_diff"] <= 1e-4
        assert all(r[f"{side}_ms_b{b}"] > 0 for side in ("orig", "onnx") for b in (1, 64))
        if r["kind"] == "torch":  # the tolerance autodl.export_onnx holds torch outputs to
            assert r["within_export_tolerance"] and r["max_proba_diff"] <= 1e-5
        else:  # a single row through sklearn's predict_proba costs ~1 ms, through onnxruntime ~0.03 ms
            assert r["onnx_ms_b1"] < r["orig_ms_b1"]
