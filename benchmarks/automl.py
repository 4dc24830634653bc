"""Tabular AutoML side by side: autodl against AutoGluon, FLAML and HistGradientBoosting.

Every tool gets the same train/test split of a table (75/25, ``train_test_split(random_state=
seed)``, stratified for classification), the same wall-clock budget ``T`` and its own defaults,
on the machine as it is: each tool uses the cores it would for a user, unless ``--threads N``
caps every tool at ``N`` threads (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
``OPENBLAS_NUM_THREADS`` = N in the worker's environment, which autodl and HGB follow, and
``num_cpus=N`` for AutoGluon, ``n_jobs=N`` for FLAML, ``n_workers=1`` for autodl). On a 2-core machine shared with other
work, two OpenMP threads per process wait on each other: HGB's fit on iris took 12 times as long
with 2 threads as with 1 at a load average of 5. The cap is recorded and is part of the cache key.

A tool may pass its budget: what each used is recorded, not cut. Seen on this code's machine
(FLAML 2.8, CatBoost 1.2.10): FLAML does not stop a running trial at ``time_budget``, and on
iris its first CatBoost trial, started at 3.8 s of 8, ran for 121 s (with one thread or two).

* ``autodl``: ``autodl.search(X, y, task=..., metric=..., time_budget=T, seed=seed, test_size=0)``
  (its weighted ensemble by default), ``result.predict`` / ``predict_proba`` on the test rows;
  ``autodl-single`` (only with ``--single``): the same with ``ensemble=False``;
  ``autodl-folds`` (only with ``--tools``): the same with ``refit=False`` (members predict with their
  fold models, nothing is fitted after the search); ``autodl-refit`` (only with ``--tools``): the
  same with ``refit=True`` (every member refit on all rows, members whose refits do not fit in
  time left out; the default before members could fall back on their fold models);
* ``autogluon``: ``TabularPredictor(label, eval_metric, problem_type, path=<tmp>, verbosity=0)
  .fit(train, time_limit=T, presets="medium_quality")``;
* ``flaml``: ``AutoML().fit(X, y, task=..., time_budget=T, metric=..., seed=seed, verbose=0)``;
* ``hgb_default``: ``HistGradientBoosting{Classifier,Regressor}(random_state=seed)``;
* ``hgb_optuna``: HistGradientBoosting tuned by Optuna's TPE sampler (seeded) for ``T`` seconds
  on 5 folds (autodl's splitter), over the ranges of ``benchmarks/tabular.py``, optimizing the
  table's metric, refit on the training rows. ``tabular.py``'s own function is not reused: it
  scores accuracy / R^2 only and does not return the model (whose latency is measured here).
  Optuna's ``timeout`` only stops new trials, so this tool may pass ``T`` by one trial + refit.

Both HGB tools see the columns as HGB can take them (:func:`hgb_encoder`: booleans as 0/1, a
text column of at most 255 levels as a pandas category, one with more as its level's number, a
column with no value dropped: scikit-learn 1.9's binning fails on it); numeric tables pass
unchanged.

Each tool runs in its own subprocess of this Python (``python benchmarks/automl.py --worker
spec.json``; imports, threads and memory do not leak between tools), reading the split from
parquet files. Run the script with a Python that has the ``bench`` extra (AutoGluon, FLAML,
Optuna, onnxruntime): ``make bench`` installs it into ``.venv``. A worker reports:

* ``score``: the table's metric on the test rows: ``accuracy`` (multiclass and balanced binary
  tables), ``roc_auc`` (imbalanced binary tables and breast_cancer; positive class: the larger
  label) or ``r2`` (regression);
* ``fit_seconds``: the wall-clock time of the call given the budget (search/fit, refit
  included); ``seconds``: from the worker's start (before the tool is imported) to the test
  predictions; ``process_seconds``: the whole subprocess as the parent saw it;
* ``predict_ms``: single-row latency of the tool's own ``predict`` on one raw test row (median of
  50 calls after 3 warm-up calls);
* autodl only: ``onnx_ok`` (``result.export_onnx`` worked), ``onnx_ms`` (median of 50
  ``session.run`` on one row, onnxruntime with 1 intra-op thread, feeds built once),
  ``onnx_feeds_ms`` (the same plus ``table_to_feeds`` of the raw row, what
  :func:`autodl.export.runtime.predict_table` pays per call) and the agreement of the ONNX file
  with ``result.predict`` on the test rows.

**Cache.** The anchors' results (autogluon, flaml, hgb_default, hgb_optuna) are kept in
``results/automl_cache.json`` under (tool, tool version, table and its definition, seed, T,
thread cap):
a re-run measures only what is missing, so it times autodl alone once the anchors are in.
Entries are added, never replaced; a failed anchor is not cached (it is tried again).

**Summary** (over the tools and tables of the run; a tool that failed a table is left out of
that table's comparisons):

* per table and tool: mean and standard error (``sd / sqrt(n)``, ``ddof=1``; 0 for one seed) of
  the score over the seeds;
* autodl's wins / ties / losses against each anchor: on a table, with ``d_s`` the paired
  difference autodl - anchor of seed ``s`` (same split), ``d`` their mean and ``se`` their
  standard error, a **win** is ``d > se``, a **loss** ``d < -se``, anything else a **tie**
  (differences within 1e-12 are 0, so with one seed only an exact tie is one);
* mean rank per tool (per table by mean score, 1 = best, ties share the mean of their ranks);
* mean normalized score per tool: per table ``(score - worst) / (best - worst)`` over the tools'
  mean scores (1 for every tool when they are all equal);
* seconds used per tool (median and max of ``fit_seconds`` and ``seconds``);
* single-row latency: per tool the median over tables of ``predict_ms``; autodl's ONNX
  ``onnx_ms`` (median over tables), and per tool the median over tables of ``predict_ms /
  onnx_ms`` (``onnx_speedup_vs_own_predict``).

The goal of issue 18 is summarized under ``goal``: on how many tables autodl is at least as good
as both AutoGluon and FLAML (a win or a tie against each) and better than both (a win against
each), whether it is first in mean rank, and whether its ONNX file predicts one row in under
1 ms.

JSON to ``--out`` (default ``results/automl.json``) with the run's commit, versions and load
average (``benchmarks/_meta.py``); a run keeps the summaries of the earlier runs in that file
under ``earlier_runs`` (pooled, never replaced). Prints a markdown table.

    python benchmarks/automl.py                       # 14 tables x 3 seeds x 30 s: about 2 h
    python benchmarks/automl.py --time 120 --seeds 0  # the longer budget, one seed
    python benchmarks/automl.py --tools autogluon flaml hgb_default hgb_optuna --tables iris wine
    python benchmarks/automl.py --threads 1           # on a machine shared with other work
    python benchmarks/automl.py --quick               # iris and diabetes, 1 seed, 8 s (the smoke test)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

LABEL = "target"
AUTODL_TOOLS = ("autodl", "autodl-single", "autodl-folds", "autodl-refit")
ANCHORS = ("autogluon", "flaml", "hgb_default", "hgb_optuna")
TOOLS = ("autodl", *ANCHORS)
#: distributions whose versions the result records
PACKAGES = ("autogluon.tabular", "autogluon.core", "flaml", "torch", "pandas", "optuna", "onnxruntime",
            "lightgbm", "catboost", "xgboost", "pyarrow")
CACHE = _meta.RESULTS_DIR / "automl_cache.json"
LATENCY_CALLS, WARMUP_CALLS = 50, 3
TIE = 1e-12

# -- tables ----------------------------------------------------------------------------------
# name -> (kind, params, metric): the params define the table (they are hashed into the cache key)
TABLES: dict[str, tuple[str, dict[str, Any], str]] = {
    "iris": ("sklearn", {"name": "iris"}, "accuracy"),
    "wine": ("sklearn", {"name": "wine"}, "accuracy"),
    "breast_cancer": ("sklearn", {"name": "breast_cancer"}, "roc_auc"),
    "digits": ("sklearn", {"name": "digits"}, "accuracy"),
    "diabetes": ("sklearn", {"name": "diabetes"}, "r2"),
    # imbalanced binary, label noise: 5,000 x 20
    "clf_imbalanced": ("classification", {"n_samples": 5000, "n_features": 20, "n_informative": 6,
                                          "n_redundant": 4, "weights": [0.92], "flip_y": 0.02}, "roc_auc"),
    # few rows, many columns: 600 x 100, 10 informative
    "clf_wide": ("classification", {"n_samples": 600, "n_features": 100, "n_informative": 10,
                                    "n_redundant": 10, "flip_y": 0.05}, "accuracy"),
    # 3 classes with 4 text columns derived from the signal (plus noise levels) and 5 % missing
    "clf_categorical": ("classification", {"n_samples": 3000, "n_features": 12, "n_informative": 6,
                                           "n_classes": 3, "n_clusters_per_class": 2, "flip_y": 0.03,
                                           "categorical": 4, "missing": 0.05}, "accuracy"),
    # the largest: 20,000 x 30, hard (classes close)
    "clf_large": ("classification", {"n_samples": 20000, "n_features": 30, "n_informative": 12,
                                     "n_redundant": 6, "class_sep": 0.6, "flip_y": 0.05}, "accuracy"),
    "reg_linear": ("regression", {"n_samples": 2000, "n_features": 30, "n_informative": 10,
                                  "noise": 20.0}, "r2"),
    "friedman1": ("friedman1", {"n_samples": 5000, "n_features": 10, "noise": 1.0}, "r2"),
    # non-linear with 3 text columns carrying effects and 5 % missing: 10,000 x 13
    "reg_categorical": ("friedman1", {"n_samples": 10000, "n_features": 10, "noise": 0.5, "categorical": 3,
                                      "missing": 0.05}, "r2"),
    # autodl.testing.tables.messy_table (rows without a target dropped before the split)
    "messy_classification": ("messy", {"n": 20000, "task": "classification"}, "roc_auc"),
    "messy_regression": ("messy", {"n": 20000, "task": "regression"}, "r2"),
}
QUICK_TABLES = ("iris", "diabetes")


def table_id(name: str, tables: dict | None = None) -> str:
    """``name@<hash of its definition>`` (in ``tables``, default :data:`TABLES`): a changed table
    is a new cache key."""
    digest = hashlib.sha1(json.dumps((tables or TABLES)[name], sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}@{digest}"


def _add_categoricals(X, y_signal, k: int, missing: float, rng):
    """``X`` with ``k`` text columns: quantile bins of a noisy copy of the signal (6-40 levels,
    named ``L<i>``), so they carry information, and ``missing`` of every column set missing."""
    import numpy as np
    import pandas as pd

    X = X.copy()
    for j in range(k):
        levels = int(rng.integers(6, 41))
        noisy = y_signal + rng.normal(0, np.std(y_signal) * (0.5 + j), len(X))
        codes = pd.qcut(noisy, levels, labels=False, duplicates="drop")
        X[f"cat{j}"] = np.char.add("L", np.asarray(codes, dtype=int).astype(str)).astype(object)
    if missing:
        for col in X.columns:
            X.loc[rng.random(len(X)) < missing, col] = np.nan
    return X


def load_table(name: str, tables: dict | None = None):
    """``(X DataFrame, y Series, task, metric)`` of a table of ``tables`` (default :data:`TABLES`;
    ``benchmarks/build_portfolio.py`` passes its own); generated tables are fixed (seed 0)."""
    import numpy as np
    import pandas as pd
    from sklearn import datasets

    kind, params, metric = (tables or TABLES)[name]
    params = dict(params)
    rng = np.random.default_rng(0)
    if kind == "sklearn":
        X, y = getattr(datasets, f"load_{params['name']}")(return_X_y=True, as_frame=True)
        task = "regression" if metric == "r2" else "classification"
    elif kind == "messy":
        from autodl.testing.tables import messy_table

        frame = messy_table(params["n"], task=params["task"], seed=0,
                            positive_rate=params.get("positive_rate", 0.02))
        frame = frame[frame[LABEL].notna()].reset_index(drop=True)
        X, y, task = frame.drop(columns=LABEL), frame[LABEL], params["task"]
    else:
        k, missing = params.pop("categorical", 0), params.pop("missing", 0.0)
        if kind == "classification":
            Xa, ya = datasets.make_classification(random_state=0, **params)
            signal_ = Xa[:, :3].sum(axis=1) + ya  # what the text columns are binned from
            task = "classification"
        else:
            maker = {"regression": datasets.make_regression, "friedman1": datasets.make_friedman1,
                     "friedman2": datasets.make_friedman2, "friedman3": datasets.make_friedman3}[kind]
            Xa, ya = maker(random_state=0, **params)
            signal_, task = ya, "regression"
        X = pd.DataFrame(Xa, columns=[f"x{i}" for i in range(Xa.shape[1])])
        X = _add_categoricals(X, signal_, k, missing, rng)
        y = pd.Series(ya, name=LABEL)
    y = pd.Series(np.asarray(y), name=LABEL)
    assert LABEL not in X.columns
    return X.reset_index(drop=True), y, task, metric


def split(X, y, task: str, seed: int):
    """75/25, stratified for classification."""
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=0.25, random_state=seed,
                            stratify=y if task == "classification" else None)


# -- scoring ---------------------------------------------------------------------------------
def score(metric: str, y_true, pred=None, proba_positive=None) -> float:
    """The table's metric: accuracy of labels, ROC AUC of the larger label's probability, R^2."""
    import numpy as np
    from sklearn.metrics import accuracy_score, r2_score, roc_auc_score

    if metric == "accuracy":
        return float(accuracy_score(np.asarray(y_true), np.asarray(pred)))
    if metric == "roc_auc":
        positive = max(set(np.asarray(y_true).tolist()))
        return float(roc_auc_score(np.asarray(y_true) == positive, np.asarray(proba_positive, dtype=float)))
    return float(r2_score(np.asarray(y_true, dtype=float), np.asarray(pred, dtype=float)))


def _positive_column(classes, proba, y_train):
    import numpy as np

    positive = max(set(np.asarray(y_train).tolist()))
    return np.asarray(proba)[:, list(classes).index(positive)]


def _median_ms(fn: Callable[[], Any], calls: int = LATENCY_CALLS) -> float:
    for _ in range(WARMUP_CALLS):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 4)


def hgb_encoder(X_tr) -> Callable:
    """``encode(X)``: a frame as HistGradientBoosting takes it, with the levels of ``X_tr`` (see
    the module doc); numeric columns pass unchanged."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    empty = [c for c in X_tr.columns if X_tr[c].isna().all()]
    booleans = [c for c in X_tr.columns if is_bool_dtype(X_tr[c].dtype)]
    levels = {c: sorted({str(v) for v in X_tr[c].dropna()}) for c in X_tr.columns
              if c not in booleans and c not in empty and not is_numeric_dtype(X_tr[c].dtype)}

    def encode(X):
        X = X.drop(columns=empty)
        for c in booleans:
            X[c] = X[c].astype(float)
        for c, lv in levels.items():
            text = X[c].map(lambda v: v if pd.isna(v) else str(v))
            if len(lv) <= 255:
                X[c] = pd.Categorical(text, categories=lv)
            else:
                X[c] = text.map({v: i for i, v in enumerate(lv)}).astype(float)
        return X
    return encode


