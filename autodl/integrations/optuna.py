"""Optuna interoperability: autodl studies as Optuna studies, Optuna samplers as autodl searchers.

* :func:`to_optuna` copies every trial of an autodl study (parameters with their
  distributions, values, states, intermediate values) into an Optuna study, so Optuna's
  visualizations and optuna-dashboard can read autodl runs (same as
  :meth:`autodl.Study.to_optuna`).
* :class:`OptunaSearcher` lets any Optuna sampler act as an autodl searcher; it lives with
  the other searchers in :mod:`autodl.searchers.optuna` and is re-exported here.

This module builds on :mod:`autodl.study` and :mod:`autodl.searchers`; neither imports it.
Optuna is imported only when these are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autodl.searchers.optuna import SAMPLERS, OptunaSearcher, distribution, make_sampler

if TYPE_CHECKING:
    import optuna

    from autodl.study import Study


def to_optuna(study: "Study", storage: str | None = None, study_name: str | None = None) -> "optuna.Study":
    """An Optuna study holding every finished trial of ``study``.

    Complete, pruned and failed trials map to Optuna's COMPLETE, PRUNED and FAIL; abandoned
    trials become FAIL with the user attribute ``autodl_state="abandoned"``; running trials are
    skipped. The autodl trial id, budget and message are kept as user attributes.

    Args:
        study: an autodl :class:`~autodl.Study`.
        storage: an Optuna storage URL (e.g. ``sqlite:///optuna.db`` for optuna-dashboard);
            in memory by default.
        study_name: the Optuna study name.
    """
    return study.to_optuna(storage=storage, study_name=study_name)


__all__ = ["to_optuna", "OptunaSearcher", "SAMPLERS", "make_sampler", "distribution"]
