"""Would LightGBM or CatBoost pay as extra families of the tabular space? (Issue #18, item 5.)

The tabular space has scikit-learn's families only; its boosting family is HistGradientBoosting,
itself a LightGBM-style histogram booster. This script measures, on the meta-dataset of
``benchmarks/build_portfolio.py`` and exactly as it does (its tables, its table loader, its 3-fold
CV splits, one thread, seed 0, its scoring and its CPU-second clock; nothing is copied):

1. **candidates** of the two libraries (:data:`CANDIDATES`): LightGBM's defaults, AutoGluon's two
   other default LightGBM configurations (``medium_quality`` trains ``GBM``: ``{}``,
   ``{"extra_trees": True}`` and ``GBMLarge``, ``learning_rate=0.03, num_leaves=128,
   feature_fraction=0.9, min_data_in_leaf=3``) and CatBoost's defaults (1,000 iterations, depth 6,
   ``thread_count=1``). AutoGluon early-stops its boosters from 10,000 rounds on an inner holdout;
   the matrix has no inner holdout, so the XT config keeps LightGBM's 100 rounds at its rate 0.1
   and ``GBMLarge`` gets a fixed 300 rounds at its rate 0.03 (about the same total shrinkage).
   Every candidate gets the preprocessing of the matrix's HGB candidates (mean imputation, no
   scaling, ordinal codes for categories): only the booster differs. CatBoost thus sees ordinal
   codes, not its own categorical handling; that is also what its ONNX export needs (it takes no
   categorical features). The cache (``benchmarks/results/families_matrix.json``, keyed by table
   definition and config like ``portfolio_matrix.json``) makes a re-run measure only what is missing;
2. **leave-one-dataset-out**: :func:`build_portfolio.lodo` on the matrix's 45 candidates alone and
   with the new ones added (normalized together, so the two are on one scale), for every greedy
   variant (cost exponent x length) and for the variant :func:`build_portfolio.choose` picks; the
   best normalized score on the held-out table after k = 1, 2, 3, 5, 8, 12 configurations and
   within 5 / 15 / 30 recorded seconds;
3. **per table**: the best LightGBM candidate against the best HGB candidate of the matrix (score
   and CPU seconds), LightGBM defaults against the matrix's HGB-defaults point, CatBoost against
   the best candidate of the matrix. The HGB-defaults point is measured again in this run
   (:data:`CONTROL`, with :func:`build_portfolio.evaluate` itself): the matrix was measured in
   another run, under another load, so the CPU-time ratio is also given from one run;
4. **ONNX**: whether a fitted pipeline with LightGBM exports through autodl's own verified export
   (:func:`autodl.export.core.onnx_bytes`: labels equal, probabilities within 1e-5, values within
   1e-5 + 1e-4 x |value|, at batch sizes 1, 7 and 64) once onnxmltools' LightGBM converter is
   registered with skl2onnx, and whether CatBoost's own ``save_model(format="onnx")`` on the
   ordinal-coded numeric matrix reproduces ``predict_proba`` / ``predict`` within the same tolerances.

The verdict (``summary.pays``): a family pays when adding it raises the LODO score of the variant
the build would choose, averaged over the three budgets, by more than :data:`PAYS_MARGIN`, and the
per-table gains at the 15 s budget are positive beyond two standard errors. The matrix's seconds
come from another run (2 jobs, another load), so the comparison is also made with the added
candidates' seconds on the matrix's clock (``lodo_on_matrix_clock``, ``summary.pays_on_matrix_clock``;
see :func:`matrix_clock`).

Usage::

    nice -n 10 python benchmarks/families.py --jobs 1      # measure what is missing + report
    python benchmarks/families.py --analyze-only           # report from the cache
    python benchmarks/families.py --quick                  # 4 small tables, cheap candidates, ~1 min
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta
import build_portfolio as bp  # first: it sets one thread per BLAS/OpenMP pool before NumPy loads

import numpy as np

from autodl.tabular.portfolio import greedy_portfolio

CACHE = _meta.RESULTS_DIR / "families_matrix.json"
#: a family pays when it raises the chosen variant's mean LODO score over the budgets by more than this
PAYS_MARGIN = 0.01
#: CatBoost is skipped where rows x classes exceeds this (CPU budget; recorded with the reason):
#: on clf_multi10 (3,000 rows x 10 classes) one fold took 33 CPU s, 100 s for the 3 folds
CATBOOST_MAX_WORK = 20_000

_PRE = {"impute": "mean", "scaler": "none", "encoder": "ordinal"}  # the matrix's HGB candidates'


def _lgbm(**params) -> dict[str, Any]:
    return {"model": "lightgbm", **_PRE, **{f"lightgbm.{k}": v for k, v in params.items()}}


def _catboost(**params) -> dict[str, Any]:
    return {"model": "catboost", **_PRE, **{f"catboost.{k}": v for k, v in params.items()}}


#: name -> config (plain data; the model step is built by :func:`build_model`)
CANDIDATES: dict[str, dict[str, Any]] = {
    "lightgbm defaults": _lgbm(n_estimators=100, learning_rate=0.1, num_leaves=31, min_child_samples=20),
    "lightgbm AutoGluon XT": _lgbm(n_estimators=100, learning_rate=0.1, num_leaves=31, min_child_samples=20,
                                   extra_trees=True),
    "lightgbm AutoGluon Large": _lgbm(n_estimators=300, learning_rate=0.03, num_leaves=128, colsample_bytree=0.9,
                                      min_child_samples=3),
    "catboost defaults": _catboost(iterations=1000),
}
#: --quick: cheap versions (not comparable with the full run; they only exercise the code)
QUICK_CANDIDATES: dict[str, dict[str, Any]] = {
    "lightgbm defaults": CANDIDATES["lightgbm defaults"],
    "catboost 100 iterations": _catboost(iterations=100),
}
#: the matrix's candidate nearest to HistGradientBoosting's defaults (lr 0.1, 100 iterations, 31
#: leaves, 20 rows per leaf; early stopping off as in the space)
HGB_DEFAULTS = {"model": "hist_gb", "impute": "mean", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
                "hist_gb.learning_rate": 0.1, "hist_gb.max_iter": 100, "hist_gb.max_leaf_nodes": 31,
                "hist_gb.min_samples_leaf": 20, "hist_gb.l2_regularization": 1e-06}


#: measured again in this run (not used in the LODO, where the matrix's record stands): the CPU
#: seconds of LightGBM and of HGB defaults then come from the same run, under the same load
CONTROL = HGB_DEFAULTS
FAMILIES = ("lightgbm", "catboost")


def family(config: dict[str, Any]) -> str:
    return config["model"]


def build_model(config: dict[str, Any], task: str, seed: int = bp.SEED):
    """The LightGBM or CatBoost estimator of ``config``, one thread, seeded, silent."""
    params = {k.split(".", 1)[1]: v for k, v in config.items() if k.startswith(config["model"] + ".")}
    clf = task == "classification"
    if config["model"] == "lightgbm":
        from lightgbm import LGBMClassifier, LGBMRegressor

        return (LGBMClassifier if clf else LGBMRegressor)(n_jobs=1, random_state=seed, verbose=-1, **params)
    if config["model"] == "catboost":
        from catboost import CatBoostClassifier, CatBoostRegressor

        return (CatBoostClassifier if clf else CatBoostRegressor)(thread_count=1, random_seed=seed, verbose=0,
                                                                  allow_writing_files=False, **params)
    raise ValueError(f"unknown family '{config['model']}'; known: lightgbm, catboost")


def build_pipeline(config: dict[str, Any], X, task: str, plan=None):
    """autodl's pipeline for ``config``'s preprocessing with ``config``'s booster as the model step."""
    from autodl.tabular.pipeline import build_pipeline as autodl_pipeline

    pre = {k: config[k] for k in _PRE}
    pipe = autodl_pipeline({"model": "hist_gb", **pre}, X, task, bp.SEED, plan=plan)
    pipe.steps[-1] = ("model", build_model(config, task))
    return pipe