# -- the tools (each runs inside a worker subprocess) -----------------------------------------
def _fit_autodl(spec, X_tr, y_tr, X_te, ensemble: bool, refit: bool | None = None) -> dict:
    import autodl

    t0 = time.perf_counter()
    # under a thread cap, one worker process (with that many threads) as for the other tools
    workers = {} if spec["threads"] is None else {"n_workers": 1}
    result = autodl.search(X_tr, y_tr, task=spec["task"], metric=spec["metric"], time_budget=spec["time"],
                           seed=spec["seed"], test_size=0, ensemble=ensemble, refit=refit, **workers)
    fit = time.perf_counter() - t0
    trials = result.study.trials
    info = {"n_trials": len(trials), "n_complete": sum(t.state.value == "complete" for t in trials),
            "best_model": result.best_config.get("model"), "cv_score": float(result.best_score),
            "ensemble": None if not result.ensemble else {
                "members": [(m["model"], m["weight"], m.get("fitted")) for m in result.ensemble["members"]],
                "ensemble_score": result.ensemble.get("ensemble_score")},
            "ensemble_note": getattr(result, "ensemble_note", None)}
    return {"fit_seconds": fit, "model": result, "info": info,
            "predict": result.predict, "proba": (lambda X: (result.best_model.classes_, result.predict_proba(X)))}


