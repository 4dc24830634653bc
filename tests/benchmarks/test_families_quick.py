"""benchmarks/families.py: the quick run measures LightGBM and CatBoost on 4 tables with
build_portfolio's splits, caches them so a re-run measures nothing, and its summary agrees with a
recomputation from the cached records (per-table comparisons and the LODO score after one config)."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _norm(raw: np.ndarray) -> np.ndarray:
    out = np.zeros_like(raw)
    for i, row in enumerate(raw):
        ok = np.isfinite(row)
        med, best = np.median(row[ok]), row[ok].max()
        out[i, ok] = np.clip((row[ok] - med) / (best - med), 0, 1) if best > med else (row[ok] >= best)
    return out


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_families_quick(tmp_path, bench, meta_ok):
    pytest.importorskip("lightgbm")
    pytest.importorskip("catboost")
    import autodl
    from autodl.tabular.portfolio import greedy_portfolio

    script = bench("families")
    bp = script.bp
    cache_path, out = tmp_path / "cache.json", tmp_path / "families.json"
    args = ["--quick", "--cache", str(cache_path), "--out", str(out)]
    report = script.main(args)
    assert json.loads(out.read_text()) == report
    meta_ok(report["meta"], "families", ())
    cache = json.loads(cache_path.read_text())
    matrix = json.loads(bp.MATRIX.read_text())

    tables = list(bp.QUICK_TABLES)
    extras = list(script.QUICK_CANDIDATES.values())
    base, _ = bp.candidates(autodl.Space.load("tabular"))
    assert report["tables"] == tables and report["n_matrix_candidates"] == len(base)
    for t in tables:
        records = cache["records"][bp.table_id(t)]
        assert set(records) == {bp.config_id(c) for c in [*extras, script.CONTROL]}
        assert all(r["status"] == "ok" and np.isfinite(r["score"]) and r["seconds"] > 0 for r in records.values())

    def rec(t, c):
        return {**matrix["records"][bp.table_id(t)], **cache["records"][bp.table_id(t)]}[bp.config_id(c)]

    # per table: best LightGBM against the best HGB candidate of the matrix, recomputed
    hgb = [c for c in base if c["model"] == "hist_gb"]
    lgbm = [c for c in extras if c["model"] == "lightgbm"]
    diffs, ratios = [], []
    for t, row in zip(tables, report["per_table"]):
        best_h = max((rec(t, c) for c in hgb if rec(t, c)["status"] == "ok"), key=lambda r: r["score"])
        best_l = max((rec(t, c) for c in lgbm), key=lambda r: r["score"])
        assert row["table"] == t
        assert row["lightgbm_minus_hgb"] == pytest.approx(best_l["score"] - best_h["score"])
        diffs.append(best_l["score"] - best_h["score"])
        ratios.append(best_l["seconds"] / best_h["seconds"])
    s = report["summary"]["best_lightgbm_vs_best_hgb"]
    assert s["better"] == sum(d > 1e-9 for d in diffs) and s["worse"] == sum(d < -1e-9 for d in diffs)
    assert s["mean_difference"] == pytest.approx(np.mean(diffs))
    assert s["median_seconds_ratio"] == pytest.approx(np.median(ratios))

    # LODO after one config of plain greedy (L=5), without and with the new candidates,
    # normalized over all of them together
    configs = base + extras
    raw = np.array([[np.nan if rec(t, c)["score"] is None else rec(t, c)["score"] for c in configs]
                    for t in tables])
    sec = np.array([[np.nan if rec(t, c)["status"] == "skipped" else rec(t, c)["seconds"] or 0.0 for c in configs]
                    for t in tables])
    sec = np.where(np.isnan(sec), np.nanmax(sec, axis=1, keepdims=True), sec)
    norm = _norm(raw)
    rel = sec / np.array([np.median(r[r > 0]) for r in sec])[:, None]
    for label, cols in (("none", list(range(len(base)))), ("all", list(range(len(configs))))):
        firsts = []
        for i in range(len(tables)):
            rest = [j for j in range(len(tables)) if j != i]
            order = greedy_portfolio(norm[np.ix_(rest, cols)], 5, rel[np.ix_(rest, cols)], alpha=0.0)
            firsts.append(norm[i, cols[order[0]]])
        got = report["lodo"][label]["variants"]["greedy a=0 L=5"]["after_k"]["1"]
        assert got == pytest.approx(np.mean(firsts)), label
    gain = report["summary"]["gain_of_chosen"]["all"]
    lodo = report["lodo"]
    assert gain["mean_over_budgets"] == pytest.approx(lodo["all"]["chosen_scores"]["mean_over_budgets"]
                                                      - lodo["none"]["chosen_scores"]["mean_over_budgets"])
    pt = gain["per_table_at_choice_budget"]
    assert report["summary"]["pays"]["all"] == (gain["mean_over_budgets"] > script.PAYS_MARGIN
                                                and pt["mean"] > 2 * pt["standard_error"])

    # ONNX: CatBoost's own export reproduces it on the bundled tables; LightGBM's is recorded
    assert report["onnx"]["catboost"]["tables"]["iris"]["verified"]
    lightgbm_onnx = report["onnx"]["lightgbm"]
    if lightgbm_onnx["available"]:
        assert lightgbm_onnx["tables"]["iris"]["verified"]

    # a re-run measures nothing: the cached records are reused as they are
    again = script.main(args)
    assert json.loads(cache_path.read_text())["records"] == cache["records"]
    assert again["summary"] == report["summary"]
