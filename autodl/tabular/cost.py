"""How long a tabular trial will take, predicted before it runs (``Study.optimize(trial_cost=)``).

Under a deadline a trial that cannot finish is worse than none: it holds a worker until it is
stopped and leaves no score. :class:`TrialCost` predicts a config's seconds from the trials of
its model family that already finished, scaled by the family's size parameter:

    seconds per unit = duration / (size x budget share)     (each finished trial of the family)
    predicted        = median(seconds per unit) x size x budget share

where ``size`` is the number of trees of the forests, the boosting iterations of
HistGradientBoosting, the epochs of the MLP, and 1 for the others (their cost does not grow
with a hyperparameter of the space). A trial stopped at the deadline counts with the time it
had run (a lower bound of its cost). A family nobody has run yet has no prediction (the trial
runs), with one exception known from its shape: an RBF SVM's fit grows with the square of the
rows (measured with ``probability=True`` on 1-8k rows of 20 features, one thread: 1.1e-7 s x
rows^2 per fit, ``SVM_SECONDS_PER_ROW2`` takes half of that, so only a clearly hopeless one is
skipped: 5 folds on 20,000 training rows are predicted at 64 s).
"""

from __future__ import annotations

import statistics
from typing import Any, Mapping

#: seconds per squared training row of one RBF SVM fit (half the measured 1.1e-7: a lower bound)
SVM_SECONDS_PER_ROW2 = 0.55e-7

#: the size parameter of each family whose cost grows with one (the others count 1)
SIZE_PARAMETER = {"random_forest": "random_forest.n_estimators", "extra_trees": "extra_trees.n_estimators",
                  "hist_gb": "hist_gb.max_iter", "mlp": "mlp.max_epochs"}


class TrialCost:
    """``cost(config, budget, finished_trials) -> seconds or None`` for a tabular search.

    Args:
        fit_rows: training rows of one fit (a fold's training part).
        fits: fits per trial (folds, or 1 for a holdout).
        max_budget: the searcher's largest budget (None without budgets); a trial at budget b
            does b / max_budget of the work.
    """

    def __init__(self, fit_rows: int, fits: int, max_budget: float | None = None):
        self.fit_rows = int(fit_rows)
        self.fits = int(fits)
        self.max_budget = max_budget

    def _units(self, config: Mapping[str, Any], budget: float | None) -> float:
        family = config.get("model")
        size = float(config.get(SIZE_PARAMETER.get(family, ""), 1) or 1)
        share = 1.0
        if budget is not None and self.max_budget:
            share = min(1.0, float(budget) / float(self.max_budget))
        return max(size * share, 1e-9)

    def __call__(self, config: Mapping[str, Any], budget: float | None, finished: list) -> float | None:
        family = config.get("model")
        rates = [t.duration / self._units(t.config, t.budget) for t in finished
                 if t.config.get("model") == family and t.duration and _ran(t)]
        if rates:
            return statistics.median(rates) * self._units(config, budget)
        if family == "svm":
            return SVM_SECONDS_PER_ROW2 * self.fit_rows ** 2 * self.fits * min(1.0, self._units(config, budget))
        return None


def _ran(trial) -> bool:
    """Whether the trial's duration says something about its cost: it completed, or it was
    stopped by the deadline after running (not skipped, not failed at once)."""
    from autodl.study import TrialState

    if trial.state == TrialState.COMPLETE:
        return True
    return trial.state == TrialState.PRUNED and str(trial.message or "").startswith("stopped after")
