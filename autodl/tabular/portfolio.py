"""The first trials of a tabular search: a portfolio of configurations that did well across many
tables, tried before the searcher's own proposals.

A searcher that starts from nothing spends its first trials on random points of the space, and a
30 s search on two cores completes only 5-15 trials. The portfolio is an ordered list of points
of the default space, stored as data in ``portfolio.json`` next to this module and built by
``benchmarks/build_portfolio.py``: every candidate configuration (library defaults, common hand
settings and seeded random points of each family) is cross-validated on every table of a
meta-dataset (scikit-learn's bundled tables and generated ones of varied shape), and
:func:`greedy_portfolio` adds, one at a time, the candidate that most raises the mean over tables
of the best normalized score so far, optionally per unit of cost. Which variant and how many
configurations ship was chosen leave-one-dataset-out (each table scored by a portfolio built
without it); the script prints that table. The JSON also records which shape rules (see
:func:`portfolio`) those numbers supported.

The study *enqueues* the configurations (:meth:`autodl.Study.enqueue`): the searcher adopts each
one and learns from its result like from its own trials, then takes over. A configuration that
is not a point of the space being searched (a custom space without that model) is left out.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

#: the stored portfolio (package data)
PORTFOLIO_FILE = Path(__file__).with_name("portfolio.json")

#: the hand-picked list the built portfolio replaced (kept as the baseline the build script
#: measures against): HGB defaults, a standardized linear model, the two forests, slower HGB
HAND_PICKED: list[dict[str, Any]] = [
    {"model": "hist_gb", "impute": "mean", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
     "hist_gb.learning_rate": 0.1, "hist_gb.max_iter": 100, "hist_gb.max_leaf_nodes": 31,
     "hist_gb.min_samples_leaf": 20, "hist_gb.l2_regularization": 1e-6},
    {"model": "linear", "impute": "mean", "scaler": "standard", "encoder": "onehot", "class_weight": "none",
     "linear.alpha": 1.0},
    {"model": "random_forest", "impute": "median", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
     "random_forest.n_estimators": 100, "random_forest.max_depth": 32, "random_forest.min_samples_leaf": 1,
     "random_forest.max_features": 0.5},
    {"model": "extra_trees", "impute": "median", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
     "extra_trees.n_estimators": 100, "extra_trees.max_depth": 32, "extra_trees.min_samples_leaf": 1,
     "extra_trees.max_features": 0.5},
    {"model": "hist_gb", "impute": "mean", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
     "hist_gb.learning_rate": 0.05, "hist_gb.max_iter": 300, "hist_gb.max_leaf_nodes": 15,
     "hist_gb.min_samples_leaf": 10, "hist_gb.l2_regularization": 1.0},
]

_SLOW_ON_MANY_ROWS = ("random_forest", "extra_trees")


@functools.lru_cache(maxsize=1)
def _stored() -> dict[str, Any]:
    return json.loads(PORTFOLIO_FILE.read_text())


def load_portfolio() -> list[dict[str, Any]]:
    """The stored configurations in their order (fresh copies)."""
    return [dict(c) for c in _stored()["configs"]]


def rules() -> dict[str, Any]:
    """The shape rules the build kept: ``multiclass_linear_first`` (bool) and
    ``forests_last_rows`` (an int, or None for no such rule)."""
    stored = _stored().get("rules", {})
    return {"multiclass_linear_first": bool(stored.get("multiclass_linear_first", False)),
            "forests_last_rows": stored.get("forests_last_rows")}


def __getattr__(name: str):
    if name == "PORTFOLIO":  # read lazily: the build script imports this module before the file exists
        return load_portfolio()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def portfolio(space, n_rows: int, n_classes: int | None = None) -> list[dict[str, Any]]:
    """The portfolio's configurations that are points of ``space``, in the order to try them
    for a table of ``n_rows`` training rows (and ``n_classes`` classes; None for regression).

    The stored order is kept, except where :func:`rules` says otherwise: with
    ``multiclass_linear_first`` the linear configurations go first on more than two classes
    (boosting grows a tree per class), with ``forests_last_rows`` the forests go last on more
    rows than that.
    """
    configs = [c for c in load_portfolio() if space.contains(c)]
    shape = rules()
    if shape["multiclass_linear_first"] and n_classes is not None and n_classes > 2:
        configs = [c for c in configs if c["model"] == "linear"] + [c for c in configs if c["model"] != "linear"]
    if shape["forests_last_rows"] is not None and n_rows > shape["forests_last_rows"]:
        configs = ([c for c in configs if c["model"] not in _SLOW_ON_MANY_ROWS]
                   + [c for c in configs if c["model"] in _SLOW_ON_MANY_ROWS])
    return configs


def greedy_portfolio(scores, length: int, costs=None, *, alpha: float = 0.0) -> list[int]:
    """Greedy forward selection of a portfolio: column indices of ``scores``, in order.

    Each step adds the column that most raises ``mean over rows of max(best so far, column)``
    (rows are tables, columns candidates, higher is better; the best so far starts at 0), divided
    by ``mean over rows of costs[:, column] ** alpha`` when ``costs`` is given and ``alpha > 0``
    (gain per unit of cost). Ties go to the lower index. Selection stops early when no column
    raises the mean.

    Args:
        scores: (tables x candidates) normalized scores, 0 = worthless.
        length: columns to select at most.
        costs: (tables x candidates) positive costs (e.g. seconds relative to the table's median).
        alpha: 0 ignores the costs, 1 divides the gain by the mean cost.

    Example:
        >>> greedy_portfolio(np.array([[1.0, 0.0, 0.6], [0.0, 1.0, 0.6]]), 2)
        [2, 0]
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores has shape {scores.shape}, but must be (tables, candidates)")
    if length < 0:
        raise ValueError(f"length is {length}, but must be >= 0")
    price = np.ones(scores.shape[1])
    if costs is not None and alpha > 0:
        price = np.maximum(np.mean(np.maximum(np.asarray(costs, dtype=float), 1e-9) ** alpha, axis=0), 1e-12)
    best = np.zeros(scores.shape[0])
    chosen: list[int] = []
    for _ in range(min(length, scores.shape[1])):
        gain = np.maximum(scores, best[:, None]).mean(axis=0) - best.mean()
        gain[chosen] = -np.inf
        ratio = gain / price
        j = int(np.argmax(ratio))
        if not gain[j] > 1e-12:
            break
        chosen.append(j)
        best = np.maximum(best, scores[:, j])
    return chosen
