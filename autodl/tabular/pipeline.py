"""Building scikit-learn pipelines from tabular configs, and the cross-validation objective."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np

from autodl.tabular.metrics import Metric


def split_columns(X) -> tuple[list, list]:
    """``(numeric columns, categorical columns)`` of a DataFrame by dtype."""
    import pandas as pd

    numeric, categorical = [], []
    for col in X.columns:
        dtype = X[col].dtype
        if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            categorical.append(col)
        else:
            numeric.append(col)
    return numeric, categorical


def _scaler(name: str):
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    return {"standard": StandardScaler(), "minmax": MinMaxScaler(), "robust": RobustScaler(),
            "none": "passthrough"}[name]


def build_model(config: dict[str, Any], task: str, seed: int = 0):
    """The estimator named by ``config["model"]`` with its hyperparameters."""
    model = config["model"]
    clf = task == "classification"
    if model == "linear":
        alpha = config.get("linear.alpha", 1.0)
        if clf:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=1.0 / alpha, max_iter=2000)
        from sklearn.linear_model import Ridge

        return Ridge(alpha=alpha)
    if model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        cls = RandomForestClassifier if clf else RandomForestRegressor
        return cls(
            n_estimators=config.get("random_forest.n_estimators", 100),
            max_depth=config.get("random_forest.max_depth"),
            min_samples_leaf=config.get("random_forest.min_samples_leaf", 1),
            max_features=config.get("random_forest.max_features", 1.0),
            random_state=seed,
            n_jobs=1,
        )
    if model == "hist_gb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
        return cls(
            learning_rate=config.get("hist_gb.learning_rate", 0.1),
            max_iter=config.get("hist_gb.max_iter", 100),
            max_leaf_nodes=config.get("hist_gb.max_leaf_nodes", 31),
            min_samples_leaf=config.get("hist_gb.min_samples_leaf", 20),
            l2_regularization=config.get("hist_gb.l2_regularization", 0.0),
            early_stopping=False,
            random_state=seed,
        )
    raise ValueError(f"unknown model '{model}' in config")


def build_pipeline(config: dict[str, Any], X, task: str, seed: int = 0):
    """Imputation + scaling for numeric columns, imputation + one-hot for categorical ones,
    then the configured model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric, categorical = split_columns(X)
    parts = []
    if numeric:
        parts.append(("num", Pipeline([
            ("impute", SimpleImputer(strategy=config.get("impute", "mean"))),
            ("scale", _scaler(config.get("scaler", "standard"))),
        ]), numeric))
    if categorical:
        parts.append(("cat", Pipeline([
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), categorical))
    pre = ColumnTransformer(parts, remainder="drop")
    return Pipeline([("preprocess", pre), ("model", build_model(config, task, seed))])


def make_cv(task: str, y, folds: int, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "classification":
        _, counts = np.unique(np.asarray(y), return_counts=True)
        folds = max(2, min(folds, int(counts.min())))
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


def scoring_name(metric: Metric, y) -> str:
    if metric.name == "roc_auc" and len(np.unique(np.asarray(y))) == 2:
        return "roc_auc"
    return metric.scoring


@contextlib.contextmanager
def quiet_fit():
    """Collect scikit-learn's convergence and fit warnings instead of flooding the terminal;
    the objective stores them with the trial."""
    from sklearn.exceptions import ConvergenceWarning, FitFailedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("always", FitFailedWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield caught


class CVObjective:
    """k-fold cross-validated score of the pipeline a config describes (picklable).

    Returns the metric as reported (accuracy, rmse, ...); the fold standard deviation is stored
    as the trial's ``cv_std`` attribute.
    """

    def __init__(self, X, y, task: str, metric: Metric, folds: int = 5, seed: int = 0):
        self.X, self.y, self.task, self.metric = X, y, task, metric
        self.folds, self.seed = folds, seed

    def __call__(self, trial) -> float:
        from sklearn.model_selection import cross_val_score

        pipe = build_pipeline(trial.config, self.X, self.task, self.seed)
        cv = make_cv(self.task, self.y, self.folds, self.seed)
        with quiet_fit() as caught:
            scores = cross_val_score(pipe, self.X, self.y, cv=cv,
                                     scoring=scoring_name(self.metric, self.y), error_score="raise")
        if caught:
            trial.set_user_attr("warnings", sorted({f"{w.category.__name__}: {w.message}"[:200] for w in caught}))
        values = np.array([self.metric.from_scorer(s) for s in scores])
        trial.set_user_attr("cv_std", float(values.std()))
        return float(values.mean())


def score_model(model, X, y, metric: Metric) -> float:
    """The metric of a fitted model on ``(X, y)``, as reported."""
    from sklearn.metrics import get_scorer

    return metric.from_scorer(get_scorer(scoring_name(metric, y))(model, X, y))
