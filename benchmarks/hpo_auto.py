"""``searcher="auto"`` on the HPO suite: the rule designed on one part, reported on the rest.

The rule of :mod:`autodl.searchers.auto` was designed by reading the suite's results on the
**design** part only; this script reports it on the **holdout** part. The split is fixed by
problem: in each family's list of problems (``hpo_problems.suite_names``) those at even positions
are design, those at odd positions holdout (continuous: 8 / 7, mixed 5 / 5, CASH 2 / 2); a
family with a single problem (NN) splits by seed instead (even seeds design, odd holdout).

Every method of ``benchmarks/hpo_suite.py`` that runs everywhere (all but ``optuna-cmaes``) plus
``autodl-auto`` (``make_searcher("auto", space, seed=s)``, built without ``n_trials`` as a
study builds it) runs on every (problem, seed) with the same number of trials; the runs are
cached in ``results/hpo_suite_cache.json`` with the suite's keys, so both scripts share them.
Per part and family (and ``overall``, pooling the families) the report gives the suite's
summary: mean rank (1 = best per (problem, seed)) with a bootstrap 95 % interval, normalized
regret and overhead. The **check**: on the holdout part, auto's mean rank lies within (or below)
the bootstrap 95 % interval of the best single autodl searcher there (``autodl-random``,
``-tpe``, ``-gp``, ``-evolution``; the best by mean rank); the paired bootstrap interval of the
rank difference (auto minus that searcher) is given too.

``--probe-dims 20 30`` runs instead a probe of rule 4's parameter threshold, outside the suite:
autodl's GP, TPE and auto on the five continuous functions in those dimensions
(``--probe-seeds``), ranked among themselves per dimension (``results/hpo_auto_probe.json``).

Usage::

    python benchmarks/hpo_auto.py                  # seeds 0-4 (CASH and NN: 0-9), 60 trials
    python benchmarks/hpo_auto.py --probe-dims 20 30
    python benchmarks/hpo_auto.py --quick          # 2 problems, 1 seed, 15 trials
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
import hpo_suite as suite  # noqa: E402

hp = suite.hp
AUTO = "autodl-auto"
#: autodl's single searchers, the candidates for "our best single searcher"
SINGLE = ["autodl-random", "autodl-tpe", "autodl-gp", "autodl-evolution"]
#: ranked together: the suite's methods that run on every problem, and auto
METHODS = [m for m in suite.METHODS if m != "optuna-cmaes"] + [AUTO]
TABULATED = ("cash", "nn")
PROBE_METHODS = ["autodl-gp", "autodl-tpe", AUTO]


def part_of(problem: str, seed: int, problems: dict[str, hp.Problem]) -> str:
    """``"design"`` or ``"holdout"`` for the unit (problem, seed) (see the module docstring)."""
    family = problems[problem].family
    names = [n for n in hp.suite_names((family,)) if n in problems] or [problem]
    if len(names) == 1:
        return "design" if seed % 2 == 0 else "holdout"
    return "design" if names.index(problem) % 2 == 0 else "holdout"


def chosen(problem: hp.Problem) -> dict:
    """What auto picks on ``problem``'s space (the rule's input as the suite gives it)."""
    from autodl.searchers.auto import AutoSearcher

    s = AutoSearcher(problem.autodl_space(), seed=0)
    return {"searcher": s.choice.name, "reason": s.choice.reason}


def unit_ranks(runs: list[dict], methods: list[str]) -> tuple[list[tuple], np.ndarray]:
    """Units (problem, seed) where every method ran, and the ranks there (units x methods)."""
    by_unit: dict[tuple, dict[str, dict]] = {}
    for r in runs:
        by_unit.setdefault((r["problem"], r["seed"]), {})[r["method"]] = r
    units = sorted(u for u, per in by_unit.items() if all(m in per for m in methods))
    ranks = np.array([suite.ranks_of([by_unit[u][m]["best"] for m in methods]) for u in units])
    return units, ranks


def check(runs: list[dict], methods: list[str], summary: dict, seed: int = 0) -> dict:
    """Auto against the best single autodl searcher of ``summary`` (one part, one group)."""
    singles = [m for m in SINGLE if m in summary["mean_rank"]]
    best = min(singles, key=lambda m: summary["mean_rank"][m])
    lo, hi = summary["rank_ci95"][best]
    auto = summary["mean_rank"][AUTO]
    units, ranks = unit_ranks(runs, methods)
    diff = ranks[:, methods.index(AUTO)] - ranks[:, methods.index(best)]
    rng = np.random.default_rng(seed)
    boot = diff[rng.integers(0, len(units), size=(suite.N_BOOT, len(units)))].mean(axis=1)
    d_lo, d_hi = np.percentile(boot, [2.5, 97.5])
    return {"best_single": best, "best_single_rank": summary["mean_rank"][best],
            "best_single_ci95": [lo, hi], "auto_rank": auto,
            "within_or_below": bool(auto <= hi), "within": bool(lo <= auto <= hi),
            "rank_difference": float(diff.mean()), "rank_difference_ci95": [float(d_lo), float(d_hi)],
            "n_units": len(units)}


def summarize_parts(runs: list[dict], problems: dict[str, hp.Problem], ref: dict[str, float]) -> dict:
    f_opt = {n: p.f_opt for n, p in problems.items()}
    out: dict[str, dict] = {}
    for part in ("design", "holdout"):
        part_runs = [r for r in runs if part_of(r["problem"], r["seed"], problems) == part]
        groups = {fam: [n for n, p in problems.items() if p.family == fam] for fam in suite.FAMILIES}
        groups["overall"] = list(problems)
        out[part] = {}
        for fam, names in groups.items():
            fam_runs = [r for r in part_runs if r["problem"] in names]
            s = suite.summarize_family(fam_runs, METHODS, ref, f_opt)
            if s.get("n_units"):
                s["check"] = check(fam_runs, METHODS, s)
                out[part][fam] = s
    return out


def probe(dims: list[int], seeds: list[int], trials: int, tables_dir: Path, cache_path: Path,
          workers: int) -> tuple[dict, int]:
    """GP, TPE and auto on the continuous functions in ``dims`` dimensions, per dimension."""
    out, n_new = {}, 0
    for d in dims:
        problems = {n: suite._problem(n, str(tables_dir)) for n in (f"cont-{f}-d{d}" for f in hp.FUNCTIONS)}
        tasks = [(suite.cache_key(m, p, s, trials), (m, n, s, trials, str(tables_dir)))
                 for n, p in problems.items() for s in seeds for m in PROBE_METHODS]
        cache, new = suite.run_missing(tasks, cache_path, workers)
        n_new += new
        ref = {n: hp.reference_loss(p) for n, p in problems.items()}
        s = suite.summarize_family([cache[k] for k, _ in tasks], PROBE_METHODS, ref,
                                   {n: p.f_opt for n, p in problems.items()})
        out[str(d)] = {"auto_picks": chosen(next(iter(problems.values())))["searcher"], **s}
    return out, n_new


def probe_markdown(result: dict) -> str:
    lines = ["| parameters | auto picks | units | " + " | ".join(f"{m} rank (regret)" for m in PROBE_METHODS)
             + " |", "|---:|---|---:|" + "---|" * len(PROBE_METHODS)]
    for d, s in result.items():
        lines.append(f"| {d} | {s['auto_picks']} | {s['n_units']} | " + " | ".join(
            f"{s['mean_rank'][m]:.2f} ({s['mean_normalized_regret'][m]:.3g})" for m in PROBE_METHODS) + " |")
    return "\n".join(lines)


def markdown(summary: dict, choices: dict) -> str:
    lines = ["| problem | family | auto picks |", "|---|---|---|"]
    lines += [f"| {n} | {c['family']} | {c['searcher']} |" for n, c in choices.items()]
    for part, fams in summary.items():
        lines += [f"\n### {part}\n", "| group | units | auto | best single (95 % CI) | Optuna best | "
                  "auto - best single (95 % CI) | auto within or below |", "|---|---:|---:|---|---|---|---|"]
        for fam, s in fams.items():
            c = s["check"]
            optuna = min((m for m in s["methods"] if m.startswith("optuna-")), key=lambda m: s["mean_rank"][m])
            lines.append(
                f"| {fam} | {s['n_units']} | {c['auto_rank']:.2f} | {c['best_single']} {c['best_single_rank']:.2f} "
                f"({c['best_single_ci95'][0]:.2f}-{c['best_single_ci95'][1]:.2f}) | {optuna} "
                f"{s['mean_rank'][optuna]:.2f} | {c['rank_difference']:+.2f} ({c['rank_difference_ci95'][0]:+.2f} "
                f"to {c['rank_difference_ci95'][1]:+.2f}) | {'yes' if c['within_or_below'] else 'NO'} |")
        lines.append("")
        for fam in ("overall",):
            s = fams.get(fam)
            if not s:
                continue
            lines += [f"{part}, {fam}, every method:\n", "| method | mean rank | 95 % CI | mean norm. regret | "
                      "overhead ms/trial |", "|---|---:|---:|---:|---:|"]
            for m in sorted(s["methods"], key=lambda m: s["mean_rank"][m]):
                lo, hi = s["rank_ci95"][m]
                lines.append(f"| {m} | {s['mean_rank'][m]:.2f} | {lo:.2f}-{hi:.2f} | "
                             f"{s['mean_normalized_regret'][m]:.3g} | {s['overhead_ms_per_trial'][m]:.1f} |")
    return "\n".join(lines)


def run_probe(args: argparse.Namespace, cache_path: Path, meta: dict) -> dict:
    start = time.perf_counter()
    dims, n_new = probe(args.probe_dims, args.probe_seeds, args.trials, args.tables_dir, cache_path, args.workers)
    wall = time.perf_counter() - start
    text = probe_markdown(dims)
    print(f"probe of rule 4's parameter threshold: {n_new} new runs in {wall:.0f} s\n{text}")
    result = {"config": {"dims": args.probe_dims, "seeds": args.probe_seeds, "trials": args.trials,
                         "methods": PROBE_METHODS, "new_runs": n_new, "wall_seconds": wall,
                         "cache": str(cache_path),
                         "method_versions": {m: suite.method_version(m) for m in PROBE_METHODS}},
              "dims": dims, "markdown": text}
    return _meta.write_result(args.out or _meta.default_out("hpo_auto_probe", args.quick), result, meta)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--tabulated-seeds", type=int, nargs="+", default=list(range(10)),
                    help="seeds of the CASH and NN problems (lookups: more seeds are cheap)")
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="2 problems, seed 0, 15 trials, tiny table")
    ap.add_argument("--tables-dir", type=Path, default=hp.TABLES_DIR)
    ap.add_argument("--probe-dims", type=int, nargs="*", default=[],
                    help="dimensions of the probe of rule 4's parameter threshold (default: none)")
    ap.add_argument("--probe-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cache", type=Path, default=None,
                    help="run cache (default: the suite's, results/hpo_suite_cache[_quick].json)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    meta = _meta.start(__file__, argv, suite.PACKAGES)
    names = hp.suite_names()
    if args.quick:
        suite.quick_tables(args.tables_dir)
        names, args.seeds, args.tabulated_seeds, args.trials = list(suite.QUICK_PROBLEMS), [0, 1], [0, 1], 15
    cache_path = args.cache or (_meta.RESULTS_DIR / ("hpo_suite_cache_quick.json" if args.quick else suite.CACHE.name))
    if args.probe_dims:
        return run_probe(args, cache_path, meta)
    problems = {n: suite._problem(n, str(args.tables_dir)) for n in names}
    tasks = [(suite.cache_key(m, p, s, args.trials), (m, n, s, args.trials, str(args.tables_dir)))
             for n, p in problems.items()
             for s in (args.tabulated_seeds if p.family in TABULATED else args.seeds) for m in METHODS]
    start = time.perf_counter()
    cache, n_new = suite.run_missing(tasks, cache_path, args.workers)
    wall = time.perf_counter() - start
    runs = [cache[k] for k, _ in tasks]
    ref = {n: hp.reference_loss(p) for n, p in problems.items()}
    choices = {n: {"family": p.family, **chosen(p)} for n, p in problems.items()}
    summary = summarize_parts(runs, problems, ref)
    text = markdown(summary, choices)
    print(f"auto on the HPO suite: {len(problems)} problems, {args.trials} trials; {n_new} new runs in "
          f"{wall:.0f} s\n{text}")
    result = {
        "config": {"quick": args.quick, "problems": names, "methods": METHODS, "seeds": args.seeds,
                   "tabulated_seeds": args.tabulated_seeds, "trials": args.trials, "workers": args.workers,
                   "new_runs": n_new, "wall_seconds": wall, "cache": str(cache_path),
                   "method_versions": {m: suite.method_version(m) for m in METHODS},
                   "split": {n: sorted({part_of(n, s, problems) for s in args.seeds + args.tabulated_seeds})
                             for n in names}},
        "choices": choices,
        "summary": summary,
        "markdown": text,
    }
    return _meta.write_result(args.out or _meta.default_out("hpo_auto", args.quick), result, meta)


if __name__ == "__main__":
    main()
