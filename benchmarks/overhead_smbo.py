"""Per-trial overhead of autodl's TPE and GP against Optuna 5's ``TPESampler()`` and
``GPSampler()`` with their defaults (only the seed is set).

For each searcher, dimension and trial count ``N``, the history is pre-filled with ``N - w/2``
random trials on a sphere (through ``restore`` for autodl and ``study.add_trials`` for Optuna,
which costs no sampling), then ``w`` trials are run with ask + tell and their mean wall time is
reported in milliseconds: the cost of one trial around trial ``N``. autodl's searcher is driven
through its ask/tell protocol, Optuna's sampler through ``study.ask()`` / ``study.tell()`` on an
in-memory study (the only way to run it). Everything runs in one process with ``--threads``
threads for BLAS and torch (default 1, so neither library gets more cores than the other on a
shared machine); the repetitions alternate autodl and Optuna, the fastest of each is kept and the
ratio autodl / Optuna is taken from those, so a change in the machine's load hits both sides.

Goals (issue 17): autodl's TPE at most 0.5x Optuna's TPE per trial at 1,000 trials, autodl's GP
at most 1x Optuna's GP at 300 trials, in every dimension measured. The Optuna version is pinned:
the result records it (``optuna_version``, and ``meta.versions``) and the script refuses to
compare against another major version than ``--optuna-major``. Prints a table and writes JSON
to ``benchmarks/results/`` with the run's metadata (``benchmarks/_meta.py``).

Usage::

    python benchmarks/overhead_smbo.py            # TPE at 100 and 1000, GP at 100 and 300; d = 1, 8, 16
    python benchmarks/overhead_smbo.py --quick    # ~10 s
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

#: distributions whose versions the result records (Optuna's GPSampler runs on torch)
PACKAGES = ("optuna", "torch")
#: the goals: (searcher, trial count) -> largest ratio autodl / Optuna per trial
GOALS = {("tpe", 1000): 0.5, ("gp", 300): 1.0}


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """BLAS (threadpoolctl) and torch on ``n`` threads for both libraries, restored afterwards."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def optuna_version(major: int | None) -> str:
    """The installed Optuna version; SystemExit when its major version is not ``major``."""
    from importlib import metadata

    version = metadata.version("optuna")
    if major is not None and int(version.split(".")[0]) != major:
        raise SystemExit(f"optuna {version} is installed, but the goals are set against Optuna {major}; "
                         f"install optuna>={major},<{major + 1} or pass --optuna-major {version.split('.')[0]}")
    return version


def goals(rows: list[dict]) -> dict:
    """Each goal with the worst ratio over the dimensions measured at its trial count."""
    out = {}
    for (kind, at), limit in GOALS.items():
        ratios = [r["ratio"] for r in rows if r["searcher"] == kind and r["trial"] == at]
        if ratios:
            out[f"{kind}@{at}"] = {"max_ratio": limit, "worst_ratio": max(ratios), "met": max(ratios) <= limit}
    return out


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


def measure(kind: str, dim: int, at: int, window: int, repeats: int) -> dict:
    """One row: both libraries ``repeats`` times, alternated (a load change hits both); the
    fastest of each and their ratio."""
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(time_autodl(kind, dim, at, window))
        theirs.append(time_optuna(kind, dim, at, window))
    print(f"  {kind} d={dim} trial {at}: autodl {min(ours):.1f} ms, optuna {min(theirs):.1f} ms", flush=True)
    return {"searcher": kind, "dim": dim, "trial": at, "autodl_ms": min(ours), "optuna_ms": min(theirs),
            "ratio": min(ours) / min(theirs), "autodl_ms_runs": ours, "optuna_ms_runs": theirs}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dims", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--tpe-at", type=int, nargs="*", default=[100, 1000])
    ap.add_argument("--gp-at", type=int, nargs="*", default=[100, 300])
    ap.add_argument("--window", type=int, default=20, help="trials timed around each point (TPE)")
    ap.add_argument("--gp-window", type=int, default=10, help="trials timed around each point (GP)")
    ap.add_argument("--repeats", type=int, default=3, help="repetitions; the fastest is reported")
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads of both libraries")
    ap.add_argument("--optuna-major", type=int, default=5, help="the Optuna major version the goals are set against")
    ap.add_argument("--quick", action="store_true", help="d=2, TPE at 50, GP at 30, short windows")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    if args.quick:
        args.dims, args.tpe_at, args.gp_at, args.window, args.gp_window = [2], [50], [30], 6, 4
        args.repeats = 1
    version = optuna_version(args.optuna_major)
    rows = []
    with threads(args.threads):
        for kind, points, window in (("tpe", args.tpe_at, args.window), ("gp", args.gp_at, args.gp_window)):
            for dim in args.dims:
                for at in points:
                    rows.append(measure(kind, dim, at, window, args.repeats))
    print(f"\n{'searcher':<9}{'dim':>4}{'trial':>7}{'autodl ms':>11}{'optuna ms':>11}{'ratio':>8}")
    print("-" * 50)
    for r in rows:
        print(f"{r['searcher']:<9}{r['dim']:>4}{r['trial']:>7}{r['autodl_ms']:>11.1f}"
              f"{r['optuna_ms']:>11.1f}{r['ratio']:>8.2f}")
    met = goals(rows)
    for name, g in met.items():
        print(f"goal {name}: worst ratio {g['worst_ratio']:.2f} <= {g['max_ratio']}: {'met' if g['met'] else 'MISSED'}")
    out = args.out or _meta.default_out("overhead_smbo", args.quick)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    return _meta.write_result(out, {"config": config, "optuna_version": version,
                                    "against": "optuna.samplers.TPESampler(seed=0), GPSampler(seed=0)",
                                    "rows": rows, "goals": met}, meta)


if __name__ == "__main__":
    main()
