"""Multi-objective benchmark, part (a): synthetic problems, autodl against Optuna 5; part (c):
multi-objective pruning on digits CNNs (``--part c``, see ``benchmarks/_mo_pruning.py``).

Problems (implemented here from their published formulas; every variable in [0, 1], every
objective minimized):

* ZDT1, ZDT2, ZDT3 (Zitzler, Deb and Thiele 2000), two objectives, ``--dim`` variables
  (default 6, not the usual 30: with 50-100 trials, 30 variables leave every method far from
  the front and the comparison says little);
* DTLZ2 (Deb, Thiele, Laumanns and Zitzler 2002), three objectives, ``--dim`` variables
  (k = dim - 2 distance variables).

Methods, each on the same problems and seeds in the same run: autodl's ``motpe``, ``nsga2``
and ``random`` searchers through :class:`autodl.Study` with ``directions``; Optuna's default
sampler for ``create_study(directions=[...])`` (``TPESampler``, checked at run time and
recorded) and its ``NSGAIISampler()`` with default settings.

Measure: the hypervolume of all complete trials after 50 and 100 trials. Each objective is
normalized to [0, 1] by fixed bounds (``BOUNDS``) and the reference point is 1.1 in every
normalized objective (``REFERENCE``); both are written to the JSON. Hypervolume is exact
(:func:`autodl.searchers.pareto.hypervolume`). ``max_hypervolume`` is that of 2,000 points of
the true front, for scale.

Usage::

    python benchmarks/multiobjective.py                   # 4 problems x 5 seeds x 100 trials
    python benchmarks/multiobjective.py --seeds 0 1 2 3 4 5 6 7 8 9
    python benchmarks/multiobjective.py --quick           # ZDT1 and DTLZ2, 20 trials, seed 0

Part (c), accuracy x latency of digits CNNs with and without multi-objective pruning (a table of
192 CNNs trained once for 27 epochs, cached; then every method and seed is lookups)::

    python benchmarks/multiobjective.py --part c          # 20 seeds, 30 unpruned trials' epochs
    python benchmarks/multiobjective.py --part c --epochs 9 --n-full 30
    python benchmarks/multiobjective.py --part c --quick  # 8 CNNs, 3 epochs (~30 s)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

PROBLEMS = ["zdt1", "zdt2", "zdt3", "dtlz2"]
METHODS = ["autodl-motpe", "autodl-nsga2", "autodl-random", "optuna-default", "optuna-nsga2"]
PACKAGES = ("optuna",)
#: per problem, (low, high) of each objective: values are normalized to [0, 1] by these
BOUNDS = {
    "zdt1": [(0.0, 1.0), (0.0, 10.0)],
    "zdt2": [(0.0, 1.0), (0.0, 10.0)],
    "zdt3": [(0.0, 1.0), (-1.0, 10.0)],
    "dtlz2": [(0.0, 2.0), (0.0, 2.0), (0.0, 2.0)],
}
#: the reference point in normalized objectives
REFERENCE = 1.1
#: the default seeds of part (a)
SEEDS = [0, 1, 2, 3, 4]


# ---------------------------------------------------------------------- problems
def zdt1(x: np.ndarray) -> list[float]:
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return [float(x[0]), g * (1.0 - np.sqrt(x[0] / g))]


def zdt2(x: np.ndarray) -> list[float]:
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return [float(x[0]), g * (1.0 - (x[0] / g) ** 2)]


def zdt3(x: np.ndarray) -> list[float]:
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    r = x[0] / g
    return [float(x[0]), g * (1.0 - np.sqrt(r) - r * np.sin(10.0 * np.pi * x[0]))]


def dtlz2(x: np.ndarray, m: int = 3) -> list[float]:
    g = float(np.sum((x[m - 1:] - 0.5) ** 2))
    theta = x[: m - 1] * np.pi / 2.0
    out = []
    for i in range(m):
        f = 1.0 + g
        f *= np.prod(np.cos(theta[: m - 1 - i]))
        if i > 0:
            f *= np.sin(theta[m - 1 - i])
        out.append(float(f))
    return out


FUNCTIONS = {"zdt1": zdt1, "zdt2": zdt2, "zdt3": zdt3, "dtlz2": dtlz2}


def true_front(problem: str, n: int = 2000) -> np.ndarray:
    """Points of the problem's Pareto front (g = 1, i.e. distance variables at their optimum)."""
    if problem == "dtlz2":
        side = int(np.ceil(np.sqrt(n)))
        a, b = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side))
        pts = [dtlz2(np.array([u, v, 0.5, 0.5])) for u, v in zip(a.ravel(), b.ravel())]
        return np.array(pts)
    f1 = np.linspace(0.0, 1.0, n)
    fn = FUNCTIONS[problem]
    pts = np.array([fn(np.array([u, 0.0])) for u in f1])
    if problem == "zdt3":  # the front is the non-dominated part of g = 1
        from autodl.searchers.pareto import pareto_mask

        pts = pts[pareto_mask(pts)]
    return pts


