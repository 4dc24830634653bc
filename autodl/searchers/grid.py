"""Exhaustive grid search."""

from __future__ import annotations

from typing import Any

from autodl.errors import SearchExhausted
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.space import Space, config_key


class GridSearch(Searcher):
    """Try every point of ``space.grid(points)`` once, in a seeded random order.

    Continuous ranges get ``points`` values (log-spaced where ``log``); categoricals, small
    integer and stepped ranges are enumerated fully. When every point has been asked,
    :meth:`ask` raises :class:`~autodl.errors.SearchExhausted` with the grid size, and
    :meth:`~autodl.Study.optimize` stops there. Points that were already told (restored from
    storage, or evaluated by another process) are skipped.

    Args:
        points: values per continuous parameter.
        shuffle: visit the grid in a random (seeded) order rather than lexicographically, so a
            search cut short by a time budget still covers the space evenly.
    """

    name = "grid"

    def __init__(self, space: Space, seed: int | None = None, points: int = 5, shuffle: bool = True):
        super().__init__(space, seed)
        self.points = int(points)
        self.shuffle = bool(shuffle)
        self._grid = list(space.grid(self.points))
        if self.shuffle:
            order = self.rng.permutation(len(self._grid))
            self._grid = [self._grid[i] for i in order]
        self._done: set[str] = set()
        self._cursor = 0

    @property
    def size(self) -> int:
        return len(self._grid)

    @property
    def remaining(self) -> int:
        return sum(1 for c in self._grid[self._cursor:] if config_key(c) not in self._done)

    def ask(self) -> Trial:
        while self._cursor < len(self._grid):
            config = self._grid[self._cursor]
            self._cursor += 1
            if config_key(config) not in self._done:
                return self._new_trial(dict(config))
        raise SearchExhausted(f"grid search used up all {len(self._grid)} grid points")

    def _new_trial(self, config, budget=None, **info) -> Trial:
        # a point handed out (asked, or a retry the study runs after a crash) is not asked again
        self._done.add(config_key(config))
        return super()._new_trial(config, budget, **info)

    def _observe(self, obs: Observation) -> None:
        self._done.add(config_key(obs.trial.config))

    def restore(self, history) -> None:
        # the grid order must stay the one drawn from the seed, so do not re-seed here
        for trial, value in history:
            self.tell(trial, value)

    def get_params(self) -> dict[str, Any]:
        return {"points": self.points, "shuffle": self.shuffle}
