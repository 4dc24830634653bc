"""NSGA-II-style evolution for several objectives (Deb et al. 2002), in ask/tell form.

The population is rebuilt from every result so far whenever a trial is asked (a steady-state,
(mu + 1) variant of NSGA-II: results enter the population as they arrive, so parallel workers
never wait for a generation to finish):

1. the successful trials are sorted into non-dominated fronts with constraint domination
   (feasible first; infeasible by total violation) and the best ``population`` kept, the last
   front cut by crowding distance;
2. two parents are picked by binary tournaments (lower front wins, then larger crowding);
3. the child mixes them in the unit-cube encoding of the space (:class:`UnitCodec`):
   numbers by simulated binary crossover (SBX) and polynomial mutation, categories by uniform
   crossover and a switch to another category; integers and stepped values snap to their grid,
   and conditional parameters that become active take the value of a parent that had them (or
   a random one).

The first ``population`` trials are random. Every value is minimized (the study flips
``"maximize"`` directions).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autodl.searchers._unit import CATEGORICAL, DedupeSet, UnitCodec, fresh_sample, pending_keys
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.searchers.pareto import crowding_distance, non_dominated_sort
from autodl.space import Config, Space


def select_population(values: np.ndarray, violations: np.ndarray,
                      size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NSGA-II survivor selection: ``(indices, front rank, crowding)`` of the best ``size`` rows.

    Fronts (constraint domination) fill the population in order; the front that does not fit
    entirely keeps its least crowded members.
    """
    chosen, ranks, crowd = [], [], []
    for r, front in enumerate(non_dominated_sort(values, violations)):
        d = crowding_distance(values[front]) if violations[front[0]] <= 0 else np.zeros(len(front))
        if len(chosen) + len(front) > size:
            keep = np.argsort(-d, kind="stable")[: size - len(chosen)]
            front, d = front[keep], d[keep]
        chosen.extend(front.tolist())
        ranks.extend([r] * len(front))
        crowd.extend(d.tolist())
        if len(chosen) >= size:
            break
    return np.array(chosen, dtype=int), np.array(ranks, dtype=int), np.array(crowd, dtype=float)