def normalize(problem: str, values: np.ndarray) -> np.ndarray:
    lo = np.array([b[0] for b in BOUNDS[problem]])
    hi = np.array([b[1] for b in BOUNDS[problem]])
    return (np.asarray(values, dtype=float) - lo) / (hi - lo)


def hypervolume_of(problem: str, values: np.ndarray) -> float:
    from autodl.searchers.pareto import hypervolume

    y = normalize(problem, values)
    return hypervolume(y, np.full(y.shape[1], REFERENCE)) if len(y) else 0.0


# ---------------------------------------------------------------------- methods
def _run_autodl(searcher: str, problem: str, dim: int, seed: int, n: int) -> np.ndarray:
    from autodl import Study
    from autodl.space import Float, Space

    fn = FUNCTIONS[problem]
    space = Space({f"x{i}": Float(0.0, 1.0) for i in range(dim)})
    m = len(BOUNDS[problem])
    study = Study(space, searcher=searcher, directions=["minimize"] * m, seed=seed)
    study.optimize(lambda t: fn(np.array([t.config[f"x{i}"] for i in range(dim)])), n_trials=n,
                   show_progress=False)
    return np.array([t.values for t in study.trials if t.values is not None])


def optuna_default_sampler_name(m: int = 2) -> str:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return type(optuna.create_study(directions=["minimize"] * m).sampler).__name__


def _run_optuna(sampler: str, problem: str, dim: int, seed: int, n: int) -> np.ndarray:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fn = FUNCTIONS[problem]
    m = len(BOUNDS[problem])
    if sampler == "default":
        # Optuna's own default for several directions, seeded the way create_study would build it
        s = optuna.samplers.TPESampler(seed=seed)
    else:
        s = optuna.samplers.NSGAIISampler(seed=seed)
    study = optuna.create_study(directions=["minimize"] * m, sampler=s)
    study.optimize(lambda t: fn(np.array([t.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dim)])),
                   n_trials=n)
    return np.array([t.values for t in study.trials if t.values is not None])


def run_one(task: tuple) -> dict:
    method, problem, dim, seed, checkpoints = task
    n = max(checkpoints)
    start = time.perf_counter()
    if method.startswith("autodl-"):
        values = _run_autodl(method.removeprefix("autodl-"), problem, dim, seed, n)
    else:
        values = _run_optuna(method.removeprefix("optuna-"), problem, dim, seed, n)
    seconds = time.perf_counter() - start
    hv = {str(c): hypervolume_of(problem, values[:c]) for c in checkpoints}
    return {"method": method, "problem": problem, "dim": dim, "seed": seed, "n_trials": len(values),
            "hypervolume": hv, "seconds": seconds}


