"""Multi-objective benchmark, part (b): tabular accuracy x onnxruntime latency, autodl against Optuna 5.

Problems: two scikit-learn tables, ``breast_cancer`` (569 rows, 30 columns, 2 classes) and
``digits`` (1,797 rows, 64 columns, 10 classes). Objectives: 3-fold cross-validated accuracy
(maximized) and single-row onnxruntime latency in milliseconds (minimized), both as
``autodl.search(X, y, objectives=["accuracy", "latency"], cv=3)`` measures them: the
cross-validation of :class:`autodl.tabular.pipeline.CVObjective` on the search's training rows
(80 %, split with seed 0), and the latency of the first fold model's ONNX file on that fold's
held-out rows (:mod:`autodl.export.latency`: median of 64 single-row calls, one thread).

**Tabulated.** The space is a discretized version of autodl's ``tabular`` space (:data:`GRID`):
the seven model families with a few values of their main hyperparameters, preprocessing at its
defaults (mean imputation, standard scaling). Every configuration is evaluated once per table
and kept in ``results/multiobjective_tabular_table.json`` (keyed by table and configuration;
an existing entry is not measured again), so the methods x seeds of the comparison cost table
look-ups and every method sees the same measured values, noise included.

**Searched.** Both libraries search the same space: a categorical ``model``, and per family its
hyperparameters, conditional on the model; a numeric hyperparameter is its level, an integer
``0 .. k-1`` indexing its increasing list of values (so both see an ordinal scale with the same
neighbours), a string one a categorical. autodl uses :class:`autodl.space.Space` (``Categorical``,
``Int`` with conditions); Optuna uses define-by-run ``suggest_categorical`` / ``suggest_int``.
A trial returns the tabulated ``(accuracy, latency_ms)`` with directions
``["maximize", "minimize"]``. Methods as in part (a) (:mod:`multiobjective`): autodl's ``motpe``,
``nsga2`` and ``random``; Optuna's default sampler for several directions (recorded at run time)
and ``NSGAIISampler()``; each seeded with the run's seed.

**Measure.** The hypervolume of all trials after 50 and 100 trials, on the objectives
``1 - accuracy`` and ``log10(latency_ms)`` (a 2x speed-up counts the same for a fast and a slow
model), each normalized by bounds fixed per table (``normalization`` in the JSON): 0 is the
best value over the whole tabulated grid, 1 the grid's median. The reference point is 1.1 in
both, so a configuration worse than the median (plus a tenth of the range) in either objective
adds nothing: the measure is about the competitive half of the grid, where the bounds [best,
worst] would squeeze it (the worst configurations are a 21 %-accurate SVM on digits and k-NN
models 20x slower than the rest). ``max_hypervolume`` is the hypervolume of the whole grid (the
best any method can reach).

Usage::

    nice -n 10 python benchmarks/multiobjective_tabular.py             # 2 tables x 5 seeds x 100 trials
    python benchmarks/multiobjective_tabular.py --tabulate-only        # fill the table cache only
    python benchmarks/multiobjective_tabular.py --quick                # small grid, 2 seeds, 20 trials
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402
import multiobjective as mo  # noqa: E402

TABLES = ["breast_cancer", "digits"]
METHODS = mo.METHODS
PACKAGES = ("optuna", "onnxruntime", "onnx", "skl2onnx", "torch")
#: cross-validation folds of every tabulated configuration
FOLDS = 3
#: the search's seed: train/test split, folds and the models' random_state
DATA_SEED = 0

#: per model family, each hyperparameter's values (numbers increasing: searched as levels)
GRID: dict[str, dict[str, list]] = {
    "linear": {"alpha": [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]},
    "knn": {"n_neighbors": [1, 3, 5, 9, 15, 25, 40], "p": [1, 2], "weights": ["uniform", "distance"]},
    "svm": {"C": [0.1, 1.0, 10.0, 100.0], "gamma": [1e-4, 1e-3, 1e-2, 1e-1]},
    "random_forest": {"n_estimators": [50, 100, 300], "max_depth": [2, 4, 8, 32],
                      "min_samples_leaf": [1, 8], "max_features": [0.2, 0.5, 1.0]},
    "extra_trees": {"n_estimators": [50, 100, 300], "max_depth": [2, 4, 8, 32],
                    "min_samples_leaf": [1, 8], "max_features": [0.2, 0.5, 1.0]},
    "hist_gb": {"learning_rate": [0.03, 0.1, 0.3], "max_iter": [30, 100, 300], "max_leaf_nodes": [4, 16, 64]},
    "mlp": {"hidden_size": [16, 64, 256], "n_layers": [1, 2, 3], "activation": ["relu", "tanh"]},
}
#: ``--quick``: a few configurations per table, enough for the searchers to differ
QUICK_GRID: dict[str, dict[str, list]] = {
    "linear": {"alpha": [1e-2, 1.0, 100.0]},
    "knn": {"n_neighbors": [1, 7], "weights": ["uniform", "distance"]},
    "random_forest": {"max_depth": [2, 8]},
    "hist_gb": {"max_leaf_nodes": [4, 16]},
}
#: the reference point, in normalized objectives (as in part (a))
REFERENCE = mo.REFERENCE
OBJECTIVES = ["1 - accuracy", "log10(latency_ms)"]


# ---------------------------------------------------------------------- the space
def _levelled(values: list) -> bool:
    return not isinstance(values[0], str)


def configs(grid: dict[str, dict[str, list]]) -> list[dict]:
    """Every configuration of ``grid`` as the search space names it (numeric hyperparameters as
    levels), in a fixed order."""
    out = []
    for family, params in grid.items():
        names = list(params)
        for combo in itertools.product(*(range(len(v)) if _levelled(v) else v for v in params.values())):
            out.append({"model": family, **{f"{family}.{n}": c for n, c in zip(names, combo)}})
    return out


def pipeline_config(config: dict, grid: dict[str, dict[str, list]]) -> dict:
    """The autodl tabular configuration (:func:`autodl.tabular.pipeline.build_pipeline`) a
    search configuration stands for: levels replaced by their values."""
    family = config["model"]
    out = {"model": family}
    for name, values in grid[family].items():
        v = config[f"{family}.{name}"]
        out[f"{family}.{name}"] = values[int(v)] if _levelled(values) else v
    return out


def config_id(config: dict) -> str:
    """The table cache's key of a configuration (of its pipeline values, not its levels)."""
    return json.dumps(config, sort_keys=True)


