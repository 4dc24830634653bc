"""Any Optuna sampler as an autodl searcher (``--searcher optuna``).

:class:`OptunaSearcher` lets an Optuna sampler (CMA-ES, NSGA-II, QMC, GP, ...) act through the
ask/tell protocol, e.g. ``searcher_params={"sampler": "cmaes"}``. :func:`distribution` maps an
autodl parameter to its Optuna distribution (also used to export studies to Optuna, see
:meth:`autodl.Study.to_optuna`).

Optuna is imported only when one of these is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from autodl.errors import UserError
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.space import Categorical, Float, Int, Space

if TYPE_CHECKING:
    import optuna


def import_optuna():
    """The ``optuna`` module, or a :class:`~autodl.errors.UserError` saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise UserError("Optuna is not installed; `pip install 'autodl[optuna]'`") from None
    return optuna


def distribution(param) -> "optuna.distributions.BaseDistribution":
    """The Optuna distribution equivalent to an autodl parameter."""
    d = import_optuna().distributions
    if isinstance(param, Float):
        return d.FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, Int):
        return d.IntDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, Categorical):
        return d.CategoricalDistribution(list(param.choices))
    raise TypeError(f"unsupported parameter {param!r}")


def distributions(space: Space, config: dict[str, Any]) -> dict[str, Any]:
    """The Optuna distributions of the parameters set in ``config``."""
    return {n: distribution(space.params[n]) for n in config if n in space.params}


SAMPLERS = ("tpe", "cmaes", "gp", "random", "qmc", "nsgaii")


def make_sampler(name: str, seed: int | None) -> "optuna.samplers.BaseSampler":
    """An Optuna sampler by short name, seeded (``qmc``: a scrambled Sobol sequence)."""
    s = import_optuna().samplers
    factories = {
        "tpe": lambda: s.TPESampler(seed=seed, multivariate=True),
        "cmaes": lambda: s.CmaEsSampler(seed=seed),
        "gp": lambda: s.GPSampler(seed=seed),
        "random": lambda: s.RandomSampler(seed=seed),
        # scrambled, so the seed matters: a resumed search or an extra worker (reseeded) does
        # not walk the same unscrambled sequence from its start again
        "qmc": lambda: s.QMCSampler(seed=seed, scramble=True, warn_asynchronous_seeding=False),
        "nsgaii": lambda: s.NSGAIISampler(seed=seed),
    }
    if name not in factories:
        raise UserError(f"unknown Optuna sampler '{name}'; choose one of: {', '.join(SAMPLERS)}")
    return factories[name]()


class OptunaSearcher(Searcher):
    """Any Optuna sampler as an autodl searcher (ask/tell; it minimizes like all searchers).

    Parameters are suggested define-by-run in the space's dependency order, so conditional
    parameters are asked only when active (relative samplers such as CMA-ES fall back to their
    independent sampler for those, as in Optuna itself).

    :meth:`reseed` (called by the study on resume and in extra worker processes) rebuilds a
    sampler given by name with a seed drawn from the new entropy, so a resumed search does not
    repeat its first proposals; a sampler given as an instance gets Optuna's
    ``sampler.reseed_rng()`` (a fresh, unseeded stream: that resume is not reproducible).

    Args:
        space: the search space.
        seed: seeds the sampler.
        sampler: a short name (tpe, cmaes, gp, random, qmc, nsgaii) or an Optuna sampler
            instance (then ``seed`` is not applied to it).

    Example:
        >>> searcher = OptunaSearcher(space, seed=0, sampler="cmaes")
        >>> study = autodl.Study(space, searcher=searcher)
    """

    name = "optuna"

    def __init__(self, space: Space, seed: int | None = None, sampler: Any = "tpe"):
        super().__init__(space, seed)
        optuna = import_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._by_name = isinstance(sampler, str)
        self.sampler_name = sampler if self._by_name else type(sampler).__name__
        self._sampler = make_sampler(sampler, seed) if self._by_name else sampler
        self._study = optuna.create_study(direction="minimize", sampler=self._sampler)
        self._numbers: dict[int, int] = {}  # autodl trial id -> optuna trial number

    def ask(self) -> Trial:
        ot = self._study.ask()
        config: dict[str, Any] = {}
        for n in self.space.order:
            if not self.space.is_active(n, config):
                continue
            p = self.space.params[n]
            if isinstance(p, Float):
                v = ot.suggest_float(n, p.low, p.high, log=p.log, step=p.step)
            elif isinstance(p, Int):
                v = ot.suggest_int(n, p.low, p.high, log=p.log, step=p.step)
            else:
                v = ot.suggest_categorical(n, list(p.choices))
            config[n] = v
        config = {n: _plain(config[n]) for n in self.space.names if n in config}
        trial = self._new_trial(config)
        self._numbers[trial.id] = ot.number
        return trial

    def reseed(self, entropy: int | Sequence[int]) -> None:
        """A new stream for the sampler too (see the class docstring)."""
        super().reseed(entropy)
        if self._by_name:
            seed = int(np.random.SeedSequence([*self.entropy, 1]).generate_state(1)[0])
            # samplers keep their state in the study's trials (CMA-ES) or nowhere: a new one
            # continues the search with the history the study holds
            self._sampler = make_sampler(self.sampler_name, seed)
            self._study.sampler = self._sampler
        else:
            self._sampler.reseed_rng()

    def _observe(self, obs: Observation) -> None:
        optuna = import_optuna()
        number = self._numbers.pop(obs.trial.id, None)
        if number is None:  # a result this searcher did not ask for: add it as a finished trial
            state = optuna.trial.TrialState.COMPLETE if obs.ok else optuna.trial.TrialState.FAIL
            self._study.add_trial(optuna.trial.create_trial(
                state=state, value=obs.value if obs.ok else None, params=dict(obs.trial.config),
                distributions=distributions(self.space, obs.trial.config)))
            return
        if obs.ok:
            self._study.tell(number, obs.value)
        else:
            self._study.tell(number, state=optuna.trial.TrialState.FAIL)

    def _discard(self, trial: Trial) -> None:
        # FAIL: every Optuna sampler ignores failed trials, and it does not stay RUNNING there
        number = self._numbers.pop(trial.id, None)
        if number is not None:
            self._study.tell(number, state=import_optuna().trial.TrialState.FAIL)

    def get_params(self) -> dict[str, Any]:
        return {"sampler": self.sampler_name}


def _plain(v: Any) -> Any:
    """Optuna may hand back numpy scalars; configs hold plain Python values."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return v.item()
    return v


__all__ = ["OptunaSearcher", "SAMPLERS", "make_sampler", "distribution", "distributions",
           "import_optuna"]
