"""BBOB benchmark: autodl's searchers against Optuna's samplers on the COCO ``bbob`` suite.

Every method runs on every (function, dimension, seed) with the same budget of evaluations;
per problem and seed the methods are ranked by their best ``f - f_opt`` (1 = best, ties share
the mean rank), and the ranks are averaged per dimension. Prints a table and writes JSON to
``benchmarks/results/`` with every run's best and first regret and the run's metadata
(``benchmarks/_meta.py``).

Usage::

    python benchmarks/bbob.py                       # 24 functions, dims 2 and 5, 100 evals
    python benchmarks/bbob.py --seeds 0 1 2 --workers 2
    python benchmarks/bbob.py --quick               # a few functions, few evals, one seed (~1 min)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

METHODS = [
    "autodl-random", "autodl-tpe", "autodl-gp", "autodl-evolution",
    "optuna-random", "optuna-tpe", "optuna-gp", "optuna-cmaes",
]
#: distributions whose versions the result records (optuna's GPSampler runs on torch)
PACKAGES = ("optuna", "coco-experiment", "cmaes", "torch")


def _problem(function: int, dim: int):
    import cocoex

    suite = cocoex.Suite("bbob", "", f"dimensions:{dim} function_indices:{function} instance_indices:1")
    return suite[0]


def _f_opt(problem) -> float:
    """The optimal value, from the optimum cocoex writes to a file in the working directory."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            problem._best_parameter("print")  # noqa: SLF001 - the only offline access to x_opt
            x_opt = np.loadtxt("._bbob_problem_best_parameter.txt").reshape(-1)
        finally:
            os.chdir(cwd)
    return float(problem(x_opt))


def _run_autodl(name: str, problem, evals: int, seed: int) -> list[float]:
    from autodl.searchers import make_searcher
    from autodl.space import Float, Space

    lb, ub = problem.lower_bounds, problem.upper_bounds
    names = [f"x{i}" for i in range(problem.dimension)]
    space = Space({n: Float(float(lb[i]), float(ub[i])) for i, n in enumerate(names)})
    searcher = make_searcher(name, space, seed=seed)
    values = []
    for _ in range(evals):
        trial = searcher.ask()
        v = float(problem(np.array([trial.config[n] for n in names])))
        searcher.tell(trial, v)
        values.append(v)
    return values


def _run_optuna(name: str, problem, evals: int, seed: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore")
    samplers = {
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
    }
    study = optuna.create_study(sampler=samplers[name]())
    lb, ub = problem.lower_bounds, problem.upper_bounds
    values = []
    for _ in range(evals):
        trial = study.ask()
        x = np.array([trial.suggest_float(f"x{i}", float(lb[i]), float(ub[i]))
                      for i in range(problem.dimension)])
        v = float(problem(x))
        study.tell(trial, v)
        values.append(v)
    return values


def run_one(task: tuple[str, int, int, int, int]) -> dict:
    """Run one method on one problem and seed; returns the best regret (``min f - f_opt``), the
    first evaluation's regret, the number of evaluations and seconds."""
    method, function, dim, seed, evals = task
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    problem = _problem(function, dim)
    f_opt = _f_opt(problem)
    lib, name = method.split("-", 1)
    start = time.perf_counter()
    values = (_run_autodl if lib == "autodl" else _run_optuna)(name, problem, evals, seed)
    seconds = time.perf_counter() - start
    problem.free()
    return {"method": method, "function": function, "dim": dim, "seed": seed,
            "regret": max(min(values) - f_opt, 0.0), "first_regret": max(values[0] - f_opt, 0.0),
            "n_evals": len(values), "seconds": seconds}


def summarize(runs: list[dict], methods: list[str]) -> dict:
    """Mean rank per dimension (1 = best) and mean seconds per run, per method."""
    from scipy.stats import rankdata

    by_key: dict[tuple, dict[str, float]] = {}
    for r in runs:
        by_key.setdefault((r["dim"], r["function"], r["seed"]), {})[r["method"]] = r["regret"]
    ranks: dict[int, dict[str, list[float]]] = {}
    for (dim, _, _), regrets in by_key.items():
        if len(regrets) != len(methods):
            continue
        rk = rankdata([round(regrets[m], 12) for m in methods])
        for m, v in zip(methods, rk):
            ranks.setdefault(dim, {}).setdefault(m, []).append(float(v))
    out: dict = {"mean_rank": {}, "seconds_per_run": {}}
    for dim, per in sorted(ranks.items()):
        out["mean_rank"][str(dim)] = {m: float(np.mean(v)) for m, v in per.items()}
    for m in methods:
        secs = [r["seconds"] for r in runs if r["method"] == m]
        out["seconds_per_run"][m] = float(np.mean(secs)) if secs else float("nan")
    return out


def print_table(summary: dict, methods: list[str]) -> None:
    dims = list(summary["mean_rank"])
    header = f"{'method':<18}" + "".join(f"{'rank d=' + d:>11}" for d in dims) + f"{'rank all':>10}{'s/run':>9}"
    print(header)
    print("-" * len(header))
    rows = []
    for m in methods:
        per = [summary["mean_rank"][d].get(m, float("nan")) for d in dims]
        rows.append((float(np.mean(per)), m, per))
    for overall, m, per in sorted(rows):
        print(f"{m:<18}" + "".join(f"{v:>11.2f}" for v in per)
              + f"{overall:>10.2f}{summary['seconds_per_run'][m]:>9.2f}")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--functions", type=int, nargs="+", default=list(range(1, 25)))
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="functions 1 8 15 21, d=2, 25 evals, seed 0")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default: results/bbob[_quick].json)")
    args = ap.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    if args.quick:
        args.dims, args.functions, args.evals, args.seeds = [2], [1, 8, 15, 21], 25, [0]
    tasks = [(m, f, d, s, args.evals) for d in args.dims for f in args.functions
             for s in args.seeds for m in args.methods]
    # slowest first so the pool stays busy at the end
    tasks.sort(key=lambda t: (t[0] not in ("autodl-gp", "optuna-gp"), -t[2]))
    start = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            runs = list(pool.map(run_one, tasks, chunksize=1))
    else:
        runs = [run_one(t) for t in tasks]
    wall = time.perf_counter() - start
    summary = summarize(runs, args.methods)
    print(f"BBOB: functions {args.functions[0]}..{args.functions[-1]} ({len(args.functions)}), "
          f"dims {args.dims}, instance 1, {args.evals} evals, seeds {args.seeds}, "
          f"{len(tasks)} runs, {wall:.0f} s wall on {args.workers} worker(s)")
    print_table(summary, args.methods)
    result = {"config": {"quick": args.quick, "dims": args.dims, "functions": args.functions, "evals": args.evals,
                         "seeds": args.seeds, "methods": args.methods, "workers": args.workers,
                         "wall_seconds": wall},
              "summary": summary, "runs": runs}
    return _meta.write_result(args.out or _meta.default_out("bbob", args.quick), result, meta)


if __name__ == "__main__":
    main()