def summarize(runs: list[dict], methods: list[str], problems: list[str],
              checkpoints: list[int]) -> dict:
    """Mean and standard deviation of the hypervolume per (problem, method, checkpoint), and
    per problem whether autodl's best method reaches the better of Optuna's two (means)."""
    table: dict = {}
    for p in problems:
        table[p] = {}
        for m in methods:
            table[p][m] = {}
            for c in checkpoints:
                v = [r["hypervolume"][str(c)] for r in runs if r["problem"] == p and r["method"] == m]
                if v:
                    table[p][m][str(c)] = {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
    goal = {}
    for p in problems:
        goal[p] = {}
        for c in checkpoints:
            ours = {m: table[p][m][str(c)]["mean"] for m in methods if m.startswith("autodl-") and m != "autodl-random"
                    and str(c) in table[p].get(m, {})}
            theirs = {m: table[p][m][str(c)]["mean"] for m in methods if m.startswith("optuna-")
                      and str(c) in table[p].get(m, {})}
            if ours and theirs:
                best_ours = max(ours, key=ours.get)
                best_theirs = max(theirs, key=theirs.get)
                goal[p][str(c)] = {"autodl": best_ours, "autodl_hv": ours[best_ours],
                                   "optuna": best_theirs, "optuna_hv": theirs[best_theirs],
                                   "met": ours[best_ours] >= theirs[best_theirs]}
    seconds = {m: float(np.mean([r["seconds"] for r in runs if r["method"] == m]))
               for m in methods if any(r["method"] == m for r in runs)}
    return {"hypervolume": table, "goal": goal, "seconds_per_run": seconds}


def print_table(summary: dict, methods: list[str], problems: list[str], checkpoints: list[int],
                max_hv: dict) -> None:
    for c in checkpoints:
        print(f"\nhypervolume after {c} trials (mean ± std over seeds; normalized, ref {REFERENCE})")
        print(f"{'method':<16}" + "".join(f"{p:>17}" for p in problems))
        for m in methods:
            cells = []
            for p in problems:
                s = summary["hypervolume"][p].get(m, {}).get(str(c))
                cells.append(f"{s['mean']:.4f} ± {s['std']:.4f}" if s else "-")
            print(f"{m:<16}" + "".join(f"{x:>17}" for x in cells))
        print(f"{'(true front)':<16}" + "".join(f"{max_hv[p]:>17.4f}" for p in problems))
        met = [p for p in problems if summary["goal"][p].get(str(c), {}).get("met")]
        print(f"autodl's best >= Optuna's better on {len(met)} of {len(problems)} problems: {', '.join(met) or '-'}")
    print("\nseconds per run: " + ", ".join(f"{m} {s:.1f}" for m, s in summary["seconds_per_run"].items()))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", nargs="+", default=PROBLEMS, choices=PROBLEMS)
    ap.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    ap.add_argument("--dim", type=int, default=6, help="variables per problem (default 6)")
    ap.add_argument("--seeds", type=int, nargs="+", default=SEEDS,
                    help="default 0-4 (part c: 0-19, every seed being lookups in the table)")
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[50, 100],
                    help="trial counts at which the hypervolume is measured (the largest is run)")
    ap.add_argument("--quick", action="store_true", help="zdt1 and dtlz2, checkpoints 10 and 20, seed 0")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON path (default: results/multiobjective[_quick].json; part c: "
                         "results/multiobjective_pruning[_quick].json)")
    ap.add_argument("--part", choices=["a", "c"], default="a",
                    help="a: synthetic problems against Optuna (default); c: pruning on digits CNNs")
    ap.add_argument("--epochs", type=int, default=None, help="part c: epochs of a full training (default 27)")
    ap.add_argument("--n-full", type=int, default=30,
                    help="part c: the budget, in unpruned trials of --epochs epochs (default 30)")
    ap.add_argument("--table", type=Path, default=None,
                    help="part c: the table's cache (default results/multiobjective_cnn_table_e<epochs>.json)")
    ap.add_argument("--synthetic-seeds", type=int, default=20,
                    help="part c: seeds of the synthetic tie-break problem (default 20)")
    args = ap.parse_args(argv)
    if args.part == "c":
        return main_part_c(args, argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    if args.quick:
        args.problems, args.checkpoints, args.seeds = ["zdt1", "dtlz2"], [10, 20], [0]
    if args.dim < 3:
        ap.error(f"--dim is {args.dim}, but must be >= 3 (DTLZ2 needs 2 position variables and 1 more)")
    checkpoints = sorted(set(args.checkpoints))
    tasks = [(m, p, args.dim, s, checkpoints) for p in args.problems for s in args.seeds for m in args.methods]
    start = time.perf_counter()
    runs = []
    for t in tasks:
        r = run_one(t)
        runs.append(r)
        print(f"{r['method']:<16} {r['problem']:<6} seed {r['seed']}: hv "
              + " ".join(f"{k}={v:.4f}" for k, v in r["hypervolume"].items()) + f" ({r['seconds']:.1f}s)",
              flush=True)
    wall = time.perf_counter() - start
    max_hv = {p: hypervolume_of(p, true_front(p)) for p in args.problems}
    summary = summarize(runs, args.methods, args.problems, checkpoints)
    default_sampler = optuna_default_sampler_name() if any(m.startswith("optuna") for m in args.methods) else None
    print(f"\nmulti-objective: {len(args.problems)} problems, {args.dim} variables, seeds {args.seeds}, "
          f"{len(tasks)} runs, {wall:.0f} s; Optuna's default sampler for several directions: {default_sampler}")
    print_table(summary, args.methods, args.problems, checkpoints, max_hv)
    result = {
        "config": {"quick": args.quick, "problems": args.problems, "methods": args.methods, "dim": args.dim,
                   "seeds": args.seeds, "checkpoints": checkpoints, "wall_seconds": wall,
                   "optuna_default_sampler": default_sampler},
        "normalization": {"bounds": {p: BOUNDS[p] for p in args.problems},
                          "reference_point": {p: [REFERENCE] * len(BOUNDS[p]) for p in args.problems},
                          "note": "objective i is mapped to (f_i - low_i) / (high_i - low_i); the "
                                  "reference point is in those normalized units"},
        "max_hypervolume": max_hv,
        "summary": summary,
        "runs": runs,
    }
    return _meta.write_result(args.out or _meta.default_out("multiobjective", args.quick), result, meta)


def main_part_c(args, argv: list[str] | None) -> dict:
    """Part (c): see ``benchmarks/_mo_pruning.py``."""
    import _mo_pruning as mp

    meta = _meta.start(__file__, argv, ("torch", "onnx", "onnxruntime"))
    epochs = args.epochs or (3 if args.quick else 27)
    # seeds cost lookups once the table exists: 20 unless given
    seeds = [0] if args.quick else (list(range(20)) if args.seeds == SEEDS else args.seeds)
    grid = mp.QUICK_GRID if args.quick else mp.GRID
    n_full = 4 if args.quick else args.n_full
    synthetic_seeds = list(range(2 if args.quick else args.synthetic_seeds))
    results = Path(__file__).resolve().parent / "results"
    table_path = args.table or results / f"multiobjective_cnn_table{'_quick' if args.quick else ''}_e{epochs}.json"
    start = time.perf_counter()
    table = mp.tabulate(grid, epochs, table_path, meta=meta)
    tabulated = time.perf_counter() - start
    cnn = mp.run_part_c(table, mp.METHODS, seeds, n_full)
    synth = mp.run_part_c(lambda s: mp.synthetic_table(192, epochs, seed=s), mp.METHODS, synthetic_seeds, n_full)
    for r in synth["runs"]:
        del r["curve"], r["full"]  # many seeds: the summary is what counts
    mp.print_part_c(f"digits CNN ({len(table['rows'])} configs, {epochs} epochs)", cnn)
    mp.print_part_c(f"synthetic (192 configs, {epochs} epochs; {len(synthetic_seeds)} seeds) for the tie-break", synth)
    ties = {name: {m: res["summary"][m]["final_hypervolume"]["mean"] for m in res["summary"] if m.startswith("moasha-")
                   and m != "moasha-prune"} for name, res in (("cnn", cnn), ("synthetic", synth))}
    print("\ntie-break, final hypervolume (mean): " + "; ".join(
        f"{name}: " + ", ".join(f"{m.removeprefix('moasha-')} {v:.4f}" for m, v in t.items()) for name, t in ties.items()))
    bounds = mp.bounds_of(table)
    result = {
        "config": {"quick": args.quick, "part": "c", "epochs": epochs, "eta": mp.ETA, "min_budget": 1,
                   "n_full_trials": n_full, "budget_epochs": n_full * epochs, "seeds": seeds,
                   "synthetic_seeds": synthetic_seeds, "methods": mp.METHODS, "grid": grid, "fixed": mp.FIXED,
                   "table": str(table_path.relative_to(results.parent)) if table_path.is_relative_to(results.parent)
                   else str(table_path),
                   "table_seconds_this_run": round(tabulated, 1),
                   "table_train_seconds": round(sum(r.get("train_seconds", 0) for r in table["rows"].values()), 1)},
        "normalization": {"objectives": ["validation error (1 - accuracy)", "latency_ms"],
                          "bounds": bounds, "reference_point": [mp.REFERENCE] * 2,
                          "synthetic_bounds": mp.bounds_of(mp.synthetic_table(192, epochs, seed=0)),
                          "note": "objective i is mapped to (f_i - low_i) / (high_i - low_i); the reference "
                                  "point is in those normalized units"},
        "cnn": cnn,
        "synthetic": synth,
        "tie_breaks": ties,
    }
    return _meta.write_result(args.out or _meta.default_out("multiobjective_pruning", args.quick), result, meta)


if __name__ == "__main__":
    main()
