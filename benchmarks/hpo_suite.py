"""HPO suite: autodl's searchers against Optuna 5's default samplers on continuous, mixed,
conditional (CASH) and NN problems (``benchmarks/hpo_problems.py``).

Every method runs on every (problem, seed) with the same number of trials, sequentially. Per
(problem, seed) the methods are ranked by their best loss (1 = best, ties share the mean rank)
and, per family (continuous / mixed / cash / nn) and overall, the suite reports each method's
mean rank with a bootstrap 95 % interval (resampling (problem, seed) pairs), its mean normalized
regret ``(best - f_opt) / (median random loss - f_opt)``, the same rank after half the trials
(read off the best-so-far curves) and its searcher overhead per trial (wall time outside the
objective). ``optuna-cmaes`` runs only where every parameter is a number
and none is conditional; elsewhere it is skipped with the reason recorded, and a family ranks the
methods that ran on all its problems (``overall`` ranks the methods that ran everywhere).

Each run's best-so-far curve is cached in ``results/hpo_suite_cache.json`` under (method, the
method's library version, problem and its fingerprint, seed, trials); a re-run only computes what
is missing and the summary pools every cached seed of the requested problems (seeds of earlier
runs included) for which all ranked methods are present. autodl's version includes a hash of
``autodl/searchers`` and ``autodl/space``, so a change to a searcher invalidates its runs only.

Usage::

    python benchmarks/hpo_suite.py --tabulate          # once: CASH and NN tables (~10 min)
    python benchmarks/hpo_suite.py                     # 60 trials, seeds 0-4, 2 processes
    python benchmarks/hpo_suite.py --families mixed cash --seeds 5 6 --trials 100
    python benchmarks/hpo_suite.py --quick             # 2 problems, 1 seed, 15 trials (~15 s)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402
import hpo_problems as hp  # noqa: E402

from bbob import METHODS  # noqa: E402  (the same eight methods)

FAMILIES = ("continuous", "mixed", "cash", "nn")
PACKAGES = ("optuna", "cmaes", "torch")
CACHE = _meta.RESULTS_DIR / "hpo_suite_cache.json"
QUICK_PROBLEMS = ("cont-sphere-d2", "cash-tiny-wine")
N_BOOT = 2000

# ---------------------------------------------------------------------------- versions


@lru_cache(maxsize=None)
def autodl_version() -> str:
    """autodl's version plus a hash of the searcher and space sources (what a run depends on)."""
    from importlib import metadata

    root = Path(__file__).resolve().parents[1] / "autodl"
    h = hashlib.sha1()
    for sub in ("searchers", "space"):
        for f in sorted((root / sub).glob("*.py")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return f"{metadata.version('autodl')}+src.{h.hexdigest()[:10]}"


@lru_cache(maxsize=None)
def method_version(method: str) -> str:
    from importlib import metadata

    if method.startswith("autodl-"):
        return autodl_version()
    v = f"optuna {metadata.version('optuna')}"
    if method == "optuna-cmaes":
        v += f", cmaes {metadata.version('cmaes')}"
    if method == "optuna-gp":
        v += f", torch {metadata.version('torch')}"
    return v


def skip_reason(method: str, problem: hp.Problem) -> str | None:
    """Why ``method`` does not run on ``problem`` (None: it runs)."""
    if method == "optuna-cmaes" and (problem.has_categorical or problem.has_condition):
        return ("CmaEsSampler handles only numeric, unconditional spaces (it would sample "
                "categorical and conditional parameters independently at random)")
    return None


# ---------------------------------------------------------------------------- running


@lru_cache(maxsize=None)
def _problem(name: str, tables_dir: str) -> hp.Problem:
    return hp.make_problem(name, Path(tables_dir))


def _drive_autodl(name: str, problem: hp.Problem, n_trials: int, seed: int, losses: list) -> float:
    from autodl.searchers import make_searcher

    searcher = make_searcher(name, problem.autodl_space(), seed=seed)
    objective = 0.0
    for _ in range(n_trials):
        trial = searcher.ask()
        t0 = time.perf_counter()
        v = problem.loss(trial.config)
        objective += time.perf_counter() - t0
        searcher.tell(trial, v)
        losses.append(v)
    return objective


def _drive_optuna(name: str, problem: hp.Problem, n_trials: int, seed: int, losses: list) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = {"random": lambda: optuna.samplers.RandomSampler(seed=seed),
               "tpe": lambda: optuna.samplers.TPESampler(seed=seed),  # Optuna 5 defaults
               "gp": lambda: optuna.samplers.GPSampler(seed=seed),
               "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed)}[name]()
    study = optuna.create_study(sampler=sampler, direction="minimize")
    objective = 0.0
    for _ in range(n_trials):
        trial = study.ask()
        config = problem.suggest_optuna(trial)
        t0 = time.perf_counter()
        v = problem.loss(config)
        objective += time.perf_counter() - t0
        study.tell(trial, v)
        losses.append(v)
    return objective


def run_one(task: tuple) -> dict:
    """Run ``method`` on ``problem`` with ``seed`` for ``n_trials``; the losses, best-so-far
    curve, wall seconds and searcher overhead (ms per trial, wall time outside the objective)."""
    method, problem_name, seed, n_trials, tables_dir = task
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    warnings.filterwarnings("ignore")
    problem = _problem(problem_name, tables_dir)
    lib, name = method.split("-", 1)
    losses: list[float] = []
    start = time.perf_counter()
    objective = (_drive_autodl if lib == "autodl" else _drive_optuna)(name, problem, n_trials, seed, losses)
    seconds = time.perf_counter() - start
    return {"method": method, "version": method_version(method), "problem": problem_name,
            "fingerprint": problem.fingerprint, "seed": seed, "n_trials": n_trials,
            "losses": losses, "curve": np.minimum.accumulate(losses).tolist(), "best": min(losses),
            "seconds": seconds, "overhead_ms_per_trial": 1000.0 * (seconds - objective) / n_trials}


def cache_key(method: str, problem: hp.Problem, seed: int, n_trials: int) -> str:
    return f"{method}|{method_version(method)}|{problem.name}@{problem.fingerprint}|{seed}|{n_trials}"


def load_cache(path: Path) -> dict[str, dict]:
    try:
        return json.loads(Path(path).read_text())["runs"]
    except (OSError, ValueError, KeyError):
        return {}


def save_cache(path: Path, new: dict[str, dict]) -> None:
    """Merge ``new`` into the cache file (re-read first: another run may have added entries)."""
    runs = load_cache(path)
    runs.update(new)
    _meta.write_json(path, {"schema": 1, "runs": runs})


def _gp_first(kt) -> tuple:
    """GP runs (the costly ones) and the largest problems first, so the processes stay busy."""
    return not kt[1][0].endswith("-gp"), "-d10" not in kt[1][1]


def run_missing(tasks: list[tuple], cache_path: Path, workers: int, run=None,
                order=_gp_first) -> tuple[dict[str, dict], int]:
    """Compute the tasks whose key is not cached with ``run`` (default :func:`run_one`), in
    ``order``, in ``workers`` processes, saving every few finished runs; returns the cache with
    them and how many were computed."""
    run_one_task = run_one if run is None else run
    cache = load_cache(cache_path)
    todo = sorted(((k, t) for k, t in tasks if k not in cache), key=order)
    fresh: dict[str, dict] = {}
    last_save = time.perf_counter()

    def done(key: str, run: dict) -> None:
        nonlocal last_save
        fresh[key] = run
        if time.perf_counter() - last_save > 30:
            save_cache(cache_path, fresh)
            last_save = time.perf_counter()

    if workers > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers) as pool:
            futures = {pool.submit(run_one_task, t): k for k, t in todo}
            for i, fut in enumerate(as_completed(futures), 1):
                done(futures[fut], fut.result())
                if i % 50 == 0:
                    print(f"  {i}/{len(todo)} runs", flush=True)
    else:
        for k, t in todo:
            done(k, run_one_task(t))
    if fresh:
        save_cache(cache_path, fresh)
    return {**cache, **fresh}, len(todo)


# ---------------------------------------------------------------------------- summarizing


def ranks_of(values: list[float]) -> np.ndarray:
    """Ranks (1 = smallest, ties share the mean rank), values compared at 12 significant digits."""
    from scipy.stats import rankdata

    return rankdata([float(f"{v:.12g}") for v in values])


def summarize_family(runs: list[dict], methods: list[str], ref: dict[str, float],
                     f_opt: dict[str, float], seed: int = 0, at: int | None = None) -> dict:
    """Mean rank, bootstrap 95 % interval, normalized regret and overhead of ``methods`` over
    the (problem, seed) pairs where all of them ran; with ``at``, of the best loss after the
    first ``at`` trials (every method is sequential and seeded, so that is what a run of ``at``
    trials gives)."""
    by_unit: dict[tuple, dict[str, dict]] = {}
    for r in runs:
        by_unit.setdefault((r["problem"], r["seed"]), {})[r["method"]] = r
    units = sorted(u for u, per in by_unit.items() if all(m in per for m in methods))
    if not units or not methods:
        return {"methods": methods, "n_units": 0}
    best = np.array([[by_unit[u][m]["best"] if at is None else by_unit[u][m]["curve"][at - 1]
                      for m in methods] for u in units])
    ranks = np.array([ranks_of(list(row)) for row in best])
    norm = np.array([[(best[i, j] - f_opt[u[0]]) / max(ref[u[0]] - f_opt[u[0]], 1e-300)
                      for j, m in enumerate(methods)] for i, u in enumerate(units)])
    rng = np.random.default_rng(seed)
    boot = ranks[rng.integers(0, len(units), size=(N_BOOT, len(units)))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    return {
        "methods": methods, "n_units": len(units),
        "problems": sorted({u[0] for u in units}), "seeds": sorted({u[1] for u in units}),
        "mean_rank": dict(zip(methods, ranks.mean(axis=0).tolist())),
        "rank_ci95": {m: [float(a), float(b)] for m, a, b in zip(methods, lo, hi)},
        "mean_normalized_regret": dict(zip(methods, norm.mean(axis=0).tolist())),
        "median_normalized_regret": dict(zip(methods, np.median(norm, axis=0).tolist())),
        "overhead_ms_per_trial": {m: float(np.mean([by_unit[u][m]["overhead_ms_per_trial"] for u in units]))
                                  for m in methods},
        "seconds_per_run": {m: float(np.mean([by_unit[u][m]["seconds"] for u in units])) for m in methods},
    }


def summarize(runs: list[dict], problems: dict[str, hp.Problem], methods: list[str],
              ref: dict[str, float]) -> dict:
    f_opt = {n: p.f_opt for n, p in problems.items()}
    out: dict[str, dict] = {}
    groups = {fam: [n for n, p in problems.items() if p.family == fam] for fam in FAMILIES}
    groups["overall"] = list(problems)
    for fam, names in groups.items():
        if not names:
            continue
        ranked = [m for m in methods if all(skip_reason(m, problems[n]) is None for n in names)]
        fam_runs = [r for r in runs if r["problem"] in names and r["method"] in ranked]
        out[fam] = summarize_family(fam_runs, ranked, ref, f_opt)
        if fam_runs and out[fam]["n_units"]:
            half = min(r["n_trials"] for r in fam_runs) // 2
            at_half = summarize_family(fam_runs, ranked, ref, f_opt, at=half)
            out[fam]["at_half_budget"] = {"trials": half, **{k: at_half[k] for k in (
                "mean_rank", "rank_ci95", "mean_normalized_regret", "median_normalized_regret")}}
    return out


def markdown(summary: dict) -> str:
    lines = []
    for fam, s in summary.items():
        if not s.get("n_units"):
            continue
        h = s["at_half_budget"]
        lines += [f"\n**{fam}** ({len(s['problems'])} problems, seeds {s['seeds'][0]}-{s['seeds'][-1]}: "
                  f"{s['n_units']} (problem, seed) pairs)\n",
                  f"| method | mean rank | 95 % CI | mean norm. regret | median norm. regret | "
                  f"rank at {h['trials']} trials | overhead ms/trial |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for m in sorted(s["methods"], key=lambda m: s["mean_rank"][m]):
            lo, hi = s["rank_ci95"][m]
            lines.append(f"| {m} | {s['mean_rank'][m]:.2f} | {lo:.2f}-{hi:.2f} | "
                         f"{s['mean_normalized_regret'][m]:.3g} | {s['median_normalized_regret'][m]:.3g} | "
                         f"{h['mean_rank'][m]:.2f} | {s['overhead_ms_per_trial'][m]:.1f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- tabulating


def tabulate_all(tables_dir: Path, workers: int, force: bool) -> dict:
    """Write every CASH and NN table that is missing (all with ``force``); returns timings."""
    timings = {}
    jobs = [("cash", ds) for ds in hp.CASH_DATASETS] + [("nn", "digits")]
    for kind, ds in jobs:
        path = hp.table_path(kind, ds, tables_dir)
        if path.exists() and not force:
            continue
        meta = _meta.start(__file__, None, ())
        table = hp.tabulate(kind, ds, workers=workers)
        table["meta"] = _meta.finish(meta)
        _meta.write_json(path, table)
        timings[f"{kind}-{ds}"] = {"wall_seconds": table["seconds"], "cpu_seconds": table["cpu_seconds"],
                                   "n_points": len(table["rows"])}
        print(f"  {kind}-{ds}: {len(table['rows'])} points, {table['seconds']:.0f} s wall, "
              f"{table['cpu_seconds']:.0f} s in fits -> {path}", flush=True)
    return timings


def quick_tables(tables_dir: Path) -> None:
    """The quick run's tiny table (two models, 9 grid points on wine), built if missing."""
    path = hp.table_path("cash", "tiny-wine", tables_dir)
    if not path.exists():
        table = hp.tabulate("cash", "wine", tiny=True)
        table["dataset"] = "tiny-wine"
        _meta.write_json(path, table)


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tabulate", action="store_true", help="build the CASH and NN tables, then stop")
    ap.add_argument("--force", action="store_true", help="with --tabulate: rebuild existing tables")
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--problems", nargs="+", default=None, help="problem names (default: the families')")
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="2 problems, seed 0, 15 trials, tiny table")
    ap.add_argument("--tables-dir", type=Path, default=hp.TABLES_DIR)
    ap.add_argument("--cache", type=Path, default=None, help="run cache (default: results/hpo_suite_cache[_quick].json)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default: results/hpo_suite[_quick].json)")
    args = ap.parse_args(argv)
    if args.tabulate:
        start = time.perf_counter()
        timings = tabulate_all(args.tables_dir, args.workers, args.force)
        print(f"tabulated {len(timings)} table(s) in {time.perf_counter() - start:.0f} s")
        return timings
    meta = _meta.start(__file__, argv, PACKAGES)
    if args.quick:
        quick_tables(args.tables_dir)
        args.problems, args.seeds, args.trials = list(QUICK_PROBLEMS), [0], 15
    names = args.problems or hp.suite_names(tuple(args.families))
    problems = {n: _problem(n, str(args.tables_dir)) for n in names}
    cache_path = args.cache or (_meta.RESULTS_DIR / ("hpo_suite_cache_quick.json" if args.quick else CACHE.name))
    skipped = {f"{m}|{n}": skip_reason(m, p) for m in args.methods for n, p in problems.items()
               if skip_reason(m, p)}
    tasks = [(cache_key(m, p, s, args.trials), (m, n, s, args.trials, str(args.tables_dir)))
             for n, p in problems.items() for s in args.seeds for m in args.methods
             if skip_reason(m, p) is None]
    start = time.perf_counter()
    cache, n_new = run_missing(tasks, cache_path, args.workers)
    wall = time.perf_counter() - start
    # pool: every cached seed of these problems, methods, trials and versions
    wanted = {(m, method_version(m), f"{n}@{p.fingerprint}", args.trials)
              for m in args.methods for n, p in problems.items()}
    runs = []
    for k, r in cache.items():
        m, v, prob, _seed, nt = k.split("|")
        if (m, v, prob, int(nt)) in wanted:
            runs.append(r)
    ref = {n: hp.reference_loss(p) for n, p in problems.items()}
    summary = summarize(runs, problems, args.methods, ref)
    print(f"HPO suite: {len(problems)} problems, seeds {sorted({r['seed'] for r in runs})}, {args.trials} trials; "
          f"{n_new} new runs in {wall:.0f} s on {args.workers} process(es), {len(runs)} pooled")
    print(markdown(summary))
    result = {
        "config": {"quick": args.quick, "problems": names, "methods": args.methods, "seeds": args.seeds,
                   "trials": args.trials, "workers": args.workers, "new_runs": n_new, "wall_seconds": wall,
                   "pooled_run_seconds": float(sum(r["seconds"] for r in runs)),
                   "method_versions": {m: method_version(m) for m in args.methods},
                   "cache": str(cache_path)},
        "problems": {n: {"family": p.family, "f_opt": p.f_opt, "reference_loss": ref[n],
                         "fingerprint": p.fingerprint, "n_params": len(p.params),
                         "categorical": p.has_categorical, "conditional": p.has_condition}
                     for n, p in problems.items()},
        "skipped": skipped,
        "summary": summary,
        "runs": sorted(({k: v for k, v in r.items() if k != "losses"} for r in runs),
                       key=lambda r: (r["problem"], r["seed"], r["method"])),
    }
    return _meta.write_result(args.out or _meta.default_out("hpo_suite", args.quick), result, meta)


if __name__ == "__main__":
    main()
