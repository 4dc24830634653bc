"""Trial records kept by a study, and the handle an objective receives."""

from __future__ import annotations

import time

import enum
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from autodl.errors import TrialPruned
from autodl.searchers.base import check_step

if TYPE_CHECKING:
    from autodl.space import Config


class TrialState(str, enum.Enum):
    """Life cycle of a stored trial.

    ``RUNNING`` -> ``COMPLETE`` (a finite value), ``PRUNED`` (stopped early by the searcher's
    rule; its last reported value is kept), ``FAILED`` (exception, NaN/inf or a non-number;
    the message says which) or ``ABANDONED`` (its process died or was interrupted; resume runs
    the same config again as a new trial and the record keeps which one retried it).
    """

    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"
    ABANDONED = "abandoned"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)


@dataclass(frozen=True)
class FrozenTrial:
    """A stored trial. ``value`` is in the study's own direction (not sign-flipped).

    ``values`` holds what the objective returned: ``(value,)`` for one objective, one value per
    direction for several (then ``value`` is None). A pruned trial keeps its last report: in
    ``value`` (one objective), or in ``values`` when it reported a tuple (several objectives;
    ``best_trials`` holds complete trials only). ``constraints`` are the values set with :meth:`RunningTrial.set_constraint` (or by
    the study's ``constraints_func``), by name; the trial is feasible when all are <= 0.
    """

    id: int
    state: TrialState
    config: dict[str, Any]
    value: float | None = None
    budget: float | None = None
    message: str | None = None
    started: float | None = None
    finished: float | None = None
    #: reported values by step (a tuple per step where a multi-objective objective reported one)
    intermediate: Mapping[int, float | tuple[float, ...]] = field(default_factory=dict)
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    retry_of: int | None = None
    values: tuple[float, ...] | None = None
    constraints: Mapping[str, float] | None = None

    @property
    def feasible(self) -> bool:
        """Whether every constraint is <= 0 (True without constraints)."""
        return not self.constraints or all(c <= 0.0 for c in self.constraints.values())

    @property
    def violation(self) -> float:
        """Total constraint violation: the sum of the positive constraint values."""
        return float(sum(max(0.0, c) for c in (self.constraints or {}).values()))

    @property
    def duration(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "value": self.value,
            "values": None if self.values is None else list(self.values),
            "constraints": None if self.constraints is None else dict(self.constraints),
            "config": dict(self.config),
            "budget": self.budget,
            "message": self.message,
            "duration": self.duration,
            "intermediate": {str(k): list(v) if isinstance(v, tuple) else v
                             for k, v in self.intermediate.items()},
            "user_attrs": dict(self.user_attrs),
            "retry_of": self.retry_of,
        }


class TrialTimedOut(BaseException):
    """Raised inside an in-process trial by ``trial.report()``, ``should_prune()`` or
    ``should_stop()`` once its ``trial_timeout`` has passed; the trial is recorded FAILED,
    "timed out after Xs". A BaseException, so an objective's ``except Exception`` does not
    swallow it."""

    def __init__(self, seconds: float):
        super().__init__(f"timed out after {seconds:g}s")
        self.seconds = seconds


def check_value(value: Any) -> tuple[float | None, str | None]:
    """``(float value, None)`` for a usable objective result, else ``(None, why it failed)``."""
    if isinstance(value, bool) or value is None:
        return None, f"objective returned {value!r}, expected a float"
    try:
        v = float(value)
    except (TypeError, ValueError):
        text = repr(value)
        text = text if len(text) <= 60 else text[:57] + "..."
        return None, f"objective returned {type(value).__name__} {text}, expected a float"
    if math.isnan(v):
        return None, "objective returned nan"
    if math.isinf(v):
        return None, f"objective returned {v}"
    return v, None


def is_sequence(value: Any) -> bool:
    """Whether an objective's result is a sequence of values (a tuple, list or 1-D array)."""
    if isinstance(value, (str, bytes, dict)):
        return False
    if hasattr(value, "ndim"):  # numpy arrays and scalars
        return getattr(value, "ndim", 0) == 1
    return isinstance(value, (tuple, list))


