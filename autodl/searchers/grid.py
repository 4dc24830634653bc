"""Exhaustive grid search."""

from __future__ import annotations

from typing import Any, Sequence

from autodl.errors import SearchExhausted
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.space import Space, config_key


class GridSearch(Searcher):
    """Try every point of ``space.grid(points)`` once, in a seeded random order.

    Continuous ranges get ``points`` values (log-spaced where ``log``); categoricals, small
    integer and stepped ranges are enumerated fully. When every point has been asked,
    :meth:`ask` raises :class:`~autodl.errors.SearchExhausted` with the grid size, and
    :meth:`~autodl.Study.optimize` stops there. Points that were already told (restored from
    storage, or evaluated by another process) are skipped; a point whose trial is discarded
    (it never ran) is asked again next. With ``shuffle``, :meth:`reseed` (on resume, in an
    extra worker process) reshuffles the points not asked yet, so processes sharing a study
    walk the rest of the grid in different orders.

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
        self._done: set[str] = set()  # points handed out or told
        self._told: set[str] = set()
        self._cursor = 0
        self._returned: list[dict] = []  # points of discarded trials, asked again first

    @property
    def size(self) -> int:
        return len(self._grid)

    @property
    def remaining(self) -> int:
        todo = {config_key(c) for c in self._returned + self._grid[self._cursor:]}
        return len(todo - self._done)

    def ask(self) -> Trial:
        while self._returned:
            config = self._returned.pop(0)
            if config_key(config) not in self._done:
                return self._new_trial(dict(config))
        while self._cursor < len(self._grid):
            config = self._grid[self._cursor]
            self._cursor += 1
            if config_key(config) not in self._done:
                return self._new_trial(dict(config))
        raise SearchExhausted(f"grid search used up all {len(self._grid)} grid points")

    def reseed(self, entropy: int | Sequence[int]) -> None:
        super().reseed(entropy)
        if self.shuffle:
            rest = self._grid[self._cursor:]
            self._grid[self._cursor:] = [rest[i] for i in self.rng.permutation(len(rest))]

    def _new_trial(self, config, budget=None, **info) -> Trial:
        # a point handed out (asked, or a retry the study runs after a crash) is not asked again
        self._done.add(config_key(config))
        return super()._new_trial(config, budget, **info)

    def _observe(self, obs: Observation) -> None:
        self._done.add(config_key(obs.trial.config))
        self._told.add(config_key(obs.trial.config))

    def _discard(self, trial: Trial) -> None:
        key = config_key(trial.config)
        if key in self._told or any(config_key(t.config) == key for t in self.pending.values()):
            return
        self._done.discard(key)
        self._returned.append(dict(trial.config))

    def get_params(self) -> dict[str, Any]:
        return {"points": self.points, "shuffle": self.shuffle}
