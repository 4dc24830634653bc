"""Searchers: one ask/tell protocol for all (see :mod:`autodl.searchers.base`).

``make_searcher("random", space, seed=0)`` builds one by name, as ``--searcher`` does.
"""

from __future__ import annotations

from typing import Any

from autodl.errors import UserError
from autodl.searchers.auto import AutoSearcher
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.searchers.evolution import RegularizedEvolution
from autodl.searchers.gp import GaussianProcess
from autodl.searchers.grid import GridSearch
from autodl.searchers.multifidelity import ASHA, BOHB, Hyperband, SuccessiveHalving
from autodl.searchers.moasha import MOASHA
from autodl.searchers.motpe import MOTPE
from autodl.searchers.nsga2 import NSGA2
from autodl.searchers.random import RandomSearch
from autodl.searchers.tpe import TPE
from autodl.space import Space

#: name -> searcher class; later searchers register here (see :func:`register`).
SEARCHERS: dict[str, type[Searcher]] = {}


def register(cls: type[Searcher]) -> type[Searcher]:
    """Make a searcher class available by its ``name`` (usable as a decorator)."""
    SEARCHERS[cls.name] = cls
    return cls


for _cls in (RandomSearch, GridSearch, TPE, GaussianProcess, RegularizedEvolution,
             SuccessiveHalving, Hyperband, ASHA, BOHB, AutoSearcher, NSGA2, MOTPE, MOASHA):
    register(_cls)

# Optuna samplers as autodl searchers; the module imports optuna only when one is built.
from autodl.searchers.optuna import OptunaSearcher  # noqa: E402

register(OptunaSearcher)


def searcher_names() -> list[str]:
    return sorted(SEARCHERS)


def make_searcher(name: str, space: Space, seed: int | None = None, **params: Any) -> Searcher:
    """Build the searcher called ``name`` (``random``, ``grid``, ...) on ``space``."""
    cls = SEARCHERS.get(str(name).lower())
    if cls is None:
        raise UserError(f"unknown searcher '{name}'; choose one of: {', '.join(searcher_names())}")
    try:
        return cls(space, seed=seed, **params)
    except TypeError as exc:
        raise UserError(f"searcher '{name}': {exc}") from None


__all__ = [
    "Searcher", "Trial", "Observation", "AutoSearcher", "RandomSearch", "GridSearch", "TPE", "GaussianProcess",
    "RegularizedEvolution", "OptunaSearcher", "SuccessiveHalving", "Hyperband", "ASHA", "BOHB",
    "NSGA2", "MOTPE", "MOASHA", "SEARCHERS", "register", "make_searcher", "searcher_names",
]
