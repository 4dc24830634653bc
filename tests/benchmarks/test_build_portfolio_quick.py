"""benchmarks/build_portfolio.py: the quick run measures every candidate on every table once,
caches the matrix so a re-run measures nothing, and writes the portfolio greedy selection gives
on the normalized matrix (recomputed here from the cached scores)."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_build_portfolio_quick(tmp_path, bench, meta_ok):
    import autodl
    from autodl.tabular.portfolio import greedy_portfolio

    script = bench("build_portfolio")
    matrix_path, out, written = tmp_path / "m.json", tmp_path / "lodo.json", tmp_path / "portfolio.json"
    args = ["--quick", "--matrix", str(matrix_path), "--out", str(out), "--portfolio-out", str(written), "--write"]
    report = script.main(args)
    assert json.loads(out.read_text()) == report
    meta_ok(report["meta"], "build_portfolio", ())
    matrix = json.loads(matrix_path.read_text())
    meta_ok(matrix["meta"], "build_portfolio", ())

    space = autodl.Space.load("tabular")
    configs, _ = script.candidates(space, quick=True)
    tables = list(script.QUICK_TABLES)
    assert report["tables"] == tables and report["n_candidates"] == len(configs)
    assert set(matrix["records"]) == {script.table_id(t) for t in tables}
    for tid, records in matrix["records"].items():
        assert set(records) == {script.config_id(c) for c in configs}, tid
        for r in records.values():
            assert r["status"] in ("ok", "skipped", "failed")
            if r["status"] == "ok":
                assert np.isfinite(r["score"]) and r["seconds"] > 0

    # the LODO table has every method at every position and budget, scores in [0, 1]
    for name in ("hand-picked (5)", "random order", "greedy a=0 L=5", "greedy a=1 L=12"):
        row = report["lodo"][name]
        assert set(row["after_k"]) == {str(k) for k in script.KS}
        assert all(0.0 <= v <= 1.0 for v in [*row["after_k"].values(), *row["within_seconds"].values()])
        ks = [row["after_k"][str(k)] for k in script.KS]
        assert ks == sorted(ks)  # the best so far never drops

    # the written portfolio is greedy selection on the normalized cached scores, recomputed here
    stored = json.loads(written.read_text())
    chosen = report["chosen"]
    raw = np.array([[np.nan if (r := matrix["records"][script.table_id(t)][script.config_id(c)])["score"] is None
                     else r["score"] for c in configs] for t in tables])
    sec = np.array([[np.nan if (r := matrix["records"][script.table_id(t)][script.config_id(c)])["status"] == "skipped"
                     else r["seconds"] or 0.0 for c in configs] for t in tables])
    sec = np.where(np.isnan(sec), np.nanmax(sec, axis=1, keepdims=True), sec)  # skipped: the slowest's cost
    norm = np.zeros_like(raw)
    for i, row in enumerate(raw):
        ok = np.isfinite(row)
        med, best = np.median(row[ok]), row[ok].max()
        norm[i, ok] = np.clip((row[ok] - med) / (best - med), 0, 1) if best > med else (row[ok] >= best)
    med_sec = np.array([np.median(r[r > 0]) for r in sec])
    order = greedy_portfolio(norm, chosen["length"], sec / med_sec[:, None], alpha=chosen["alpha"])
    assert stored["configs"] == [configs[j] for j in order]
    assert all(space.contains(c) for c in stored["configs"])
    assert set(stored["rules"]) == {"multiclass_linear_first", "forests_last_rows"}

    # a re-run measures nothing: the cached records are reused as they are
    again = script.main(args)
    assert json.loads(matrix_path.read_text())["records"] == matrix["records"]
    assert again["chosen"]["order"] == chosen["order"]
