"""Building scikit-learn pipelines from tabular configs, and the cross-validation objective."""

from __future__ import annotations

import contextlib
import math
import time
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


def _forest(cls, config: dict[str, Any], prefix: str, seed: int, **kwargs):
    return cls(
        n_estimators=config.get(f"{prefix}.n_estimators", 100),
        max_depth=config.get(f"{prefix}.max_depth"),
        min_samples_leaf=config.get(f"{prefix}.min_samples_leaf", 1),
        max_features=config.get(f"{prefix}.max_features", 1.0),
        random_state=seed,
        n_jobs=1,
        **kwargs,
    )


#: the families whose classifiers take ``class_weight`` (the space's ``class_weight`` parameter)
CLASS_WEIGHT_MODELS = ("linear", "svm", "random_forest", "extra_trees", "hist_gb")


def _class_weight(config: dict[str, Any], clf: bool) -> dict[str, Any]:
    """``{"class_weight": "balanced"}`` for a classifier whose config asks for it (each class
    weighted by n_rows / (n_classes x its rows): a rare class counts as much as a common one),
    else nothing. Regression ignores the parameter."""
    return {"class_weight": "balanced"} if clf and config.get("class_weight") == "balanced" else {}


def build_model(config: dict[str, Any], task: str, seed: int = 0, n_rows: int | None = None):
    """The estimator named by ``config["model"]`` with its hyperparameters.

    ``n_rows`` (the rows the pipeline will see) caps the neighbours of k-NN, so a small
    cross-validation fold still has enough rows.
    """
    model = config["model"]
    clf = task == "classification"
    weights = _class_weight(config, clf) if model in CLASS_WEIGHT_MODELS else {}
    if model == "linear":
        alpha = config.get("linear.alpha", 1.0)
        if clf:
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=1.0 / alpha, max_iter=2000, **weights)
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
            return SVC(probability=True, random_state=seed, **kwargs, **weights)
        return SVR(epsilon=config.get("svm.epsilon", 0.1), **kwargs)
    if model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        return _forest(RandomForestClassifier if clf else RandomForestRegressor, config, model, seed, **weights)
    if model == "extra_trees":
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        return _forest(ExtraTreesClassifier if clf else ExtraTreesRegressor, config, model, seed, **weights)
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
            **weights,
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


_FOREST_PARAMS = ("n_estimators", "max_depth", "min_samples_leaf", "max_features")
#: the hyperparameters :func:`build_model` reads, per model: a space names them "<model>.<name>"
HYPERPARAMETERS: dict[str, tuple[str, ...]] = {
    "linear": ("alpha",),
    "knn": ("n_neighbors", "p", "weights"),
    "svm": ("C", "gamma", "epsilon"),
    "random_forest": _FOREST_PARAMS,
    "extra_trees": _FOREST_PARAMS,
    "hist_gb": ("learning_rate", "max_iter", "max_leaf_nodes", "min_samples_leaf", "l2_regularization"),
    "mlp": ("hidden_size", "n_layers", "activation", "alpha", "learning_rate", "batch_size", "max_epochs"),
}
#: the preprocessing parameters :func:`build_pipeline` reads, and their possible values
PREPROCESSING: dict[str, tuple[str, ...]] = {
    "impute": ("mean", "median", "most_frequent", "constant"),
    "scaler": ("standard", "minmax", "robust", "none"),
    "encoder": ("onehot", "ordinal"),
    # classifiers of the linear, svm, random_forest, extra_trees and hist_gb families
    "class_weight": ("none", "balanced"),
}