def _fit_autogluon(spec, X_tr, y_tr, X_te) -> dict:
    from autogluon.tabular import TabularPredictor

    problem = ("regression" if spec["task"] == "regression" else
               "binary" if len(set(y_tr.tolist())) == 2 else "multiclass")
    train = X_tr.assign(**{LABEL: y_tr.to_numpy()})
    path = tempfile.mkdtemp(prefix="ag-", dir=spec["dir"])
    t0 = time.perf_counter()
    cap = {} if spec["threads"] is None else {"num_cpus": spec["threads"]}
    predictor = TabularPredictor(label=LABEL, eval_metric=spec["metric"], problem_type=problem, path=path,
                                 verbosity=0).fit(train, time_limit=spec["time"], presets="medium_quality", **cap)
    fit = time.perf_counter() - t0
    board = predictor.leaderboard(silent=True)
    failures = predictor.model_failures()
    info = {"best_model": predictor.model_best, "models": [
        {"model": r["model"], "score_val": float(r["score_val"]), "fit_time": float(r["fit_time"])}
        for _, r in board.iterrows()],
        "failures": [{"model": str(r.get("model")), "exc_type": str(r.get("exc_type")),
                      "exc": str(r.get("exc_str", ""))[:200]} for _, r in failures.iterrows()]}

    def proba(X):
        p = predictor.predict_proba(X)
        return list(p.columns), p.to_numpy()
    return {"fit_seconds": fit, "info": info, "predict": lambda X: predictor.predict(X).to_numpy(), "proba": proba}