def autodl_space(grid: dict[str, dict[str, list]]):
    from autodl.space import Categorical, Int, Space

    params = {"model": Categorical(list(grid))}
    for family, hp in grid.items():
        cond = {"model": [family]}
        for name, values in hp.items():
            params[f"{family}.{name}"] = (Int(0, len(values) - 1, condition=cond) if _levelled(values)
                                          else Categorical(list(values), condition=cond))
    return Space(params)


def optuna_config(trial, grid: dict[str, dict[str, list]]) -> dict:
    """The same space, define-by-run, as an Optuna trial suggests it."""
    family = trial.suggest_categorical("model", list(grid))
    config = {"model": family}
    for name, values in grid[family].items():
        key = f"{family}.{name}"
        config[key] = (trial.suggest_int(key, 0, len(values) - 1) if _levelled(values)
                       else trial.suggest_categorical(key, list(values)))
    return config


# ---------------------------------------------------------------------- tabulation
def load_table(name: str):
    from sklearn import datasets

    return getattr(datasets, f"load_{name}")(return_X_y=True, as_frame=True)


def make_objective(table: str):
    """The objective ``autodl.search(X, y, objectives=["accuracy", "latency"], cv=3, seed=0)``
    runs per trial (prepared the way the search prepares it)."""
    from autodl.tabular.pipeline import CVObjective
    from autodl.tabular.search import SearchSpec, prepare

    X, y = load_table(table)
    spec = SearchSpec(objectives=["accuracy", "latency"], cv=FOLDS, seed=DATA_SEED, n_trials=1)
    prep = prepare(spec, X, y)
    return CVObjective(prep.X_train, prep.y_train, prep.task, prep.metric, prep.spec.cv, prep.spec.seed,
                       plan=prep.plan, deployment=prep.deployment)


