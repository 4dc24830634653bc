"""Messy tables generated on the spot, as users bring them (nothing downloads): for the tests and
``benchmarks/tabular.py --messy``.

:func:`messy_table` has what real exports have: a unique string id and a row-number id, a date
column (ISO strings) that carries a seasonal signal, a high-cardinality categorical (2,000 levels)
with an effect per level, a low-cardinality categorical, booleans, a constant column, an all-
missing column, a duplicate of a numeric column, a mixed-type column (numbers and text), missing
values, rows with a missing target and, for classification, a rare positive class (about 2 %).
:func:`by_hand` is what a careful user would prepare for a gradient-boosting model: ids and
useless columns dropped, the date split into parts, categoricals as pandas categories.
"""

from __future__ import annotations

import numpy as np


def messy_table(n: int = 20_000, *, task: str = "classification", seed: int = 0, positive_rate: float = 0.02):
    """A DataFrame of ``n`` rows with the target in column ``target`` (see the module doc)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(size=(3, n))
    dates = pd.Timestamp("2018-01-01") + pd.to_timedelta(rng.uniform(0, 5 * 365, n), unit="D")
    season = np.sin(2 * np.pi * dates.dayofyear.to_numpy() / 365.25)
    levels = rng.integers(0, 2000, n)
    level_effect = np.random.default_rng(seed + 1).normal(0, 1, 2000)[levels]
    shop = rng.choice(["north", "south", "east", "west"], n)
    shop_effect = pd.Series(shop).map({"north": 0.5, "south": -0.5, "east": 0.0, "west": 0.25}).to_numpy()
    member = rng.random(n) < 0.3
    signal = 1.2 * x1 - 0.8 * x2 ** 2 + 1.5 * season + 0.8 * level_effect + shop_effect + 0.6 * member
    signal += 0.5 * np.tanh(x3) * x1
    frame = pd.DataFrame({
        "record_id": [f"R{rng.integers(10**9):09d}-{i}" for i in range(n)],
        "row_number": np.arange(n),
        "x1": x1, "x2": x2, "x3": x3,
        "when": dates.strftime("%Y-%m-%d"),
        "product": np.char.add("P", levels.astype(str)),
        "shop": shop,
        "member": member,
        "constant": 7,
        "empty": np.nan,
        "x1_copy": x1,
        "mixed": np.where(rng.random(n) < 0.9, np.round(x3 * 10).astype(int).astype(str), "n/a"),
    })
    for col in ("x2", "shop", "x3"):
        frame.loc[rng.random(n) < 0.05, col] = np.nan
    if task == "classification":
        z = signal + rng.normal(0, 0.8, n)
        cut = np.quantile(z, 1 - positive_rate)
        frame["target"] = np.where(z > cut, "yes", "no")
    else:
        frame["target"] = signal + rng.normal(0, 0.5, n)
    frame.loc[rng.random(n) < 0.01, "target"] = None if task == "classification" else np.nan
    return frame


def by_hand(frame):
    """The columns a careful user prepares for HistGradientBoosting: ids, the constant, the empty
    and the duplicate column dropped; the date as year, month, day of year and day of week;
    the shop as a pandas category (``categorical_features="from_dtype"``), the 2,000-level product
    as its number (ordinal; past HistGradientBoosting's 255 native categories); the mixed column
    as a number (text -> NaN)."""
    import pandas as pd

    out = frame.drop(columns=["record_id", "row_number", "constant", "empty", "x1_copy"], errors="ignore").copy()
    when = pd.to_datetime(out.pop("when"))
    out["year"], out["month"] = when.dt.year, when.dt.month
    out["dayofyear"], out["dayofweek"] = when.dt.dayofyear, when.dt.dayofweek
    out["mixed"] = pd.to_numeric(out["mixed"], errors="coerce")
    out["shop"] = out["shop"].astype("category")
    # 2,000 levels are past HistGradientBoosting's 255 native categories: the level's number
    out["product"] = pd.to_numeric(out["product"].str[1:], errors="coerce")
    out["member"] = out["member"].astype(int)
    return out
