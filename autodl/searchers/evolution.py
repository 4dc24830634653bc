"""Regularized (aging) evolution, Real et al. 2019, "Regularized Evolution for Image
Classifier Architecture Search".

A population of the ``population`` most recent results evolves: each ask runs a tournament
among ``sample_size`` members drawn at random, mutates the winner and proposes the child; the
oldest member leaves the population when a new result arrives (the population is a sliding
window over the results, in the order they were told). The first ``population`` trials are
random.

:func:`mutate` is public so that evolutionary NAS can reuse it on flat architecture dicts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from autodl.searchers._unit import DedupeSet
from autodl.searchers.base import Searcher, Trial
from autodl.space import Categorical, Config, Space


def _mutate_value(name: str, value: Any, space: Space, rng: np.random.Generator, sigma: float) -> Any:
    """A different value for one parameter (when the parameter has more than one value)."""
    param = space.params[name]
    if isinstance(param, Categorical):
        others = [c for c in param.choices if not (type(c) is type(value) and c == value)]
        return others[int(rng.integers(len(others)))] if others else value
    u = param.to_unit(value)
    new = value
    for _ in range(8):
        new = param.from_unit(min(max(u + sigma * float(rng.normal()), 0.0), 1.0))
        if new != value:
            return new
    # integer/stepped parameters whose cells are wider than sigma: move to a neighbour cell
    for step in (1, -1) if rng.random() < 0.5 else (-1, 1):
        k = 1
        while k < 1000:
            cand = param.from_unit(min(max(u + step * k * 1e-3, 0.0), 1.0))
            if cand != value:
                return cand
            k = k * 2
    return new


def mutate(config: Config, space: Space, rng: np.random.Generator, sigma: float = 0.1,
           n_mutations: int | None = None) -> Config:
    """A mutated copy of ``config``.

    Each active parameter changes with probability ``1 / n_active`` (at least one changes, or
    exactly ``n_mutations`` when given): numbers by a Gaussian step of standard deviation
    ``sigma`` in the unit-cube encoding (so log-scaled parameters move multiplicatively, and
    integers move at least one step), categories to a different choice. Conditional children
    that become active are sampled from the prior; those that become inactive are removed.

    Args:
        config: a valid configuration of ``space``.
        space: the search space.
        rng: the caller's generator.
        sigma: step size in the unit cube for numeric parameters.
        n_mutations: exact number of parameters to change (default: random, at least one).

    Returns:
        A new, valid configuration.
    """
    active = [n for n in space.names if n in config]
    if not active:
        return space.sample(rng)
    if n_mutations is None:
        chosen = [n for n in active if rng.random() < 1.0 / len(active)]
        if not chosen:
            chosen = [active[int(rng.integers(len(active)))]]
    else:
        k = max(1, min(int(n_mutations), len(active)))
        chosen = [active[i] for i in sorted(rng.choice(len(active), size=k, replace=False))]
    changed = dict(config)
    for n in chosen:
        changed[n] = _mutate_value(n, config[n], space, rng, sigma)
    child: Config = {}
    for n in space.order:
        if space.is_active(n, child):
            child[n] = changed[n] if n in changed else space.params[n].sample(rng)
    return {n: child[n] for n in space.names if n in child}


class RegularizedEvolution(Searcher):
    """Aging evolution with tournament selection (see the module docstring).

    Args:
        space: the search space.
        seed: seed of the searcher's generator.
        population: number of most recent results forming the population.
        sample_size: tournament size.
        sigma: mutation step in the unit cube.

    Example:
        >>> searcher = RegularizedEvolution(space, seed=0, population=20, sample_size=5)
    """

    name = "evolution"
    handles_constraints = True  # tournaments rank feasible first, then by violation

    def __init__(self, space: Space, seed: int | None = None, population: int = 20,
                 sample_size: int = 5, sigma: float = 0.1):
        super().__init__(space, seed)
        if population < 2 or not 1 <= sample_size <= population or sigma <= 0:
            raise ValueError("RegularizedEvolution needs population >= 2, "
                             "1 <= sample_size <= population and sigma > 0")
        self.population = int(population)
        self.sample_size = int(sample_size)
        self.sigma = float(sigma)
        self._seen = DedupeSet()

    def get_params(self) -> dict[str, Any]:
        return {"population": self.population, "sample_size": self.sample_size, "sigma": self.sigma}

    def _observe(self, obs: Any) -> None:
        self._seen.add(obs.trial.config)

    def ask(self) -> Trial:
        pending = DedupeSet()
        for t in self.pending.values():
            pending.add(t.config)
        members = self.observations[-self.population:]
        if len(self.observations) < self.population:
            config = self.space.sample(self.rng)
            for _ in range(20):
                if config not in pending and config not in self._seen:
                    break
                config = self.space.sample(self.rng)
            return self._new_trial(config)
        picks = self.rng.choice(len(members), size=self.sample_size, replace=False)
        parent = min((members[i] for i in picks),
                     key=lambda o: (o.violation, math.inf if o.value is None else o.value))
        child = mutate(parent.trial.config, self.space, self.rng, self.sigma)
        for _ in range(20):  # avoid re-proposing a pending (or already seen) configuration
            if child not in pending and child not in self._seen:
                break
            child = mutate(parent.trial.config, self.space, self.rng, self.sigma)
        return self._new_trial(child)
