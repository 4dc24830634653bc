"""benchmarks/automl.py: the quick run scores autodl, AutoGluon, FLAML and both HGB tools on iris
and diabetes, and the summary agrees with what this test recomputes on its own.

Needs the bench extra (AutoGluon, FLAML): under ``make test`` it skips; run it with the Python
that has them, e.g. ``/work/bench-venv/bin/python -m pytest tests/benchmarks/test_automl_quick.py``.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("autogluon.tabular")
pytest.importorskip("flaml")
pytest.importorskip("optuna")
pytest.importorskip("onnxruntime")

BUDGET = 8.0
#: what a tool's fit call may take past the budget: AutoGluon fits its weighted ensemble and
#: saves after ``time_limit``, Optuna's running trial and the refit finish after ``timeout``,
#: autodl stops trials at its deadline with a slack of its own (seconds on a loaded machine)
SLACK = 10.0
#: tools whose budget is not checked: FLAML does not stop a running trial at ``time_budget``; on
#: iris its first CatBoost trial (started at 3.8 s of 8) ran for 121 s (FLAML 2.8, CatBoost 1.2.10)
OVERRUNS = ("flaml",)
TOOLS = ("autodl", "autogluon", "flaml", "hgb_default", "hgb_optuna")


@pytest.mark.slow
@pytest.mark.timeout(900)  # FLAML's overrun (above) plus 9 runs of 8 s on a loaded machine
def test_automl_benchmark_quick(tmp_path, bench, meta_ok, hgb_default_score):
    import autogluon.tabular
    import flaml
    from scipy.stats import rankdata

    out, cache = tmp_path / "a.json", tmp_path / "cache.json"
    automl = bench("automl")
    # one thread per tool: on a shared 2-core machine two OpenMP threads per process stall each
    # other and no tool keeps to its budget (see the script's docstring)
    result = automl.main(["--quick", "--threads", "1", "--out", str(out), "--cache", str(cache)])
    assert json.loads(out.read_text()) == result
    meta_ok(result["meta"], "automl", ("torch", "pandas", "optuna", "onnxruntime"))
    assert result["meta"]["versions"]["autogluon.tabular"] == autogluon.tabular.__version__
    assert result["meta"]["versions"]["flaml"] == flaml.__version__
    assert result["tool_versions"]["autogluon"] == f"autogluon.tabular {autogluon.tabular.__version__}"
    assert result["time_budget"] == BUDGET and result["seeds"] == [0] and result["threads"] == 1

    records = result["records"]
    assert sorted((r["table"], r["tool"]) for r in records) == sorted(
        (t, tool) for t in ("iris", "diabetes") for tool in TOOLS)
    for r in records:
        assert r["ok"], r
        assert not r["cached"]
        assert r["fit_seconds"] > 0
        if r["tool"] not in OVERRUNS:
            assert r["fit_seconds"] <= BUDGET + SLACK, r
        assert r["fit_seconds"] <= r["seconds"] <= r["process_seconds"]
        assert r["predict_ms"] > 0
        assert r["metric"] == ("accuracy" if r["table"] == "iris" else "r2")
        if r["table"] == "iris":
            assert (r["n_train"], r["n_test"]) == (112, 38)
            assert r["score"] >= 0.85, r  # any sensible model separates iris
        if r["tool"] == "hgb_default":  # the same split and model as scikit-learn gives on its own
            assert r["score"] == pytest.approx(hgb_default_score(r["table"]), abs=1e-12)
        if r["tool"] == "autodl":
            assert r["onnx_ok"] and 0 < r["onnx_ms"] <= r["onnx_feeds_ms"]
            if r["table"] == "iris":
                assert r["onnx_label_agreement"] == 1.0
            else:
                # tree ensembles run in float32 in ONNX (skl2onnx's TreeEnsemble): each tree's
                # value rounds to float32 (relative 6e-8), and a sum of a few hundred trees stays
                # within 1e-5 of the prediction's size (5.5e-5 absolute seen on diabetes, targets 25-346)
                assert r["onnx_max_rel_diff"] < 1e-5, r
        if r["tool"] == "autogluon":
            assert r["info"]["models"] and isinstance(r["info"]["failures"], list)

    summary = result["summary"]
    n_tools = len(TOOLS)
    scores = {(r["table"], r["tool"]): r["score"] for r in records}
    for table, block in summary["tables"].items():
        tools = block["tools"]
        assert set(tools) == set(TOOLS)
        means = [scores[table, t] for t in TOOLS]
        expected = rankdata([-m for m in means])  # 1 = best, ties averaged
        for t, rank in zip(TOOLS, expected):
            assert 1 <= tools[t]["rank"] <= n_tools
            assert tools[t]["rank"] == pytest.approx(rank)
            assert tools[t]["mean"] == scores[table, t] and tools[t]["se"] == 0.0  # one seed
            lo, hi = min(means), max(means)
            assert tools[t]["normalized"] == pytest.approx((scores[table, t] - lo) / (hi - lo) if hi > lo else 1.0)
    for t in TOOLS:
        ranks = [summary["tables"][table]["tools"][t]["rank"] for table in ("iris", "diabetes")]
        assert summary["mean_rank"][t] == pytest.approx(sum(ranks) / 2)
        assert 0 <= summary["mean_normalized_score"][t] <= 1
        assert summary["seconds"][t]["runs"] == 2
    # one seed: the standard error is 0, so a win is any strictly better score
    for anchor in TOOLS[1:]:
        wtl = summary["wins_ties_losses"][f"autodl vs {anchor}"]
        diffs = [scores[table, "autodl"] - scores[table, anchor] for table in ("iris", "diabetes")]
        assert (wtl["win"], wtl["tie"], wtl["loss"]) == (
            sum(d > 1e-12 for d in diffs), sum(abs(d) <= 1e-12 for d in diffs), sum(d < -1e-12 for d in diffs))
    assert summary["onnx_ms_median"] > 0
    assert "| iris | accuracy |" in result["markdown"]

    # the anchors are cached: a re-run measures nothing for them and reports the same scores
    entries = json.loads(cache.read_text())["entries"]
    assert len(entries) == 2 * 4 and all("|threads=1" in k and "|T=8|" in k for k in entries)
    again = automl.main(["--quick", "--threads", "1", "--tools", "hgb_default", "flaml", "--tables", "iris",
                         "--out", str(tmp_path / "b.json"), "--cache", str(cache)])
    assert all(r["cached"] for r in again["records"])
    assert {r["tool"]: r["score"] for r in again["records"]} == {t: scores["iris", t] for t in ("hgb_default", "flaml")}
    assert json.loads(cache.read_text())["entries"] == entries
