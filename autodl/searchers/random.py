"""Random search: independent draws from the space's prior."""

from __future__ import annotations

from autodl.searchers.base import Searcher, Trial


class RandomSearch(Searcher):
    """Draw every configuration independently from the space (log-uniform where ``log``).

    Example:
        >>> searcher = RandomSearch(space, seed=0)
        >>> trial = searcher.ask(); searcher.tell(trial, 0.3)
    """

    name = "random"
    multi_objective = True  # draws ignore results: any number of objectives and constraints
    handles_constraints = True

    def ask(self) -> Trial:
        return self._new_trial(self.space.sample(self.rng))
