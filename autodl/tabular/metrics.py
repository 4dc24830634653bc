"""Metrics for tabular search: name -> scikit-learn scorer, direction and sign; or a Python
function ``metric(y_true, y_pred) -> float`` (:func:`function_metric`)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from autodl.errors import UserError

#: the ``scoring`` of a metric given as a Python function (scored as it returns, no sign change)
FUNCTION = "function"
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Metric:
    """A metric as users read it (``rmse`` is positive) and the scorer that computes it."""

    name: str
    scoring: str  # scikit-learn scorer name (greater is better), or FUNCTION
    direction: str  # how the metric as reported is optimized
    task: str
    #: the function of a FUNCTION metric; None in a run resumed without it (see :meth:`scorer`)
    func: Callable | None = field(default=None, compare=False, repr=False)

    def from_scorer(self, score: float) -> float:
        """Scorer value (greater is better) -> metric value as reported."""
        return -score if self.scoring.startswith("neg_") else score

    def scorer(self, y=None):
        """The scikit-learn scorer, called ``scorer(model, X, y, sample_weight=w)``: binary
        ``roc_auc`` when ``y`` (all the rows scored) has two classes; a function metric gets
        ``sample_weight`` only if it has such a parameter."""
        from sklearn.metrics import get_scorer, make_scorer

        if self.scoring == FUNCTION:
            if self.func is None:
                raise UserError(f"the metric '{self.name}' was a Python function, which run.json cannot hold; "
                                f"resume it from Python: autodl.tabular.search.resume_run(RUN, metric={self.name})")
            return make_scorer(self.func) if takes_weights(self.func) else make_scorer(_unweighted, func=self.func)
        binary = self.name == "roc_auc" and y is not None and len(np.unique(np.asarray(y))) == 2
        return get_scorer("roc_auc" if binary else self.scoring)


def takes_weights(func: Callable) -> bool:
    """Whether ``func`` has a ``sample_weight`` parameter."""
    try:
        return "sample_weight" in inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def _unweighted(y_true, y_pred, *, func: Callable, sample_weight=None) -> float:
    return func(y_true, y_pred)


def function_metric(metric: Any) -> tuple[Callable, str, str]:
    """``(function, name, direction)`` of ``metric=fn`` (maximized) or ``metric=(fn, "minimize")``:
    ``fn(y_true, y_pred) -> float`` gets predicted labels (classification) or values; its name
    is ``fn.__name__``."""
    func, direction = metric if isinstance(metric, tuple) and len(metric) == 2 else (metric, "maximize")
    if not callable(func) or direction not in DIRECTIONS:
        raise UserError(f"metric is {metric!r}, but must be a metric name, a function metric(y_true, y_pred) "
                        "or (function, 'minimize')")
    return func, getattr(func, "__name__", type(func).__name__), direction


METRICS = {
    m.name: m
    for m in (
        Metric("accuracy", "accuracy", "maximize", "classification"),
        Metric("balanced_accuracy", "balanced_accuracy", "maximize", "classification"),
        Metric("f1", "f1_macro", "maximize", "classification"),
        Metric("roc_auc", "roc_auc_ovr", "maximize", "classification"),
        Metric("log_loss", "neg_log_loss", "minimize", "classification"),
        Metric("r2", "r2", "maximize", "regression"),
        Metric("rmse", "neg_root_mean_squared_error", "minimize", "regression"),
        Metric("mae", "neg_mean_absolute_error", "minimize", "regression"),
    )
}

DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2"}


def get_metric(name: str | None, task: str, direction: str | None = None, func: Callable | None = None) -> Metric:
    """The metric called ``name`` (default: accuracy / r2), checked against the task; with a
    ``direction``, the function metric ``func`` called ``name`` (see :func:`function_metric`;
    ``func`` is None in a run resumed without it: it can be shown, not scored)."""
    if direction is not None:
        return Metric(name, FUNCTION, direction, task, func)
    name = name or DEFAULT_METRIC[task]
    metric = METRICS.get(name)
    if metric is None:
        raise UserError(f"unknown metric '{name}'; choose one of: {', '.join(METRICS)}")
    if metric.task != task:
        valid = [m for m, v in METRICS.items() if v.task == task]
        raise UserError(f"metric '{name}' is for {metric.task}; for {task} use one of: {', '.join(valid)}")
    return metric


#: a class below this share of the rows makes accuracy a poor default metric
RARE_CLASS_SHARE = 0.05


def imbalance_note(y, metric_given: str | None) -> str | None:
    """One line for a strongly imbalanced classification target scored by the default metric
    (accuracy rewards predicting the majority class), naming better metrics; None otherwise."""
    import pandas as pd

    if metric_given is not None:
        return None
    shares = pd.Series(pd.Series(y).dropna()).value_counts(normalize=True)
    if len(shares) < 2 or shares.iloc[-1] >= RARE_CLASS_SHARE:
        return None
    rare, share = shares.index[-1], float(shares.iloc[-1])
    better = "roc_auc or balanced_accuracy" if len(shares) == 2 else "balanced_accuracy or f1"
    return (f"autodl: the target is imbalanced (class {rare!r} is {share:.1%} of the rows): accuracy rewards "
            f"predicting the majority class; consider metric={better.split(' or ')[0]!r} "
            f"(--metric {better.replace(' or ', ' or --metric ')})")
