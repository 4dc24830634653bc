"""Multi-objective ASHA: asynchronous successive halving that promotes by Pareto rank.

ASHA (:class:`~autodl.searchers.ASHA`) promotes the top ``1/eta`` of a rung by value. With
several objectives (each minimized) there is no single value, so the rung's results are ranked
(:func:`rank_results`, after Schmucker et al. 2021, "Multi-objective asynchronous successive
halving"):

1. constraint domination: feasible results first, infeasible ones by total violation;
2. the non-dominated front (front 0 is the rung's Pareto front, front 1 the front of the rest,
   ...);
3. inside a front, the **tie-break** (``tie_break``):

   * ``"hv"`` (default): hypervolume contribution, greedily: the point whose removal loses the
     least hypervolume goes last, then the contributions of the rest are computed again, and
     so on (the order in which SMS-EMOA would drop them). Objectives are scaled to the rung's
     observed ranges and the reference point is 1.1 in each scaled objective;
   * ``"crowding"``: NSGA-II's crowding distance, largest first;
   * ``"random"``: a fixed random key per config.

   ``benchmarks/multiobjective.py --part c`` measures the three against each other (see
   :data:`TIE_BREAKS`).

Everything else is ASHA's: rungs at ``min_budget * eta ** k`` up to ``max_budget``; an ask
promotes the best not-yet-promoted config among the top ``floor(n / eta)`` of the highest rung
that has one, else starts a new config at the bottom rung.

**How results reach it**: in the default ``mode="promote"`` each trial runs at its rung's
budget and is told its values there, ``tell(trial, [error, latency])``. With
``mode="prune"`` (define-by-run) the objective reports a tuple per step,
``trial.report((accuracy, latency_ms), epoch)`` in a :class:`~autodl.Study` with several
directions, and ``trial.should_prune()`` applies the same ranking at the rung steps among the
values reported there. An objective fixed per config (a network's latency is known before it
trains) is simply reported with the same value at every step.

New configs come uniformly at random (avoiding configs already started while the space has
others), or from a multi-objective searcher (``searcher="motpe"``,
``"nsga2"``) that is told each of its configs' first-rung values. With one objective the ranking
is ASHA's order by value (ties broken by ``tie_break``).

Example:
    >>> s = MOASHA(space, min_budget=1, max_budget=27, eta=3, seed=0)
    >>> t = s.ask(); s.tell(t, [1 - accuracy(t.config, t.budget), latency_ms(t.config)])
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from autodl.searchers._unit import DedupeSet, fresh_sample
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.searchers.multifidelity import ASHA
from autodl.searchers.pareto import crowding_distance, hypervolume_contributions, non_dominated_sort
from autodl.space import Space

#: the tie-breaks inside a front, the default first. Measured by ``benchmarks/multiobjective.py
#: --part c --epochs 9`` (benchmarks/results/multiobjective_pruning_e9.json, 20 seeds, the epochs
#: of 30 unpruned trials): final hypervolume on the synthetic problem hv 0.904, crowding 0.903,
#: random 0.902; on the digits CNN table random 0.768, hv 0.762, crowding 0.759 (standard
#: deviations ~0.02-0.04 across seeds): no tie-break is better beyond the noise. "hv" stays the
#: default: it is never the worst, and it orders a front by what each point adds to the quantity
#: the search is judged by
TIE_BREAKS = ("hv", "crowding", "random")

#: the reference point of the "hv" tie-break, in objectives scaled to [0, 1] per rung
REFERENCE = 1.1


def _contributions(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Exclusive hypervolume of each point of one front (no point dominates another); in 2-D by
    the neighbours in the sorted front, O(n log n), else by
    :func:`~autodl.searchers.pareto.hypervolume_contributions`."""
    if y.shape[1] != 2:
        return hypervolume_contributions(y, ref)
    order = np.lexsort((y[:, 1], y[:, 0]))
    x, z = y[order, 0], y[order, 1]
    right = np.append(x[1:], ref[0])  # the next point's first objective (the reference at the end)
    above = np.insert(z[:-1], 0, ref[1])  # the previous point's second objective
    out = np.empty(len(y))
    out[order] = np.maximum(right - x, 0.0) * np.maximum(above - z, 0.0)
    return out