def _fit_flaml(spec, X_tr, y_tr, X_te) -> dict:
    from flaml import AutoML

    automl = AutoML()
    t0 = time.perf_counter()
    cap = {} if spec["threads"] is None else {"n_jobs": spec["threads"]}
    automl.fit(X_tr, y_tr, task=spec["task"], time_budget=spec["time"], metric=spec["metric"], seed=spec["seed"],
               verbose=0, **cap)
    fit = time.perf_counter() - t0
    tried = {k: v for k, v in automl.best_config_per_estimator.items()}
    info = {"best_model": automl.best_estimator, "estimators": list(tried),
            "estimators_without_result": [k for k, v in tried.items() if v is None],
            "best_loss": float(automl.best_loss)}
    return {"fit_seconds": fit, "info": info, "predict": automl.predict,
            "proba": lambda X: (automl.classes_, automl.predict_proba(X))}


def _hgb(task: str, seed: int, **params):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return cls(random_state=seed, **params)


def _hgb_tool(spec, X_tr, X_te, model_of: Callable) -> dict:
    t0 = time.perf_counter()
    encode = hgb_encoder(X_tr)
    model, info = model_of(encode(X_tr))
    fit = time.perf_counter() - t0
    return {"fit_seconds": fit, "info": info, "predict": lambda X: model.predict(encode(X)),
            "proba": lambda X: (model.classes_, model.predict_proba(encode(X)))}


def _fit_hgb_default(spec, X_tr, y_tr, X_te) -> dict:
    return _hgb_tool(spec, X_tr, X_te, lambda H: (_hgb(spec["task"], spec["seed"]).fit(H, y_tr), {}))


def _optuna_params(trial) -> dict:
    """The ranges of benchmarks/tabular.py's hgb_optuna (autodl's hist_gb parameters)."""
    from tabular import hgb_optuna_params

    return hgb_optuna_params(trial)


