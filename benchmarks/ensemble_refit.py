"""Refit the ensemble's members on all training rows, or keep the models the validation fitted?

Issue #18 asks to decide this by measurement. Per (table, seed, validation) this script runs the
same candidates a 30 s search starts with (the portfolio of :mod:`autodl.tabular.portfolio`
plus seeded random points of the default space), each validated by ``cv`` (5 folds, or one
80/20 holdout split) with its out-of-fold predictions and its fitted fold models kept; it
selects the ensemble over the predictions exactly as a search does
(:func:`autodl.tabular.ensemble.choose_members`) and then builds the deployed predictor two ways:

* **refit**: every member fitted again on all training rows (what autodl does now);
* **fold models**: every member is the average of its k fold models (k = 1 for the holdout:
  the model fitted on 80 % of the rows), nothing is trained again.

It reports, for the ensemble and for the best single trial: the test score of both, the seconds
the refits take (what a search must keep free before its deadline), the ONNX file's bytes and the
onnxruntime latency of one row (1 thread, median of 200 calls).

Usage::

    python benchmarks/ensemble_refit.py                    # 10 tables x seeds 0, 1 x cv 5 / holdout
    python benchmarks/ensemble_refit.py --quick            # iris + diabetes, 1 seed, 5 folds
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402
from automl import _median_ms, load_table, score, split  # noqa: E402  (the AutoML benchmark's tables, splits, timing)

TABLES = ("wine", "breast_cancer", "digits", "diabetes", "clf_imbalanced", "clf_wide", "clf_categorical",
          "reg_linear", "friedman1", "reg_categorical")
QUICK_TABLES = ("iris", "diabetes")
#: random points of the default space after the portfolio (a 30 s search completes ~5-15 trials)
N_RANDOM = 5
LATENCY_CALLS = 200


def _test_score(model, prep, X_te, y_te, metric: str) -> float:
    if prep.task == "classification":
        proba = model.predict_proba(X_te)
        classes = list(model.classes_)
        positive = proba[:, 1] if len(classes) == 2 else None
        return score(metric, y_te, pred=model.predict(X_te), proba_positive=positive)
    return score(metric, y_te, pred=model.predict(X_te))


def _onnx(model, prep, X_raw_te, folder: Path, name: str) -> dict:
    from autodl.export import export_onnx
    from autodl.export.runtime import make_session, read_metadata, table_to_feeds
    from autodl.tabular.columns import export_sample

    path = folder / f"{name}.onnx"
    sample, plan_meta = export_sample(prep.plan, X_raw_te.iloc[:256])
    try:
        export_onnx(model, path, sample=sample, metadata=plan_meta)
    except Exception as exc:  # the export's failure is a measurement here
        return {"onnx_ok": False, "onnx_error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    session = make_session(path, threads=1)
    meta = read_metadata(session)
    feeds = table_to_feeds(sample.iloc[[0]], meta)
    names = [o.name for o in session.get_outputs()]
    return {"onnx_ok": True, "onnx_bytes": path.stat().st_size,
            "onnx_ms": _median_ms(lambda: session.run(names, feeds), LATENCY_CALLS)}


def run_one(table: str, seed: int, cv, folder: Path) -> dict:
    from autodl.searchers import RandomSearch
    from autodl.tabular.ensemble import EnsembleModel, choose_members, save_predictions
    from autodl.tabular.pipeline import build_pipeline, cv_scores, cv_splits, fit_pipeline, quiet_fit
    from autodl.tabular.portfolio import portfolio
    from autodl.tabular.search import SearchSpec, prepare

    X, y, task, metric = load_table(table)
    X_tr, X_te, y_tr, y_te = split(X, y, task, seed)
    spec = SearchSpec(metric=metric, seed=seed, test_size=0.0, cv=cv, announce_columns=False, n_trials=10)
    prep = prepare(spec, X_tr.reset_index(drop=True), y_tr.reset_index(drop=True))
    X_te_prepared = prep_frame(prep, X_te.reset_index(drop=True))
    y_te = np.asarray(y_te)
    classes = np.unique(np.asarray(prep.y_train)) if task == "classification" else None
    n_classes = None if classes is None else len(classes)
    configs = portfolio(prep.space, len(prep.y_train), n_classes)
    rs = RandomSearch(prep.space, seed=seed)
    configs += [rs.ask().config for _ in range(N_RANDOM)]
    splits = cv_splits(task, prep.X_train, prep.y_train, prep.spec.cv, seed)
    trials, fold_models, seconds = [], {}, {}
    preds_dir = folder / f"{table}-{seed}-{cv}"
    for i, config in enumerate(configs):
        pipe = build_pipeline(config, prep.X_train, task, seed, plan=prep.plan)
        shape = (len(prep.y_train), len(classes)) if classes is not None else (len(prep.y_train),)
        predictions = np.full(shape, np.nan, dtype=np.float32)
        models: list = []
        t0 = time.perf_counter()
        try:
            with quiet_fit():
                values = cv_scores(pipe, prep.X_train, prep.y_train, splits, prep.metric, None, predictions,
                                   classes, models=models)
        except Exception as exc:  # a config that fails here fails in a search too
            print(f"  {table} {config['model']}: failed ({type(exc).__name__})", flush=True)
            continue
        seconds[i] = time.perf_counter() - t0
        save_predictions(preds_dir, i, predictions)
        trials.append(SimpleNamespace(id=i, value=float(values.mean()), config=config))
        fold_models[i] = models
    members, info = choose_members(trials, preds_dir, prep.y_train, prep.metric, direction=prep.metric.direction,
                                   classes=classes)
    sign = 1.0 if prep.metric.direction == "maximize" else -1.0
    best = max(trials, key=lambda t: sign * t.value)

    def refit(config):
        t0 = time.perf_counter()
        with quiet_fit():
            model = fit_pipeline(build_pipeline(config, prep.X_train, task, seed, plan=prep.plan), prep.X_train,
                                 prep.y_train, None)
        return model, time.perf_counter() - t0

    def folds_of(trial_id: int):
        models = fold_models[trial_id]
        return models[0] if len(models) == 1 else EnsembleModel([(1.0 / len(models), m) for m in models], task)

    refits = {t.id: refit(t.config) for _, t in members}
    if best.id not in refits:
        refits[best.id] = refit(best.config)

    def ensemble(parts):
        return parts[0][1] if len(parts) == 1 else EnsembleModel(parts, task)

    variants = {
        "single_refit": refits[best.id][0],
        "single_folds": folds_of(best.id),
        "ensemble_refit": ensemble([(w, refits[t.id][0]) for w, t in members]),
        "ensemble_folds": ensemble([(w, folds_of(t.id)) for w, t in members]),
    }
    row = {"table": table, "seed": seed, "cv": cv, "task": task, "metric": metric, "n_train": len(prep.y_train),
           "n_candidates": len(trials), "n_members": len(members),
           "members": [{"model": t.config["model"], "weight": round(w, 4)} for w, t in members],
           "validation_seconds": round(sum(seconds.values()), 3),
           "refit_seconds_ensemble": round(sum(refits[t.id][1] for _, t in members), 3),
           "refit_seconds_single": round(refits[best.id][1], 3),
           "cv_single": best.value, "cv_ensemble": info.get("ensemble_score", best.value)}
    for name, model in variants.items():
        row[name] = {"test_score": _test_score(model, prep, X_te_prepared, y_te, metric),
                     **_onnx(model, prep, X_te.reset_index(drop=True), folder, f"{table}-{seed}-{cv}-{name}")}
    print(f"{table} seed {seed} cv {cv}: members {len(members)}; test ensemble refit "
          f"{row['ensemble_refit']['test_score']:.4f} / folds {row['ensemble_folds']['test_score']:.4f}; single refit "
          f"{row['single_refit']['test_score']:.4f} / folds {row['single_folds']['test_score']:.4f}; refit "
          f"{row['refit_seconds_ensemble']:.2f}s of validation {row['validation_seconds']:.2f}s", flush=True)
    return row


def prep_frame(prep, X_raw):
    """Raw test rows as the search's pipelines see them."""
    from autodl.tabular.columns import prepare_frame

    return prepare_frame(X_raw, prep.plan) if prep.plan is not None else X_raw


