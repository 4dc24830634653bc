"""benchmarks/multifidelity.py: the quick run, checked against the budgets it must have used."""

from __future__ import annotations

import json
import math
import statistics

import pytest

pytest.importorskip("torch")
pytest.importorskip("optuna")


def hyperband_bracket(r: float, R: float, eta: int) -> tuple[list[int], list[float]]:
    """Sizes and budgets of Hyperband's most aggressive bracket (Li et al. 2018, Algorithm 1)."""
    s_max = round(math.log(R / r, eta))
    n = math.ceil((s_max + 1) / (s_max + 1) * eta ** s_max)
    return [n // eta ** i for i in range(s_max + 1)], [R * eta ** (i - s_max) for i in range(s_max + 1)]


@pytest.mark.slow
def test_multifidelity_quick(tmp_path, bench, meta_ok):
    out = tmp_path / "mf.json"
    result = bench("multifidelity").main(["--quick", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    (m,) = result["measurements"]
    meta_ok(m["meta"], "multifidelity", ("torch", "optuna"))
    assert m["id"] == 0 and m["seeds"] == {"mlp": [0]} and m["overhead"] == ["mlp"]
    block = result["spaces"]["mlp"]
    assert set(block["runs"]) == {"hyperband", "bohb", "asha", "optuna"}
    (rnd,) = block["random"]
    cap = 4 * 9  # quick: 4 random configs x max budget 9
    assert rnd["epochs"] == cap and 0 < rnd["target"] <= 1
    for method, (r,) in block["runs"].items():
        assert r["seed"] == 0 and r["measurement"] == 0
        if r["epochs"] is None:  # not reached: it trained (at least) random search's epochs
            assert r["trained"] >= cap and r["best"] < rnd["target"] and r["ratio"] is None
        else:  # reached: stopped right then, with a job at the target
            assert r["epochs"] == r["trained"] and r["best"] >= rnd["target"] - 1e-9
            assert r["ratio"] == pytest.approx(r["epochs"] / cap)
        assert block["median_ratio"][method] == (r["ratio"] if r["ratio"] is not None else None)
        if method != "optuna":
            c = block["checkpoints"][method]
            assert c["trained"] == r["trained"] and c["from_scratch"] == r["trained"] + r["resumed"]
            assert c["saved_pct"] == pytest.approx(100 * r["resumed"] / (r["trained"] + r["resumed"]))
    # the overhead study runs Hyperband's first bracket for (1, 9, 3): 9, 3, 1 trials at 1, 3, 9
    # epochs; a promoted trial resumes from its checkpoint and trains only the difference
    sizes, budgets = hyperband_bracket(1, 9, 3)
    assert (sizes, budgets) == ([9, 3, 1], [1, 3, 9])
    resumed_epochs = sum(n * (b - prev) for n, b, prev in zip(sizes, budgets, [0] + budgets[:-1]))
    assert {o["writes"] for o in result["overhead"]} == {"background", "synchronous"}
    for o in result["overhead"]:
        assert o["trials_per_run"] == sum(sizes) == 13
        assert o["epochs_per_run"] == resumed_epochs == 21
        assert o["measurements"] == [0] and o["repeats"] == len(o["overhead_pct_per_run"]) == 1
        assert o["paired_overhead_pct"] == statistics.median(o["overhead_pct_per_run"])
        assert o["bare_ms_per_epoch"] > 0 and o["autodl_ms_per_epoch"] > 0
    assert "| hyperband |" in result["markdown"] and m["meta"]["git"]["commit"][:7] in result["markdown"]