class NSGA2(Searcher):
    """NSGA-II-style multi-objective evolution (see the module docstring).

    Args:
        space: the search space.
        seed: seed of the searcher's generator.
        population: survivors kept (and random trials before evolution starts).
        crossover_prob: probability that a child is a crossover of two parents (else a copy of
            the first, mutated).
        eta_crossover: SBX distribution index (larger: children nearer their parents).
        eta_mutation: polynomial-mutation distribution index.
        mutation_prob: probability that each coordinate mutates (None: 1 / number of
            parameters).

    Example:
        >>> searcher = NSGA2(space, seed=0, population=20)
        >>> trial = searcher.ask(); searcher.tell(trial, [error, latency_ms])
    """

    name = "nsga2"
    multi_objective = True
    handles_constraints = True

    def __init__(self, space: Space, seed: int | None = None, population: int = 20,
                 crossover_prob: float = 0.9, eta_crossover: float = 15.0,
                 eta_mutation: float = 20.0, mutation_prob: float | None = None):
        super().__init__(space, seed)
        if not isinstance(population, int) or population < 2:
            raise ValueError(f"population is {population!r}, but must be an int >= 2")
        if not 0.0 <= crossover_prob <= 1.0:
            raise ValueError(f"crossover_prob is {crossover_prob!r}, but must be in [0, 1]")
        if eta_crossover <= 0 or eta_mutation <= 0:
            raise ValueError("eta_crossover and eta_mutation must be > 0")
        if mutation_prob is not None and not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob is {mutation_prob!r}, but must be in [0, 1] or None")
        self.population = population
        self.crossover_prob = float(crossover_prob)
        self.eta_crossover = float(eta_crossover)
        self.eta_mutation = float(eta_mutation)
        self.mutation_prob = mutation_prob
        self._codec = UnitCodec(space)
        self._seen = DedupeSet()

    def get_params(self) -> dict[str, Any]:
        return {"population": self.population, "crossover_prob": self.crossover_prob,
                "eta_crossover": self.eta_crossover, "eta_mutation": self.eta_mutation,
                "mutation_prob": self.mutation_prob}

    def _observe(self, obs: Observation) -> None:
        self._seen.add(obs.trial.config)

    # ------------------------------------------------------------------ asking
    def ask(self) -> Trial:
        pending = pending_keys(t.config for t in self.pending.values())
        ok = [o for o in self.observations if o.ok]
        if len(ok) < self.population or len({len(o.values) for o in ok}) != 1:
            return self._new_trial(fresh_sample(self.space, self.rng, self._seen, pending))
        y = np.array([o.values for o in ok], dtype=float)
        viol = np.array([o.violation for o in ok])
        idx, rank, crowd = select_population(y, viol, self.population)
        parents = [ok[i] for i in idx]
        for _ in range(20):
            a = self._tournament(rank, crowd)
            b = self._tournament(rank, crowd)
            child = self._child(parents[a].trial.config, parents[b].trial.config)
            if child not in self._seen and child not in pending:
                return self._new_trial(child)
        return self._new_trial(fresh_sample(self.space, self.rng, self._seen, pending))

    def _tournament(self, rank: np.ndarray, crowd: np.ndarray) -> int:
        i, j = self.rng.choice(len(rank), size=2, replace=len(rank) < 2)
        if rank[i] != rank[j]:
            return int(i if rank[i] < rank[j] else j)
        if crowd[i] != crowd[j]:
            return int(i if crowd[i] > crowd[j] else j)
        return int(i if self.rng.random() < 0.5 else j)

    def _child(self, first: Config, second: Config) -> Config:
        codec, rng = self._codec, self.rng
        x1, x2 = codec.encode([first])[0], codec.encode([second])[0]
        # a parameter one parent lacks (inactive there) takes the other's value, or a random one
        x1 = np.where(np.isnan(x1), x2, x1)
        x2 = np.where(np.isnan(x2), x1, x2)
        missing = np.isnan(x1)
        x1[missing] = x2[missing] = rng.random(int(missing.sum()))
        child = x1.copy()
        numeric = codec.kinds != CATEGORICAL
        if rng.random() < self.crossover_prob:
            swap = rng.random(codec.dim) < 0.5
            child = np.where(swap & ~numeric, x2, x1)  # uniform crossover of categories
            sbx = swap & numeric
            if sbx.any():
                child[sbx] = self._sbx(x1[sbx], x2[sbx])
        p = self.mutation_prob if self.mutation_prob is not None else 1.0 / max(codec.dim, 1)
        flip = rng.random(codec.dim) < p
        for j in np.flatnonzero(flip):
            if numeric[j]:
                child[j] = self._polynomial(child[j])
            else:  # another category, uniformly
                k = int(codec.levels[j])
                if k > 1:
                    cur = min(int(child[j] * k), k - 1)
                    new = int(rng.integers(k - 1))
                    child[j] = (new + (new >= cur) + 0.5) / k
        return codec.decode(codec.snap(child)[0])

    def _sbx(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """One of the two SBX children of ``a`` and ``b`` (coordinates in [0, 1])."""
        u = self.rng.random(len(a))
        e = 1.0 / (self.eta_crossover + 1.0)
        beta = np.where(u <= 0.5, (2.0 * u) ** e, (1.0 / (2.0 * (1.0 - u) + 1e-300)) ** e)
        sign = np.where(self.rng.random(len(a)) < 0.5, 1.0, -1.0)
        child = 0.5 * ((a + b) + sign * beta * (a - b))
        return np.clip(child, 0.0, 1.0)

    def _polynomial(self, x: float) -> float:
        """Deb's bounded polynomial mutation of one coordinate in [0, 1]."""
        u = float(self.rng.random())
        e = 1.0 / (self.eta_mutation + 1.0)
        if u < 0.5:
            xy = 1.0 - x
            delta = (2.0 * u + (1.0 - 2.0 * u) * xy ** (self.eta_mutation + 1.0)) ** e - 1.0
        else:
            xy = x
            delta = 1.0 - (2.0 * (1.0 - u) + 2.0 * (u - 0.5) * xy ** (self.eta_mutation + 1.0)) ** e
        return float(np.clip(x + delta, 0.0, 1.0))
