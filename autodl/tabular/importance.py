"""Permutation importance of the input columns for a final predictor, on held-out rows.

A column's importance is how much the search metric gets worse when that column's values are
shuffled among the held-out rows (everything else unchanged), averaged over ``n_repeats``
shuffles (Breiman 2001; scikit-learn's ``permutation_importance`` does the shuffling and
scoring). It is measured on the raw columns a user gives to ``predict`` — dates, categories
and all — through the whole predictor (preprocessing, model or ensemble), on rows the
predictor never trained on, so it says what the deployed predictor relies on.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin


class _Classifier(ClassifierMixin, BaseEstimator):
    def __init__(self, predictor=None):
        self.predictor = predictor

    def fit(self, X, y):  # never called: the predictor is fitted
        return self

    def predict(self, X):
        return self.predictor.predict(X)

    def predict_proba(self, X):
        return self.predictor.predict_proba(X)


class _Regressor(RegressorMixin, BaseEstimator):
    def __init__(self, predictor=None):
        self.predictor = predictor

    def fit(self, X, y):
        return self

    def predict(self, X):
        return self.predictor.predict(X)


def permutation_importance(predictor, X, y, metric, *, task: str, n_repeats: int = 5, seed: int = 0,
                           sample_weight=None, max_rows: int = 2000):
    """A DataFrame of ``column, importance, importance_std`` (best first): the mean drop of
    ``metric`` (positive = the column helps) over ``n_repeats`` shuffles of each column of the
    raw frame ``X`` (at most ``max_rows`` rows, a seeded sample), scored by ``predictor`` —
    anything with ``predict`` (and ``predict_proba`` for classification) taking raw rows."""
    import pandas as pd
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    X = X if hasattr(X, "iloc") else pd.DataFrame(np.asarray(X))
    y = np.asarray(y)
    if len(X) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))
        X, y = X.iloc[keep], y[keep]
        sample_weight = None if sample_weight is None else np.asarray(sample_weight)[keep]
    wrapper = (_Classifier if task == "classification" else _Regressor)(predictor).fit(X, y)
    if task == "classification":
        wrapper.classes_ = np.asarray(predictor.classes_)
    scorer = metric.scorer(y)
    out = sk_permutation_importance(wrapper, X, y, scoring=scorer, n_repeats=n_repeats, random_state=seed,
                                    sample_weight=sample_weight)
    # scorers are greater-is-better, so a drop of the score is a loss of metric whatever its direction
    frame = pd.DataFrame({"column": [str(c) for c in X.columns], "importance": out.importances_mean,
                          "importance_std": out.importances_std})
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
