"""Time-series classification with tsfresh features: the class is in the dynamics only.

Three kinds of series with the same mean (0) and variance (1) at every time step:

* ``smooth``: an AR(1) process with coefficient +0.4 (neighbours alike),
* ``jagged``: an AR(1) process with coefficient -0.4 (neighbours alternate),
* ``periodic``: a sine with a period of 5 steps and a random phase, in strong noise.

Each series is standardized, so a model on the raw values sees columns with identical
distributions in every class: only a model comparing whole series (a 1-nearest-neighbour) gets
part of the way (0.64 on the full run). tsfresh's autocorrelation, FFT and similar
features separate the classes, so ``autodl.search(..., features="tsfresh")`` reaches a high
accuracy. The series are given to it in wide form (a row per series, a column per step).

    python examples/timeseries_tsfresh.py           # 150 series, efficient features, 12 trials
    python examples/timeseries_tsfresh.py --quick   # 72 series, fewer trials (used by the tests)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import autodl

CLASSES = ("smooth", "jagged", "periodic")


def make_series(n: int, length: int, seed: int = 0, noise: float = 2.0) -> tuple[pd.DataFrame, pd.Series]:
    """``n`` standardized series of ``length`` steps (wide form) and their classes."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for i in range(n):
        kind = CLASSES[i % len(CLASSES)]
        if kind == "periodic":
            t = np.arange(length)
            x = np.sin(2 * np.pi * t / 5 + rng.uniform(0, 2 * np.pi)) + noise * rng.normal(size=length)
        else:
            phi = 0.4 if kind == "smooth" else -0.4
            e = rng.normal(size=length + 50)
            x = np.zeros(length + 50)
            for j in range(1, length + 50):
                x[j] = phi * x[j - 1] + e[j]
            x = x[50:]
        rows.append((x - x.mean()) / x.std())
        labels.append(kind)
    X = pd.DataFrame(rows, columns=[f"t{j}" for j in range(length)])
    return X, pd.Series(labels, name="kind")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and budget (for the tests)")
    args = parser.parse_args(argv)

    # quick: less noise and 6 trials, so the point does not hang on which 3 configs come first
    n, length, trials = (72, 48, 6) if args.quick else (150, 96, 12)
    X, y = make_series(n, length, seed=0, noise=1.0 if args.quick else 2.0)
    common = dict(n_trials=trials, cv=3, seed=0, test_size=0.3)

    t0 = time.time()
    raw = autodl.search(X, y, **common)
    print(f"raw values:      test accuracy {raw.test_score:.3f} ({raw.best_config['model']}, "
          f"{time.time() - t0:.1f}s)")

    t0 = time.time()
    features = {"kind": "tsfresh", "feature_set": "minimal" if args.quick else "efficient"}
    if args.quick:  # the minimal set plus the few features that see dynamics
        features["feature_set"] = {
            "standard_deviation": None, "mean": None,
            "autocorrelation": [{"lag": 1}, {"lag": 2}, {"lag": 5}],
            "number_crossing_m": [{"m": 0}],
            "fft_aggregated": [{"aggtype": "centroid"}, {"aggtype": "variance"}],
        }
    fe = autodl.search(X, y, features=features, **common)
    model = fe.best_model  # the best pipeline, or an ensemble whose largest member comes first
    tsfresh_step = (model.members[0][1] if hasattr(model, "members") else model).named_steps["features"]
    print(f"tsfresh features: test accuracy {fe.test_score:.3f} ({fe.best_config['model']}, "
          f"{len(tsfresh_step.features_)} of {tsfresh_step.n_features_extracted_} features kept, "
          f"{time.time() - t0:.1f}s)")
    print("most used features:", ", ".join(tsfresh_step.features_[:5]))
    return {"raw": raw.test_score, "tsfresh": fe.test_score}


if __name__ == "__main__":
    main()
