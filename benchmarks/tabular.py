"""Tabular AutoML: autodl.search against HistGradientBoosting, default and tuned by Optuna.

On scikit-learn's bundled sets (iris, wine, breast_cancer, digits, diabetes; no download), each
with one fixed train/test split (75/25, stratified for classification, seed 0):

* ``autodl``: ``autodl.search`` on the training rows (the whole tabular space, autodl's default
  searcher (TPE) unless ``--searcher``, 5-fold CV, ``--budget`` seconds), best pipeline refit on
  the training rows. The budget is a deadline for the whole call: trials run in a worker
  process, one still running at the deadline is stopped, and the refit fits in the budget;
* ``hgb_default``: ``HistGradientBoosting{Classifier,Regressor}(random_state=0)``;
* ``hgb_optuna``: HistGradientBoosting tuned by Optuna's TPE sampler for ``--budget`` seconds
  on the same 5 folds (autodl's own folds: ``autodl.tabular.pipeline.make_cv``), over the same
  ranges as autodl's ``hist_gb`` parameters, refit on the training rows. Optuna's ``timeout``
  only stops new trials: the one running at the timeout finishes, and the refit comes after.

Scores are on the held-out test rows: accuracy for classification, R^2 for regression. Times
are wall-clock seconds of search + refit. Everything runs single-threaded (OpenMP limited to
one thread, in autodl's worker process too) so the tools get the same CPU. The load average is
recorded before and after each tool: on a shared machine it says how fair the comparison was.
Writes a markdown table to stdout and JSON to ``--out`` (default
``benchmarks/results/tabular.json``), with the run's commit, versions and load average
(``benchmarks/_meta.py``).

    python benchmarks/tabular.py            # 30 s per tool and dataset, about 6 minutes
    python benchmarks/tabular.py --quick    # iris and diabetes, 8 s each, ~45 s (used by the tests)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

DATASETS = ("iris", "wine", "breast_cancer", "digits", "diabetes")
#: distributions whose versions the result records
PACKAGES = ("optuna", "pandas", "threadpoolctl")


def load(name: str):
    from sklearn.model_selection import train_test_split

    from autodl.tabular.data import BUILTIN_DATASETS, load_builtin

    ds = load_builtin(name)
    task = BUILTIN_DATASETS[name]
    X_tr, X_te, y_tr, y_te = train_test_split(ds.X, ds.y, test_size=0.25, random_state=0,
                                              stratify=ds.y if task == "classification" else None)
    return task, X_tr.reset_index(drop=True), X_te, y_tr.reset_index(drop=True), y_te


def _hgb(task: str, **params):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return cls(random_state=0, **params)


def _score(model, X, y, task: str) -> float:
    return float(model.score(X, y))  # accuracy / R^2


def run_autodl(task, X_tr, X_te, y_tr, y_te, budget: float, cv: int, searcher: str) -> dict:
    import autodl

    t0 = time.perf_counter()
    result = autodl.search(X_tr, y_tr, task=task, time_budget=budget, cv=cv, seed=0, test_size=0,
                           **({"searcher": searcher} if searcher else {}))
    seconds = time.perf_counter() - t0
    states = [t.state.value for t in result.study.trials]
    return {"test_score": _score(result.best_model, X_te, y_te, task), "cv_score": float(result.best_score),
            "seconds": seconds, "n_trials": int(result.study.n_finished),
            "n_complete": states.count("complete"), "n_stopped": states.count("pruned"),
            "best_model": result.best_config["model"]}


def run_hgb_default(task, X_tr, X_te, y_tr, y_te) -> dict:
    t0 = time.perf_counter()
    model = _hgb(task).fit(X_tr, y_tr)
    return {"test_score": _score(model, X_te, y_te, task), "seconds": time.perf_counter() - t0, "n_trials": 1}


def run_hgb_optuna(task, X_tr, X_te, y_tr, y_te, budget: float, cv: int) -> dict:
    import optuna
    from sklearn.model_selection import cross_val_score

    from autodl.tabular.pipeline import make_cv

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folds = make_cv(task, y_tr, cv, 0)
    scoring = "accuracy" if task == "classification" else "r2"

    def params(trial) -> dict:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.5, log=True),
            "max_iter": trial.suggest_int("max_iter", 30, 300, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 64, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 64, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
        }

    def objective(trial) -> float:
        model = _hgb(task, early_stopping=False, **params(trial))
        return float(cross_val_score(model, X_tr, y_tr, cv=folds, scoring=scoring).mean())

    t0 = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, timeout=budget)
    model = _hgb(task, early_stopping=False, **study.best_params).fit(X_tr, y_tr)
    return {"test_score": _score(model, X_te, y_te, task), "cv_score": float(study.best_value),
            "seconds": time.perf_counter() - t0, "n_trials": len(study.trials)}


def markdown(rows: list[dict]) -> str:
    lines = ["| dataset | metric | autodl | HGB default | HGB + Optuna TPE | autodl model | trials (autodl / Optuna) |"
             " seconds (autodl / Optuna) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, d, o = r["autodl"], r["hgb_default"], r["hgb_optuna"]
        lines.append(f"| {r['dataset']} | {r['metric']} | {a['test_score']:.4f} | {d['test_score']:.4f} | "
                     f"{o['test_score']:.4f} | {a['best_model']} | {a['n_trials']} / {o['n_trials']} | "
                     f"{a['seconds']:.1f} / {o['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="iris and diabetes, 8 s budgets")
    parser.add_argument("--budget", type=float, help="seconds per tuned tool and dataset (default 30; quick 8)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--searcher", help="autodl's searcher (default: autodl's default, TPE)")
    parser.add_argument("--out", help="JSON output (default benchmarks/results/tabular[_quick].json)")
    args = parser.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    import os

    from threadpoolctl import threadpool_limits

    os.environ["OMP_NUM_THREADS"] = "1"  # autodl's worker process takes its thread limit from it

    budget = args.budget or (8.0 if args.quick else 30.0)
    datasets = args.datasets or (("iris", "diabetes") if args.quick else DATASETS)
    cv = 3 if args.quick and args.cv == 5 else args.cv
    rows = []
    with threadpool_limits(limits=1):
        for name in datasets:
            task, X_tr, X_te, y_tr, y_te = load(name)
            row = {"dataset": name, "task": task, "metric": "accuracy" if task == "classification" else "r2",
                   "n_train": len(X_tr), "n_test": len(X_te)}
            loadavg = [round(os.getloadavg()[0], 2)]
            row["autodl"] = run_autodl(task, X_tr, X_te, y_tr, y_te, budget, cv, args.searcher)
            loadavg.append(round(os.getloadavg()[0], 2))
            row["hgb_default"] = run_hgb_default(task, X_tr, X_te, y_tr, y_te)
            row["hgb_optuna"] = run_hgb_optuna(task, X_tr, X_te, y_tr, y_te, budget, cv)
            loadavg.append(round(os.getloadavg()[0], 2))
            row["load_average"] = {"before_autodl": loadavg[0], "after_autodl": loadavg[1],
                                   "after_optuna": loadavg[2]}
            rows.append(row)
            print(f"{name}: autodl {row['autodl']['test_score']:.4f}, HGB {row['hgb_default']['test_score']:.4f}, "
                  f"HGB+Optuna {row['hgb_optuna']['test_score']:.4f} (load {loadavg[0]} / {loadavg[1]} / {loadavg[2]})",
                  flush=True)
    wins = sum(r["autodl"]["test_score"] >= r["hgb_optuna"]["test_score"] - 1e-12 for r in rows)
    result = {"budget_seconds": budget, "cv": cv, "searcher": args.searcher or "tpe (default)",
              "quick": bool(args.quick), "rows": rows, "autodl_matches_or_beats_optuna": f"{wins}/{len(rows)}"}
    table = markdown(rows)
    print()
    print(table)
    print(f"\nautodl >= HGB+Optuna on {wins} of {len(rows)} sets (test scores, {budget:g}s budgets)")
    result["markdown"] = table
    return _meta.write_result(args.out or _meta.default_out("tabular", args.quick), result, meta)


if __name__ == "__main__":
    main()
