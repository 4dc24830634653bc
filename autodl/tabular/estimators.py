"""``AutoDLClassifier`` and ``AutoDLRegressor``: :func:`autodl.search` as scikit-learn estimators.

``fit`` runs a search (k-fold cross-validation of the tabular space) on all the rows it is
given (no held-out split: hold one out yourself, or use ``score``) and keeps what predicts as
``best_estimator_``: by default the ensemble of the trials chosen on their out-of-fold
predictions, refit on all rows (``refit=False``: each member the average of its fold models;
``ensemble=False``: the best pipeline refit on all rows); ``predict``/``predict_proba`` delegate to it. The estimators
follow scikit-learn's contract (``get_params``/``set_params``/``clone``, fitted attributes end
in ``_``, ``n_features_in_``/``feature_names_in_``), so they work in ``Pipeline``,
``cross_val_score`` and ``GridSearchCV``, and pass the checks of
``sklearn.utils.estimator_checks.parametrize_with_checks`` with a tiny budget (``n_trials=2,
cv=2``; ``tests/tabular/test_estimators.py``). ``fit(X, y, sample_weight=None, groups=None)``
weights every fit and score of the search and keeps groups on one side of every fold (see
:func:`autodl.search`). Checks that cannot apply are skipped by scikit-learn itself (the
array-API checks) or listed in ``EXPECTED_FAILED_CHECKS`` with the reason (the equivalence of
weights and repeated rows). ``check_estimators_nan_inf`` is skipped because the tag
``allow_nan`` is set: missing values are imputed inside the pipeline (infinity is still refused
by ``check_array``). ``check_classifiers_train``/``check_regressors_train`` demand a high
training score after one ``fit``, which a 2-trial search passes with the default seed, but a
budget that small may pick a weak configuration with another seed or space.

Input: a DataFrame (numeric, categorical and missing values; kept as is) or anything
array-like of numbers (checked by ``check_array``; NaN allowed, it is imputed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

#: checks of ``sklearn.utils.estimator_checks`` that cannot apply (see the module docstring)
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "sets cv to explicit (train, test) index pairs, which the search does not take (cv is folds, 'holdout' "
        "or 'time'); a search picks its winner by CV, so weights equal to repeated rows need not give the same "
        "winner, and forests draw other bootstrap samples either way"),
}


class _AutoDLBase(BaseEstimator):
    _task = "classification"

    def __init__(self, time_budget: float | None = None, n_trials: int | None = None,
                 searcher: str = "tpe", metric: str | None = None, cv: int = 5, seed: int = 0,
                 features: Any = None, space: Any = "tabular", n_workers: int | None = None,
                 random_state: int | np.random.RandomState | None = None,
                 trial_timeout: float | None = None, ensemble: bool = True, refit: bool | None = None):
        self.time_budget = time_budget
        self.n_trials = n_trials
        self.searcher = searcher
        self.metric = metric
        self.cv = cv
        self.seed = seed
        self.features = features
        self.space = space
        self.n_workers = n_workers
        self.random_state = random_state
        self.trial_timeout = trial_timeout
        self.ensemble = ensemble
        self.refit = refit

    def _seed(self) -> int:
        """The seed of the search: ``random_state`` when given (scikit-learn's name), else
        ``seed``. A ``numpy.random.RandomState`` gives one int drawn from it (so a shared
        generator gives each estimator its own seed, as in scikit-learn)."""
        rs = self.random_state
        if rs is None:
            return self.seed
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, (bool, np.bool_)):
            return int(rs)
        if isinstance(rs, np.random.RandomState):
            return int(rs.randint(np.iinfo(np.int32).max))
        raise ValueError(f"random_state is {rs!r}, but must be None, an int or a "
                         "numpy.random.RandomState")

    def _input(self, X, reset: bool):
        import pandas as pd

        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            return X
        arr = check_array(X, dtype="numeric", ensure_all_finite="allow-nan")
        validate_data(self, arr, reset=reset, skip_check_array=True)
        names = getattr(self, "_column_names", None)
        if reset or names is None or len(names) != arr.shape[1]:
            names = [f"x{i}" for i in range(arr.shape[1])]
        return pd.DataFrame(arr, columns=names)

    def fit(self, X, y, sample_weight=None, groups=None):
        """Search the space on ``(X, y)`` and keep the predictor it chose (see the module docstring).

        Args:
            X: a DataFrame or a 2-D array of numbers.
            y: the target.
            sample_weight: a weight per row (>= 0) for every fit (k-NN's excepted) and every
                cross-validated score.
            groups: a group label per row; no group is on both sides of a fold.

        Returns:
            self
        """
        from autodl.tabular.search import search

        seed = self._seed()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        frame = self._input(X, reset=True)
        self._column_names = list(map(str, frame.columns))
        y = column_or_1d(np.asarray(y) if not hasattr(y, "iloc") else y.to_numpy(), warn=True)
        if len(y) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(y)}")
        if self._task == "classification":
            check_classification_targets(y)
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError(f"{type(self).__name__} needs at least 2 classes; y has only 1 class")
        else:
            y = np.asarray(y, dtype=np.float64)
            if not np.all(np.isfinite(y)):
                raise ValueError("y contains NaN or infinity")
        if len(frame) < 4:
            raise ValueError(f"n_samples = {len(frame)}: too few samples to cross-validate")
        kwargs = dict(time_budget=self.time_budget, n_trials=self.n_trials)
        result = search(frame, y, task=self._task, space=self.space, searcher=self.searcher,
                        seed=seed, metric=self.metric, cv=self.cv if isinstance(self.cv, str) else int(self.cv), test_size=0,
                        n_workers=self.n_workers, features=self.features, trial_timeout=self.trial_timeout,
                        sample_weight=sample_weight, groups=groups, ensemble=self.ensemble,
                        refit=self.refit, **kwargs)
        self.best_estimator_ = result.best_model
        self.column_plan_ = result.plan  # how rows are prepared for best_estimator_ (autodl.tabular.columns)
        self.best_config_ = dict(result.best_config)
        self.best_score_ = float(result.best_score)
        self.metric_ = result.metric
        self.leaderboard_ = result.leaderboard
        self.n_trials_ = int(result.study.n_finished)
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions of ``best_estimator_``."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(self._prepared(X))

    def _prepared(self, X):
        """``X`` as ``best_estimator_`` takes it (dates as epoch seconds, ...: the column plan)."""
        frame = self._input(X, reset=False)
        plan = getattr(self, "column_plan_", None)
        if plan is None:
            return frame
        from autodl.tabular.columns import prepare_frame

        return prepare_frame(frame, plan)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags


class AutoDLClassifier(ClassifierMixin, _AutoDLBase):
    """A classifier that tunes a scikit-learn pipeline by cross-validation (autodl.search).

    Args:
        time_budget: seconds for the whole fit, refit included: a deadline at which running
            trials are stopped (default 60 when ``n_trials`` is not given either).
        n_trials: number of configurations to try.
        searcher: ``"random"``, ``"tpe"``, ``"gp"``, ...
        metric: accuracy (default), balanced_accuracy, f1, roc_auc or log_loss; or a function
            ``fn(y_true, y_pred)`` (see :func:`autodl.search`).
        cv: folds (stratified), ``"holdout"`` or ``"time"`` (rows ordered by the one date column of
            a DataFrame; see :func:`autodl.search`).
        seed: seeds the searcher, the folds and the models.
        random_state: scikit-learn's name for the seed: when not None it is used instead of
            ``seed`` (an int, or a ``numpy.random.RandomState`` from which one int is drawn at
            ``fit``); None (the default) keeps ``seed``.
        features: a feature-engineering step (see :func:`autodl.search`).
        space: the search space (a built-in name, a YAML path or an :class:`autodl.Space`).
        n_workers: trials run in parallel processes (None, the default: as
            :func:`autodl.search`, one per usable core under a ``time_budget``, else one).
        trial_timeout: seconds after which a trial is stopped (its worker process killed)
            and recorded failed; the search goes on.
        ensemble, refit: see :func:`autodl.search` (default: an ensemble of refit members).

    Attributes:
        best_estimator_: the predictor: the ensemble (an ``EnsembleModel``) or the winning pipeline.
        best_config_, best_score_: its configuration and cross-validated metric.
        classes_, n_features_in_, feature_names_in_ (DataFrame input), leaderboard_, n_trials_.

    Example:
        >>> clf = AutoDLClassifier(n_trials=10, cv=3).fit(X_train, y_train)
        >>> clf.score(X_test, y_test), clf.best_config_["model"]

    See the module docstring for the scikit-learn estimator checks that cannot apply.
    """

    _task = "classification"

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of ``best_estimator_`` (columns in ``classes_`` order)."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict_proba(self._prepared(X))


class AutoDLRegressor(RegressorMixin, _AutoDLBase):
    """A regressor that tunes a scikit-learn pipeline by cross-validation (autodl.search).

    Arguments and attributes as :class:`AutoDLClassifier` (without ``classes_`` and
    ``predict_proba``); ``metric`` is r2 (default), rmse or mae.
    """

    _task = "regression"
