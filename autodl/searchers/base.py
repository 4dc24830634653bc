"""The ask/tell protocol every autodl searcher speaks.

A searcher proposes configurations and learns from their results; it never runs anything and
does no I/O. All searchers **minimize**: the :class:`~autodl.Study` flips the sign for
``direction="maximize"``.

Protocol::

    searcher = RandomSearch(space, seed=0)
    trial = searcher.ask()            # Trial(id, config, budget)
    value = evaluate(trial.config)    # at trial.budget, if it is not None
    searcher.tell(trial, value)       # a float to minimize
    searcher.tell(trial, None)        # the documented way to report a failed trial
    searcher.tell(trial, 0.3, constraints=[0.1, -2.0])   # constrained: <= 0 is feasible

Several objectives: a searcher with ``multi_objective = True`` (``motpe``, ``nsga2``,
``moasha``, ``random``) takes a sequence of floats, each minimized, ``searcher.tell(trial, [err,
latency])`` (and ``searcher.report(trial, (err, latency), step)`` for intermediate values); the
others refuse one. Constraints reach every searcher; those without ``handles_constraints`` see an
infeasible trial as a failure (ranked last), the others rank feasible trials first and
infeasible ones by their total violation.

Rules every searcher keeps (checked by :mod:`autodl.testing`):

* ``trial.config`` is a dict of plain values inside the space, inactive conditionals absent;
* the same seed gives the same sequence of asks for the same sequence of tells;
* many asks may precede any tell (parallel workers), and tells may come in any order;
* a failure (``None``, NaN or inf) is tolerated and never proposed as the best;
* ``tell`` accepts trials the searcher did not ask itself (results restored from storage or
  produced by another process): they are treated as observations.

What a :class:`~autodl.Study` (or any driver) may do besides ask and tell, through methods
rather than the searcher's attributes::

    searcher.reseed([seed, n])        # a new random stream (resume, an extra worker process)
    trial = searcher.adopt(config)    # take over a config it did not propose (a retry) ...
    searcher.discard(trial)           # ... or forget a pending trial that gets no result
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from autodl.space import Config, Space


@dataclass(frozen=True)
class Trial:
    """One proposal: what to evaluate (``config``) and with how much resource (``budget``).

    ``budget`` is ``None`` for full-budget searchers; multi-fidelity searchers set it (epochs,
    iterations, a data fraction). ``info`` carries searcher bookkeeping (a bracket, a rung) as
    plain values so it can be stored and restored.
    """

    id: int
    config: Config
    budget: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observation:
    """A finished trial as the searcher sees it; ``value`` is None for a failure.

    ``values`` holds every objective (to minimize; ``(value,)`` for one objective, and then
    ``value`` is None when there are several); ``constraints`` the constraint values (None:
    unconstrained; <= 0 is feasible).
    """

    trial: Trial
    value: float | None
    values: tuple[float, ...] | None = None
    constraints: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.values is None and self.value is not None:
            object.__setattr__(self, "values", (self.value,))

    @property
    def ok(self) -> bool:
        return self.values is not None

    @property
    def violation(self) -> float:
        """Total constraint violation (0 when feasible or unconstrained)."""
        return float(sum(max(0.0, c) for c in self.constraints or ()))

    @property
    def feasible(self) -> bool:
        return self.violation <= 0.0


def _clean_values(values: Any) -> tuple[float, ...] | None:
    out = tuple(_clean_value(v) for v in values)
    return None if not out or any(v is None for v in out) else out  # type: ignore[return-value]


def _is_sequence(value: Any) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    if hasattr(value, "ndim"):
        return getattr(value, "ndim", 0) == 1
    return isinstance(value, (tuple, list))


def _clean_value(value: Any) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def check_step(step: Any) -> int:
    """``step`` of ``report(value, step)`` as an int; a clear error for anything else.

    A float, a bool or a string is refused (not rounded): ``report(5, 0.93)``, the order of older
    autodl versions, would otherwise record a value silently at the wrong step.

    Raises:
        TypeError: ``step`` is not an integer.
        ValueError: ``step`` is negative.
    """
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step is {step!r} ({type(step).__name__}), but must be an int; the order "
                        "is report(value, step), as in Optuna")
    if step < 0:
        raise ValueError(f"step is {int(step)}, but must be >= 0")
    return int(step)


def _as_entropy(entropy: int | Sequence[int]) -> list[int]:
    """``entropy`` as a list of non-negative ints (what ``numpy.random.SeedSequence`` takes)."""
    bad = TypeError(f"entropy is {entropy!r}, but must be an int or a sequence of ints")
    if isinstance(entropy, (int, np.integer)):
        values = [entropy]
    elif isinstance(entropy, (str, bytes)) or not isinstance(entropy, Iterable):
        raise bad
    else:
        values = list(entropy)
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise bad
        out.append(abs(int(v)))
    if not out:
        raise ValueError("entropy is empty, but must hold at least one int")
    return out


class Searcher(abc.ABC):
    """Base class: keeps the seeded generator, trial ids, pending trials and observations.

    Subclasses implement :meth:`ask` (using :meth:`_new_trial`) and may override
    :meth:`_observe` to update their model when a result arrives. A searcher holding other
    random parts (an inner searcher, an Optuna sampler) extends :meth:`reseed`, and one that
    keeps a schedule slot per pending trial extends :meth:`discard` to free it.
    """

    #: name used by ``--searcher`` and ``searcher="..."``
    name: ClassVar[str] = "searcher"
    #: whether ``trial.budget`` is set (multi-fidelity searchers)
    uses_budget: ClassVar[bool] = False
    #: the largest budget a trial gets (multi-fidelity searchers set it; None: no budgets)
    max_budget: float | None = None
    #: whether ``tell`` takes a sequence of values (several objectives, each minimized)
    multi_objective: ClassVar[bool] = False
    #: whether the searcher ranks by constraints itself (else an infeasible trial reaches
    #: :meth:`_observe` as a failure)
    handles_constraints: ClassVar[bool] = False

    def __init__(self, space: Space, seed: int | None = None):
        if not isinstance(space, Space):
            raise TypeError(f"space must be an autodl.Space, got {type(space).__name__}")
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        #: what the random stream comes from: ``[seed]``, or the last :meth:`reseed` entropy
        #: (None: unseeded); parts made later (a BOHB model) derive their seed from it
        self.entropy: list[int] | None = (
            _as_entropy(seed) if isinstance(seed, (int, np.integer)) else None)
        self._next_id = 0
        self.pending: dict[int, Trial] = {}
        self.observations: list[Observation] = []
        #: intermediate values reported by define-by-run objectives: {trial id: {step: value}}
        #: (a tuple of values per step with several objectives)
        self.intermediate: dict[int, dict[int, float | tuple[float, ...]]] = {}

    # ------------------------------------------------------------------ protocol
    @abc.abstractmethod
    def ask(self) -> Trial:
        """Propose the next trial. Raises :class:`~autodl.errors.SearchExhausted` when done."""

    def tell(self, trial: Trial, value: float | Sequence[float] | None,
             constraints: Sequence[float] | None = None) -> None:
        """Report the result of ``trial``: a float to minimize, or ``None`` for a failure.

        A searcher with :attr:`multi_objective` also takes a sequence of floats (one per
        objective, each minimized). NaN and infinite values are treated as failures.
        ``constraints``: the trial's constraint values (<= 0 is feasible).

        Raises:
            TypeError: several values for a single-objective searcher.
        """
        if _is_sequence(value):
            values = _clean_values(value)
            if len(value) > 1 and not self.multi_objective:
                raise TypeError(f"searcher '{self.name}' minimizes one value, but was told "
                                f"{len(value)}; for several objectives use one of: "
                                f"{', '.join(multi_objective_names())}")
            one = values[0] if values is not None and len(value) == 1 else None
            obs = Observation(trial, one, values)
        else:
            obs = Observation(trial, _clean_value(value))
        if constraints is not None:
            obs = Observation(trial, obs.value, obs.values,
                              tuple(float(c) for c in constraints))
        self.pending.pop(trial.id, None)
        self._next_id = max(self._next_id, trial.id + 1)
        self.observations.append(obs)
        if not obs.feasible and not self.handles_constraints:
            # a searcher that does not model constraints ranks an infeasible trial last
            self._observe(Observation(trial, None, None, obs.constraints))
            return
        self._observe(obs)

    def report(self, trial: Trial, value: float | Sequence[float], step: int) -> None:
        """Record an intermediate value (to minimize) of a running trial at ``step`` (an int
        >= 0; the order is Optuna's ``report(value, step)``). A searcher with
        :attr:`multi_objective` also takes a sequence (one value per objective, each minimized),
        kept as a tuple; a non-finite value is not recorded.

        Raises:
            TypeError: several values for a single-objective searcher.
        """
        step = check_step(step)
        if _is_sequence(value):
            if len(value) > 1 and not self.multi_objective:
                raise TypeError(f"searcher '{self.name}' minimizes one value, but was reported "
                                f"{len(value)}")
            values = _clean_values(value)
            v: float | tuple[float, ...] | None = (
                None if values is None else values[0] if len(values) == 1 else values)
        else:
            v = _clean_value(value)
        if v is not None:
            self.intermediate.setdefault(trial.id, {})[step] = v

    def reseed(self, entropy: int | Sequence[int]) -> None:
        """Draw proposals from a new random stream made from ``entropy`` (an int or ints >= 0).

        The same entropy gives the same stream, so a reseeded search stays reproducible. The
        study reseeds on resume (from its seed and the number of stored trials) and in each
        extra worker process (adding a salt), so those do not repeat the proposals of the first
        run. Searchers with random parts of their own (an inner searcher, BOHB's models, an
        Optuna sampler) reseed those too, each from ``entropy`` plus an index. Only randomness
        changes: what the searcher learnt from results is kept.
        """
        self.entropy = _as_entropy(entropy)
        self.rng = np.random.default_rng(self.entropy)

    def adopt(self, config: Config, budget: float | None = None,
              info: Mapping[str, Any] | None = None) -> Trial:
        """Take over a trial this searcher did not propose, as if it had asked it.

        The returned trial (a new id, the given ``config``, ``budget`` and ``info``) is pending
        like an asked one: the searcher does not propose that config (or, for multi-fidelity
        searchers, that slot of its schedule) again while it runs, and learns from it when it is
        told. The study adopts the retry of an abandoned trial, and the finished trials of other
        processes just before telling them.
        """
        return self._new_trial(dict(config), budget, **dict(info or {}))

    def discard(self, trial: Trial) -> None:
        """Forget a pending ``trial`` that will get no result (it was never run, or it was
        abandoned): it leaves :attr:`pending` and the searcher may propose its config (its
        schedule slot) again. If it runs again later, the study hands it back with
        :meth:`adopt`. A trial that is not pending is ignored.
        """
        if self.pending.pop(trial.id, None) is not None:
            self.intermediate.pop(trial.id, None)
            self._discard(trial)

    def worth_keeping(self, trial: Trial, value: float | None) -> bool:
        """Whether a running trial that ends with ``value`` (to minimize; None: failed) may be
        continued at a larger budget or become the best, so that its training state is worth
        saving. True unless the searcher can rule both out: multi-fidelity searchers say False
        for a result their promotion rule can no longer promote (the objective may then skip
        its checkpoint; getting it wrong costs only retraining, never a different result)."""
        return True

    def should_prune(self, trial: Trial) -> bool:
        """Whether a running trial should stop, judged on its reported intermediate values.

        Full-budget searchers never prune; successive halving and ASHA apply their promotion
        rule here for define-by-run objectives.
        """
        return False

    def restore(self, history: Iterable[tuple]) -> None:
        """Rebuild state from finished trials (e.g. read back from storage on resume).

        ``history`` holds ``(trial, value)`` pairs, or ``(trial, value, constraints)``; the
        value is what :meth:`tell` takes.

        The searcher is then reseeded (:meth:`reseed`) from ``(seed, number of restored
        trials)`` so that a resumed search continues with new proposals instead of repeating the
        first ones; without a seed, from fresh entropy (parts seeded by the user, such as an
        Optuna sampler instance, would otherwise repeat theirs).
        """
        n = 0
        for trial, value, *constraints in history:
            self.tell(trial, value, *constraints)
            n += 1
        if n:
            self.reseed([self.seed, n] if self.seed is not None
                        else [np.random.SeedSequence().entropy])

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments besides ``space`` and ``seed`` (stored to rebuild on resume)."""
        return {}

    # ------------------------------------------------------------------ helpers
    def _new_trial(self, config: Config, budget: float | None = None, **info: Any) -> Trial:
        trial = Trial(self._next_id, config, budget, dict(info))
        self._next_id += 1
        self.pending[trial.id] = trial
        return trial

    def _observe(self, obs: Observation) -> None:
        """Hook for subclasses: learn from one finished trial."""

    def _discard(self, trial: Trial) -> None:
        """Hook for subclasses: free what a discarded pending trial held."""

    @property
    def successes(self) -> list[Observation]:
        return [o for o in self.observations if o.ok]

    def best(self) -> Observation | None:
        """The best successful observation: feasible first, then by violation, then value
        (None with several objectives: there is no single best)."""
        ok = [o for o in self.successes if o.value is not None]
        return min(ok, key=lambda o: (o.violation, o.value)) if ok else None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}(seed={self.seed!r}{', ' if params else ''}{params})"


def multi_objective_names() -> list[str]:
    """Names of the registered searchers that take several objectives."""
    from autodl.searchers import SEARCHERS

    return sorted(n for n, cls in SEARCHERS.items() if getattr(cls, "multi_objective", False))
