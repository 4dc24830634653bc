"""Parameter types of a search space: :class:`Float`, :class:`Int` and :class:`Categorical`.

Each parameter knows how to validate itself, draw a value, map a value to and from the unit
interval (the codec numeric searchers work in) and list grid values. A parameter may carry a
``condition``: a mapping ``{parent_name: [allowed values]}``; it is active only when every
named parent is active and takes one of the allowed values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from autodl.errors import SpaceError

Condition = Mapping[str, Sequence[Any]]


def _as_number(value: Any, what: str, name: str) -> float:
    """Accept ints, floats and numeric strings (YAML 1.1 reads ``1e-3`` as a string)."""
    if isinstance(value, bool):
        raise SpaceError(f"parameter '{name}': {what} is {value!r}, but must be a number")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise SpaceError(f"parameter '{name}': {what} is {value!r}, but must be a number")


def _normalize_condition(condition: Condition | None, name: str) -> dict[str, tuple]:
    if condition is None:
        return {}
    if not isinstance(condition, Mapping) or not condition:
        raise SpaceError(
            f"parameter '{name}': condition is {condition!r}, but must be a mapping "
            "{parent: [values]} such as {model: [linear]}"
        )
    out: dict[str, tuple] = {}
    for parent, values in condition.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            values = [values]
        if len(values) == 0:
            raise SpaceError(f"parameter '{name}': condition on '{parent}' lists no values")
        out[str(parent)] = tuple(values)
    return out


@dataclass(frozen=True)
class _Param:
    """Fields and behaviour shared by every parameter type."""

    condition: Mapping[str, tuple] = field(default_factory=dict, kw_only=True)

    kind = "param"

    def validate(self, name: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        return self.from_unit(float(rng.random()))

    def to_unit(self, value: Any) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def contains(self, value: Any) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def grid(self, points: int) -> list:  # pragma: no cover - overridden
        raise NotImplementedError

    def to_dict(self) -> dict:  # pragma: no cover - overridden
        raise NotImplementedError

    def _condition_dict(self) -> dict:
        return {"condition": {k: list(v) for k, v in self.condition.items()}} if self.condition else {}


@dataclass(frozen=True)
class Float(_Param):
    """A real-valued parameter in ``[low, high]``.

    Args:
        low, high: bounds, ``low < high``.
        log: sample uniformly in log space (needs ``low > 0``).
        step: if given, values lie on ``low + k * step`` (not allowed with ``log``).
        condition: ``{parent: [values]}``; the parameter is active only then.

    Example:
        >>> Float(1e-4, 1e-1, log=True)
    """

    low: float
    high: float
    log: bool = False
    step: float | None = None

    kind = "float"

    def __init__(self, low, high, log=False, step=None, *, condition=None):
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", bool(log))
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "condition", condition)

    def validate(self, name: str) -> None:
        low = _as_number(self.low, "low", name)
        high = _as_number(self.high, "high", name)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "condition", _normalize_condition(self.condition, name))
        if not (math.isfinite(low) and math.isfinite(high)):
            raise SpaceError(f"parameter '{name}': bounds must be finite, got [{low}, {high}]")
        if low >= high:
            raise SpaceError(f"parameter '{name}': low is {low:g}, but must be < high ({high:g})")
        if self.log and low <= 0:
            raise SpaceError(f"parameter '{name}': log=True needs low > 0, but low is {low:g}")
        if self.step is not None:
            step = _as_number(self.step, "step", name)
            object.__setattr__(self, "step", step)
            if self.log:
                raise SpaceError(f"parameter '{name}': step cannot be combined with log=True")
            if step <= 0:
                raise SpaceError(f"parameter '{name}': step is {step:g}, but must be > 0")
            if step > high - low:
                raise SpaceError(
                    f"parameter '{name}': step is {step:g}, larger than the range {high - low:g}"
                )

    @property
    def _n_steps(self) -> int:
        return int(math.floor((self.high - self.low) / self.step + 1e-9))

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return float(min(max(math.exp(lo + u * (hi - lo)), self.low), self.high))
        if self.step is not None:
            n = self._n_steps
            k = min(int(math.floor(u * (n + 1))), n)
            return float(round(self.low + k * self.step, 12))
        return float(self.low + u * (self.high - self.low))

    def to_unit(self, value: Any) -> float:
        v = float(value)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return (math.log(v) - lo) / (hi - lo)
        if self.step is not None:
            n = self._n_steps
            k = round((v - self.low) / self.step)
            return (k + 0.5) / (n + 1)
        return (v - self.low) / (self.high - self.low)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        v = float(value)
        if not (self.low - 1e-12 <= v <= self.high + 1e-12):
            return False
        if self.step is not None:
            k = (v - self.low) / self.step
            return abs(k - round(k)) < 1e-6
        return True

    def grid(self, points: int) -> list[float]:
        if self.step is not None and self._n_steps + 1 <= points:
            return [float(round(self.low + k * self.step, 12)) for k in range(self._n_steps + 1)]
        us = np.linspace(0.0, 1.0, max(points, 2))
        values = [self.from_unit(u) for u in us]
        return list(dict.fromkeys(values))

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"type": "float", "low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step is not None:
            d["step"] = self.step
        d.update(self._condition_dict())
        return d


@dataclass(frozen=True)
class Int(_Param):
    """An integer parameter in ``[low, high]`` (both included).

    Args:
        low, high: bounds, ``low < high``.
        log: sample uniformly in log space (needs ``low >= 1`` and ``step == 1``).
        step: spacing of allowed values, ``low + k * step``.
        condition: ``{parent: [values]}``; the parameter is active only then.
    """

    low: int
    high: int
    log: bool = False
    step: int = 1

    kind = "int"

    def __init__(self, low, high, log=False, step=1, *, condition=None):
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "log", bool(log))
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "condition", condition)

    def validate(self, name: str) -> None:
        low = _as_number(self.low, "low", name)
        high = _as_number(self.high, "high", name)
        step = _as_number(self.step if self.step is not None else 1, "step", name)
        for what, v in (("low", low), ("high", high), ("step", step)):
            if not float(v).is_integer():
                raise SpaceError(f"parameter '{name}': {what} is {v:g}, but must be an integer")
        low, high, step = int(low), int(high), int(step)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "condition", _normalize_condition(self.condition, name))
        if low >= high:
            raise SpaceError(f"parameter '{name}': low is {low}, but must be < high ({high})")
        if step <= 0:
            raise SpaceError(f"parameter '{name}': step is {step}, but must be > 0")
        if self.log and low <= 0:
            raise SpaceError(f"parameter '{name}': log=True needs low >= 1, but low is {low}")
        if self.log and step != 1:
            raise SpaceError(f"parameter '{name}': step cannot be combined with log=True")
        if step > high - low:
            raise SpaceError(f"parameter '{name}': step is {step}, larger than the range {high - low}")

    @property
    def _n_steps(self) -> int:
        return (self.high - self.low) // self.step

    def from_unit(self, u: float) -> int:
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
            v = int(round(math.exp(lo + u * (hi - lo))))
            return int(min(max(v, self.low), self.high))
        n = self._n_steps
        k = min(int(math.floor(u * (n + 1))), n)
        return int(self.low + k * self.step)

    def to_unit(self, value: Any) -> float:
        v = int(value)
        if self.log:
            lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
            return (math.log(v) - lo) / (hi - lo)
        n = self._n_steps
        return ((v - self.low) / self.step + 0.5) / (n + 1)

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return False
        v = int(value)
        return self.low <= v <= self.high and (v - self.low) % self.step == 0

    def grid(self, points: int) -> list[int]:
        if self._n_steps + 1 <= points:
            return [self.low + k * self.step for k in range(self._n_steps + 1)]
        us = np.linspace(0.0, 1.0, max(points, 2))
        return list(dict.fromkeys(self.from_unit(u) for u in us))

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"type": "int", "low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step != 1:
            d["step"] = self.step
        d.update(self._condition_dict())
        return d


_PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Categorical(_Param):
    """A choice among plain values (strings, numbers, booleans or None).

    Example:
        >>> Categorical(["relu", "tanh", "gelu"])
    """

    choices: tuple

    kind = "categorical"

    def __init__(self, choices, *, condition=None):
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            choices = (choices,)  # validated (and rejected) below with a clear message
            object.__setattr__(self, "_bad", True)
        object.__setattr__(self, "choices", tuple(choices))
        object.__setattr__(self, "condition", condition)

    def validate(self, name: str) -> None:
        object.__setattr__(self, "condition", _normalize_condition(self.condition, name))
        if getattr(self, "_bad", False):
            raise SpaceError(f"parameter '{name}': choices must be a list, got {self.choices[0]!r}")
        if len(self.choices) == 0:
            raise SpaceError(f"parameter '{name}': choices is empty; give at least one value")
        for c in self.choices:
            if not isinstance(c, _PLAIN):
                raise SpaceError(
                    f"parameter '{name}': choice {c!r} is a {type(c).__name__}; "
                    "choices must be strings, numbers, booleans or null"
                )
        seen: list = []
        for c in self.choices:
            # 1 == True and 1 == 1.0 in Python; compare with the type so they stay distinct
            key = (type(c).__name__, c)
            if key in seen:
                raise SpaceError(f"parameter '{name}': choice {c!r} is listed twice")
            seen.append(key)

    def index(self, value: Any) -> int:
        for i, c in enumerate(self.choices):
            if type(c) is type(value) and c == value:
                return i
        for i, c in enumerate(self.choices):
            if c == value and not isinstance(value, bool) and not isinstance(c, bool):
                return i
        raise ValueError(f"{value!r} is not one of {list(self.choices)}")

    def from_unit(self, u: float) -> Any:
        k = len(self.choices)
        return self.choices[min(int(math.floor(min(max(u, 0.0), 1.0) * k)), k - 1)]

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def contains(self, value: Any) -> bool:
        try:
            self.index(value)
        except ValueError:
            return False
        return True

    def grid(self, points: int) -> list:
        return list(self.choices)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"type": "categorical", "choices": list(self.choices)}
        d.update(self._condition_dict())
        return d


Param = Float | Int | Categorical

PARAM_TYPES: dict[str, type] = {"float": Float, "int": Int, "categorical": Categorical}
