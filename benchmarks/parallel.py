"""Parallel execution: trial throughput with 1 and 2 workers, and ASHA's worker busy fraction.

1. **Throughput** (trials/min): CPU-bound scikit-learn trials - a random forest of fixed size on
   digits, 3-fold CV (about 0.5-1 s each on an idle core) - run with 1 and 2 workers on local
   worker processes (``executor="local"``) and on a Dask ``LocalCluster``. Throughput is counted
   between the first trial's start and the last trial's end as seen by the workers (worker
   start-up excluded); the total wall time is reported too. Goal: 2 workers >= 1.7x one.
2. **Busy fraction** with 2 workers: time workers spend inside trials / (workers x wall time),
   for ASHA (``searcher="asha"``, asynchronous promotions, driven by ``Study.optimize``) and for
   synchronous successive halving with a barrier after each rung (each rung submitted at once,
   the next one only when every trial of it has finished: the classic algorithm, written out
   here on the same executor). The objective sleeps ``budget x unit`` seconds with +/-50 %
   jitter (fake durations: the result is about scheduling, not CPU). Goal: ASHA >= 90 %.
   The library's own ``sh`` searcher opens the next bracket instead of waiting, so it is
   reported as a third row.

The machine may be shared: the 1-minute load average is recorded before and after each row, and
the JSON records the run's commit, versions and load average (``benchmarks/_meta.py``).

Usage::

    python benchmarks/parallel.py            # full run -> benchmarks/results/parallel.json
    python benchmarks/parallel.py --quick    # a smoke run of ~30 s (used by the tests)
    python benchmarks/parallel.py --trials 20 --no-busy --out /tmp/p.json   # a quick look
    python benchmarks/parallel.py --data-copies 50   # the objective carries ~45 MB of data

Each throughput row also reports the median idle gap between two trials of one worker (the
dispatch round trip plus the objective's set-up before its timed span).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

#: distributions whose versions the result records
PACKAGES = ("dask", "distributed", "cloudpickle")


# ---------------------------------------------------------------------- objectives
class ForestObjective:
    """A fixed-size random forest on digits, k-fold CV accuracy (one core per trial).

    With ``copies`` the objective holds the data itself (stacked ``copies`` times, as
    ``autodl.search``'s CV objective holds X and y), so it is pickled with the objective and
    shipped to the workers; without, each trial loads digits on the worker.
    """

    def __init__(self, n_estimators: int, folds: int = 3, copies: int = 0):
        self.n_estimators = n_estimators
        self.folds = folds
        self.data = None
        if copies:
            import numpy as np
            from sklearn.datasets import load_digits

            X, y = load_digits(return_X_y=True)
            self.data = (np.tile(X, (copies, 1)), np.tile(y, copies))

    def __call__(self, trial) -> float:
        from sklearn.datasets import load_digits
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.model_selection import cross_val_score

        X, y = load_digits(return_X_y=True) if self.data is None else self.data
        X, y = X[:1797], y[:1797]  # the same work either way; the rest is only carried
        start = time.time()  # after the imports: the first trial of a worker pays for those
        model = RandomForestClassifier(n_estimators=self.n_estimators, max_features=trial.config["max_features"],
                                       min_samples_leaf=trial.config["min_samples_leaf"], n_jobs=1,
                                       random_state=0)
        score = float(cross_val_score(model, X, y, cv=self.folds).mean())
        trial.set_user_attr("span", [start, time.time()])
        trial.set_user_attr("pid", os.getpid())
        return score


class SleepObjective:
    """Sleeps ``budget x unit`` seconds (+/-50 % jitter from the config's own seed)."""

    def __init__(self, unit: float):
        self.unit = unit

    def __call__(self, trial) -> float:
        start = time.time()
        jitter = random.Random(int(trial.config["x"] * 1e9)).uniform(0.5, 1.5)
        time.sleep(float(trial.budget or 1.0) * self.unit * jitter)
        trial.set_user_attr("span", [start, time.time()])
        return (trial.config["x"] - 0.3) ** 2 + 1.0 / float(trial.budget or 1.0)


def _spans(study) -> list[tuple[float, float]]:
    return [tuple(t.user_attrs["span"]) for t in study.trials if "span" in t.user_attrs]


def _gaps(study) -> list[float]:
    """Idle seconds between consecutive trials of the same worker process (the dispatch
    round trip: result to the driver, the next ask, the task to the worker; plus the
    objective's own set-up before its span starts)."""
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for t in study.trials:
        if "span" in t.user_attrs and "pid" in t.user_attrs:
            by_pid.setdefault(t.user_attrs["pid"], []).append(tuple(t.user_attrs["span"]))
    gaps = []
    for spans in by_pid.values():
        spans.sort()
        gaps += [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    return gaps


# ---------------------------------------------------------------------- throughput
def throughput(executor: str, workers: int, n_trials: int, n_estimators: int,
               copies: int = 0) -> dict:
    from autodl import Categorical, Int, Space, Study

    space = Space({"max_features": Categorical(["sqrt", "log2"]), "min_samples_leaf": Int(1, 4)})
    study = Study(space, searcher="random", direction="maximize", seed=0)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    study.optimize(ForestObjective(n_estimators, copies=copies), n_trials=n_trials, n_workers=workers,
                   executor=executor)
    wall = time.perf_counter() - t0
    spans = _spans(study)
    active = max(e for _, e in spans) - min(s for s, _ in spans)
    per_trial = sum(e - s for s, e in spans) / len(spans)
    gaps = sorted(_gaps(study))
    return {"executor": executor, "workers": workers, "trials": len(spans),
            "trials_per_min": 60.0 * len(spans) / active, "wall_s": wall,
            "mean_trial_s": per_trial,
            "median_gap_ms": 1000.0 * gaps[len(gaps) // 2] if gaps else float("nan"),
            "load_before": load_before, "load_after": os.getloadavg()[0]}


# ---------------------------------------------------------------------- busy fraction
def _busy(spans, workers: int, wall: float) -> float:
    return sum(e - s for s, e in spans) / (workers * wall)


def asha_busy(searcher: str, n_trials: int, unit: float, max_budget: float) -> dict:
    from autodl import Float, Space, Study

    study = Study(Space({"x": Float(0.0, 1.0)}), searcher=searcher, seed=0,
                  searcher_params={"min_budget": 1.0, "max_budget": max_budget, "eta": 3.0})
    load_before = os.getloadavg()[0]
    study.optimize(SleepObjective(unit), n_trials=n_trials, n_workers=2, executor="local")
    spans = _spans(study)
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return {"schedule": f"{searcher} (Study.optimize)", "trials": len(spans),
            "busy": _busy(spans, 2, wall), "wall_s": wall, "load_before": load_before,
            "load_after": os.getloadavg()[0]}


def sync_sh_busy(n_configs: int, unit: float, max_budget: float, eta: int = 3) -> dict:
    """Classic synchronous successive halving on the same 2-worker executor, rung by rung."""
    import numpy as np

    from autodl.study.executors import Hooks, ProcessExecutor, TrialTask

    rng = np.random.default_rng(0)
    configs = [{"x": float(v)} for v in rng.uniform(0, 1, n_configs)]
    ex = ProcessExecutor(2)
    ex.start(SleepObjective(unit), Hooks())
    spans: list[tuple[float, float]] = []
    load_before = os.getloadavg()[0]
    budget, tid = 1.0, 0
    try:
        while configs and budget <= max_budget:
            queue = list(configs)
            results: dict[int, tuple[dict, float]] = {}
            running: dict[int, dict] = {}
            while queue or running:
                while queue and len(running) < ex.capacity:
                    tid += 1
                    cfg = queue.pop(0)
                    ex.submit(TrialTask(tid, cfg, budget))
                    running[tid] = cfg
                for done_id, out in ex.wait_any():
                    spans.append(tuple(out.user_attrs["span"]))
                    results[done_id] = (running.pop(done_id), out.value)
            ranked = sorted(results.values(), key=lambda r: r[1])
            configs = [c for c, _ in ranked[: max(1, len(ranked) // eta)]]
            if budget == max_budget:
                break
            budget = min(max_budget, budget * eta)
    finally:
        ex.shutdown()
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    return {"schedule": "synchronous SH (rung barrier)", "trials": len(spans),
            "busy": _busy(spans, 2, wall), "wall_s": wall, "load_before": load_before,
            "load_after": os.getloadavg()[0]}


# ---------------------------------------------------------------------- report
def markdown(result: dict) -> str:
    lines = ["| executor | workers | trials | trials/min | speed-up | mean trial (s) | "
             "median gap (ms) | wall (s) | load avg |",
             "|---|---|---|---|---|---|---|---|---|"]
    base = {r["executor"]: r["trials_per_min"] for r in result["throughput"] if r["workers"] == 1}
    for r in result["throughput"]:
        lines.append(f"| {r['executor']} | {r['workers']} | {r['trials']} | {r['trials_per_min']:.1f} | "
                     f"{r['trials_per_min'] / base[r['executor']]:.2f}x | {r['mean_trial_s']:.2f} | "
                     f"{r.get('median_gap_ms', float('nan')):.0f} | "
                     f"{r['wall_s']:.1f} | {r['load_before']:.1f} -> {r['load_after']:.1f} |")
    lines += ["", "| schedule (2 workers, fake durations) | trials | busy | wall (s) | load avg |",
              "|---|---|---|---|---|"]
    for r in result["busy"]:
        lines.append(f"| {r['schedule']} | {r['trials']} | {100 * r['busy']:.1f} % | {r['wall_s']:.1f} | "
                     f"{r['load_before']:.1f} -> {r['load_after']:.1f} |")
    g = result["goals"]
    lines += ["", f"goals: 2 workers >= 1.7x one: local {g['local_speedup']:.2f}x, dask "
                  f"{g['dask_speedup']:.2f}x; ASHA busy >= 90 %: {100 * g['asha_busy']:.1f} %"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small smoke run")
    p.add_argument("--out", help="JSON path (default: results/parallel[_quick].json)")
    p.add_argument("--no-dask", action="store_true", help="skip the Dask rows")
    p.add_argument("--no-local", action="store_true", help="skip the local-process rows")
    p.add_argument("--no-busy", action="store_true", help="skip the ASHA/SH busy-fraction rows")
    p.add_argument("--data-copies", type=int, default=0,
                   help="the objective carries digits stacked N times (0.9 MB each) instead of "
                        "loading it in each trial (default 0)")
    p.add_argument("--trials", type=int, default=60, help="trials per throughput row (default 60)")
    args = p.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)

    n_trials, n_estimators = (4, 5) if args.quick else (args.trials, 60)
    unit, max_budget, n_sleep = (0.02, 9.0, 12) if args.quick else (0.1, 9.0, 60)
    executors = ([] if args.no_local else ["local"]) + ([] if args.no_dask else ["dask"])
    rows = []
    for ex in executors:
        for w in (1, 2):
            rows.append(throughput(ex, w, n_trials, n_estimators, args.data_copies))
            print(f"{ex} x{w}: {rows[-1]['trials_per_min']:.1f} trials/min", flush=True)
    from autodl.searchers import SEARCHERS

    busy = []
    if not args.no_busy:
        busy = [asha_busy("asha", n_sleep, unit, max_budget),
                sync_sh_busy(27 if not args.quick else 9, unit, max_budget)]
        if "sh" in SEARCHERS:
            busy.append(asha_busy("sh", n_sleep, unit, max_budget))

    def speedup(ex: str) -> float:
        r = {x["workers"]: x["trials_per_min"] for x in rows if x["executor"] == ex}
        return r[2] / r[1] if r else float("nan")

    result = {
        "quick": args.quick,
        "data_copies": args.data_copies,
        "throughput": rows,
        "busy": busy,
        "goals": {"local_speedup": speedup("local"), "dask_speedup": speedup("dask"),
                  "asha_busy": busy[0]["busy"] if busy else float("nan"), "speedup_goal": 1.7, "busy_goal": 0.9},
    }
    result["markdown"] = markdown(result)
    print(result["markdown"])
    return _meta.write_result(args.out or _meta.default_out("parallel", args.quick), result, meta)


if __name__ == "__main__":
    main()
