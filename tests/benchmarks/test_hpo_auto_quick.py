"""benchmarks/hpo_auto.py: the quick run, its split, and auto's runs being exactly the runs of the
searcher the rule picks (checked against the suite's own runs of that searcher)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("optuna")

PACKAGES = ("optuna", "cmaes", "torch")


@pytest.mark.slow
def test_hpo_auto_quick(tmp_path, bench, meta_ok):
    auto = bench("hpo_auto")
    tables, cache, out = tmp_path / "tables", tmp_path / "cache.json", tmp_path / "auto.json"
    result = auto.main(["--quick", "--workers", "1", "--tables-dir", str(tables), "--cache", str(cache),
                        "--out", str(out)])
    data = json.loads(out.read_text())
    assert data == result
    meta_ok(data["meta"], "hpo_auto", PACKAGES)

    # the rule on the two quick problems: GP without conditions, TPE on the conditional CASH space
    assert {n: c["searcher"] for n, c in data["choices"].items()} == {"cont-sphere-d2": "gp",
                                                                       "cash-tiny-wine": "tpe"}
    # one problem per family: the seeds split, seed 0 design and seed 1 holdout
    assert data["config"]["split"] == {"cont-sphere-d2": ["design", "holdout"],
                                       "cash-tiny-wine": ["design", "holdout"]}
    runs = json.loads(cache.read_text())["runs"].values()
    for problem, picked in (("cont-sphere-d2", "autodl-gp"), ("cash-tiny-wine", "autodl-tpe")):
        for seed in (0, 1):
            curve = {r["method"]: r["losses"] for r in runs if (r["problem"], r["seed"]) == (problem, seed)}
            assert curve["autodl-auto"] == curve[picked]
    for part in ("design", "holdout"):
        overall = data["summary"][part]["overall"]
        assert overall["n_units"] == 2 and "autodl-auto" in overall["methods"]
        c = overall["check"]
        assert c["best_single"] in ("autodl-random", "autodl-tpe", "autodl-gp", "autodl-evolution")
        assert c["within_or_below"] == (c["auto_rank"] <= c["best_single_ci95"][1])