def check_values(value: Any) -> tuple[tuple[float, ...] | None, str | None]:
    """``(floats, None)`` for a usable sequence of objective values, else ``(None, why)``."""
    items = list(value)
    out = []
    for i, item in enumerate(items):
        v, why = check_value(item)
        if v is None:
            text = repr(tuple(items))
            text = text if len(text) <= 60 else text[:57] + "..."
            return None, f"objective returned {text}: value {i + 1} is {why.removeprefix('objective returned ')}"
        out.append(v)
    if not out:
        return None, "objective returned an empty sequence, expected one value per direction"
    return tuple(out), None


def check_constraints(constraints: Any) -> dict[str, float]:
    """Constraint values by name as floats; a ``TypeError``/``ValueError`` naming the bad one.

    Accepts a mapping ``{name: value}`` or a sequence (named ``"0"``, ``"1"``, ... as Optuna
    names the values of its ``constraints_func``).
    """
    if isinstance(constraints, dict):
        items = [(str(k), v) for k, v in constraints.items()]
    elif isinstance(constraints, (str, bytes)) or not hasattr(constraints, "__iter__"):
        raise TypeError(f"constraints are {constraints!r}, but must be a sequence of floats "
                        "or a mapping name -> float")
    else:
        items = [(str(i), v) for i, v in enumerate(constraints)]
    out = {}
    for name, v in items:
        if isinstance(v, bool):
            raise TypeError(f"constraint {name!r} is {v!r}, but must be a float (<= 0 is feasible)")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"constraint {name!r} is {v!r}, but must be a float (<= 0 is feasible)") from None
        if math.isnan(f):
            raise ValueError(f"constraint {name!r} is nan, but must be a number (<= 0 is feasible)")
        out[name] = f
    return out