def _fit_hgb_optuna(spec, X_tr, y_tr, X_te) -> dict:
    import optuna
    from sklearn.model_selection import cross_val_score

    from autodl.tabular.pipeline import make_cv

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task, seed = spec["task"], spec["seed"]

    def tune(H):
        folds = make_cv(task, y_tr, 5, seed)

        def objective(trial) -> float:
            model = _hgb(task, seed, early_stopping=False, **_optuna_params(trial))
            return float(cross_val_score(model, H, y_tr, cv=folds, scoring=spec["metric"]).mean())

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, timeout=spec["time"])
        model = _hgb(task, seed, early_stopping=False, **study.best_params).fit(H, y_tr)
        return model, {"n_trials": len(study.trials), "cv_score": float(study.best_value)}
    return _hgb_tool(spec, X_tr, X_te, tune)


FITTERS = {"autodl": lambda *a: _fit_autodl(*a, ensemble=True),
           "autodl-single": lambda *a: _fit_autodl(*a, ensemble=False),
           "autodl-folds": lambda *a: _fit_autodl(*a, ensemble=True, refit=False),
           "autodl-refit": lambda *a: _fit_autodl(*a, ensemble=True, refit=True),
           "autogluon": _fit_autogluon, "flaml": _fit_flaml,
           "hgb_default": _fit_hgb_default, "hgb_optuna": _fit_hgb_optuna}


def _onnx(result, X_te, spec) -> dict:
    """Export autodl's predictor, then time and check the file with onnxruntime alone."""
    import numpy as np

    from autodl.export.runtime import make_session, predictions_frame, read_metadata, run, table_to_feeds

    path = Path(spec["dir"]) / f"{spec['tool']}.onnx"
    try:
        result.export_onnx(path)
    except Exception as exc:  # any failure of the export is the measurement here
        return {"onnx_ok": False, "onnx_error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    session = make_session(path, threads=1)
    meta = read_metadata(session)
    row = X_te.iloc[[0]]
    feeds = table_to_feeds(row, meta)
    names = [o.name for o in session.get_outputs()]
    out = {"onnx_ok": True, "onnx_bytes": path.stat().st_size,
           "onnx_ms": _median_ms(lambda: session.run(names, feeds)),
           "onnx_feeds_ms": _median_ms(lambda: session.run(names, table_to_feeds(row, meta)))}
    frame = predictions_frame(run(session, table_to_feeds(X_te, meta)), meta)
    python = np.asarray(result.predict(X_te))
    if spec["task"] == "classification":
        out["onnx_label_agreement"] = float(np.mean(frame["prediction"].astype(str).to_numpy() == python.astype(str)))
    else:
        diff = np.abs(frame["prediction"].to_numpy() - python.astype(float))
        out["onnx_max_abs_diff"] = float(np.max(diff))
        # relative to the prediction's size: float32 trees (HGB, forests) round to ~1e-7 of it
        out["onnx_max_rel_diff"] = float(np.max(diff / np.maximum(np.abs(python.astype(float)), 1.0)))
    return out


def worker(spec_path: str) -> None:
    """Run one tool on one split (``spec.json`` beside ``train.parquet`` / ``test.parquet``) and
    write ``<tool>.json`` there."""
    started = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text())
    import pandas as pd

    folder = Path(spec["dir"])
    train, test = pd.read_parquet(folder / "train.parquet"), pd.read_parquet(folder / "test.parquet")
    X_tr, y_tr = train.drop(columns=LABEL), train[LABEL]
    X_te, y_te = test.drop(columns=LABEL), test[LABEL]
    fitted = FITTERS[spec["tool"]](spec, X_tr, y_tr, X_te)
    if spec["metric"] == "roc_auc":
        classes, proba = fitted["proba"](X_te)
        test_score = score("roc_auc", y_te, proba_positive=_positive_column(classes, proba, y_tr))
    else:
        test_score = score(spec["metric"], y_te, pred=fitted["predict"](X_te))
    seconds = time.perf_counter() - started
    row = X_te.iloc[[0]]
    out = {"ok": True, "score": test_score, "fit_seconds": round(fitted["fit_seconds"], 3),
           "seconds": round(seconds, 3), "predict_ms": _median_ms(lambda: fitted["predict"](row)),
           "info": fitted["info"]}
    if spec["tool"] in AUTODL_TOOLS:
        out.update(_onnx(fitted["model"], X_te, spec))
    _meta.write_json(folder / f"{spec['tool']}.json", out)


