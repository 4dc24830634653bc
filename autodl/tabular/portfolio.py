"""The first trials of a tabular search: strong default configurations, tried before the
searcher's own proposals.

A searcher that starts from nothing spends its first trials on random points of the space: on
every table the same seed-0 draws (k-NN with k=1, an SVM with C=0.015, logistic regression on
unscaled data), which used 30-50 s of 60 s budgets before any library default was tried. The
portfolio below is what a careful user tries first: the library defaults of the strongest
families, ordered by expected gain per second on typical tables (gradient-boosted trees first:
fast and usually best; a regularized linear model: fastest, strong on small or linear tables;
then the forests; then a slower, stronger boosting setting). The study *enqueues* them
(:meth:`autodl.Study.enqueue`): the searcher adopts each one and learns from its result like
from its own trials, then takes over.

A configuration is left out when it is not a point of the space being searched (a custom space
without that model), and a family whose cost grows badly with the table's shape is not put
first: the forests' 100 trees go last past :data:`LARGE_ROWS` rows, and with more than two
classes gradient boosting (one tree per class and iteration: ten times the trees on the ten
digits) follows the linear model, so a short budget completes a trial early (the 12 s deadline
smoke test on digits completed none with boosting first).
"""

from __future__ import annotations

from typing import Any

#: rows past which slower families move to the end of the portfolio. At 20,000 the 15,000-row
#: messy regression tables of ``benchmarks/tabular.py --messy`` (30 s) spent 7-13 s per forest
#: (3 folds, out-of-fold predictions kept) and had no time left for the slower boosting setting;
#: from 10,000 rows (where cv="auto" also drops to 3 folds) the forests go after it.
LARGE_ROWS = 10_000

PORTFOLIO: list[dict[str, Any]] = [
    # scikit-learn's HistGradientBoosting defaults (l2 0 -> the space's lower bound)
    {"model": "hist_gb", "impute": "mean", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
     "hist_gb.learning_rate": 0.1, "hist_gb.max_iter": 100, "hist_gb.max_leaf_nodes": 31,
     "hist_gb.min_samples_leaf": 20, "hist_gb.l2_regularization": 1e-6},
    # logistic / ridge regression with C = 1, standardized
    {"model": "linear", "impute": "mean", "scaler": "standard", "encoder": "onehot", "class_weight": "none", "linear.alpha": 1.0},
    # a random forest of 100 full-depth trees on half the features per split
    {"model": "random_forest", "impute": "median", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
     "random_forest.n_estimators": 100, "random_forest.max_depth": 32, "random_forest.min_samples_leaf": 1,
     "random_forest.max_features": 0.5},
    # extremely randomized trees, the same size
    {"model": "extra_trees", "impute": "median", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
     "extra_trees.n_estimators": 100, "extra_trees.max_depth": 32, "extra_trees.min_samples_leaf": 1,
     "extra_trees.max_features": 0.5},
    # slower, more regularized boosting: smaller steps, more of them, smaller leaves
    {"model": "hist_gb", "impute": "mean", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
     "hist_gb.learning_rate": 0.05, "hist_gb.max_iter": 300, "hist_gb.max_leaf_nodes": 15,
     "hist_gb.min_samples_leaf": 10, "hist_gb.l2_regularization": 1.0},
]


def portfolio(space, n_rows: int, n_classes: int | None = None) -> list[dict[str, Any]]:
    """The portfolio's configurations that are points of ``space``, in the order to try them
    for a table of ``n_rows`` training rows (and ``n_classes`` classes; None for regression)."""
    configs = [dict(c) for c in PORTFOLIO if space.contains(c)]
    if n_classes is not None and n_classes > 2:
        configs = [c for c in configs if c["model"] == "linear"] + [c for c in configs if c["model"] != "linear"]
    if n_rows > LARGE_ROWS:
        slow = {"random_forest", "extra_trees"}
        configs = [c for c in configs if c["model"] not in slow] + [c for c in configs if c["model"] in slow]
    return configs