def skip_reason(config: dict[str, Any], info: dict[str, Any]) -> str | None:
    work = info["rows"] * max(1, info["classes"] or 1)
    if config["model"] == "catboost" and work > CATBOOST_MAX_WORK:
        return (f"catboost where rows x classes > {CATBOOST_MAX_WORK:,} (CPU budget of the measurement: "
                "multi-class CatBoost fits one symmetric tree per class and iteration)")
    return None


# -- measuring -------------------------------------------------------------------------------
def evaluate(name: str, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per config, as :func:`build_portfolio.evaluate` records them (same splits,
    scorer and clocks)."""
    from autodl.tabular.pipeline import cv_scores, quiet_fit

    if all(c["model"] not in FAMILIES for c in configs):  # the control: a point of the space
        return bp.evaluate(name, configs)
    prep, splits = bp._prepared(name)
    info = bp.table_info(name)
    out = []
    for config in configs:
        cid = bp.config_id(config)
        reason = skip_reason(config, info)
        if reason:
            out.append({"config_id": cid, "score": None, "seconds": None, "wall_seconds": None,
                        "status": "skipped", "reason": reason})
            continue
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            pipe = build_pipeline(config, prep.X_train, prep.task, plan=prep.plan)
            with quiet_fit():
                values = cv_scores(pipe, prep.X_train, prep.y_train, splits, prep.metric)
            score, status, reason = float(np.mean(values)), "ok", None
            if not np.isfinite(score):
                score, status, reason = None, "failed", "non-finite score"
        except Exception as exc:  # noqa: BLE001 - a config failing on a table is a measurement: 0 there
            score, status, reason = None, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        out.append({"config_id": cid, "score": score, "seconds": round(time.process_time() - cpu0, 4),
                    "wall_seconds": round(time.perf_counter() - wall0, 4), "status": status, "reason": reason})
    return out


def measure(tables: list[str], configs: list[dict[str, Any]], path: Path, jobs: int, meta: dict) -> dict:
    """Fill the cache at ``path`` with what is missing (LightGBM first, then CatBoost: a run cut
    short keeps the cheap family complete); written after every (table, family)."""
    cache = bp.load_matrix(path)
    previous = cache.pop("meta", None)
    if previous is not None:
        cache.setdefault("earlier_runs", []).append(previous)
    for c in configs:
        cache["candidates"][bp.config_id(c)] = c
    todo = []
    order = bp.measuring_order(tables, {t: bp.table_info(t)["rows"] for t in tables})
    for fam in dict.fromkeys(family(c) for c in configs):
        for name in order:
            tid = bp.table_id(name)
            cache["tables"].setdefault(tid, bp.table_info(name))
            have = cache["records"].setdefault(tid, {})
            missing = [c for c in configs if family(c) == fam and bp.config_id(c) not in have]
            if missing:
                todo.append((name, missing))
    print(f"{len(todo)} chunks to measure ({sum(len(c) for _, c in todo)} evaluations)", flush=True)
    started = time.perf_counter()

    def store(name, records):
        for r in records:
            cid = r.pop("config_id")
            cache["records"][bp.table_id(name)][cid] = r
            shown = "-" if r["score"] is None else f"{r['score']:.4f}"
            print(f"  {name:22s} {cache['candidates'][cid]['model']:10s} {shown:>8s} {r['seconds'] or 0:7.2f}s "
                  f"{r['status']}", flush=True)
        _meta.write_json(path, {"meta": {k: v for k, v in meta.items() if k != "_t0"}, **cache})
        print(f"  [{time.perf_counter() - started:.0f}s]", flush=True)

    if jobs <= 1:
        for name, chunk in todo:
            store(name, evaluate(name, chunk))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(evaluate, name, chunk): name for name, chunk in todo}
            for f in as_completed(futures):
                store(futures[f], f.result())
    return cache


# -- analysis --------------------------------------------------------------------------------
def merged(matrix: dict, cache: dict) -> dict:
    """The portfolio matrix's records with the families' added (one record dict per table); the
    matrix's own record of a config stands (the :data:`CONTROL` measured again is not merged)."""
    tables = set(matrix["records"]) | set(cache["records"])
    return {"records": {t: {**cache["records"].get(t, {}), **matrix["records"].get(t, {})} for t in tables}}


def arrays(records: dict, tables: list[str], base: list[dict], extra: list[dict], clock: np.ndarray | None = None):
    """``(normalized, seconds, raw)`` over ``base + extra`` (tables x candidates): normalized over
    all of them together; the base columns' seconds exactly as :func:`build_portfolio.arrays` gives
    them, a skipped extra candidate costing the slowest measured candidate of the table. ``clock``
    (one factor per table) multiplies the extra candidates' measured seconds (see :func:`matrix_clock`)."""
    norm, sec_base, raw_base = bp.arrays(records, tables, base)
    if not extra:
        return norm, sec_base, raw_base
    _, _, raw_extra = bp.arrays(records, tables, extra)
    raw = np.hstack([raw_base, raw_extra])
    sec_extra = np.zeros_like(raw_extra)
    for i, name in enumerate(tables):
        rec = records["records"][bp.table_id(name)]
        for j, c in enumerate(extra):
            r = rec[bp.config_id(c)]
            sec_extra[i, j] = np.nan if r["status"] == "skipped" else (r["seconds"] or 0.0)
        if clock is not None:
            sec_extra[i] *= clock[i]
        slowest = max(sec_base[i].max(), np.nanmax(sec_extra[i], initial=0.0))
        sec_extra[i, np.isnan(sec_extra[i])] = slowest
    return bp.normalize(raw), np.hstack([sec_base, sec_extra]), raw


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """Per-table ``b - a``: mean, standard error, tables better / equal / worse."""
    d = np.asarray(b) - np.asarray(a)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return {"mean": float(d.mean()), "standard_error": se, "better": int((d > 1e-9).sum()),
            "equal": int((np.abs(d) <= 1e-9).sum()), "worse": int((d < -1e-9).sum())}


def variant_scores(result: dict[str, Any]) -> dict[str, Any]:
    return {"after_k": result["after_k"], "within_seconds": result["within_seconds"],
            "mean_over_budgets": float(np.mean(list(result["within_seconds"].values())))}


def matrix_clock(matrix: dict, cache: dict, tables: list[str]) -> np.ndarray:
    """Per table, the matrix's CPU seconds of HGB defaults over this run's (:data:`CONTROL`): the
    factor that puts this run's seconds on the matrix's clock (1 where either is missing)."""
    out = np.ones(len(tables))
    cid = bp.config_id(CONTROL)
    for i, t in enumerate(tables):
        old = matrix["records"].get(bp.table_id(t), {}).get(cid)
        new = cache["records"].get(bp.table_id(t), {}).get(cid)
        if old and new and old["status"] == new["status"] == "ok" and new["seconds"]:
            out[i] = old["seconds"] / new["seconds"]
    return out


def lodo_comparison(records: dict, tables: list[str], base: list[dict], randoms: list[dict],
                    extras: dict[str, list[dict]], clock: np.ndarray | None = None) -> dict[str, Any]:
    """LODO of the matrix's candidates alone (``"none"``) and with each set of ``extras`` added
    (their seconds times ``clock``, see :func:`arrays`)."""
    infos = [records["tables"][bp.table_id(t)] for t in tables]
    all_extra = [c for cs in extras.values() for c in cs]
    norm_all, sec_all, _ = arrays(records, tables, base, all_extra, clock)
    ids = [bp.config_id(c) for c in base]
    hand = [ids.index(bp.config_id(c)) for c in bp.hand_picked()]
    random_ids = {bp.config_id(c) for c in randoms}
    pool = [j for j, cid in enumerate(ids) if cid in random_ids]
    B = len(base)
    extra_cols = {}
    start = B
    for label, cs in extras.items():
        extra_cols[label] = list(range(start, start + len(cs)))
        start += len(cs)
    sets = {"none": []}
    sets.update(extra_cols)
    if len(extras) > 1:
        sets["all"] = list(range(B, start))
    variants = [f"greedy a={a:g} L={L}" for a in bp.ALPHAS for L in bp.LENGTHS]
    out: dict[str, Any] = {}
    base_result = None
    for label, cols in sets.items():
        keep = list(range(B)) + cols
        configs = base + [all_extra[j - B] for j in cols]
        result = bp.lodo(norm_all[:, keep], sec_all[:, keep], configs, infos, hand, pool)
        alpha, length = bp.choose(result)
        chosen = f"greedy a={alpha:g} L={length}"
        # which added candidates the full-data greedy of the chosen variant puts in its portfolio
        order = greedy_portfolio(norm_all[:, keep], length, bp.relative_cost(sec_all[:, keep]), alpha=alpha)
        entry = {"chosen": chosen, "chosen_scores": variant_scores(result[chosen]),
                 "portfolio_models": [configs[j]["model"] for j in order],
                 "variants": {v: variant_scores(result[v]) for v in variants},
                 "per_table_within_choice_budget": {v: result[v]["per_table_within_choice_budget"] for v in variants}}
        if base_result is None:
            base_result = entry
        else:
            entry["delta_vs_none"] = {
                v: {"after_k": {k: entry["variants"][v]["after_k"][k] - base_result["variants"][v]["after_k"][k]
                                for k in entry["variants"][v]["after_k"]},
                    "within_seconds": {b: entry["variants"][v]["within_seconds"][b]
                                       - base_result["variants"][v]["within_seconds"][b]
                                       for b in entry["variants"][v]["within_seconds"]},
                    "mean_over_budgets": entry["variants"][v]["mean_over_budgets"]
                    - base_result["variants"][v]["mean_over_budgets"]}
                for v in variants}
            entry["chosen_vs_none_chosen"] = {
                "after_k": {k: entry["chosen_scores"]["after_k"][k] - base_result["chosen_scores"]["after_k"][k]
                            for k in entry["chosen_scores"]["after_k"]},
                "within_seconds": {b: entry["chosen_scores"]["within_seconds"][b]
                                   - base_result["chosen_scores"]["within_seconds"][b]
                                   for b in entry["chosen_scores"]["within_seconds"]},
                "mean_over_budgets": entry["chosen_scores"]["mean_over_budgets"]
                - base_result["chosen_scores"]["mean_over_budgets"],
                "per_table_at_choice_budget": paired(
                    base_result["per_table_within_choice_budget"][base_result["chosen"]],
                    entry["per_table_within_choice_budget"][entry["chosen"]])}
            gain = entry["chosen_vs_none_chosen"]
            pt = gain["per_table_at_choice_budget"]
            entry["pays"] = bool(gain["mean_over_budgets"] > PAYS_MARGIN and pt["mean"] > 2 * pt["standard_error"])
        out[label] = entry
    return out


def per_table(records: dict, tables: list[str], base: list[dict], extras: list[dict],
              control: dict | None = None, clock: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Per table: best LightGBM vs best HGB of the matrix; LightGBM defaults vs the HGB-defaults
    point (and against HGB defaults measured again in this run: ``control``, the cache's records);
    CatBoost vs the best candidate of the matrix (scores and CPU seconds; ratios also with this
    run's seconds times the table's ``clock`` factor, see :func:`matrix_clock`)."""
    rows = []
    hgb = [c for c in base if c["model"] == "hist_gb"]
    lgbm = [c for c in extras if c["model"] == "lightgbm"]
    cat = [c for c in extras if c["model"] == "catboost"]

    def best(rec, configs):
        ok = [(rec[bp.config_id(c)]["score"], rec[bp.config_id(c)]["seconds"], c) for c in configs
              if rec[bp.config_id(c)]["status"] == "ok"]
        if not ok:
            return None
        score, seconds, c = max(ok, key=lambda t: t[0])
        return {"score": score, "seconds": seconds, "config_id": bp.config_id(c), "description": describe(c)}

    for name in tables:
        rec = records["records"][bp.table_id(name)]
        row: dict[str, Any] = {"table": name, "rows": records["tables"][bp.table_id(name)]["rows"],
                               "metric": records["tables"][bp.table_id(name)]["metric"]}
        row["best_matrix"] = best(rec, base)
        row["best_hgb"] = best(rec, hgb)
        row["best_lightgbm"] = best(rec, lgbm) if lgbm else None
        if row["best_lightgbm"] and row["best_hgb"]:
            row["lightgbm_minus_hgb"] = row["best_lightgbm"]["score"] - row["best_hgb"]["score"]
            row["lightgbm_over_hgb_seconds"] = row["best_lightgbm"]["seconds"] / row["best_hgb"]["seconds"]
            if clock:
                row["lightgbm_over_hgb_seconds_on_matrix_clock"] = row["lightgbm_over_hgb_seconds"] * clock[name]
        defaults = CANDIDATES["lightgbm defaults"]
        d, h = rec.get(bp.config_id(defaults)), rec.get(bp.config_id(HGB_DEFAULTS))
        if d and h and d["status"] == h["status"] == "ok":
            row["defaults"] = {"lightgbm": d["score"], "hgb": h["score"], "lightgbm_minus_hgb": d["score"] - h["score"],
                               "lightgbm_seconds": d["seconds"], "hgb_seconds": h["seconds"],
                               "lightgbm_over_hgb_seconds": d["seconds"] / h["seconds"]}
            again = (control or {}).get(bp.table_id(name), {}).get(bp.config_id(CONTROL))
            if again and again["status"] == "ok":
                row["defaults"].update({"hgb_seconds_same_run": again["seconds"],
                                        "hgb_same_run_score_equal": abs(again["score"] - h["score"]) <= 1e-12,
                                        "lightgbm_over_hgb_seconds_same_run": d["seconds"] / again["seconds"]})
        for c in cat:
            r = rec[bp.config_id(c)]
            row["catboost"] = {"status": r["status"], "reason": r.get("reason"), "score": r["score"],
                               "seconds": r["seconds"]}
            if r["status"] == "ok" and row["best_matrix"]:
                row["catboost"]["minus_best_matrix"] = r["score"] - row["best_matrix"]["score"]
                row["catboost"]["over_best_matrix_seconds"] = r["seconds"] / row["best_matrix"]["seconds"]
                if clock:
                    row["catboost"]["over_best_matrix_seconds_on_matrix_clock"] = (
                        row["catboost"]["over_best_matrix_seconds"] * clock[name])
                row["catboost"]["over_median_candidate_seconds"] = r["seconds"] / float(np.median(
                    [rec[bp.config_id(b)]["seconds"] for b in base if rec[bp.config_id(b)]["status"] == "ok"]))
        rows.append(row)
    return rows


def per_table_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and medians of :func:`per_table` (what the README quotes)."""
    out: dict[str, Any] = {}
    lg = [r for r in rows if "lightgbm_minus_hgb" in r]
    if lg:
        d = np.array([r["lightgbm_minus_hgb"] for r in lg])
        out["best_lightgbm_vs_best_hgb"] = {
            "tables": len(lg), "better": int((d > 1e-9).sum()), "equal": int((np.abs(d) <= 1e-9).sum()),
            "worse": int((d < -1e-9).sum()), "mean_difference": float(d.mean()),
            "median_seconds_ratio": float(np.median([r["lightgbm_over_hgb_seconds"] for r in lg]))}
        if all("lightgbm_over_hgb_seconds_on_matrix_clock" in r for r in lg):
            out["best_lightgbm_vs_best_hgb"]["median_seconds_ratio_on_matrix_clock"] = float(np.median(
                [r["lightgbm_over_hgb_seconds_on_matrix_clock"] for r in lg]))
    df = [r["defaults"] for r in rows if "defaults" in r]
    if df:
        d = np.array([x["lightgbm_minus_hgb"] for x in df])
        out["lightgbm_defaults_vs_hgb_defaults"] = {
            "tables": len(df), "better": int((d > 1e-9).sum()), "equal": int((np.abs(d) <= 1e-9).sum()),
            "worse": int((d < -1e-9).sum()), "mean_difference": float(d.mean()),
            "median_seconds_ratio": float(np.median([x["lightgbm_over_hgb_seconds"] for x in df]))}
        same = [x for x in df if "lightgbm_over_hgb_seconds_same_run" in x]
        if same:
            out["lightgbm_defaults_vs_hgb_defaults"].update({
                "tables_hgb_measured_again": len(same),
                "median_seconds_ratio_same_run": float(np.median([x["lightgbm_over_hgb_seconds_same_run"]
                                                                  for x in same])),
                "hgb_same_run_scores_equal": all(x["hgb_same_run_score_equal"] for x in same),
                "hgb_same_run_over_matrix_seconds_median": float(np.median([x["hgb_seconds_same_run"] / x["hgb_seconds"]
                                                                            for x in same]))})
    cb = [r["catboost"] for r in rows if r.get("catboost", {}).get("status") == "ok"]
    if cb:
        d = np.array([x["minus_best_matrix"] for x in cb])
        out["catboost_vs_best_matrix"] = {
            "tables": len(cb), "skipped": sum(1 for r in rows if r.get("catboost", {}).get("status") == "skipped"),
            "better": int((d > 1e-9).sum()), "equal": int((np.abs(d) <= 1e-9).sum()), "worse": int((d < -1e-9).sum()),
            "mean_difference": float(d.mean()),
            "median_seconds": float(np.median([x["seconds"] for x in cb])),
            "total_seconds": float(np.sum([x["seconds"] for x in cb])),
            "median_seconds_ratio_to_best_matrix": float(np.median([x["over_best_matrix_seconds"] for x in cb])),
            "median_seconds_ratio_to_best_matrix_on_matrix_clock": float(np.median(
                [x.get("over_best_matrix_seconds_on_matrix_clock", np.nan) for x in cb])),
            "median_seconds_ratio_to_median_candidate": float(np.median([x["over_median_candidate_seconds"]
                                                                         for x in cb]))}
    return out


def describe(config: dict[str, Any]) -> str:
    for name, c in {**CANDIDATES, **QUICK_CANDIDATES}.items():
        if c == config:
            return name
    return bp.describe(config)


# -- ONNX ------------------------------------------------------------------------------------
def register_lightgbm_converter() -> str:
    """Register onnxmltools' LightGBM converters with skl2onnx (skl2onnx's documented recipe),
    with one change: the converter emits float32 outputs whatever the input precision, so the
    shape calculators declare them float32 (with skl2onnx's own, autodl's float64 pipelines fail
    the ONNX checker: "Inferred elem type differs from existing elem type: (1) vs (11)").
    Returns onnxmltools' version."""
    import onnxmltools
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)

    def classifier_shapes(operator):
        calculate_linear_classifier_output_shapes(operator)
        operator.outputs[1].type = FloatTensorType(operator.outputs[1].type.shape)

    def regressor_shapes(operator):
        calculate_linear_regressor_output_shapes(operator)
        operator.outputs[0].type = FloatTensorType(operator.outputs[0].type.shape)

    update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", classifier_shapes, convert_lightgbm,
                                options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", regressor_shapes, convert_lightgbm,
                                options={"split": None})
    return onnxmltools.__version__


def _model_step_difference(pipe, sample, task: str) -> dict[str, Any]:
    """onnxmltools' ``convert_lightgbm`` of the model step alone (float32 input, its documented
    use) against LightGBM on the same preprocessed rows: the largest difference and the rows off
    by more than the tolerance."""
    import onnxmltools
    import onnxruntime as ort
    from onnxmltools.convert.common.data_types import FloatTensorType

    X = np.asarray(pipe.named_steps["preprocess"].transform(sample), dtype=np.float64)
    model = pipe.named_steps["model"]
    onx = onnxmltools.convert_lightgbm(model, initial_types=[("X", FloatTensorType([None, X.shape[1]]))],
                                       zipmap=False)
    sess = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = sess.run(None, {"X": X.astype(np.float32)})
    if task == "classification":
        got, ref, tol = outputs[1], model.predict_proba(X), 1e-5
    else:
        got, ref = outputs[0], model.predict(X)
        tol = 1e-5 + 1e-4 * np.abs(np.asarray(ref, dtype=np.float64)).reshape(len(X), -1)
    err = np.abs(np.asarray(got, dtype=np.float64).reshape(len(X), -1)
                 - np.asarray(ref, dtype=np.float64).reshape(len(X), -1))
    # the known cause (onnxmltools issues #150, #708): LightGBM splits on float64 thresholds,
    # ONNX's TreeEnsemble holds float32 ones; count the rows one of whose values falls on the
    # other side of some threshold once both are rounded to float32
    trees = model.booster_.trees_to_dataframe()
    splits = trees[trees["threshold"].notna()]
    flip = np.zeros(len(X), dtype=bool)
    for col, t in zip(splits["split_feature"], splits["threshold"]):
        j = int(str(col).split("_")[-1])
        x = X[:, j]
        flip |= (x <= t) != (x.astype(np.float32) <= np.float32(t))
    bad = (err > tol).any(axis=1)
    return {"max_abs_difference": float(err.max()), "rows": len(X), "rows_beyond_tolerance": int(bad.sum()),
            "rows_with_a_float32_threshold_flip": int(flip.sum()),
            "rows_beyond_tolerance_with_a_flip": int((bad & flip).sum())}


def _fit_fold0(name: str, config: dict[str, Any]):
    prep, splits = bp._prepared(name)
    train, val = splits[0]
    pipe = build_pipeline(config, prep.X_train, prep.task, plan=prep.plan)
    pipe.fit(prep.X_train.iloc[train], prep.y_train.iloc[train])
    return pipe, prep.X_train.iloc[val], prep.task


def onnx_lightgbm(tables: list[str]) -> dict[str, Any]:
    """The LightGBM-defaults pipeline of each table through autodl's verified export."""
    try:
        version = register_lightgbm_converter()
    except ImportError as exc:
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    from autodl.errors import ExportError
    from autodl.export.core import onnx_bytes

    out = {"available": True, "onnxmltools": version, "how": "onnxmltools' convert_lightgbm registered with "
           "skl2onnx for LGBMClassifier/LGBMRegressor; whole pipeline (imputer, ordinal encoder, LightGBM) "
           "exported and verified by autodl.export.core.onnx_bytes (labels equal, probabilities within 1e-5, "
           "values within 1e-5 + 1e-4 |value|, batch sizes 1, 7, 64); model_step_alone: convert_lightgbm of the "
           "model step with float32 input vs LightGBM on the same preprocessed float64 rows",
           "tables": {}}
    for name in tables:
        pipe, sample, task = _fit_fold0(name, CANDIDATES["lightgbm defaults"])
        try:
            data = onnx_bytes(pipe, sample=sample)
            entry = {"verified": True, "bytes": len(data), "max_abs_difference": _max_difference(pipe, data, sample)}
        except ExportError as exc:
            entry = {"verified": False, "error": str(exc)[:300]}
        entry["model_step_alone"] = _model_step_difference(pipe, sample, task)
        out["tables"][name] = {"task": task, **entry}
    out["verified_on_all"] = all(t["verified"] for t in out["tables"].values())
    return out


def _max_difference(pipe, data: bytes, sample) -> float:
    """Largest |onnxruntime - model| over the probabilities (classifier) or values (regressor) of
    the sample, fed as ``autodl predict`` feeds it."""
    from autodl.export import runtime

    session = runtime.make_session(data, threads=1)
    meta = runtime.read_metadata(session)
    got = runtime.run(session, runtime.table_to_feeds(sample, meta))
    roles = {o["role"]: o["name"] for o in meta["outputs"]}
    if "probabilities" in roles:
        ref, out = pipe.predict_proba(sample), got[roles["probabilities"]]
    else:
        ref, out = pipe.predict(sample), got[roles["prediction"]]
    return float(np.max(np.abs(np.asarray(out, dtype=np.float64).reshape(len(sample), -1)
                               - np.asarray(ref, dtype=np.float64).reshape(len(sample), -1))))


def onnx_catboost(tables: list[str], config: dict[str, Any]) -> dict[str, Any]:
    """CatBoost's own ONNX export of the model step on the ordinal-coded numeric matrix,
    compared with ``predict_proba``/``predict`` by onnxruntime."""
    import onnxruntime as ort

    out: dict[str, Any] = {"how": "catboost save_model(format='onnx') of the model step, fed the pipeline's "
                                  "preprocessed (ordinal-coded, float32) matrix; onnxruntime vs predict_proba / "
                                  "predict on the held-out fold", "tables": {}}
    for name in tables:
        pipe, sample, task = _fit_fold0(name, config)
        X = np.asarray(pipe.named_steps["preprocess"].transform(sample), dtype=np.float32)
        model = pipe.named_steps["model"]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            try:
                model.save_model(str(path), format="onnx")
                sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                feeds = {sess.get_inputs()[0].name: X}
                outputs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
            except Exception as exc:  # noqa: BLE001 - an export that fails is the measurement
                out["tables"][name] = {"task": task, "verified": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
                continue
        if task == "classification":
            probs = outputs.get("probabilities")
            if isinstance(probs, list):  # a ZipMap: one {class: probability} per row
                probs = np.array([[row[k] for k in sorted(row)] for row in probs])
            ref = model.predict_proba(X)
            diff = float(np.max(np.abs(np.asarray(probs, dtype=np.float64) - ref)))
            labels = np.asarray(outputs.get("label")).reshape(-1)
            same = bool(np.array_equal(labels.astype(str), np.asarray(model.predict(X)).reshape(-1).astype(str)))
            ok = diff <= 1e-5 and same
            out["tables"][name] = {"task": task, "verified": ok, "max_abs_difference": diff, "labels_equal": same}
        else:
            got = np.asarray(next(iter(outputs.values())), dtype=np.float64).reshape(-1)
            ref = np.asarray(model.predict(X), dtype=np.float64)
            err = np.abs(got - ref)
            ok = bool(np.all(err <= 1e-5 + 1e-4 * np.abs(ref)))
            out["tables"][name] = {"task": task, "verified": ok, "max_abs_difference": float(err.max())}
    out["verified_on_all"] = all(t["verified"] for t in out["tables"].values())
    return out


ONNX_TABLES = ("iris", "breast_cancer", "diabetes", "clf_cat_binary")
QUICK_ONNX_TABLES = ("iris", "diabetes")


# -- report ----------------------------------------------------------------------------------
def markdown(lodo: dict[str, Any]) -> str:
    head = "| candidates | chosen variant | " + " | ".join(f"k={k}" for k in bp.KS) + " | " \
        + " | ".join(f"{b:g}s" for b in bp.BUDGETS) + " |"
    lines = [head, "|" + "---|" * (2 + len(bp.KS) + len(bp.BUDGETS))]
    for label, entry in lodo.items():
        s = entry["chosen_scores"]
        lines.append(f"| matrix + {label} | {entry['chosen']} | "
                     + " | ".join(f"{s['after_k'][str(k)]:.3f}" for k in bp.KS) + " | "
                     + " | ".join(f"{s['within_seconds'][str(b)]:.3f}" for b in bp.BUDGETS) + " |")
    return "\n".join(lines)


def analyze(matrix: dict, cache: dict, tables: list[str], base: list[dict], randoms: list[dict],
            extras: list[dict]) -> dict[str, Any]:
    records = merged(matrix, cache)
    records["tables"] = {**matrix["tables"], **cache["tables"]}
    groups: dict[str, list[dict]] = {}
    for c in extras:
        groups.setdefault(family(c), []).append(c)
    lodo = lodo_comparison(records, tables, base, randoms, groups)
    clock = matrix_clock(matrix, cache, tables)
    lodo_clock = lodo_comparison(records, tables, base, randoms, groups, clock)
    rows = per_table(records, tables, base, extras, control=cache["records"], clock=dict(zip(tables, clock)))
    summary = {"pays": {label: entry["pays"] for label, entry in lodo.items() if "pays" in entry},
               "pays_on_matrix_clock": {label: entry["pays"] for label, entry in lodo_clock.items()
                                        if "pays" in entry},
               "gain_of_chosen_on_matrix_clock": {label: entry["chosen_vs_none_chosen"]
                                                  for label, entry in lodo_clock.items()
                                                  if "chosen_vs_none_chosen" in entry},
               "matrix_clock_factor_median": float(np.median(clock)),
               "gain_of_chosen": {label: entry["chosen_vs_none_chosen"] for label, entry in lodo.items()
                                  if "chosen_vs_none_chosen" in entry},
               "largest_gain_over_variants": {
                   label: max((v["mean_over_budgets"], name) for name, v in entry["delta_vs_none"].items())
                   for label, entry in lodo.items() if "delta_vs_none" in entry},
               **per_table_summary(rows)}
    candidates = {describe(c): {"config": c, "config_id": bp.config_id(c)} for c in extras}
    return {"tables": tables, "n_matrix_candidates": len(base), "candidates": candidates,
            "pays_rule": f"chosen variant's LODO mean over the budgets up by more than {PAYS_MARGIN} and the "
                         "per-table gain at the 15 s budget above 2 standard errors",
            "normalization": "per table over the matrix's candidates and the added ones together (so every "
                             "row of the comparison is on one scale; the 'none' row therefore differs slightly "
                             "from portfolio_lodo.json)",
            "summary": summary, "lodo": lodo, "lodo_on_matrix_clock": lodo_clock,
            "matrix_clock": {"factors": dict(zip(tables, clock.round(4).tolist())),
                             "about": "per table, the matrix's CPU seconds of HGB defaults over this run's; "
                                      "lodo_on_matrix_clock multiplies the added candidates' seconds by it "
                                      "(the matrix was measured in another run, with 2 jobs, under another load)"},
            "per_table": rows, "markdown": markdown(lodo) + "\n\non the matrix's clock:\n" + markdown(lodo_clock)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 small tables, LightGBM defaults and a 100-"
                                                              "iteration CatBoost (~1 min)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (each fits with one thread)")
    parser.add_argument("--matrix", type=Path, default=bp.MATRIX, help="build_portfolio's cached matrix (read only)")
    parser.add_argument("--cache", type=Path, default=None, help="the families' cached records (JSON)")
    parser.add_argument("--out", type=Path, default=None, help="the report (JSON)")
    parser.add_argument("--analyze-only", action="store_true", help="measure nothing; use the cache")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX checks")
    args = parser.parse_args(argv)
    meta = _meta.start(__file__, argv, packages=("lightgbm", "catboost", "onnxmltools", "skl2onnx", "onnx",
                                                 "onnxruntime"))
    import autodl

    space = autodl.Space.load("tabular")
    base, randoms = bp.candidates(space)  # the full matrix's 45 candidates, also in --quick
    tables = list(bp.QUICK_TABLES if args.quick else bp.TABLES)
    extras = list((QUICK_CANDIDATES if args.quick else CANDIDATES).values())
    matrix = bp.load_matrix(args.matrix)
    missing = [t for t in tables if any(bp.config_id(c) not in matrix["records"].get(bp.table_id(t), {}) for c in base)]
    if missing:
        raise SystemExit(f"{args.matrix} lacks candidates on {', '.join(missing)}; run benchmarks/build_portfolio.py")
    path = args.cache or (_meta.RESULTS_DIR / ("families_matrix_quick.json" if args.quick else CACHE.name))
    if args.analyze_only:
        cache = bp.load_matrix(path)
        cache.pop("meta", None)
    else:
        cache = measure(tables, extras + [CONTROL], path, args.jobs, meta)
        cache.pop("meta", None)
        cache = _meta.write_result(path, cache, meta)
    report = analyze(matrix, cache, tables, base, randoms, extras)
    report["cache"] = str(path.relative_to(_meta.ROOT)) if path.is_relative_to(_meta.ROOT) else str(path)
    report["catboost_skip_rule"] = f"rows x classes > {CATBOOST_MAX_WORK:,}"
    if not args.no_onnx:
        onnx_tables = list(QUICK_ONNX_TABLES if args.quick else ONNX_TABLES)
        cat = [c for c in extras if c["model"] == "catboost"][0]
        report["onnx"] = {"lightgbm": onnx_lightgbm(onnx_tables), "catboost": onnx_catboost(onnx_tables, cat)}
    print(report["markdown"])
    for clock in ("", "_on_matrix_clock"):
        for label, verdict in report["summary"][f"pays{clock}"].items():
            gain = report["summary"][f"gain_of_chosen{clock}"][label]
            print(f"  + {label}{clock}: pays={verdict}  mean gain over budgets {gain['mean_over_budgets']:+.4f}  "
                  f"per table at 15 s {gain['per_table_at_choice_budget']}")
    for key in ("best_lightgbm_vs_best_hgb", "lightgbm_defaults_vs_hgb_defaults", "catboost_vs_best_matrix"):
        if key in report["summary"]:
            print(f"  {key}: {report['summary'][key]}")
    if "onnx" in report:
        for fam, r in report["onnx"].items():
            print(f"  onnx {fam}: {r.get('verified_on_all')} "
                  f"{ {t: (v['verified'], v.get('max_abs_difference')) for t, v in r.get('tables', {}).items()} }")
    out = args.out or _meta.default_out("families", args.quick)
    return _meta.write_result(out, report, meta)


if __name__ == "__main__":
    main()