def _hv_order(y: np.ndarray, ids: np.ndarray) -> list[int]:
    """``ids`` of the points ``y`` (one front, scaled) best first by greedy hypervolume
    contribution: the least contributor is ranked last, then the rest again (ties: the larger
    id goes last)."""
    left = list(range(len(y)))
    dropped: list[int] = []
    ref = np.full(y.shape[1], REFERENCE)
    while len(left) > 1:
        c = _contributions(y[left], ref)
        worst = min(range(len(left)), key=lambda j: (c[j], -ids[left[j]]))
        dropped.append(left.pop(worst))
    return [int(ids[i]) for i in left + dropped[::-1]]


def rank_results(values: np.ndarray | Sequence[Sequence[float]], ids: Sequence[int],
                 violations: Sequence[float] | None = None, tie_break: str = "hv",
                 keys: Sequence[float] | None = None, top: int | None = None) -> list[int]:
    """``ids`` best first: by constraint domination and non-dominated front, then ``tie_break``
    inside each front (see the module docstring). ``values`` (n x m) are minimized; ``keys``
    are the random keys of ``tie_break="random"`` (lower first). Remaining ties go by id.
    ``top``: only the first ``top`` places are needed; fronts wholly after them keep id order
    (the promotion rule looks no further, and the tie-break is the costly part).

    Example:
        >>> rank_results([[1, 3], [2, 2], [3, 1], [3, 3]], [10, 11, 12, 13])[-1]
        13
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"`tie_break` is {tie_break!r}, but must be one of {', '.join(TIE_BREAKS)}")
    y = np.asarray(values, dtype=float).reshape(len(ids), -1)
    ids_arr = np.asarray(list(ids), dtype=int)
    if len(y) == 0:
        return []
    viol = np.zeros(len(y)) if violations is None else np.asarray(violations, dtype=float)
    lo, hi = y.min(axis=0), y.max(axis=0)
    scaled = (y - lo) / np.where(hi > lo, hi - lo, 1.0)
    out: list[int] = []
    for front in non_dominated_sort(y, viol):
        front = front[np.argsort(ids_arr[front], kind="stable")]
        if len(front) == 1 or viol[front[0]] > 0 or (top is not None and len(out) >= top):
            out.extend(int(i) for i in ids_arr[front])
        elif tie_break == "hv":
            out.extend(_hv_order(scaled[front], ids_arr[front]))
        elif tie_break == "crowding":
            d = crowding_distance(scaled[front])
            out.extend(int(ids_arr[front][j]) for j in np.argsort(-d, kind="stable"))
        else:
            k = np.asarray([keys[i] for i in front]) if keys is not None else np.zeros(len(front))
            out.extend(int(ids_arr[front][j]) for j in np.argsort(k, kind="stable"))
    return out


class MOASHA(ASHA):
    """Multi-objective asynchronous successive halving (see the module docstring).

    Args:
        space, min_budget, max_budget, eta, seed: as for :class:`~autodl.searchers.ASHA`.
        searcher: where new configs come from: None/``"random"``, or a multi-objective
            searcher's name (``"motpe"``, ``"nsga2"``) or instance on the same space.
        mode: ``"promote"`` (budgets per rung) or ``"prune"`` (define-by-run).
        tie_break: ``"hv"``, ``"crowding"`` or ``"random"`` (see :data:`TIE_BREAKS`).
    """

    name = "moasha"
    multi_objective = True
    handles_constraints = True

    def __init__(self, space: Space, min_budget: float = 1.0, max_budget: float = 27.0, eta: float = 3.0,
                 searcher: "None | str | Searcher" = None, mode: str = "promote", tie_break: str = "hv",
                 seed: int | None = None):
        if tie_break not in TIE_BREAKS:
            raise ValueError(f"`tie_break` is {tie_break!r}, but must be one of {', '.join(TIE_BREAKS)}")
        self.tie_break = tie_break
        super().__init__(space, min_budget, max_budget, eta, searcher, mode, seed)
        if self._inner is not None and not self._inner.multi_objective:
            raise ValueError(f"`searcher` is {self._inner.name!r}, but must take several objectives "
                             "(motpe, nsga2) or be None/'random'")
        self.rungs.order = self._order_slots
        self._pruner.order = self._order_reports
        self._cache: dict[tuple, list[int]] = {}  # (items, top) -> ranking, the last few
        self._seen = DedupeSet()  # configs started: random new configs avoid them

    def _sample(self, key: tuple[int, int], budget: float):
        """A new config; drawn at random, one not started before when the space has one left
        (a finite space is otherwise soon spent on repeats)."""
        if self._inner is not None:
            config = super()._sample(key, budget)
        else:
            config = fresh_sample(self.space, self.rng, self._seen, DedupeSet())
        self._seen.add(config)
        return config

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "tie_break": self.tie_break}

    # ------------------------------------------------------------------ ranking
    def _key(self, ident: int) -> float:
        """A fixed random key per slot (or trial id in prune mode), from the seed alone, so the
        "random" tie-break draws nothing from the stream that samples configs."""
        base = [] if self.seed is None else [abs(int(self.seed))]
        return float(np.random.default_rng([*base, 3, ident]).random())

    def _rank(self, items: Mapping[int, tuple[tuple[float, ...], float]], top: int) -> list[int]:
        if not items:
            return []
        # asks look at the same rungs again and again between tells: rank each state once
        sig = (tuple(sorted(items.items())), top)
        hit = self._cache.get(sig)
        if hit is not None:
            return hit
        if len(self._cache) > 16:
            self._cache.clear()
        ranked = self._rank_now(items, top)
        self._cache[sig] = ranked
        return ranked

    def _rank_now(self, items: Mapping[int, tuple[tuple[float, ...], float]], top: int) -> list[int]:
        # results of another length than the most common one (a mistake) rank last
        lengths = [len(v) for v, _ in items.values()]
        m = max(set(lengths), key=lengths.count)
        good = [i for i, (v, _) in items.items() if len(v) == m]
        bad = sorted(i for i, (v, _) in items.items() if len(v) != m)
        keys = [self._key(i) for i in good] if self.tie_break == "random" else None
        ranked = rank_results([items[i][0] for i in good], good, [items[i][1] for i in good],
                              self.tie_break, keys, top)
        return ranked + bad

    def _order_slots(self, results: Mapping[int, Any], top: int) -> list[int]:
        return self._rank(results, top)

    def _order_reports(self, reports: Mapping[int, Any], top: int) -> list[int]:
        return self._rank({tid: (v if isinstance(v, tuple) else (float(v),), 0.0)
                           for tid, v in reports.items()}, top)

    # ------------------------------------------------------------------ results
    def _observe(self, obs: Observation) -> None:
        self._seen.add(obs.trial.config)
        if self.mode == "prune":
            if self._inner is not None:
                self._tell_inner_all((-1, obs.trial.id), obs)
            self._pruner.passed.pop(obs.trial.id, None)
            return
        found = self._known_slot(obs.trial)
        if found is None:
            return
        k, j = found
        if k == 0:
            self._tell_inner_all((0, j), obs)
        self.rungs.record(k, j, None if not obs.ok else (tuple(obs.values), obs.violation))

    def _tell_inner_all(self, key: tuple[int, int], obs: Observation) -> None:
        """The inner searcher learns every value (and the constraints) of its config."""
        if self._inner is None:
            return
        t = self._inner_trials.pop(key, None)
        if t is None:
            t = self._inner.adopt(obs.trial.config)
        self._inner.tell(t, None if not obs.ok else list(obs.values), obs.constraints)

    def _promotable(self, trial: Trial, value: float) -> bool:
        if any(o.ok and len(o.values) > 1 for o in self.observations):
            return True  # several objectives: a front decides, keep every state
        return super()._promotable(trial, value)

    def best(self) -> Observation | None:
        """None with several objectives (there is no single best: see the study's
        ``best_trials``); with one, the best value at the largest budget."""
        if any(o.ok and len(o.values) > 1 for o in self.observations):
            return None
        return super().best()


__all__ = ["MOASHA", "rank_results", "TIE_BREAKS"]