class RunningTrial:
    """What an objective receives: the config to evaluate and a way to report progress.

    Attributes:
        id: the trial's id in the study (unique, stable across resumes).
        config: parameter values (inactive conditional parameters are absent).
        budget: resource to spend (epochs, iterations), or None for full-budget searchers.
        stop_at: the ``time.time()`` at which the study's deadline stops the trial (None: no
            deadline); see :meth:`should_stop`.
        timeout: the per-trial timeout of an in-process trial (seconds from the handle's
            creation; None: none): past it, :meth:`report`, :meth:`should_prune` and
            :meth:`should_stop` raise :class:`TrialTimedOut` (worker processes are killed
            instead).

    Example:
        >>> def objective(trial):
        ...     model = build(trial.config)
        ...     for epoch in range(int(trial.budget or 20)):
        ...         acc = train_one_epoch(model)
        ...         trial.report(acc, epoch)
        ...         if trial.should_prune():
        ...             raise autodl.TrialPruned()
        ...     return acc
    """

    def __init__(
        self,
        id: int,
        config: "Config",
        budget: float | None = None,
        *,
        on_report: Callable[[int, Any], None] | None = None,  # (step, value or tuple)
        pruner: Callable[[], bool] | None = None,
        run_dir: str | None = None,
        keeper: Callable[[float], bool] | None = None,
        stop_at: float | None = None,
        timeout: float | None = None,
        n_objectives: int | None = None,
    ):
        self.id = id
        #: the study's number of directions, when known (a reported tuple must have as many)
        self.n_objectives = n_objectives
        self.stop_at = stop_at
        self.timeout = timeout
        self._timeout_at = None if timeout is None else time.monotonic() + float(timeout)
        self.config = dict(config)
        self.budget = budget
        self.run_dir = run_dir
        self.intermediate: dict[int, float | tuple[float, ...]] = {}
        self.user_attrs: dict[str, Any] = {}
        #: constraint values set with :meth:`set_constraint`, by name (<= 0: satisfied)
        self.constraints: dict[str, float] = {}
        self._on_report = on_report
        self._pruner = pruner
        self._keeper = keeper

    @property
    def params(self) -> dict[str, Any]:
        """Alias of :attr:`config`."""
        return self.config

    def report(self, value: "float | Sequence[float]", step: int) -> None:
        """Record an intermediate ``value`` (in the study's direction) at ``step``.

        The order is Optuna's, ``trial.report(value, step)``; ``step`` (epochs done, say) is an
        int >= 0. Reporting a step again replaces its value. In a study with several
        directions ``value`` may be a tuple, one value per direction (``trial.report((acc,
        latency_ms), epoch)``): that is what multi-objective pruning (``moasha`` with
        ``mode="prune"``) ranks; an objective known before training (a latency) is reported
        with the same value at every step.

        Raises:
            TypeError: ``step`` is not an int (a float, a bool, a string; e.g. the arguments of
                ``report(step, value)``, the order of older autodl versions).
            ValueError: ``step`` is negative, ``value`` is not a finite number (or a tuple of
                them), or a tuple's length is not the study's number of directions.
        """
        step = check_step(step)
        if is_sequence(value):
            vs, why = check_values(value)
            if vs is None:
                raise ValueError(f"trial.report(value, step={step}): {why}")
            if self.n_objectives is not None and len(vs) != self.n_objectives:
                raise ValueError(f"trial.report(value, step={step}): {len(vs)} values, but the study "
                                 f"has {self.n_objectives} direction{'s' * (self.n_objectives != 1)}")
            v: float | tuple[float, ...] = vs[0] if len(vs) == 1 else vs
        else:
            v, why = check_value(value)
            if v is None:
                raise ValueError(f"trial.report(value, step={step}): {why}")
        self.intermediate[step] = v
        if self._on_report is not None:
            self._on_report(step, v)
        self._check_timeout()

    def _check_timeout(self) -> None:
        if self._timeout_at is not None and time.monotonic() >= self._timeout_at:
            raise TrialTimedOut(self.timeout)

    def should_prune(self) -> bool:
        """Whether the searcher's rule says to stop this trial now (then raise TrialPruned)."""
        self._check_timeout()
        return bool(self._pruner()) if self._pruner is not None else False

    def should_stop(self) -> bool:
        """Whether the study's deadline (``optimize(timeout=..., stop_at_timeout=True)``) has come
        for this trial: an objective that checks it (between epochs or batches) and raises
        :class:`~autodl.TrialPruned` stops in time even where the study cannot kill it (the
        inline executor); the trial is recorded PRUNED."""
        self._check_timeout()
        return self.stop_at is not None and time.time() >= self.stop_at

    def worth_keeping(self, value: float) -> bool:
        """Whether this trial, ending with ``value`` (in the study's direction), may still be
        continued at a larger budget or be the best, i.e. whether saving its training state
        (a checkpoint) can pay off. Multi-fidelity searchers answer False once their promotion
        rule rules it out; True when unknown (e.g. on Dask workers). Skipping a checkpoint on
        False never changes results: a trial whose state is missing retrains from scratch."""
        return bool(self._keeper(value)) if self._keeper is not None else True

    def prune(self) -> None:
        """Stop the trial as pruned (same as ``raise autodl.TrialPruned()``)."""
        raise TrialPruned()

    def set_constraint(self, key: "str | Sequence[float] | Mapping[str, float]",
                       value: float | None = None) -> None:
        """Set a constraint value: the trial is feasible when every one is <= 0.

        Optuna 5's form, ``trial.set_constraint("latency", ms - 2.0)``, names one constraint;
        ``trial.set_constraint([c1, c2])`` sets several at once (named ``"0"``, ``"1"``, as
        Optuna names the values of a ``constraints_func``). Setting a name again replaces its
        value. Searchers rank feasible trials first, infeasible ones by their total violation,
        and ``best_trial`` / ``best_trials`` hold feasible trials only.

        Raises:
            TypeError: a value is not a number.
            ValueError: a value is NaN.
        """
        if isinstance(key, str):
            if value is None:
                raise TypeError(f"set_constraint({key!r}) needs a value: set_constraint(name, value)")
            self.constraints.update(check_constraints({key: value}))
        else:
            if value is not None:
                raise TypeError("set_constraint(values) takes the values alone; "
                                "use set_constraint(name, value) for one named constraint")
            self.constraints.update(check_constraints(key))

    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a JSON-serializable value with the trial (e.g. a metric besides the objective)."""
        self.user_attrs[str(key)] = value

    def __repr__(self) -> str:
        return f"RunningTrial(id={self.id}, config={self.config}, budget={self.budget})"