# -- the parent: splits, subprocesses, cache ---------------------------------------------------
def tool_version(tool: str) -> str:
    def v(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "missing"
    return {"autogluon": lambda: f"autogluon.tabular {v('autogluon.tabular')}",
            "flaml": lambda: f"flaml {v('flaml')}",
            "hgb_default": lambda: f"scikit-learn {v('scikit-learn')}",
            "hgb_optuna": lambda: f"scikit-learn {v('scikit-learn')}, optuna {v('optuna')}"}.get(
        tool, lambda: f"autodl {v('autodl')}")()


def cache_key(tool: str, table: str, seed: int, budget: float, threads: int | None) -> str:
    cap = "default" if threads is None else threads
    return f"{tool}|{tool_version(tool)}|{table_id(table)}|seed={seed}|T={budget:g}|threads={cap}"


def load_cache(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text())["entries"] if path.exists() else {}


def add_to_cache(path: Path, key: str, record: dict) -> None:
    """Add ``record`` under ``key`` (re-read first: another run may have added entries; an
    existing entry is kept, never replaced)."""
    entries = load_cache(path)
    entries.setdefault(key, record)
    _meta.write_json(path, {"schema": 1, "about": "anchor results of benchmarks/automl.py (see its docstring)",
                            "entries": entries})


def run_tool(tool: str, folder: Path, spec: dict, timeout: float) -> dict:
    """One tool in a subprocess (its own session, killed with its children past ``timeout``)."""
    spec = dict(spec, tool=tool, dir=str(folder))
    spec_path = folder / f"{tool}.spec.json"
    spec_path.write_text(json.dumps(spec))
    out = folder / f"{tool}.json"
    load_before = _meta.load_average()
    t0 = time.perf_counter()
    env = dict(os.environ)
    if spec["threads"] is not None:
        env.update({var: str(spec["threads"]) for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", str(spec_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        err = f"killed after {timeout:.0f}s\n{err}"
    process_seconds = time.perf_counter() - t0
    if proc.returncode == 0 and out.exists():
        record = json.loads(out.read_text())
    else:
        tail = [line for line in (err or "").strip().splitlines() if line.strip()][-3:]
        record = {"ok": False, "error": " | ".join(tail)[-600:] or f"exit code {proc.returncode}"}
    record.update(process_seconds=round(process_seconds, 3),
                  load_average={"before": load_before, "after": _meta.load_average()})
    return record


def measure(tables: list[str], seeds: list[int], tools: list[str], budget: float, cache_path: Path,
            threads: int | None = None, anchor_budget: float | None = None) -> list[dict]:
    """Records ``{table, seed, tool, cached, ...}`` for every (table, seed, tool); the anchors get
    ``anchor_budget`` seconds when it is given (autodl at 10 s against the others at 30 s)."""
    records = []

    def seconds(tool: str) -> float:
        return anchor_budget if anchor_budget is not None and tool in ANCHORS else budget

    for name in tables:
        X, y, task, metric = load_table(name)
        for seed in seeds:
            cache = load_cache(cache_path)
            todo = [t for t in tools if t not in ANCHORS or cache_key(t, name, seed, seconds(t), threads) not in cache]
            base = {"table": name, "seed": seed, "task": task, "metric": metric}
            for tool in tools:
                if tool not in todo:
                    records.append({**base, "tool": tool, "cached": True, "time_budget": seconds(tool),
                                    **cache[cache_key(tool, name, seed, seconds(tool), threads)]})
            if not todo:
                continue
            X_tr, X_te, y_tr, y_te = split(X, y, task, seed)
            with tempfile.TemporaryDirectory(prefix="automl-") as tmp:
                folder = Path(tmp)
                X_tr.assign(**{LABEL: y_tr.to_numpy()}).to_parquet(folder / "train.parquet")
                X_te.assign(**{LABEL: y_te.to_numpy()}).to_parquet(folder / "test.parquet")
                spec = {"task": task, "metric": metric, "seed": seed, "time": budget, "table": name, "threads": threads}
                for tool in todo:
                    record = {**base, "tool": tool, "cached": False, "tool_version": tool_version(tool),
                              "time_budget": seconds(tool), "n_train": len(X_tr), "n_test": len(X_te),
                              "n_columns": X.shape[1],
                              **run_tool(tool, folder, dict(spec, time=seconds(tool)),
                                         timeout=3 * seconds(tool) + 180)}
                    records.append(record)
                    shown = f"{record['score']:.4f} in {record['fit_seconds']:.1f}s" if record["ok"] else record["error"]
                    print(f"{name} seed {seed} {tool}: {shown} (load {record['load_average']['before']})", flush=True)
                    if tool in ANCHORS and record["ok"]:
                        add_to_cache(cache_path, cache_key(tool, name, seed, seconds(tool), threads),
                                     {k: v for k, v in record.items() if k not in ("table", "seed", "tool", "cached")})
    return records


# -- the summary -------------------------------------------------------------------------------
def _mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return mean, se


def _ranks(scores: dict[str, float]) -> dict[str, float]:
    """1 = best (highest); ties share the mean of their ranks."""
    order = sorted(scores, key=lambda t: -scores[t])
    ranks, i = {}, 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and abs(scores[order[j + 1]] - scores[order[i]]) <= TIE:
            j += 1
        for t in order[i:j + 1]:
            ranks[t] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def outcome(autodl_scores: dict[int, float], anchor_scores: dict[int, float]) -> str | None:
    """``"win"``, ``"tie"`` or ``"loss"`` of autodl on one table (paired over the common seeds;
    see the module doc); None without a common seed."""
    common = sorted(set(autodl_scores) & set(anchor_scores))
    if not common:
        return None
    diffs = [0.0 if abs(d) <= TIE else d for d in (autodl_scores[s] - anchor_scores[s] for s in common)]
    d, se = _mean_se(diffs)
    return "win" if d > se + TIE else "loss" if d < -se - TIE else "tie"


def summarize(records: list[dict], tools: list[str]) -> dict[str, Any]:
    ok = [r for r in records if r["ok"]]
    tables = list(dict.fromkeys(r["table"] for r in records))
    per_table: dict[str, dict] = {}
    for name in tables:
        block = {}
        for tool in tools:
            rows = [r for r in ok if r["table"] == name and r["tool"] == tool]
            if rows:
                mean, se = _mean_se([r["score"] for r in rows])
                block[tool] = {"mean": mean, "se": se, "n": len(rows),
                               "scores": {r["seed"]: r["score"] for r in rows},
                               "predict_ms": statistics.median(r["predict_ms"] for r in rows)}
                onnx = [r["onnx_ms"] for r in rows if r.get("onnx_ok")]
                if tool in AUTODL_TOOLS:
                    block[tool]["onnx_ms"] = statistics.median(onnx) if onnx else None
                    block[tool]["onnx_ok"] = f"{len(onnx)}/{len(rows)}"
        means = {t: b["mean"] for t, b in block.items()}
        ranks = _ranks(means) if means else {}
        lo, hi = (min(means.values()), max(means.values())) if means else (0.0, 0.0)
        for t, b in block.items():
            b["rank"] = ranks[t]
            b["normalized"] = 1.0 if hi - lo <= TIE else (b["mean"] - lo) / (hi - lo)
        first = next(iter(r for r in records if r["table"] == name))
        per_table[name] = {"metric": first["metric"], "task": first["task"], "tools": block}
    summary: dict[str, Any] = {"tables": per_table, "mean_rank": {}, "mean_normalized_score": {},
                               "seconds": {}, "predict_ms_median": {}, "failures": [
        {k: r.get(k) for k in ("table", "seed", "tool", "error")} for r in records if not r["ok"]]}
    for tool in tools:
        scored = [b["tools"][tool] for b in per_table.values() if tool in b["tools"]]
        if scored:
            summary["mean_rank"][tool] = statistics.fmean(s["rank"] for s in scored)
            summary["mean_normalized_score"][tool] = statistics.fmean(s["normalized"] for s in scored)
            summary["predict_ms_median"][tool] = statistics.median(s["predict_ms"] for s in scored)
        rows = [r for r in ok if r["tool"] == tool]
        if rows:
            fit, used = [r["fit_seconds"] for r in rows], [r["seconds"] for r in rows]
            summary["seconds"][tool] = {"fit_median": statistics.median(fit), "fit_max": max(fit),
                                        "median": statistics.median(used), "max": max(used), "runs": len(rows)}
    vs: dict[str, dict] = {}
    for me in [t for t in tools if t in AUTODL_TOOLS]:
        for anchor in [t for t in tools if t not in AUTODL_TOOLS]:
            counts = {"win": 0, "tie": 0, "loss": 0, "per_table": {}}
            for name, b in per_table.items():
                if me in b["tools"] and anchor in b["tools"]:
                    o = outcome(b["tools"][me]["scores"], b["tools"][anchor]["scores"])
                    if o:
                        counts[o] += 1
                        counts["per_table"][name] = o
            vs[f"{me} vs {anchor}"] = counts
    summary["wins_ties_losses"] = vs
    onnx = [b["tools"]["autodl"].get("onnx_ms") for b in per_table.values() if "autodl" in b["tools"]]
    onnx = [v for v in onnx if v is not None]
    summary["onnx_ms_median"] = statistics.median(onnx) if onnx else None
    summary["onnx_speedup_vs_own_predict"] = {  # per tool: median over tables of its predict_ms / onnx_ms
        tool: statistics.median(ratios) for tool in tools
        if (ratios := [b["tools"][tool]["predict_ms"] / b["tools"]["autodl"]["onnx_ms"]
                       for b in per_table.values() if tool in b["tools"] and "autodl" in b["tools"]
                       and b["tools"]["autodl"].get("onnx_ms")])}
    if "autodl" in tools:
        both = [t for t in ("autogluon", "flaml") if t in tools]
        if both:
            at_least = better = n = 0
            for name in per_table:
                res = [vs[f"autodl vs {t}"]["per_table"].get(name) for t in both]
                if None in res:
                    continue
                n += 1
                at_least += all(o in ("win", "tie") for o in res)
                better += all(o == "win" for o in res)
            summary["goal"] = {"tables_compared": n, "autodl_at_least_both": at_least,
                               "autodl_better_than_both": better, "anchors": both,
                               "first_in_mean_rank": bool(summary["mean_rank"]) and min(
                                   summary["mean_rank"], key=summary["mean_rank"].get) == "autodl",
                               "onnx_under_1ms": summary["onnx_ms_median"] is not None
                               and summary["onnx_ms_median"] < 1.0}
    return summary


def markdown(summary: dict, tools: list[str]) -> str:
    lines = ["| table | metric | " + " | ".join(tools) + " |", "|---|---|" + "---|" * len(tools)]
    for name, b in summary["tables"].items():
        cells = []
        for t in tools:
            s = b["tools"].get(t)
            cells.append("failed" if s is None else f"{s['mean']:.4f} ± {s['se']:.4f}")
        lines.append(f"| {name} | {b['metric']} | " + " | ".join(cells) + " |")

    def row(label, values, fmt):
        return f"| {label} | | " + " | ".join(fmt(values[t]) if values.get(t) is not None else "-"
                                             for t in tools) + " |"
    lines.append(row("mean rank", summary["mean_rank"], lambda v: f"{v:.2f}"))
    lines.append(row("mean normalized score", summary["mean_normalized_score"], lambda v: f"{v:.3f}"))
    lines.append(row("fit seconds (median / max)", summary["seconds"],
                     lambda v: f"{v['fit_median']:.1f} / {v['fit_max']:.1f}"))
    lines.append(row("predict 1 row, ms (median)", summary["predict_ms_median"], lambda v: f"{v:.2f}"))
    wtl = {t.split(" vs ")[1]: v for t, v in summary["wins_ties_losses"].items() if t.startswith("autodl vs ")}
    lines.append(row("autodl wins / ties / losses", wtl, lambda v: f"{v['win']} / {v['tie']} / {v['loss']}"))
    if summary["onnx_ms_median"] is not None:
        lines.append(f"\nautodl's exported ONNX file (one graph), 1 row, onnxruntime 1 thread: median "
                     f"{summary['onnx_ms_median']:.3f} ms over tables")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="iris and diabetes, seed 0, 8 s (the smoke test)")
    parser.add_argument("--time", type=float, help="wall-clock seconds per tool and split (default 30; quick 8)")
    parser.add_argument("--anchor-time", type=float, help="seconds for AutoGluon, FLAML and the HGB baselines "
                                                          "instead of --time (e.g. autodl at 10 s against them at 30 s)")
    parser.add_argument("--seeds", type=int, nargs="+", help="splits and tool seeds (default 0 1 2; quick 0)")
    parser.add_argument("--tables", nargs="+", choices=list(TABLES), help="default: all (quick: iris diabetes)")
    parser.add_argument("--tools", nargs="+", choices=[*TOOLS, *(t for t in AUTODL_TOOLS if t not in TOOLS)], help=f"default: {' '.join(TOOLS)}")
    parser.add_argument("--threads", type=int, help="cap every tool at this many threads (default: each tool's own)")
    parser.add_argument("--single", action="store_true", help="also autodl with ensemble=False (autodl-single)")
    parser.add_argument("--cache", type=Path, help="anchor cache (default results/automl_cache.json; quick: "
                                                   "results/automl_cache_quick.json)")
    parser.add_argument("--out", type=Path, help="JSON output (default results/automl[_quick].json)")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return {}
    tools = list(args.tools or TOOLS)
    if args.single and "autodl-single" not in tools:
        tools.insert(tools.index("autodl") + 1 if "autodl" in tools else 0, "autodl-single")
    missing = [d for d, t in (("autogluon.tabular", "autogluon"), ("flaml", "flaml"), ("optuna", "hgb_optuna"))
               if t in tools and tool_version(t).endswith("missing")]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not installed in {sys.executable}: install the bench extra "
                         "(make bench) or leave those tools out (--tools)")
    budget = args.time or (8.0 if args.quick else 30.0)
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    tables = args.tables or list(QUICK_TABLES if args.quick else TABLES)
    cache_path = args.cache or (_meta.RESULTS_DIR / ("automl_cache_quick.json" if args.quick else CACHE.name))
    out = args.out or _meta.default_out("automl", args.quick)
    meta = _meta.start(__file__, argv, PACKAGES)
    records = measure(tables, seeds, tools, budget, cache_path, args.threads, args.anchor_time)
    summary = summarize(records, tools)
    table = markdown(summary, tools)
    print("\n" + table)
    earlier = []
    if out.exists():
        try:
            old = json.loads(out.read_text())
            earlier = old.get("earlier_runs", []) + [{k: old.get(k) for k in (
                "meta", "time_budget", "threads", "seeds", "tables", "tools", "summary", "markdown")}]
        except (json.JSONDecodeError, AttributeError):
            earlier = []
    result = {"time_budget": budget, "anchor_time_budget": args.anchor_time or budget, "threads": args.threads, "seeds": seeds, "tables": tables, "tools": tools, "quick": bool(args.quick),
              "cache": str(cache_path), "table_ids": {t: table_id(t) for t in tables},
              "tool_versions": {t: tool_version(t) for t in tools}, "records": records,
              "summary": summary, "markdown": table, "earlier_runs": earlier}
    return _meta.write_result(out, result, meta)


if __name__ == "__main__":
    main()
