"""Per-trial overhead of autodl's TPE and GP against Optuna's TPESampler and GPSampler.

For each searcher, dimension and trial count ``N``, the history is pre-filled with ``N - w/2``
random trials on a sphere (through ``restore`` for autodl and ``study.add_trials`` for Optuna,
which costs no sampling), then ``w`` trials are run with ask + tell and their mean wall time is
reported in milliseconds: the cost of one trial around trial ``N``. Everything runs in one
process, one method after the other; each measurement is repeated (``--repeats``) and the
fastest repetition is kept, which filters out interference from other processes. Prints a table
and writes JSON to ``benchmarks/results/`` with the run's metadata (``benchmarks/_meta.py``).

Usage::

    python benchmarks/overhead_smbo.py            # TPE at 100 and 1000, GP at 100 and 300; d = 1, 8, 16
    python benchmarks/overhead_smbo.py --quick    # ~10 s
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

#: distributions whose versions the result records (Optuna's GPSampler runs on torch)
PACKAGES = ("optuna", "torch")


def _sphere(x: np.ndarray) -> float:
    return float(np.sum((x - 0.3) ** 2))


def _history(dim: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, dim))
    return x, np.array([_sphere(r) for r in x])


def time_autodl(kind: str, dim: int, at: int, window: int, seed: int = 0) -> float:
    """Mean ms per ask+tell of autodl's ``kind`` searcher over ``window`` trials around ``at``."""
    from autodl.searchers import make_searcher
    from autodl.searchers.base import Trial
    from autodl.space import Float, Space

    names = [f"x{i}" for i in range(dim)]
    space = Space({n: Float(-1.0, 1.0) for n in names})
    searcher = make_searcher(kind, space, seed=seed)
    x, y = _history(dim, max(at - window // 2, 0), seed)
    searcher.restore((Trial(i, {n: float(v) for n, v in zip(names, row)}), float(val))
                     for i, (row, val) in enumerate(zip(x, y)))
    start = time.perf_counter()
    for _ in range(window):
        trial = searcher.ask()
        searcher.tell(trial, _sphere(np.array([trial.config[n] for n in names])))
    return 1000.0 * (time.perf_counter() - start) / window


def time_optuna(kind: str, dim: int, at: int, window: int, seed: int = 0) -> float:
    """Mean ms per ask+tell of Optuna's sampler over ``window`` trials around ``at``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
               "gp": lambda: optuna.samplers.GPSampler(seed=seed)}[kind]()
    study = optuna.create_study(sampler=sampler)
    dists = {f"x{i}": optuna.distributions.FloatDistribution(-1.0, 1.0) for i in range(dim)}
    x, y = _history(dim, max(at - window // 2, 0), seed)
    study.add_trials([
        optuna.trial.create_trial(params={f"x{i}": float(v) for i, v in enumerate(row)},
                                  distributions=dists, value=float(val))
        for row, val in zip(x, y)
    ])
    start = time.perf_counter()
    for _ in range(window):
        trial = study.ask()
        xs = np.array([trial.suggest_float(f"x{i}", -1.0, 1.0) for i in range(dim)])
        study.tell(trial, _sphere(xs))
    return 1000.0 * (time.perf_counter() - start) / window


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--tpe-at", type=int, nargs="*", default=[100, 1000])
    ap.add_argument("--gp-at", type=int, nargs="*", default=[100, 300])
    ap.add_argument("--window", type=int, default=20, help="trials timed around each point (TPE)")
    ap.add_argument("--gp-window", type=int, default=10, help="trials timed around each point (GP)")
    ap.add_argument("--repeats", type=int, default=3, help="repetitions; the fastest is reported")
    ap.add_argument("--quick", action="store_true", help="d=2, TPE at 50, GP at 30, short windows")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    if args.quick:
        args.dims, args.tpe_at, args.gp_at, args.window, args.gp_window = [2], [50], [30], 6, 4
        args.repeats = 1
    rows = []
    for kind, points, window in (("tpe", args.tpe_at, args.window), ("gp", args.gp_at, args.gp_window)):
        for dim in args.dims:
            for at in points:
                ours = min(time_autodl(kind, dim, at, window) for _ in range(args.repeats))
                theirs = min(time_optuna(kind, dim, at, window) for _ in range(args.repeats))
                rows.append({"searcher": kind, "dim": dim, "trial": at, "autodl_ms": ours,
                             "optuna_ms": theirs, "ratio": ours / theirs})
                print(f"  {kind} d={dim} trial {at}: autodl {ours:.1f} ms, optuna {theirs:.1f} ms",
                      flush=True)
    print(f"\n{'searcher':<9}{'dim':>4}{'trial':>7}{'autodl ms':>11}{'optuna ms':>11}{'ratio':>8}")
    print("-" * 50)
    for r in rows:
        print(f"{r['searcher']:<9}{r['dim']:>4}{r['trial']:>7}{r['autodl_ms']:>11.1f}"
              f"{r['optuna_ms']:>11.1f}{r['ratio']:>8.2f}")
    out = args.out or _meta.default_out("overhead_smbo", args.quick)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    return _meta.write_result(out, {"config": config, "rows": rows}, meta)


if __name__ == "__main__":
    main()
