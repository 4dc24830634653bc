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

**Messy tables** (``--messy``): the generated tables of :func:`autodl.testing.tables.messy_table`
(20,000 rows; a unique string id and a row-number id, ISO date strings with a seasonal signal,
a 2,000-level categorical, constant / empty / duplicate / mixed-type columns, missing values,
1 % of rows without a target; classification with 2 % positives, and regression), 3 splits
(75/25, seeds 0-2). ``autodl`` gets the raw frame as a user has it (``autodl.search(X, y,
time_budget=30, metric=...)``, its defaults otherwise: rows without a target are dropped by
autodl); ``hgb_by_hand`` is ``HistGradientBoosting`` with its defaults on the columns a careful
user prepares (:func:`autodl.testing.tables.by_hand`: ids and useless columns dropped, date
parts, native categoricals). Metric: ROC AUC for the rare class, R^2 for regression. Beside the
scores: autodl's time from the call to its first completed trial, trials completed, and the peak memory of
the whole process tree (the search process and its workers, sampled every 0.1 s): their PSS summed
(what the tree occupies in RAM; shared library pages count once) and, beside it, their RSS summed
(shared pages counted in every process that maps them, an upper bound).

    python benchmarks/tabular.py --messy            # 2 tasks x 3 splits x 30 s: ~4 minutes
    python benchmarks/tabular.py --messy --quick    # 4,000 rows, 1 split, 10 s (for the tests)
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


def _ensemble(result) -> tuple[str, object | None]:
    """``(what predicts, the best trial's refit model when it is an ensemble member)``: the model
    family of the best trial, or "ensemble: hist_gb 0.60 + ..." for an ensemble."""
    if not result.ensemble:
        return result.best_config["model"], None
    parts = result.ensemble["members"]
    name = "ensemble: " + " + ".join(f"{m['model']} {m['weight']:.2f}" for m in parts)
    single = next((model for (_, model), m in zip(result.best_model.members, parts)
                   if m["trial_id"] == result.best_trial_id), None)
    return name, single


def run_autodl(task, X_tr, X_te, y_tr, y_te, budget: float, cv: int, searcher: str) -> dict:
    import autodl

    t0 = time.perf_counter()
    result = autodl.search(X_tr, y_tr, task=task, time_budget=budget, cv=cv, seed=0, test_size=0,
                           **({"searcher": searcher} if searcher else {}))
    seconds = time.perf_counter() - t0
    states = [t.state.value for t in result.study.trials]
    name, single = _ensemble(result)
    return {"test_score": _score(result.best_model, X_te, y_te, task), "cv_score": float(result.best_score),
            "seconds": seconds, "n_trials": int(result.study.n_finished),
            "n_complete": states.count("complete"), "n_stopped": states.count("pruned"),
            "best_model": name,
            "best_trial_alone_test_score": None if single is None else _score(single, X_te, y_te, task)}


def run_hgb_default(task, X_tr, X_te, y_tr, y_te) -> dict:
    t0 = time.perf_counter()
    model = _hgb(task).fit(X_tr, y_tr)
    return {"test_score": _score(model, X_te, y_te, task), "seconds": time.perf_counter() - t0, "n_trials": 1}