def check_space(space) -> None:
    """Raise :class:`~autodl.errors.SpaceError` unless every configuration of ``space`` builds
    a pipeline: a categorical ``model`` over :data:`MODELS`, the model's hyperparameters named
    ``"<model>.<name>"`` from :data:`HYPERPARAMETERS`, and ``impute`` / ``scaler`` / ``encoder``
    choices from :data:`PREPROCESSING`. Nothing else is read from a config, so any other
    parameter is a typo. Meant for before the search starts: a bad name would otherwise fail
    (or, for a hyperparameter, be silently ignored) in every trial.

    Example:
        >>> from autodl import Categorical, Space
        >>> check_space(Space({"model": Categorical(["linear", "xgboost"])}))
        Traceback (most recent call last):
        ...
        autodl.errors.SpaceError: search space: unknown model 'xgboost' among the choices of 'model'; known models: linear, knn, svm, random_forest, extra_trees, hist_gb, mlp
    """
    from autodl.errors import SpaceError
    from autodl.space import Categorical

    known = ", ".join(MODELS)
    if "model" not in space:
        raise SpaceError("the tabular search space needs a 'model' parameter (a categorical over "
                         f"{known}; see search_spaces/tabular.yaml)")
    model = space["model"]
    if not isinstance(model, Categorical):
        raise SpaceError(f"search space: 'model' must be a categorical over the models ({known}); "
                         f"got {type(model).__name__}")
    unknown = [c for c in model.choices if c not in MODELS]
    if unknown:
        names = ", ".join(repr(c) for c in unknown)
        raise SpaceError(f"search space: unknown model{'s' if len(unknown) > 1 else ''} {names} among the "
                         f"choices of 'model'; known models: {known}")
    for name in space:
        if name == "model":
            continue
        if name in PREPROCESSING:
            param, allowed = space[name], PREPROCESSING[name]
            if not isinstance(param, Categorical):
                raise SpaceError(f"search space: '{name}' must be a categorical over {', '.join(allowed)}; "
                                 f"got {type(param).__name__}")
            bad = [c for c in param.choices if c not in allowed]
            if bad:
                raise SpaceError(f"search space: unknown {name} {bad[0]!r}; choose from {', '.join(allowed)}")
            continue
        prefix, dot, hyper = name.partition(".")
        if not dot:
            raise SpaceError(f"search space: unknown parameter '{name}'; a tabular space has 'model', "
                             f"{', '.join(repr(p) for p in PREPROCESSING)} and '<model>.<hyperparameter>' "
                             "parameters")
        if prefix not in HYPERPARAMETERS:
            raise SpaceError(f"search space: parameter '{name}' is for an unknown model '{prefix}'; known "
                             f"models: {known}")
        if hyper not in HYPERPARAMETERS[prefix]:
            raise SpaceError(f"search space: parameter '{name}': {prefix} has no hyperparameter '{hyper}'; "
                             f"its hyperparameters: {', '.join(HYPERPARAMETERS[prefix])}")


#: SVM solver iterations at most (keeps a badly conditioned config from stalling a search)
SVM_MAX_ITER = 20000


def _encoder(name: str):
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if name == "ordinal":
        return OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return OneHotEncoder(handle_unknown="ignore", sparse_output=False)


