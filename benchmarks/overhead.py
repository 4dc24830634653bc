"""Per-trial overhead of the study loop: autodl against Optuna, same process, same machine.

A trivial objective (a few arithmetic operations) over a small mixed space (float, log-float,
int, categorical) with random search, so what is measured is the cost of the loop itself:
asking, bookkeeping, storing each trial. Both tools run in memory and on SQLite (a fresh file
each run). Reports milliseconds per trial (median of ``--repeats`` runs) and writes JSON with
every run's figure and the run's metadata (``benchmarks/_meta.py``).

    python benchmarks/overhead.py            # full: 2000 trials in memory, 500 on SQLite (~3 min)
    python benchmarks/overhead.py --quick    # a few seconds; used by the tests
    python benchmarks/overhead.py --smbo     # also the searchers' own cost: autodl TPE/GP vs
                                             # Optuna TPE/GPSampler (benchmarks/overhead_smbo.py)
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

import autodl  # noqa: E402
from autodl import Categorical, Float, Int, Space  # noqa: E402

#: distributions whose versions the result records (Optuna stores through SQLAlchemy)
PACKAGES = ("optuna", "sqlalchemy")

SPACE = Space({
    "x": Float(-5.0, 5.0),
    "lr": Float(1e-5, 1e-1, log=True),
    "n": Int(1, 64),
    "kind": Categorical(["a", "b", "c"]),
})


def _value(x: float, lr: float, n: int, kind: str) -> float:
    return (x - 1.0) ** 2 + lr * n + (kind == "b")


def run_autodl(n_trials: int, storage: str | None) -> float:
    study = autodl.Study(SPACE, searcher="random", storage=storage, seed=0)

    def objective(trial):
        c = trial.config
        return _value(c["x"], c["lr"], c["n"], c["kind"])

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    elapsed = time.perf_counter() - t0
    assert study.n_finished == n_trials
    return elapsed / n_trials * 1000.0


def run_optuna(n_trials: int, storage: str | None) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), storage=storage)

    def objective(trial):
        return _value(trial.suggest_float("x", -5.0, 5.0), trial.suggest_float("lr", 1e-5, 1e-1, log=True),
                      trial.suggest_int("n", 1, 64), trial.suggest_categorical("kind", ["a", "b", "c"]))

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    elapsed = time.perf_counter() - t0
    assert len(study.trials) == n_trials
    return elapsed / n_trials * 1000.0


def measure(n_memory: int, n_sqlite: int, repeats: int) -> list[dict]:
    rows = []
    for tool, fn in (("autodl", run_autodl), ("optuna", run_optuna)):
        for backend, n in (("memory", n_memory), ("sqlite", n_sqlite)):
            times = []
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    db = Path(tmp) / "study.db"
                    storage = None
                    if backend == "sqlite":
                        storage = str(db) if tool == "autodl" else f"sqlite:///{db}"
                    times.append(fn(n, storage))
            rows.append({"tool": tool, "storage": backend, "trials": n,
                         "ms_per_trial": statistics.median(times), "runs": times})
    return rows


def print_table(rows: list[dict]) -> str:
    by = {(r["tool"], r["storage"]): r for r in rows}
    lines = ["| storage | trials | autodl ms/trial | Optuna ms/trial | Optuna / autodl |",
             "|---|---:|---:|---:|---:|"]
    for backend in ("memory", "sqlite"):
        a, o = by[("autodl", backend)], by[("optuna", backend)]
        lines.append(f"| {backend} | {a['trials']} | {a['ms_per_trial']:.3f} | {o['ms_per_trial']:.3f} | "
                     f"{o['ms_per_trial'] / a['ms_per_trial']:.1f}x |")
    text = "\n".join(lines)
    print(text)
    return text


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few trials, one repeat")
    parser.add_argument("--trials-memory", type=int, default=2000)
    parser.add_argument("--trials-sqlite", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="JSON path (default: results/overhead[_quick].json)")
    parser.add_argument("--smbo", action="store_true",
                        help="then measure TPE and GP per-trial cost against Optuna (overhead_smbo.py)")
    args = parser.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    if args.quick:
        args.trials_memory, args.trials_sqlite, args.repeats = 200, 50, 1
    rows = measure(args.trials_memory, args.trials_sqlite, args.repeats)
    table = print_table(rows)
    result = {"quick": args.quick, "repeats": args.repeats, "sqlite": sqlite3.sqlite_version, "rows": rows,
              "table": table}
    out = Path(args.out) if args.out else _meta.default_out("overhead", args.quick)
    result = _meta.write_result(out, result, meta)
    if args.smbo:  # its own JSON: overhead_smbo's default, or next to --out
        import importlib.util

        spec = importlib.util.spec_from_file_location("overhead_smbo", Path(__file__).parent / "overhead_smbo.py")
        smbo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(smbo)
        smbo_args = (["--quick"] if args.quick else []) + (
            ["--out", str(out.with_name(out.stem + "_smbo.json"))] if args.out else [])
        result["smbo"] = smbo.main(smbo_args)
    return result


if __name__ == "__main__":
    main()
