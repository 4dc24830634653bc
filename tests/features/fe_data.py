"""Small series for the feature-engineering tests (imported by the test modules)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: a few tsfresh features that see dynamics, cheap to compute (keeps the tests fast)
DYNAMICS = {"mean": None, "standard_deviation": None,
            "autocorrelation": [{"lag": 1}, {"lag": 2}], "number_crossing_m": [{"m": 0}]}


def ar_series(n: int = 48, length: int = 40, seed: int = 0):
    """Standardized AR(1) series, coefficient +0.6 (class 1) or -0.6 (class 0), wide form."""
    rng = np.random.default_rng(seed)
    rows, y = [], []
    for i in range(n):
        phi = 0.6 if i % 2 else -0.6
        e = rng.normal(size=length + 20)
        x = np.zeros(length + 20)
        for t in range(1, length + 20):
            x[t] = phi * x[t - 1] + e[t]
        x = x[20:]
        rows.append((x - x.mean()) / x.std())
        y.append(i % 2)
    return pd.DataFrame(rows, columns=[f"t{j}" for j in range(length)]), pd.Series(y, name="label")
