"""Multi-objective TPE: TPE whose good group comes from Pareto ranks (after MOTPE, Ozaki et
al. 2020, "Multiobjective tree-structured Parzen estimator for computationally expensive
optimization problems").

TPE needs an order of the observations to split them into a good and a bad group. With
several objectives (each minimized) the order here is:

1. constraint domination: feasible trials first, infeasible ones by total violation;
2. the non-dominated front (front 0 is the Pareto front of the observations);
3. inside the one front that straddles the split, the hypervolume contribution (largest
   first), measured with the objectives scaled to the observed ranges and a reference point
   10% beyond the worst observed value. Optuna's MOTPE picks that subset greedily by
   hypervolume (subset selection); ranking by each point's own contribution is the one-pass
   approximation of it.

Everything else (densities over the mixed, conditional space, candidates, the constant liar
for pending trials) is :class:`~autodl.searchers.tpe.TPE`'s, with its arguments.
"""

from __future__ import annotations

import math

import numpy as np

from autodl.searchers.base import Observation, Trial
from autodl.searchers.pareto import hypervolume_contributions, non_dominated_sort
from autodl.searchers.tpe import TPE
from autodl.space import Space


def pareto_scores(values: np.ndarray, violations: np.ndarray, n_good: int) -> np.ndarray:
    """A score per row (lower is better) whose order splits the rows as described in the
    module docstring: ``front index + position inside the front / front size``, where the
    position follows the hypervolume contribution in the front that straddles ``n_good``."""
    scores = np.empty(len(values))
    taken = 0
    for k, front in enumerate(non_dominated_sort(values, violations)):
        offset = np.zeros(len(front))
        if taken < n_good < taken + len(front) and violations[front[0]] <= 0:
            y = values[front]
            lo, hi = values.min(axis=0), values.max(axis=0)
            span = np.where(hi > lo, hi - lo, 1.0)
            contrib = hypervolume_contributions((y - lo) / span, np.full(values.shape[1], 1.1))
            order = np.argsort(-contrib, kind="stable")
            offset[order] = np.arange(len(front)) / len(front)
        scores[front] = k + offset
        taken += len(front)
    return scores


class MOTPE(TPE):
    """TPE for several objectives (see the module docstring); takes the arguments of
    :class:`~autodl.searchers.tpe.TPE`, with ``bandwidth="fixed"`` by default.

    Example:
        >>> searcher = MOTPE(space, seed=0)
        >>> trial = searcher.ask(); searcher.tell(trial, [error, latency_ms])
    """

    name = "motpe"
    multi_objective = True
    handles_constraints = True

    def __init__(self, space: Space, seed: int | None = None, n_startup: int = 10,
                 gamma: float | None = None, max_good: int = 25, n_candidates: int | None = None,
                 prior_weight: float = 1.0, bandwidth_factor: float = 1.0,
                 min_bandwidth: float = 0.1, weighting: str = "uniform", bandwidth: str = "fixed"):
        self._rows: list[Observation] = []  # every told observation, in TPE's row order
        # "fixed" (Optuna's multivariate 0.2 n^(-1/(d+4))) by default: on ZDT1-3 it gave a larger
        # hypervolume than the adaptive "neighbor" widths (tuning seeds 10-12, not the
        # benchmark's 0-4)
        super().__init__(space, seed, n_startup=n_startup, gamma=gamma, max_good=max_good,
                         n_candidates=n_candidates, prior_weight=prior_weight,
                         bandwidth_factor=bandwidth_factor, min_bandwidth=min_bandwidth,
                         weighting=weighting, bandwidth=bandwidth)

    def _observe(self, obs: Observation) -> None:
        # the score of every observation depends on all the others: it is set at each ask
        super()._observe(Observation(obs.trial, None))
        self._rows.append(obs)

    def ask(self) -> Trial:
        self._rescore()
        return super().ask()

    def _rescore(self) -> None:
        ok = [i for i, o in enumerate(self._rows) if o.ok]
        if not ok or len({len(self._rows[i].values) for i in ok}) != 1:
            return
        y = np.array([self._rows[i].values for i in ok], dtype=float)
        viol = np.array([self._rows[i].violation for i in ok])
        n_good = min(self.max_good, int(math.ceil(self._gamma * len(ok))))
        scores = pareto_scores(y, viol, n_good)
        for i, s in zip(ok, scores):
            self._y[i] = float(s)