def summarize(rows: list[dict]) -> dict:
    out = {}
    for cv in sorted({str(r["cv"]) for r in rows}):
        part = [r for r in rows if str(r["cv"]) == cv]
        s: dict = {"runs": len(part)}
        for what in ("ensemble", "single"):
            diff = [r[f"{what}_folds"]["test_score"] - r[f"{what}_refit"]["test_score"] for r in part]
            s[what] = {"folds_minus_refit_mean": float(np.mean(diff)),
                       "folds_better": sum(d > 1e-12 for d in diff), "ties": sum(abs(d) <= 1e-12 for d in diff),
                       "refit_better": sum(d < -1e-12 for d in diff)}
            ok = [r for r in part if r[f"{what}_folds"].get("onnx_ok") and r[f"{what}_refit"].get("onnx_ok")]
            if ok:
                s[what]["onnx_bytes_ratio_folds_over_refit"] = float(np.median(
                    [r[f"{what}_folds"]["onnx_bytes"] / r[f"{what}_refit"]["onnx_bytes"] for r in ok]))
                s[what]["onnx_ms_ratio_folds_over_refit"] = float(np.median(
                    [r[f"{what}_folds"]["onnx_ms"] / r[f"{what}_refit"]["onnx_ms"] for r in ok]))
        s["refit_seconds_over_validation_seconds"] = float(np.median(
            [r["refit_seconds_ensemble"] / max(r["validation_seconds"], 1e-9) for r in part]))
        s["refit_seconds_ensemble_median"] = float(np.median([r["refit_seconds_ensemble"] for r in part]))
        ens_vs_single = [r["ensemble_folds"]["test_score"] - r["single_folds"]["test_score"] for r in part]
        s["ensemble_minus_single_folds_mean"] = float(np.mean(ens_vs_single))
        out[cv] = s
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| table | seed | cv | members | ensemble: refit | ensemble: fold models | single: refit | "
             "single: fold models | refit s / validation s | ONNX KB refit / folds | ONNX ms refit / folds |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        er, ef = r["ensemble_refit"], r["ensemble_folds"]
        kb = (f"{er['onnx_bytes'] / 1024:.0f} / {ef['onnx_bytes'] / 1024:.0f}"
              if er.get("onnx_ok") and ef.get("onnx_ok") else "export failed")
        ms = f"{er['onnx_ms']:.3f} / {ef['onnx_ms']:.3f}" if er.get("onnx_ok") and ef.get("onnx_ok") else "-"
        lines.append(f"| {r['table']} | {r['seed']} | {r['cv']} | {r['n_members']} | {er['test_score']:.4f} | "
                     f"{ef['test_score']:.4f} | {r['single_refit']['test_score']:.4f} | "
                     f"{r['single_folds']['test_score']:.4f} | {r['refit_seconds_ensemble']:.2f} / "
                     f"{r['validation_seconds']:.2f} | {kb} | {ms} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", nargs="+", default=list(TABLES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--cv", nargs="+", default=["5", "holdout"])
    p.add_argument("--quick", action="store_true", help="iris and diabetes, seed 0, 5 folds")
    p.add_argument("--out", help="JSON path (default benchmarks/results/ensemble_refit.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.tables, args.seeds, args.cv = list(QUICK_TABLES), [0], ["5"]
    cvs = [int(c) if c.isdigit() else c for c in args.cv]
    meta = _meta.start(__file__, argv, packages=("onnxruntime", "skl2onnx", "pandas"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for table in args.tables:
            for seed in args.seeds:
                for cv in cvs:
                    rows.append(run_one(table, seed, cv, Path(tmp)))
    summary = summarize(rows)
    table = markdown(rows)
    print("\n" + table)
    for cv, s in summary.items():
        print(f"cv {cv}: {s}")
    out = Path(args.out) if args.out else _meta.default_out("ensemble_refit", args.quick)
    return _meta.write_result(out, {"quick": args.quick, "n_random": N_RANDOM, "rows": rows, "summary": summary,
                                    "markdown": table}, meta)


if __name__ == "__main__":
    main()