def hgb_optuna_params(trial) -> dict:
    """The HistGradientBoosting ranges Optuna tunes here (autodl's hist_gb parameters)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.5, log=True),
        "max_iter": trial.suggest_int("max_iter", 30, 300, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 64, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 64, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 10.0, log=True),
    }

def run_hgb_optuna(task, X_tr, X_te, y_tr, y_te, budget: float, cv: int) -> dict:
    import optuna
    from sklearn.model_selection import cross_val_score

    from autodl.tabular.pipeline import make_cv

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folds = make_cv(task, y_tr, cv, 0)
    scoring = "accuracy" if task == "classification" else "r2"

    params = hgb_optuna_params

    def objective(trial) -> float:
        model = _hgb(task, early_stopping=False, **params(trial))
        return float(cross_val_score(model, X_tr, y_tr, cv=folds, scoring=scoring).mean())

    t0 = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, timeout=budget)
    model = _hgb(task, early_stopping=False, **study.best_params).fit(X_tr, y_tr)
    return {"test_score": _score(model, X_te, y_te, task), "cv_score": float(study.best_value),
            "seconds": time.perf_counter() - t0, "n_trials": len(study.trials)}


class PeakMemory:
    """Peak memory summed over this process and all its descendants, sampled every 0.1 s: ``peak``
    sums each process's PSS (proportional set size: a page shared by k processes, such as the
    code of numpy, scikit-learn or torch mapped by every worker, counts 1/k in each, so the sum is
    what the tree occupies in RAM); ``peak_rss`` sums resident sizes (shared pages counted once
    per process that maps them, an upper bound); ``peak_by_process``: each process's own peak PSS."""

    def __init__(self):
        import threading

        import psutil

        self._me = psutil.Process()
        self.peak = self.peak_rss = 0
        self.peak_by_process: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        import psutil

        total = total_rss = 0
        for proc in [self._me, *self._me.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            total += info.pss
            total_rss += info.rss
            self.peak_by_process[proc.pid] = max(self.peak_by_process.get(proc.pid, 0), info.pss)
        self.peak_rss = max(self.peak_rss, total_rss)
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._sample())

    def __enter__(self):
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_messy(task: str, seed: int, budget: float, n_rows: int, cv=None, workers: int | None = None) -> dict:
    """autodl on the raw messy frame vs default HGB on the hand-prepared columns, one split."""
    from sklearn.metrics import r2_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    import autodl
    from autodl.testing.tables import by_hand, messy_table

    cv = int(cv) if cv is not None and str(cv).isdigit() else cv
    frame = messy_table(n_rows, task=task, seed=seed)
    train, test = train_test_split(frame, test_size=0.25, random_state=seed)
    test = test[test["target"].notna()]  # a row without a target cannot be scored
    metric = "roc_auc" if task == "classification" else "r2"

    def score(y_true, pred_or_proba) -> float:
        if task == "classification":
            return float(roc_auc_score(y_true == "yes", pred_or_proba))
        return float(r2_score(y_true, pred_or_proba))

    X_tr, y_tr = train.drop(columns="target"), train["target"]
    called = time.time()  # trial times are wall-clock (time.time())
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        result = autodl.search(X_tr, y_tr, time_budget=budget, metric=metric, seed=seed, test_size=0,
                               **({} if cv is None else {"cv": cv}), **({} if workers is None else {"n_workers": workers}))
    seconds = time.perf_counter() - t0
    X_te = test.drop(columns="target")
    name, single = _ensemble(result)
    if task == "classification":
        classes = list(result.best_model.classes_)
        auto = score(test["target"], result.predict_proba(X_te)[:, classes.index("yes")])
        alone = None if single is None else score(
            test["target"], single.predict_proba(result._frame(X_te))[:, classes.index("yes")])
    else:
        auto = score(test["target"], result.predict(X_te))
        alone = None if single is None else score(test["target"], single.predict(result._frame(X_te)))
    trials = result.study.trials
    complete = [t for t in trials if t.state.value == "complete"]
    first = min((t.finished for t in complete), default=None)
    hand_tr = train[train["target"].notna()]
    model = _hgb(task, categorical_features="from_dtype")
    t1 = time.perf_counter()
    model.fit(by_hand(hand_tr.drop(columns="target")), hand_tr["target"])
    hand_seconds = time.perf_counter() - t1
    hand_X = by_hand(X_te)
    hand = score(test["target"], model.predict_proba(hand_X)[:, list(model.classes_).index("yes")]
                 if task == "classification" else model.predict(hand_X))
    return {"task": task, "seed": seed, "metric": metric, "n_train": len(train), "n_test": len(test),
            "cv": cv or "auto",
            "autodl": {"test_score": auto, "seconds": round(seconds, 2), "n_complete": len(complete),
                       "n_trials": len(trials), "best_model": name, "best_trial_alone_test_score": alone,
                       "first_trial_seconds": None if first is None else round(first - called, 2),
                       "peak_memory_mb": round(mem.peak / 2**20, 1),
                       "peak_rss_sum_mb": round(mem.peak_rss / 2**20, 1),
                       "peak_memory_by_process_mb": sorted((round(v / 2**20, 1) for v in mem.peak_by_process.values()),
                                                           reverse=True)},
            "hgb_by_hand": {"test_score": hand, "seconds": round(hand_seconds, 2)},
            "autodl_at_least_hgb": bool(auto >= hand - 1e-12)}


