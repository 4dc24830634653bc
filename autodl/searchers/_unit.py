"""Vectorized helpers on the unit-cube encoding shared by the model-based searchers.

:class:`UnitCodec` snaps many unit-cube points at once to the encodings of real values (cell
centres for integers, stepped floats and categoricals), marks inactive conditional coordinates
as NaN, and turns rows back into configurations. Model-based searchers score snapped points so
that the model sees exactly what will be evaluated.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from autodl.space import Categorical, Config, Float, Int, Space, config_key

_BLAS_CONTROLLER: list = []


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS on one thread: the matrices here are small, and several threads only add
    contention (badly so when other processes share the cores)."""
    if not _BLAS_CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # optional: without it BLAS keeps its default threading
            _BLAS_CONTROLLER.append(None)
        else:
            _BLAS_CONTROLLER.append(ThreadpoolController())
    controller = _BLAS_CONTROLLER[0]
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield


#: coordinate kinds
CONTINUOUS, DISCRETE, CATEGORICAL = 0, 1, 2


def _snapper(param: Any) -> tuple[int, int, Callable[[np.ndarray], np.ndarray]]:
    """(kind, number of levels or 0, vectorized unit -> snapped unit) for one parameter."""
    if isinstance(param, Categorical):
        k = len(param.choices)

        def snap_cat(u: np.ndarray) -> np.ndarray:
            idx = np.clip(np.floor(u * k), 0, k - 1)
            return (idx + 0.5) / k

        return CATEGORICAL, k, snap_cat
    if isinstance(param, Int) and param.log:
        lo, hi = math.log(param.low - 0.5), math.log(param.high + 0.5)
        low, high = param.low, param.high

        def snap_logint(u: np.ndarray) -> np.ndarray:
            v = np.clip(np.rint(np.exp(lo + np.clip(u, 0.0, 1.0) * (hi - lo))), low, high)
            return (np.log(v) - lo) / (hi - lo)

        return DISCRETE, high - low + 1, snap_logint
    if isinstance(param, Int) or (isinstance(param, Float) and param.step is not None):
        n = param._n_steps  # noqa: SLF001 - same package family, the codec mirrors from_unit

        def snap_steps(u: np.ndarray) -> np.ndarray:
            k = np.clip(np.floor(u * (n + 1)), 0, n)
            return (k + 0.5) / (n + 1)

        return DISCRETE, n + 1, snap_steps

    def snap_cont(u: np.ndarray) -> np.ndarray:
        return np.clip(u, 0.0, 1.0)

    return CONTINUOUS, 0, snap_cont


class UnitCodec:
    """Batch operations on the ``[0, 1]^dim`` encoding of a :class:`~autodl.space.Space`.

    Attributes:
        kinds: per coordinate, ``CONTINUOUS``, ``DISCRETE`` or ``CATEGORICAL``.
        levels: per coordinate, number of values (0 for continuous).
        cell: per coordinate, width of one value's cell in unit space (0 for continuous).
    """

    def __init__(self, space: Space):
        self.space = space
        self.names = list(space.names)
        self.dim = len(self.names)
        self.index = {n: i for i, n in enumerate(self.names)}
        kinds, levels, snappers = [], [], []
        for n in self.names:
            kind, k, fn = _snapper(space.params[n])
            kinds.append(kind)
            levels.append(k)
            snappers.append(fn)
        self.kinds = np.array(kinds, dtype=int)
        self.levels = np.array(levels, dtype=int)
        self.cell = np.where(self.levels > 0, 1.0 / np.maximum(self.levels, 1), 0.0)
        self._snappers = snappers
        self.numeric = np.flatnonzero(self.kinds != CATEGORICAL)
        self.categorical = np.flatnonzero(self.kinds == CATEGORICAL)
        self.conditional = space.is_conditional
        # conditions as (child index, [(parent index, allowed unit codes)]) in topological order
        self._conditions: list[tuple[int, list[tuple[int, np.ndarray]]]] = []
        for n in space.order:
            p = space.params[n]
            if p.condition:
                parents = [
                    (self.index[parent], np.array([space.params[parent].to_unit(v) for v in values]))
                    for parent, values in p.condition.items()
                ]
                self._conditions.append((self.index[n], parents))

    # ------------------------------------------------------------------ batch codec
    def snap(self, u: np.ndarray) -> np.ndarray:
        """Snap rows of ``u`` (n x dim) to encodings of real values; inactive coordinates NaN."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        out = np.empty_like(u)
        filled = np.where(np.isfinite(u), u, 0.5)
        for j, fn in enumerate(self._snappers):
            out[:, j] = fn(filled[:, j])
        if self.conditional:
            for child, parents in self._conditions:
                active = np.ones(len(out), dtype=bool)
                for parent, allowed in parents:
                    pv = out[:, parent]
                    ok = np.isfinite(pv) & np.any(np.abs(pv[:, None] - allowed[None, :]) < 1e-9, axis=1)
                    active &= ok
                out[~active, child] = np.nan
        return out

    def encode(self, configs: Iterable[Config]) -> np.ndarray:
        rows = [self.space.encode(c) for c in configs]
        return np.array(rows, dtype=float).reshape(len(rows), self.dim)

    def decode(self, row: np.ndarray) -> Config:
        """The configuration of one snapped row (conditions applied by the space)."""
        return self.space.decode(row)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` snapped uniform points (uniform in the encoding, hence log-uniform where log)."""
        return self.snap(rng.random((n, self.dim)))

    def category_index(self, u: np.ndarray, j: int) -> np.ndarray:
        """Integer category index of coordinate ``j`` (NaN -> -1)."""
        k = self.levels[j]
        finite = np.isfinite(u)
        idx = np.full(u.shape, -1, dtype=int)
        idx[finite] = np.clip(np.floor(u[finite] * k), 0, k - 1).astype(int)
        return idx


class DedupeSet:
    """Canonical keys of configurations already observed or pending."""

    def __init__(self) -> None:
        self._keys: set[str] = set()

    def add(self, config: Config) -> None:
        self._keys.add(config_key(config))

    def __contains__(self, config: object) -> bool:
        return config_key(config) in self._keys  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._keys)


def pending_keys(configs: Iterable[Config]) -> DedupeSet:
    """A :class:`DedupeSet` of the given (pending) configurations."""
    keys = DedupeSet()
    for config in configs:
        keys.add(config)
    return keys


def fresh_sample(space: Space, rng: np.random.Generator, seen: DedupeSet, pending: DedupeSet,
                 tries: int = 50) -> Config:
    """A random configuration that is neither observed nor pending (the last draw after
    ``tries`` attempts, for spaces too small to avoid repeats)."""
    config = space.sample(rng)
    for _ in range(tries):
        if config not in seen and config not in pending:
            break
        config = space.sample(rng)
    return config


class GrowingMatrix:
    """An append-only float matrix backed by a doubling buffer (amortized O(1) appends)."""

    def __init__(self, cols: int, capacity: int = 64):
        self._buf = np.empty((capacity, cols))
        self._n = 0

    def append(self, row: np.ndarray) -> None:
        if self._n == len(self._buf):
            bigger = np.empty((2 * len(self._buf), self._buf.shape[1]))
            bigger[: self._n] = self._buf[: self._n]
            self._buf = bigger
        self._buf[self._n] = row
        self._n += 1

    @property
    def values(self) -> np.ndarray:
        return self._buf[: self._n]

    def __len__(self) -> int:
        return self._n
