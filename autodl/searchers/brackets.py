"""Bookkeeping for multi-fidelity searchers: bracket schedules, synchronous brackets, ASHA rungs.

Pure Python (no I/O, no models): the searchers in :mod:`autodl.searchers.multifidelity` own
the sampling and use these classes to decide *which config runs next at which budget*.

Hyperband schedule (Li et al. 2018, Algorithm 1), with ``r = min_budget``, ``R = max_budget``::

    s_max = floor(log_eta(R / r))
    for s in s_max, s_max - 1, ..., 0:                    # one bracket per s
        n = ceil((s_max + 1) / (s + 1) * eta ** s)         # configs sampled for the bracket
        for i in 0..s:                                     # its rungs
            n_i = floor(n * eta ** -i)                     # configs run in rung i
            r_i = R * eta ** (-s + i)                      # budget of rung i

For ``(r, R, eta) = (1, 27, 3)``: s=3 runs 27, 9, 3, 1 configs at 1, 3, 9, 27; s=2 runs 12, 4, 1
at 3, 9, 27; s=1 runs 6, 2 at 9, 27; s=0 runs 4 at 27.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

#: relative tolerance when comparing budgets and powers of eta
_TOL = 1e-9


def validate_fidelity(min_budget: Any, max_budget: Any, eta: Any) -> tuple[float, float, float]:
    """Check ``min_budget``, ``max_budget`` and ``eta``; return them as floats.

    Raises:
        ValueError: with a one-line message such as "`eta` is 1, but must be > 1".
    """
    for name, v in (("min_budget", min_budget), ("max_budget", max_budget), ("eta", eta)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            raise ValueError(f"`{name}` is {v!r}, but must be a finite number")
    if min_budget <= 0:
        raise ValueError(f"`min_budget` is {min_budget}, but must be > 0")
    if max_budget < min_budget:
        raise ValueError(f"`max_budget` is {max_budget}, but must be >= `min_budget` ({min_budget})")
    if eta <= 1:
        raise ValueError(f"`eta` is {eta}, but must be > 1")
    return float(min_budget), float(max_budget), float(eta)


#: the command-line flags of the budget parameters
FIDELITY_FLAGS = {"min_budget": "--min-budget", "max_budget": "--max-budget", "eta": "--eta"}


def check_fidelity_flags(min_budget: Any, max_budget: Any, eta: Any) -> tuple[float, float, float]:
    """:func:`validate_fidelity` for values given as flags: a :class:`~autodl.errors.UserError`
    naming ``--min-budget`` etc."""
    from autodl.errors import UserError

    try:
        return validate_fidelity(min_budget, max_budget, eta)
    except ValueError as exc:
        message = str(exc)
        for key, flag in FIDELITY_FLAGS.items():
            message = message.replace(f"`{key}`", flag)
        raise UserError(message) from None


def max_bracket(min_budget: float, max_budget: float, eta: float) -> int:
    """``s_max = floor(log_eta(max_budget / min_budget))``, robust to float round-off."""
    s = 0
    while min_budget * eta ** (s + 1) <= max_budget * (1 + _TOL):
        s += 1
    return s


@dataclass(frozen=True)
class BracketSpec:
    """One Hyperband bracket: ``sizes[i]`` configs run with ``budgets[i]`` in rung ``i``."""

    s: int
    sizes: tuple[int, ...]
    budgets: tuple[float, ...]

    @property
    def n_configs(self) -> int:
        return self.sizes[0]

    @property
    def total_budget(self) -> float:
        return sum(n * b for n, b in zip(self.sizes, self.budgets))


def bracket_spec(s: int, min_budget: float, max_budget: float, eta: float) -> BracketSpec:
    """The bracket with ``s`` halvings (``s`` in ``0..s_max``), per Li et al. (2018)."""
    s_max = max_bracket(min_budget, max_budget, eta)
    if not 0 <= s <= s_max:
        raise ValueError(f"bracket s={s} is outside 0..{s_max}")
    n = math.ceil((s_max + 1) / (s + 1) * eta ** s * (1 - _TOL))
    sizes = tuple(max(1, math.floor(n * eta ** (-i) * (1 + _TOL))) for i in range(s + 1))
    budgets = tuple(_clean_budget(max_budget * eta ** (-s + i)) for i in range(s + 1))
    return BracketSpec(s, sizes, budgets)


def hyperband_brackets(min_budget: float, max_budget: float, eta: float) -> list[BracketSpec]:
    """All brackets of one Hyperband iteration, most aggressive (``s = s_max``) first."""
    min_budget, max_budget, eta = validate_fidelity(min_budget, max_budget, eta)
    s_max = max_bracket(min_budget, max_budget, eta)
    return [bracket_spec(s, min_budget, max_budget, eta) for s in range(s_max, -1, -1)]


def rung_budgets(min_budget: float, max_budget: float, eta: float) -> list[float]:
    """ASHA's rung budgets: those of the most aggressive Hyperband bracket,
    ``max_budget * eta ** (k - s_max)`` for ``k = 0..s_max`` (``min_budget * eta ** k`` when
    ``max_budget / min_budget`` is a power of ``eta``); the top rung is always ``max_budget``."""
    s_max = max_bracket(min_budget, max_budget, eta)
    return list(bracket_spec(s_max, min_budget, max_budget, eta).budgets)


def _clean_budget(b: float) -> float:
    """Round float noise away (``27 * 3**-3`` -> ``1.0``)."""
    r = round(b)
    return float(r) if abs(b - r) <= _TOL * max(1.0, abs(b)) else float(b)


def same_budget(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= _TOL * max(1.0, abs(a), abs(b))


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit key of a config (used to name its checkpoint folder)."""
    from autodl.space import config_key

    return hashlib.sha1(config_key(config).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------- synchronous bracket
TODO, RUNNING, DONE = "todo", "running", "done"


@dataclass
class SyncBracket:
    """State of one synchronous successive-halving bracket.

    Configs are identified by their *slot* (index among the bracket's sampled configs). Rung 0
    is filled lazily: :meth:`next_job` returns ``(0, None)`` while fewer than ``sizes[0]``
    configs exist, and the searcher then samples one and calls :meth:`add_config`. When every
    job of the current rung has a result, the best ``sizes[k + 1]`` successful slots (ties by
    slot) are promoted; failures are never promoted.
    """

    index: int
    spec: BracketSpec
    configs: dict[int, dict] = field(default_factory=dict)
    #: per rung: {slot: state}
    states: list[dict[int, str]] = field(default_factory=list)
    #: per rung: {slot: value or None (failed)}
    results: list[dict[int, float | None]] = field(default_factory=list)
    rung: int = 0

    def __post_init__(self) -> None:
        if not self.states:
            self.states = [{} for _ in self.spec.sizes]
            self.results = [{} for _ in self.spec.sizes]

    @property
    def done(self) -> bool:
        return self.rung >= len(self.spec.sizes)

    def budget(self, rung: int) -> float:
        return self.spec.budgets[rung]

    def add_config(self, config: dict) -> int:
        """Register a newly sampled config in rung 0 (as running); returns its slot."""
        slot = len(self.configs)
        while slot in self.configs:
            slot += 1
        self.configs[slot] = dict(config)
        self.states[0][slot] = RUNNING
        return slot

    def adopt(self, rung: int, slot: int, config: dict) -> None:
        """Make a slot known that was asked by an earlier process (restored or retried).

        A slot seen first at ``rung > 0`` finished the lower rungs (their result may be lost).
        """
        if slot not in self.configs:
            self.configs[slot] = dict(config)
        for k in range(rung):
            self.states[k].setdefault(slot, DONE)
        if self.states[rung].get(slot, TODO) == TODO:
            self.states[rung][slot] = RUNNING

    def next_job(self) -> tuple[int, int | None] | None:
        """``(rung, slot)`` to run next, ``(0, None)`` if a new config is needed, or None when
        the current rung waits for results (or the bracket is done)."""
        if self.done:
            return None
        k = self.rung
        for slot, st in sorted(self.states[k].items()):
            if st == TODO:
                return k, slot
        if k == 0 and len(self.configs) < self.spec.sizes[0]:
            return 0, None
        return None

    def start(self, rung: int, slot: int) -> None:
        self.states[rung][slot] = RUNNING

    def is_running(self, rung: int, slot: int) -> bool:
        return self.states[rung].get(slot) == RUNNING

    def release(self, rung: int, slot: int) -> None:
        """A running job that will get no result: :meth:`next_job` hands it out again."""
        if self.is_running(rung, slot):
            self.states[rung][slot] = TODO

    def record(self, rung: int, slot: int, value: float | None) -> None:
        """A result for ``slot`` at ``rung`` (value None: failed); may promote."""
        self.results[rung][slot] = value
        if rung < len(self.states):
            self.states[rung][slot] = DONE
        self._advance()

    def _advance(self) -> None:
        while not self.done:
            k = self.rung
            st = self.states[k]
            if k == 0 and len(self.configs) < self.spec.sizes[0]:
                return
            if any(s != DONE for s in st.values()):
                return
            if k + 1 >= len(self.spec.sizes):
                self.rung += 1
                return
            ok = [(v, slot) for slot, v in self.results[k].items() if v is not None and slot in st]
            ok.sort()
            promoted = [slot for _, slot in ok[: self.spec.sizes[k + 1]]]
            self.rung += 1
            nxt = self.states[self.rung]
            for slot in promoted:
                if slot not in nxt:
                    nxt[slot] = DONE if slot in self.results[self.rung] else TODO
            if not nxt:  # nothing succeeded: the bracket ends early
                self.rung = len(self.spec.sizes)
                return


# ---------------------------------------------------------------------- ASHA rungs
@dataclass
class AshaRungs:
    """Asynchronous successive halving (Li et al. 2020, Algorithm 2) bookkeeping.

    ``results[k]`` holds ``{slot: value}`` of configs finished at rung ``k`` and ``promoted[k]``
    the slots already sent from rung ``k`` to ``k + 1``. A slot in the top ``1/eta`` of rung ``k``
    that was not promoted yet is promotable; the highest rung with one wins.

    ``order`` ranks a rung's results when they are not single floats (several objectives):
    it takes ``{slot: result}`` (failures excluded) and how many first places are needed, and
    returns the slots best first; by default results are floats, ranked by value, then slot.
    """

    budgets: list[float]
    eta: float
    configs: dict[int, dict] = field(default_factory=dict)
    results: list[dict[int, Any]] = field(default_factory=list)
    promoted: list[set[int]] = field(default_factory=list)
    order: Callable[[Mapping[int, Any], int], list[int]] | None = None

    def __post_init__(self) -> None:
        if not self.results:
            self.results = [{} for _ in self.budgets]
            self.promoted = [set() for _ in self.budgets]

    def add_config(self, config: dict) -> int:
        slot = len(self.configs)
        while slot in self.configs:
            slot += 1
        self.configs[slot] = dict(config)
        return slot

    def promotable(self) -> tuple[int, int] | None:
        """``(rung to run, slot)`` of the best promotable config in the highest rung, or None."""
        for k in range(len(self.budgets) - 2, -1, -1):
            n_top = int(math.floor(len(self.results[k]) / self.eta * (1 + _TOL)))
            if n_top == 0:
                continue
            for slot in self.ranked(k, n_top)[:n_top]:
                if slot not in self.promoted[k]:
                    return k + 1, slot
        return None

    def ranked(self, rung: int, top: int | None = None) -> list[int]:
        """The slots of ``rung``'s successes, best first (``top``: only that many first places
        need to be exact)."""
        ok = {slot: v for slot, v in self.results[rung].items() if v is not None}
        if self.order is not None:
            return list(self.order(ok, len(ok) if top is None else top))
        return [slot for _, slot in sorted((v, slot) for slot, v in ok.items())]

    def mark_promoted(self, rung: int, slot: int) -> None:
        """``slot`` was sent to ``rung`` (so it left ``rung - 1``)."""
        for k in range(rung):
            self.promoted[k].add(slot)

    def unpromote(self, rung: int, slot: int) -> None:
        """The run of ``slot`` at ``rung`` will get no result: it may be promoted again."""
        if rung > 0 and slot not in self.results[rung]:
            self.promoted[rung - 1].discard(slot)

    def record(self, rung: int, slot: int, value: float | None) -> None:
        self.results[rung][slot] = value
        self.mark_promoted(rung, slot)


# ---------------------------------------------------------------------- define-by-run rule
class RungPruner:
    """The successive-halving rule on intermediate values (define-by-run pruning).

    Rungs sit at steps ``min_budget * eta ** k`` below ``max_budget``. When a trial's latest
    reported step reaches a rung, its latest value is recorded there and the trial goes on
    only if it is among the best ``max(1, n // eta)`` of the ``n`` values recorded at that rung
    (itself included), as in ASHA; with fewer than ``eta`` values only the best goes on.
    ``order`` ranks values that are not single floats (as for :class:`AshaRungs`: ``{trial id:
    value}`` and the places needed -> ids best first); a trial is then "better" when it is
    ranked before.
    """

    def __init__(self, min_budget: float, max_budget: float, eta: float,
                 order: Callable[[Mapping[int, Any], int], list[int]] | None = None):
        self.steps = [b for b in rung_budgets(min_budget, max_budget, eta) if b < max_budget * (1 - _TOL)]
        self.eta = eta
        self.order = order
        self.values: list[dict[int, Any]] = [{} for _ in self.steps]
        self.passed: dict[int, int] = {}

    def should_prune(self, trial_id: int, intermediate: Mapping[int, float]) -> bool:
        if not intermediate:
            return False
        step = max(intermediate)
        value = intermediate[step]
        k = self.passed.get(trial_id, 0)
        while k < len(self.steps) and step >= self.steps[k] * (1 - _TOL):
            rung = self.values[k]
            rung[trial_id] = value
            keep = max(1, int(math.floor(len(rung) / self.eta * (1 + _TOL))))
            if self.order is None:
                better = sum(1 for v in rung.values() if v < value)
            else:
                better = list(self.order(rung, keep + 1)).index(trial_id)
            if better >= keep:
                self.passed[trial_id] = k
                return True
            k += 1
            self.passed[trial_id] = k
        return False


__all__ = ["BracketSpec", "bracket_spec", "hyperband_brackets", "max_bracket", "rung_budgets",
           "validate_fidelity", "config_hash", "SyncBracket", "AshaRungs", "RungPruner", "same_budget"]