def messy_main(args, meta) -> dict:
    budget = args.budget or (10.0 if args.quick else 30.0)
    n_rows, seeds = (4000, (0,)) if args.quick else (20_000, (0, 1, 2))
    rows = []
    for task in ("classification", "regression"):
        for seed in seeds:
            import os

            load = round(os.getloadavg()[0], 2)
            row = run_messy(task, seed, budget, n_rows, args.cv, args.workers)
            row["load_average_before"] = load
            rows.append(row)
            a = row["autodl"]
            print(f"{task} seed {seed}: autodl {a['test_score']:.4f} ({a['best_model']}, {a['n_complete']} trials, "
                  f"first after {a['first_trial_seconds']}s, peak {a['peak_memory_mb']:.0f} MB PSS, "
                  f"{a['peak_rss_sum_mb']:.0f} MB RSS, {a['seconds']:.1f}s) "
                  f"vs HGB by hand {row['hgb_by_hand']['test_score']:.4f}", flush=True)
    lines = ["| task | split | metric | autodl (raw frame) | HGB default (by hand) | autodl model | trials | "
             "first trial | peak memory (PSS sum) | RSS sum | autodl seconds |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r["autodl"]
        lines.append(f"| {r['task']} | {r['seed']} | {r['metric']} | {a['test_score']:.4f} | "
                     f"{r['hgb_by_hand']['test_score']:.4f} | {a['best_model']} | {a['n_complete']} | "
                     f"{a['first_trial_seconds']} s | {a['peak_memory_mb']:.0f} MB | {a['peak_rss_sum_mb']:.0f} MB | "
                     f"{a['seconds']:.1f} |")
    table = "\n".join(lines)
    print("\n" + table)
    wins = sum(r["autodl_at_least_hgb"] for r in rows)
    result = {"suite": "messy", "cv": args.cv or "auto (autodl's default)", "budget_seconds": budget, "n_rows": n_rows, "quick": bool(args.quick), "rows": rows,
              "autodl_at_least_hgb_by_hand": f"{wins}/{len(rows)}",
              "max_peak_memory_mb": max(r["autodl"]["peak_memory_mb"] for r in rows),
              "max_peak_rss_sum_mb": max(r["autodl"]["peak_rss_sum_mb"] for r in rows), "markdown": table}
    name = "tabular_messy" if args.cv is None else f"tabular_messy_cv{args.cv}"
    if args.workers is not None:
        name += f"_workers{args.workers}"
        result["workers"] = args.workers
    return _meta.write_result(args.out or _meta.default_out(name, args.quick), result, meta)


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
    parser.add_argument("--cv", help="folds or holdout (default: 5 for the bundled sets; autodl's default, "
                                     "auto, for --messy)")
    parser.add_argument("--searcher", help="autodl's searcher (default: autodl's default, TPE)")
    parser.add_argument("--messy", action="store_true", help="the generated messy tables (see the module doc)")
    parser.add_argument("--workers", type=int, help="--messy: autodl's n_workers (default: autodl's default)")
    parser.add_argument("--out", help="JSON output (default benchmarks/results/tabular[_messy][_quick].json)")
    args = parser.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    if args.messy:
        return messy_main(args, meta)
    import os

    from threadpoolctl import threadpool_limits

    os.environ["OMP_NUM_THREADS"] = "1"  # autodl's worker process takes its thread limit from it

    budget = args.budget or (8.0 if args.quick else 30.0)
    datasets = args.datasets or (("iris", "diabetes") if args.quick else DATASETS)
    cv = int(args.cv) if args.cv else (3 if args.quick else 5)
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