def build_pipeline(config: dict[str, Any], X, task: str, seed: int = 0, features=None, plan=None):
    """Imputation + scaling for numeric columns, imputation + one-hot or ordinal encoding for
    categorical ones, then the configured model.

    With a column ``plan`` (:class:`~autodl.tabular.columns.ColumnPlan`; ``X`` as
    :func:`~autodl.tabular.columns.prepare_frame` made it) the columns are split by role instead
    of dtype: numeric and boolean (0/1) -> impute + scaler; categorical -> impute + encoder;
    high-cardinality -> impute (most frequent) + ordinal codes (-1 for an unknown level) +
    scaler, never one-hot; datetime (epoch seconds) -> :class:`~autodl.tabular.columns.DateParts`
    + impute + scaler; ignored columns are not read. The encoded width is then at most
    :data:`~autodl.tabular.columns.MAX_CATEGORICAL_LEVELS` per categorical column, 7 per date
    column and 1 per other column, whatever the number of rows.

    Args:
        config: a configuration of the tabular space (``model``, ``impute``, ``scaler``,
            ``encoder`` and the model's hyperparameters).
        X: the training rows (their columns decide the preprocessing).
        task: ``"classification"`` or ``"regression"``.
        seed: seeds the model.
        features: an unfitted feature transformer (:mod:`autodl.features`) to run first; its
            output columns are then split into numeric/categorical by dtype at fit time (a
            ``plan`` is then not used: it describes the columns before the feature step).
        plan: the column roles (see above); None splits the columns by dtype.
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
    if plan is not None:
        from sklearn.preprocessing import OrdinalEncoder

        from autodl.errors import DataError
        from autodl.tabular.columns import DateParts

        impute, scaler = config.get("impute", "mean"), config.get("scaler", "standard")
        groups = [
            ("num", num_pipe, plan.columns("numeric", "boolean")),
            ("cat", cat_pipe, plan.columns("categorical")),
            ("high", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                               ("encode", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)),
                               ("scale", _scaler(scaler))]), plan.columns("high_cardinality")),
            ("date", Pipeline([("parts", DateParts()), ("impute", SimpleImputer(strategy=impute)),
                               ("scale", _scaler(scaler))]), plan.columns("datetime")),
        ]
        parts = [g for g in groups if g[2]]
        if not parts:
            raise DataError("no column is left to learn from (the column plan ignores every column)")
    else:
        numeric, categorical = split_columns(X)
        parts = []
        if numeric:
            parts.append(("num", num_pipe, numeric))
        if categorical:
            parts.append(("cat", cat_pipe, categorical))
    pre = ColumnTransformer(parts, remainder="drop")
    return Pipeline([("preprocess", pre), ("model", build_model(config, task, seed, n_rows=len(X) // 2))])


#: ``cv="holdout"``: one split, this share of the training rows validates (stratified for classes)
HOLDOUT_VALIDATION = 0.2
#: ``cv="auto"`` under a time budget: :data:`AUTO_LARGE_FOLDS` folds from this many training rows per
#: second of budget on (10,000 rows at 30 s), one holdout split from :data:`AUTO_HOLDOUT_ROWS_PER_SECOND`
#: on; 5 folds below, and always without a budget. On the 15,000-row messy tables of
#: ``benchmarks/tabular.py --messy`` (30 s, 3 splits x 2 tasks), autodl's test score matched or
#: beat default HGB on hand-prepared columns on 3 of 6 with 5 folds (2 trials in 30 s on the
#: regression tables), 4 of 6 with one holdout split (9-19 trials, but a noisier choice: once an
#: MLP won on the holdout and lost on the test rows) and 5 of 6 with 3 folds (5-7 trials). At 10 s
#: (``benchmarks/automl.py --time 10``), 3 folds on 15,000 rows and 5 on 7,500 completed a single
#: trial (the linear model) on clf_large, reg_categorical and messy_regression.
AUTO_FOLDS_ROWS_PER_SECOND = 10_000 / 30
AUTO_LARGE_FOLDS = 3
#: see :data:`AUTO_FOLDS_ROWS_PER_SECOND` (15,000 rows at 15 s or less)
AUTO_HOLDOUT_ROWS_PER_SECOND = 1_000


def resolve_cv(cv: int | str, n_rows: int, time_budget: float | None) -> int | str:
    """The validation a search uses: ``cv`` folds, ``"holdout"``, or for ``"auto"`` by the training
    rows per second of the time budget: ``"holdout"`` from :data:`AUTO_HOLDOUT_ROWS_PER_SECOND`,
    :data:`AUTO_LARGE_FOLDS` folds from :data:`AUTO_FOLDS_ROWS_PER_SECOND`, else (and without a
    budget) 5 folds."""
    if cv == "auto":
        if time_budget is None:
            return 5
        rate = n_rows / max(float(time_budget), 1e-9)
        if rate >= AUTO_HOLDOUT_ROWS_PER_SECOND:
            return "holdout"
        return AUTO_LARGE_FOLDS if rate >= AUTO_FOLDS_ROWS_PER_SECOND - 1e-9 else 5
    return cv


#: ``cv="time"``: expanding-window folds (:class:`~sklearn.model_selection.TimeSeriesSplit`) over
#: the training rows in time order
TIME_FOLDS = 5


def make_cv(task: str, y, folds: int | str, seed: int, groups=None):
    """The splitter: stratified k-fold for classes (at most the smallest class's count), k-fold
    for regression, or one shuffled holdout split for ``folds="holdout"``; ``folds="time"``:
    :data:`TIME_FOLDS` expanding windows over the rows in their order (each fold trains on rows
    before its validation rows). With ``groups`` (pass them to ``split`` too) no group is on both
    sides of a fold: stratified group k-fold for classes, group k-fold (at most one fold per
    group), or one group-disjoint holdout split."""
    from sklearn.model_selection import (GroupKFold, GroupShuffleSplit, KFold, ShuffleSplit, StratifiedGroupKFold,
                                         StratifiedKFold, StratifiedShuffleSplit, TimeSeriesSplit)

    if folds == "time":
        return TimeSeriesSplit(n_splits=max(2, min(TIME_FOLDS, len(y) - 1)))
    if groups is not None:
        if folds == "holdout":
            return GroupShuffleSplit(n_splits=1, test_size=HOLDOUT_VALIDATION, random_state=seed)
        folds = max(2, min(folds, len(np.unique(groups))))
        cls = StratifiedGroupKFold if task == "classification" else GroupKFold
        return cls(n_splits=folds, shuffle=True, random_state=seed)
    if folds == "holdout":
        if task == "classification":
            return StratifiedShuffleSplit(n_splits=1, test_size=HOLDOUT_VALIDATION, random_state=seed)
        return ShuffleSplit(n_splits=1, test_size=HOLDOUT_VALIDATION, random_state=seed)
    if task == "classification":
        _, counts = np.unique(np.asarray(y), return_counts=True)
        folds = max(2, min(folds, int(counts.min())))
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


def cv_splits(task: str, X, y, folds: int | str, seed: int, groups=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(train, validation)`` row positions of :func:`make_cv`'s folds."""
    return list(make_cv(task, y, folds, seed, groups).split(X, np.asarray(y), groups))


def take_rows(a, idx):
    """Rows ``idx`` (positions) of a DataFrame, Series or array; None stays None."""
    if a is None:
        return None
    return a.iloc[idx] if hasattr(a, "iloc") else np.asarray(a)[idx]


def takes_weights(pipe) -> bool:
    """Whether the model step of ``pipe`` takes ``sample_weight`` (all of autodl's models but k-NN)."""
    from sklearn.utils.validation import has_fit_parameter

    return has_fit_parameter(pipe.named_steps["model"], "sample_weight")


def fit_pipeline(pipe, X, y, sample_weight=None):
    """``pipe.fit(X, y)``, with ``sample_weight`` going to its model step when it takes them
    (k-NN does not: it is fitted unweighted, and scored weighted like the others)."""
    if sample_weight is None or not takes_weights(pipe):
        return pipe.fit(X, y)
    return pipe.fit(X, y, model__sample_weight=np.asarray(sample_weight, dtype=np.float64))


def cv_scores(pipe, X, y, splits, metric: Metric, sample_weight=None, predictions: np.ndarray | None = None,
              classes=None, models: list | None = None) -> np.ndarray:
    """The metric (as reported) of a clone of ``pipe`` fitted on each split's training rows and
    scored on its validation rows, both with the rows' ``sample_weight`` when given.

    ``predictions`` (an array of ``len(y)`` rows, filled in place): each validation row gets its
    fold model's class probabilities (columns in the order of ``classes``; a class the fold did
    not train on gets 0) or value — the out-of-fold predictions ensembles are selected on.
    ``models`` (a list): the fitted fold models are appended to it, in the order of ``splits``."""
    from sklearn.base import clone

    scorer = metric.scorer(y)
    scores = []
    for train, val in splits:
        model = fit_pipeline(clone(pipe), take_rows(X, train), take_rows(y, train), take_rows(sample_weight, train))
        if models is not None:
            models.append(model)
        X_val = take_rows(X, val)
        score = scorer(model, X_val, take_rows(y, val), sample_weight=take_rows(sample_weight, val))
        scores.append(metric.from_scorer(score))
        if predictions is not None and classes is not None:
            proba = np.asarray(model.predict_proba(X_val), dtype=np.float32)
            columns = np.searchsorted(np.asarray(classes), np.asarray(model.classes_))
            predictions[np.ix_(np.asarray(val), columns)] = proba
            predictions[np.asarray(val)[:, None], np.setdiff1d(np.arange(len(classes)), columns)] = 0.0
        elif predictions is not None:
            predictions[np.asarray(val)] = np.asarray(model.predict(X_val), dtype=np.float32).reshape(-1)
    return np.array(scores, dtype=np.float64)


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


# ------------------------------------------------------------------------------- budgets
#: the hyperparameter that counts a model's iterations; budget resource "iterations" scales it
ITERATION_PARAMS = {"hist_gb": "max_iter", "random_forest": "n_estimators", "extra_trees": "n_estimators",
                    "mlp": "max_epochs"}
#: values of ``SearchSpec.budget_resource`` (see :class:`CVObjective`)
BUDGET_RESOURCES = ("auto", "iterations", "rows")
#: with resource "rows", a fold keeps at least this many training rows, and at least
#: :data:`MIN_ROWS_PER_CLASS` of every class (all of a class that has fewer)
MIN_ROWS = 10
MIN_ROWS_PER_CLASS = 2


def budget_fraction(budget: float | None, max_budget: float | None) -> float:
    """The share of the full fit a trial's budget buys: ``budget / max_budget`` in (0, 1];
    1 without a budget (a full-budget searcher) or without a ``max_budget``."""
    if budget is None or max_budget is None:
        return 1.0
    fraction = float(budget) / float(max_budget)
    if not fraction > 0:
        raise ValueError(f"budget {budget} must be > 0")
    return min(1.0, fraction)


def resource_of(model: str, budget_resource: str) -> str:
    """``"iterations"`` or ``"rows"``: what a budget below the maximum cuts for ``model``."""
    if budget_resource not in BUDGET_RESOURCES:
        raise ValueError(f"budget resource is {budget_resource!r}, but must be one of {', '.join(BUDGET_RESOURCES)}")
    if budget_resource == "rows":
        return "rows"
    if model in ITERATION_PARAMS:
        return "iterations"
    if budget_resource == "iterations":
        raise ValueError(f"model '{model}' has no iteration count to scale with the budget; "
                         "use budget resource 'auto' or 'rows'")
    return "rows"


def scaled_count(full: int, fraction: float) -> int:
    """``fraction`` of an iteration count, rounded half up, at least 1."""
    return max(1, int(math.floor(fraction * int(full) + 0.5)))


def scale_iterations(pipe, model: str, fraction: float) -> tuple[str, int]:
    """Set the iteration count of ``pipe``'s model to ``fraction`` of its configured value;
    returns ``(parameter, new value)``."""
    name = ITERATION_PARAMS[model]
    est = pipe.named_steps["model"]
    value = scaled_count(est.get_params()[name], fraction)
    est.set_params(**{name: value})
    return f"{model}.{name}", value


def subsample_rows(y, fraction: float, *, seed: int, fold: int = 0, stratify: bool = True,
                   min_rows: int = MIN_ROWS) -> np.ndarray:
    """Sorted positions of a seeded ``fraction`` of the rows whose targets are ``y``.

    At least ``min_rows`` rows are kept; with ``stratify`` every class keeps its share of the
    rows (largest remainders) and at least :data:`MIN_ROWS_PER_CLASS` rows (all it has when it
    has fewer). The draw depends only on ``(seed, fold)`` and the rows, so a larger fraction
    keeps (almost always) a superset of a smaller one's rows.
    """
    y = np.asarray(y)
    n = len(y)
    keep = max(int(math.ceil(fraction * n - 1e-9)), int(min_rows))
    if fraction >= 1 or keep >= n:
        return np.arange(n)
    order = np.random.default_rng([abs(int(seed)), 7919, int(fold)]).permutation(n)
    if not stratify:
        return np.sort(order[:keep])
    _, codes = np.unique(y, return_inverse=True)
    counts = np.bincount(codes)
    quota = counts * (keep / n)
    floor = np.minimum(counts, MIN_ROWS_PER_CLASS)
    take = np.minimum(counts, np.maximum(np.floor(quota).astype(int), floor))
    spare = keep - int(take.sum())
    while spare > 0:  # largest remainders first, among classes with rows left
        c = min((c for c in range(len(counts)) if take[c] < counts[c]), key=lambda c: (take[c] - quota[c], c))
        take[c] += 1
        spare -= 1
    while spare < 0:  # the per-class floors overshot: trim the classes furthest above their share
        above = [c for c in range(len(counts)) if take[c] > floor[c]]
        if not above:
            break
        c = max(above, key=lambda c: (take[c] - quota[c], -c))
        take[c] -= 1
        spare += 1
    chosen = []
    for c in range(len(counts)):
        members = order[codes[order] == c]  # this class's rows in the seeded order
        chosen.append(members[: take[c]])
    return np.sort(np.concatenate(chosen))


def row_budget_splits(splits, y, fraction: float, *, seed: int, stratify: bool, min_rows: int = MIN_ROWS):
    """``splits`` (``(train, validation)`` positions) with each training part cut to
    ``fraction`` (see :func:`subsample_rows`); every validation part stays whole."""
    y_arr = np.asarray(y)
    out = []
    for fold, (train, test) in enumerate(splits):
        part = subsample_rows(y_arr[train], fraction, seed=seed, fold=fold, stratify=stratify, min_rows=min_rows)
        out.append((train[part], test))
    return out


class CVObjective:
    """k-fold cross-validated score of the pipeline a config describes (picklable).

    Returns the metric as reported (accuracy, rmse, ...); the fold standard deviation is stored
    as the trial's ``cv_std`` attribute.

    **Budgets** (multi-fidelity searchers: sh, hyperband, asha, bohb): a trial with budget
    ``b`` fits the fraction ``f = b / max_budget`` of the full work; without a budget (or at
    ``b = max_budget``) the fit is exactly the full one. ``budget_resource`` says what is cut:

    * ``"iterations"``: the model's iteration count (:data:`ITERATION_PARAMS`: ``hist_gb.max_iter``,
      ``random_forest``/``extra_trees`` ``n_estimators``, ``mlp.max_epochs``) becomes ``f`` x its
      configured value (rounded, at least 1). A model without one (linear, knn, svm) is an error.
    * ``"rows"``: every fold's training part is cut to ``f`` of its rows (seeded, stratified for
      classification, at least :data:`MIN_ROWS` rows, :data:`MIN_ROWS_PER_CLASS` per class and
      k-NN's neighbours); the score is taken on the fold's whole validation part.
    * ``"auto"`` (default): iterations for the models that have them, rows for the others.

    The trial records ``budget_fraction``, ``budget_resource`` and ``fit_rows`` (training rows
    per fold, averaged) or the scaled parameter (e.g. ``hist_gb.max_iter``) as attributes.
    ``plan``: the column roles the pipelines split the columns by (see :func:`build_pipeline`).
    ``sample_weight`` (per row of ``X``) weights every fit and score (:func:`cv_scores`);
    ``groups`` (per row) keep each group on one side of every fold (:func:`make_cv`).
    ``predictions_dir``: a trial at the full budget keeps its out-of-fold predictions there
    (:func:`autodl.tabular.ensemble.save_predictions`; rows no fold validates stay NaN).
    ``deployment`` (:class:`autodl.tabular.objectives.Deployment`): the trial also measures the
    ONNX file of its first fold's model (latency, size) and returns one value per objective, or
    sets the latency constraint.
    ``models_dir``: such a trial also keeps its fitted fold models in this (private, temporary)
    folder, as one model averaging them (:func:`autodl.tabular.ensemble.save_fold_models`), so
    that it can predict without being fitted again.

    Nothing is reported per step, so define-by-run searchers (``mode="prune"``, whose trials all
    get ``max_budget``) run full fits and prune nothing; use the default ``mode="promote"``.
    """

    def __init__(self, X, y, task: str, metric: Metric, folds: int = 5, seed: int = 0, features=None,
                 budget_resource: str = "auto", max_budget: float | None = None, plan=None, sample_weight=None,
                 groups=None, predictions_dir: str | None = None, models_dir: str | None = None,
                 deployment=None):
        self.X, self.y, self.task, self.metric, self.plan = X, y, task, metric, plan
        self.deployment = deployment
        self.sample_weight, self.groups = sample_weight, groups
        self.predictions_dir, self.models_dir = predictions_dir, models_dir
        self.folds, self.seed, self.features = folds, seed, features
        resource_of("hist_gb", budget_resource)  # validates the name
        self.budget_resource, self.max_budget = budget_resource, max_budget

    def __call__(self, trial) -> float:
        # a feature step is refitted per fold (tsfresh selection uses the fold's target); its
        # tables are cached by content, so every trial after the first reuses them
        pipe = build_pipeline(trial.config, self.X, self.task, self.seed, features=self.features,
                              plan=getattr(self, "plan", None))
        splits = cv_splits(self.task, self.X, self.y, self.folds, self.seed, self.groups)
        splits = self._apply_budget(trial, pipe, splits)
        full = getattr(trial, "budget", None) is None or self.max_budget is None or trial.budget >= self.max_budget
        keep = getattr(self, "predictions_dir", None) is not None and full
        classes = np.unique(np.asarray(self.y)) if keep and self.task == "classification" else None
        predictions = None
        if keep:
            shape = (len(self.y), len(classes)) if classes is not None else (len(self.y),)
            predictions = np.full(shape, np.nan, dtype=np.float32)
        models_dir = getattr(self, "models_dir", None)
        deployment = getattr(self, "deployment", None)
        models = [] if (keep and models_dir is not None) or deployment is not None else None
        with quiet_fit() as caught:
            values = cv_scores(pipe, self.X, self.y, splits, self.metric, self.sample_weight, predictions, classes,
                               models=models)
        if keep:
            from autodl.tabular.ensemble import save_fold_models, save_predictions

            save_predictions(self.predictions_dir, trial.id, predictions)
            if models and models_dir is not None:
                started = time.perf_counter()
                if save_fold_models(models_dir, trial.id, models, self.task) is not None:
                    trial.set_user_attr("save_seconds", round(time.perf_counter() - started, 4))
        if caught:
            trial.set_user_attr("warnings", sorted({f"{w.category.__name__}: {w.message}"[:200] for w in caught}))
        trial.set_user_attr("cv_std", float(values.std()))
        if deployment is not None:  # latency / size of the first fold's model, on its held-out rows
            return deployment.evaluate(trial, float(values.mean()), models[0], take_rows(self.X, splits[0][1]))
        return float(values.mean())

    def _apply_budget(self, trial, pipe, splits):
        """Cut ``pipe`` or the folds to the trial's budget; the folds to cross-validate on."""
        budget = getattr(trial, "budget", None)
        if budget is None or self.max_budget is None:
            return splits
        fraction = budget_fraction(budget, self.max_budget)
        model = trial.config["model"]
        resource = resource_of(model, self.budget_resource)
        trial.set_user_attr("budget_fraction", fraction)
        trial.set_user_attr("budget_resource", resource)
        if resource == "iterations":
            if fraction < 1:
                name, value = scale_iterations(pipe, model, fraction)
                trial.set_user_attr(name, value)
            return splits
        min_rows = max(MIN_ROWS, int(getattr(pipe.named_steps["model"], "n_neighbors", 0) or 0))
        splits = row_budget_splits(splits, self.y, fraction, seed=self.seed,
                                   stratify=self.task == "classification", min_rows=min_rows)
        trial.set_user_attr("fit_rows", float(np.mean([len(train) for train, _ in splits])))
        return splits


def score_model(model, X, y, metric: Metric, sample_weight=None) -> float:
    """The metric of a fitted model on ``(X, y)`` (weighted by ``sample_weight``), as reported."""
    return metric.from_scorer(metric.scorer(y)(model, X, y, sample_weight=sample_weight))
