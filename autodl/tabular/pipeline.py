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


MODELS = ("linear", "knn", "svm", "random_forest", "extra_trees", "hist_gb", "mlp")


def _forest(cls, config: dict[str, Any], prefix: str, seed: int):
    return cls(
        n_estimators=config.get(f"{prefix}.n_estimators", 100),
        max_depth=config.get(f"{prefix}.max_depth"),
        min_samples_leaf=config.get(f"{prefix}.min_samples_leaf", 1),
        max_features=config.get(f"{prefix}.max_features", 1.0),
        random_state=seed,
        n_jobs=1,
    )


def build_model(config: dict[str, Any], task: str, seed: int = 0, n_rows: int | None = None):
    """The estimator named by ``config["model"]`` with its hyperparameters.

    ``n_rows`` (the rows the pipeline will see) caps the neighbours of k-NN, so a small
    cross-validation fold still has enough rows.
    """
    model = config["model"]
    clf = task == "classification"
    if model == "linear":
        alpha = config.get("linear.alpha", 1.0)
        if clf:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=1.0 / alpha, max_iter=2000)
        from sklearn.linear_model import Ridge

        return Ridge(alpha=alpha)
    if model == "knn":
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        k = int(config.get("knn.n_neighbors", 5))
        if n_rows is not None:
            k = max(1, min(k, n_rows // 2))
        cls = KNeighborsClassifier if clf else KNeighborsRegressor
        return cls(n_neighbors=k, p=int(config.get("knn.p", 2)),
                   weights=config.get("knn.weights", "uniform"), n_jobs=1)
    if model == "svm":
        from sklearn.svm import SVC, SVR

        kwargs = dict(C=config.get("svm.C", 1.0), gamma=config.get("svm.gamma", "scale"), kernel="rbf",
                      max_iter=SVM_MAX_ITER, cache_size=100)
        if clf:  # probabilities (Platt scaling) for log_loss/roc_auc and the ONNX export
            return SVC(probability=True, random_state=seed, **kwargs)
        return SVR(epsilon=config.get("svm.epsilon", 0.1), **kwargs)
    if model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        return _forest(RandomForestClassifier if clf else RandomForestRegressor, config, model, seed)
    if model == "extra_trees":
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        return _forest(ExtraTreesClassifier if clf else ExtraTreesRegressor, config, model, seed)
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
    if model == "mlp":
        from autodl.tabular.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

        cls = TorchMLPClassifier if clf else TorchMLPRegressor
        width = int(config.get("mlp.hidden_size", 64))
        return cls(
            hidden_layer_sizes=(width,) * int(config.get("mlp.n_layers", 1)),
            activation=config.get("mlp.activation", "relu"),
            alpha=config.get("mlp.alpha", 1e-4),
            learning_rate=config.get("mlp.learning_rate", 1e-3),
            batch_size=int(config.get("mlp.batch_size", 64)),
            max_epochs=int(config.get("mlp.max_epochs", 60)),
            random_state=seed,
        )
    raise ValueError(f"unknown model '{model}' in config; known: {', '.join(MODELS)}")


#: SVM solver iterations at most (keeps a badly conditioned config from stalling a search)
SVM_MAX_ITER = 20000


def _encoder(name: str):
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if name == "ordinal":
        return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False)


def build_pipeline(config: dict[str, Any], X, task: str, seed: int = 0, features=None):
    """Imputation + scaling for numeric columns, imputation + one-hot or ordinal encoding for
    categorical ones, then the configured model.

    Args:
        config: a configuration of the tabular space (``model``, ``impute``, ``scaler``,
            ``encoder`` and the model's hyperparameters).
        X: the training rows (their columns decide the preprocessing).
        task: ``"classification"`` or ``"regression"``.
        seed: seeds the model.
        features: an unfitted feature transformer (:mod:`autodl.features`) to run first; its
            output columns are then split into numeric/categorical by dtype at fit time.
    """
    from sklearn.base import clone
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    num_pipe = Pipeline([
        ("impute", SimpleImputer(strategy=config.get("impute", "mean"))),
        ("scale", _scaler(config.get("scaler", "standard"))),
    ])
    cat_pipe = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("encode", _encoder(config.get("encoder", "onehot"))),
    ])
    if features is not None:
        pre = ColumnTransformer([
            ("num", num_pipe, make_column_selector(dtype_include="number")),
            ("cat", cat_pipe, make_column_selector(dtype_exclude="number")),
        ], remainder="drop")
        model = build_model(config, task, seed, n_rows=len(X) // 2)
        return Pipeline([("features", clone(features)), ("preprocess", pre), ("model", model)])
    numeric, categorical = split_columns(X)
    parts = []
    if numeric:
        parts.append(("num", num_pipe, numeric))
    if categorical:
        parts.append(("cat", cat_pipe, categorical))
    pre = ColumnTransformer(parts, remainder="drop")
    return Pipeline([("preprocess", pre), ("model", build_model(config, task, seed, n_rows=len(X) // 2))])


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

    def __init__(self, X, y, task: str, metric: Metric, folds: int = 5, seed: int = 0, features=None):
        self.X, self.y, self.task, self.metric = X, y, task, metric
        self.folds, self.seed, self.features = folds, seed, features

    def __call__(self, trial) -> float:
        from sklearn.model_selection import cross_val_score

        # a feature step is refitted per fold (tsfresh selection uses the fold's target); its
        # tables are cached by content, so every trial after the first reuses them
        pipe = build_pipeline(trial.config, self.X, self.task, self.seed, features=self.features)
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