def measure_config(objective, config: dict) -> dict:
    """One configuration through the search's objective: accuracy, latency and what was measured."""
    from autodl.study import RunningTrial

    trial = RunningTrial(0, config, n_objectives=2)
    start = time.process_time()
    with warnings.catch_warnings():  # converters' and solvers' notes; the trial keeps fit warnings
        warnings.simplefilter("ignore")
        accuracy, latency = objective(trial)
    return {"accuracy": float(accuracy), "latency_ms": float(latency),
            "batch64_ms": trial.user_attrs.get("batch64_ms"), "size_bytes": trial.user_attrs.get("size_bytes"),
            "load": trial.user_attrs.get("latency_load"), "cpu_seconds": round(time.process_time() - start, 3)}


def read_cache(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"tables": {}}


def tabulate(tables: list[str], grid: dict, path: Path, limit: int | None = None) -> dict:
    """Measure every configuration of ``grid`` on every table that ``path`` does not hold yet
    (written after each configuration, so an interrupted tabulation resumes); the cache."""
    cache = read_cache(path)
    for table in tables:
        entries = cache["tables"].setdefault(table, {})
        todo = [c for c in (pipeline_config(s, grid) for s in configs(grid)) if config_id(c) not in entries]
        if limit is not None:
            todo = todo[:limit]
        if not todo:
            continue
        objective = make_objective(table)
        for i, c in enumerate(todo):
            entries[config_id(c)] = measure_config(objective, c)
            e = entries[config_id(c)]
            print(f"{table:<14} {i + 1:>3}/{len(todo)} acc {e['accuracy']:.4f} latency {e['latency_ms']:.4f} ms "
                  f"({e['cpu_seconds']:.1f} s cpu, load {e['load']}) {c}", flush=True)
            cache["meta"] = {"folds": FOLDS, "seed": DATA_SEED, "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                             "versions": _meta.versions(PACKAGES)}
            _meta.write_json(path, cache)
    return cache


def table_values(cache: dict, table: str, grid: dict) -> dict[str, tuple[float, float]]:
    """``config id -> (accuracy, latency_ms)`` of the grid's configurations on ``table``."""
    entries = cache["tables"].get(table, {})
    out = {}
    for s in configs(grid):
        key = config_id(pipeline_config(s, grid))
        if key not in entries:
            raise SystemExit(f"the table cache has no entry for {table} {key}; run with --tabulate-only first")
        out[key] = (entries[key]["accuracy"], entries[key]["latency_ms"])
    return out


# ---------------------------------------------------------------------- hypervolume
def transform(values: np.ndarray) -> np.ndarray:
    """``(accuracy, latency_ms)`` rows as the minimized objectives ``(1 - accuracy, log10 latency)``."""
    v = np.asarray(values, dtype=float).reshape(-1, 2)
    return np.column_stack([1.0 - v[:, 0], np.log10(v[:, 1])])


def bounds_of(values: dict[str, tuple[float, float]]) -> list[list[float]]:
    """Per objective, ``[low, high]``: the best value and the median over the whole grid (the
    fixed normalization of a table; see the module docstring)."""
    y = transform(np.array(list(values.values())))
    return [[float(y[:, j].min()), float(np.median(y[:, j]))] for j in range(2)]


def front_of(values: np.ndarray) -> list[list[float]]:
    """The distinct non-dominated ``(accuracy, latency_ms)`` rows of ``values``, by latency."""
    from autodl.searchers.pareto import pareto_mask

    if len(values) == 0:
        return []
    v = np.unique(np.asarray(values, dtype=float).reshape(-1, 2), axis=0)
    v = v[pareto_mask(transform(v))]
    return v[np.argsort(v[:, 1], kind="stable")].tolist()


def hypervolume_of(values: np.ndarray, bounds: list[list[float]]) -> float:
    from autodl.searchers.pareto import hypervolume

    if len(values) == 0:
        return 0.0
    lo, hi = np.array(bounds).T
    y = (transform(values) - lo) / (hi - lo)
    return float(hypervolume(y, np.full(2, REFERENCE)))


# ---------------------------------------------------------------------- methods
def _run_autodl(searcher: str, grid: dict, lookup: dict, seed: int, n: int) -> np.ndarray:
    from autodl import Study

    study = Study(autodl_space(grid), searcher=searcher, directions=["maximize", "minimize"], seed=seed)
    study.optimize(lambda t: lookup[config_id(pipeline_config(t.config, grid))], n_trials=n, show_progress=False)
    return np.array([t.values for t in study.trials if t.values is not None])


def _run_optuna(sampler: str, grid: dict, lookup: dict, seed: int, n: int) -> np.ndarray:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the default sampler of create_study(directions=[...]) (checked and recorded at run time), seeded
    s = optuna.samplers.TPESampler(seed=seed) if sampler == "default" else optuna.samplers.NSGAIISampler(seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=s)
    study.optimize(lambda t: lookup[config_id(pipeline_config(optuna_config(t, grid), grid))], n_trials=n)
    return np.array([t.values for t in study.trials if t.values is not None])


def run_one(method: str, table: str, grid: dict, lookup: dict, bounds: list, seed: int,
            checkpoints: list[int]) -> dict:
    n = max(checkpoints)
    start = time.perf_counter()
    if method.startswith("autodl-"):
        values = _run_autodl(method.removeprefix("autodl-"), grid, lookup, seed, n)
    else:
        values = _run_optuna(method.removeprefix("optuna-"), grid, lookup, seed, n)
    seconds = time.perf_counter() - start
    distinct = len({tuple(v) for v in values.tolist()})
    return {"method": method, "problem": table, "seed": seed, "n_trials": len(values),
            "distinct_values": distinct,
            "hypervolume": {str(c): hypervolume_of(values[:c], bounds) for c in checkpoints},
            "front": {str(c): front_of(values[:c]) for c in checkpoints},
            "seconds": seconds}


def summarize(runs: list[dict], methods: list[str], tables: list[str], checkpoints: list[int]) -> dict:
    """Part (a)'s summary (mean, std, goal per problem: autodl's best of motpe/nsga2 against
    Optuna's better, by mean) with the standard error of each mean (sample std / sqrt(n))."""
    summary = mo.summarize(runs, methods, tables, checkpoints)
    for p in tables:
        for m in methods:
            for c, cell in summary["hypervolume"][p].get(m, {}).items():
                v = [r["hypervolume"][c] for r in runs if r["problem"] == p and r["method"] == m]
                cell["se"] = float(np.std(v, ddof=1) / math.sqrt(len(v))) if len(v) > 1 else None
    return summary


def print_table(summary: dict, methods: list[str], tables: list[str], checkpoints: list[int],
                max_hv: dict) -> None:
    for c in checkpoints:
        print(f"\nhypervolume after {c} trials (mean ± standard error over seeds; normalized, ref {REFERENCE})")
        print(f"{'method':<16}" + "".join(f"{p:>20}" for p in tables))
        for m in methods:
            cells = []
            for p in tables:
                s = summary["hypervolume"][p].get(m, {}).get(str(c))
                cells.append(f"{s['mean']:.4f} ± {s['se'] or 0:.4f}" if s else "-")
            print(f"{m:<16}" + "".join(f"{x:>20}" for x in cells))
        print(f"{'(whole grid)':<16}" + "".join(f"{max_hv[p]:>20.4f}" for p in tables))
        met = [p for p in tables if summary["goal"][p].get(str(c), {}).get("met")]
        print(f"autodl's best >= Optuna's better on {len(met)} of {len(tables)} tables: {', '.join(met) or '-'}")


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", nargs="+", default=TABLES, choices=TABLES)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[50, 100],
                    help="trial counts at which the hypervolume is measured (the largest is run)")
    ap.add_argument("--quick", action="store_true", help="the small grid, seeds 0 and 1, checkpoints 10 and 20")
    ap.add_argument("--tabulate-only", action="store_true", help="measure the grid's missing entries and stop")
    ap.add_argument("--limit", type=int, default=None, help="with --tabulate-only: measure at most this many "
                                                            "configurations per table (to time them)")
    ap.add_argument("--cache", type=Path, default=None, help="the table cache (default: "
                    "results/multiobjective_tabular_table[_quick].json)")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON path (default: results/multiobjective_tabular[_quick].json)")
    args = ap.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    grid = GRID
    if args.quick:
        grid, args.seeds, args.checkpoints = QUICK_GRID, [0, 1], [10, 20]
    cache_path = args.cache or _meta.default_out("multiobjective_tabular_table", args.quick)
    checkpoints = sorted(set(args.checkpoints))
    started = time.perf_counter()
    cache = tabulate(args.tables, grid, cache_path, args.limit)
    tabulation_seconds = time.perf_counter() - started
    if args.tabulate_only:
        return None
    lookups = {t: table_values(cache, t, grid) for t in args.tables}
    bounds = {t: bounds_of(lookups[t]) for t in args.tables}
    max_hv = {t: hypervolume_of(np.array(list(lookups[t].values())), bounds[t]) for t in args.tables}
    start = time.perf_counter()
    runs = []
    for t in args.tables:
        for s in args.seeds:
            for m in args.methods:
                r = run_one(m, t, grid, lookups[t], bounds[t], s, checkpoints)
                runs.append(r)
                print(f"{m:<16} {t:<14} seed {s}: hv " + " ".join(f"{k}={v:.4f}" for k, v in r["hypervolume"].items())
                      + f" ({r['distinct_values']} distinct of {r['n_trials']}, {r['seconds']:.1f}s)", flush=True)
    wall = time.perf_counter() - start
    summary = summarize(runs, args.methods, args.tables, checkpoints)
    default_sampler = mo.optuna_default_sampler_name() if any(m.startswith("optuna") for m in args.methods) else None
    print(f"\nmulti-objective tabular: {len(args.tables)} tables, {len(lookups[args.tables[0]])} configurations "
          f"each, seeds {args.seeds}, {len(runs)} runs, {wall:.0f} s; Optuna's default sampler for several "
          f"directions: {default_sampler}")
    print_table(summary, args.methods, args.tables, checkpoints, max_hv)
    tab = {}
    for t in args.tables:
        entries = [cache["tables"][t][k] for k in lookups[t]]
        loads = [e["load"] for e in entries if e.get("load") is not None]
        tab[t] = {"configurations": len(entries), "cpu_seconds": round(sum(e["cpu_seconds"] for e in entries), 1),
                  "load_during_measurement": {"median": float(np.median(loads)), "max": float(np.max(loads))}
                  if loads else None}
    result = {
        "config": {"quick": args.quick, "tables": args.tables, "methods": args.methods, "seeds": args.seeds,
                   "checkpoints": checkpoints, "folds": FOLDS, "data_seed": DATA_SEED, "grid": grid,
                   "wall_seconds": wall, "tabulation_seconds_this_run": tabulation_seconds,
                   "table_cache": str(cache_path), "optuna_default_sampler": default_sampler},
        "tabulation": tab,
        "normalization": {"objectives": OBJECTIVES, "bounds": bounds,
                          "reference_point": {t: [REFERENCE, REFERENCE] for t in args.tables},
                          "note": "objective i is mapped to (f_i - low_i) / (high_i - low_i), with f = (1 - accuracy, "
                                  "log10 latency_ms), low the best and high the median value over the whole grid "
                                  "of the table; the reference point is in those normalized units"},
        "max_hypervolume": max_hv,
        "summary": summary,
        "runs": runs,
    }
    return _meta.write_result(args.out or _meta.default_out("multiobjective_tabular", args.quick), result, meta)


if __name__ == "__main__":
    main()
