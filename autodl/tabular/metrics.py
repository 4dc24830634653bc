"""Metrics for tabular search: name -> scikit-learn scorer, direction and sign."""

from __future__ import annotations

from dataclasses import dataclass

from autodl.errors import UserError


@dataclass(frozen=True)
class Metric:
    """A metric as users read it (``rmse`` is positive) and the scorer that computes it."""

    name: str
    scoring: str  # scikit-learn scorer name (greater is better)
    direction: str  # how the metric as reported is optimized
    task: str

    def from_scorer(self, score: float) -> float:
        """Scorer value (greater is better) -> metric value as reported."""
        return -score if self.scoring.startswith("neg_") else score


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


def get_metric(name: str | None, task: str) -> Metric:
    """The metric called ``name`` (default: accuracy / r2), checked against the task."""
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
