"""Optuna interoperability: autodl studies as Optuna studies, Optuna samplers as autodl searchers.

* :func:`to_optuna` copies every trial of an autodl study (parameters with their
  distributions, values, states, intermediate values) into an Optuna study, so Optuna's
  visualizations and optuna-dashboard can read autodl runs.
* :class:`OptunaSearcher` lets any Optuna sampler (CMA-ES, NSGA-II, QMC, GP, ...) act as an
  autodl searcher through the ask/tell protocol (``--searcher optuna`` with
  ``searcher_params={"sampler": "cmaes"}``).

Optuna is imported only when these are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autodl.errors import UserError
from autodl.searchers.base import Observation, Searcher, Trial
from autodl.space import Categorical, Float, Int, Space

if TYPE_CHECKING:
    import optuna

    from autodl.study import Study


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UserError("Optuna is not installed; `pip install 'autodl[optuna]'`") from None
    return optuna


def distribution(param) -> "optuna.distributions.BaseDistribution":
    """The Optuna distribution equivalent to an autodl parameter."""
    d = _optuna().distributions
    if isinstance(param, Float):
        return d.FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, Int):
        return d.IntDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, Categorical):
        return d.CategoricalDistribution(list(param.choices))
    raise TypeError(f"unsupported parameter {param!r}")


def _distributions(space: Space, config: dict[str, Any]) -> dict[str, Any]:
    return {n: distribution(space.params[n]) for n in config if n in space.params}


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
    optuna = _optuna()
    from autodl.study import TrialState

    states = {
        TrialState.COMPLETE: optuna.trial.TrialState.COMPLETE,
        TrialState.PRUNED: optuna.trial.TrialState.PRUNED,
        TrialState.FAILED: optuna.trial.TrialState.FAIL,
        TrialState.ABANDONED: optuna.trial.TrialState.FAIL,
    }
    target = optuna.create_study(direction=study.direction, storage=storage, study_name=study_name,
                                 load_if_exists=False)
    frozen = []
    for t in study.trials:
        if t.state not in states:
            continue
        attrs = {**dict(t.user_attrs), "autodl_id": t.id, "autodl_state": t.state.value}
        if t.budget is not None:
            attrs["budget"] = t.budget
        if t.message:
            attrs["message"] = t.message
        frozen.append(optuna.trial.create_trial(
            state=states[t.state],
            value=t.value if t.state == TrialState.COMPLETE else None,
            params=dict(t.config),
            distributions=_distributions(study.space, t.config),
            intermediate_values={int(k): float(v) for k, v in t.intermediate.items()},
            user_attrs=attrs,
        ))
    target.add_trials(frozen)
    return target


SAMPLERS = ("tpe", "cmaes", "gp", "random", "qmc", "nsgaii")


def make_sampler(name: str, seed: int | None) -> "optuna.samplers.BaseSampler":
    """An Optuna sampler by short name, seeded."""
    s = _optuna().samplers
    factories = {
        "tpe": lambda: s.TPESampler(seed=seed, multivariate=True),
        "cmaes": lambda: s.CmaEsSampler(seed=seed),
        "gp": lambda: s.GPSampler(seed=seed),
        "random": lambda: s.RandomSampler(seed=seed),
        "qmc": lambda: s.QMCSampler(seed=seed),
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
        optuna = _optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.sampler_name = sampler if isinstance(sampler, str) else type(sampler).__name__
        self._sampler = make_sampler(sampler, seed) if isinstance(sampler, str) else sampler
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

    def _observe(self, obs: Observation) -> None:
        optuna = _optuna()
        number = self._numbers.pop(obs.trial.id, None)
        if number is None:  # a result this searcher did not ask for: add it as a finished trial
            state = optuna.trial.TrialState.COMPLETE if obs.ok else optuna.trial.TrialState.FAIL
            self._study.add_trial(optuna.trial.create_trial(
                state=state, value=obs.value if obs.ok else None, params=dict(obs.trial.config),
                distributions=_distributions(self.space, obs.trial.config)))
            return
        if obs.ok:
            self._study.tell(number, obs.value)
        else:
            self._study.tell(number, state=optuna.trial.TrialState.FAIL)

    def get_params(self) -> dict[str, Any]:
        return {"sampler": self.sampler_name}


def _plain(v: Any) -> Any:
    """Optuna may hand back numpy scalars; configs hold plain Python values."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return v.item()
    return v
