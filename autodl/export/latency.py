"""Deployment objectives of a model, measured on its ONNX file: latency and size.

``latency`` is the median wall time of :data:`SINGLE_CALLS` single-row onnxruntime calls of the
exported model, on one intra-op thread (how a request-serving process is usually pinned), after
:data:`WARMUP` untimed calls; the batch-64 latency is measured beside it. ``size`` is the file's
bytes. A search measures them in the trial's own process once its training is over, so no
training of that trial competes with the timing; with several workers another trial may run on
the other core at the time, which :attr:`Measurement.load` records (the 1-minute load average).

A user who deploys elsewhere passes ``latency_fn``: a callable that takes the ONNX file's bytes
and returns milliseconds, used instead of the local timing.

:class:`LatencyCache` keeps measurements per configuration (in a JSON file of the run folder, or
in memory), so a configuration tried again, an ensemble's member or a front member exported
later is not timed twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from autodl.errors import ExportError

#: single-row calls whose median is the latency (the issue's floor is 50)
SINGLE_CALLS = 64
#: batch-64 calls whose median is reported beside it
BATCH_CALLS = 8
#: untimed calls first (onnxruntime allocates on the first runs)
WARMUP = 5

#: the run folder's file of cached measurements (:class:`LatencyCache`)
LATENCY_FILE = "latency.json"

#: objective names a search accepts besides its metric, and their direction
DEPLOYMENT_OBJECTIVES = {"latency": "minimize", "size": "minimize", "params": "minimize"}
#: the name of the latency constraint ``max_latency_ms`` sets on each trial (tabular and networks)
LATENCY_CONSTRAINT = "latency_ms"
#: the trial attributes a measurement is kept in (tabular and networks)
ATTRS = ("latency_ms", "batch64_ms", "size_bytes", "latency_load")


def split_names(names: Any) -> list[str] | None:
    """``"metric,latency"`` or ``["metric", "latency"]`` as a list of lower-case names (None stays
    None); one line when it is neither."""
    from autodl.errors import UserError

    if names is None:
        return None
    if isinstance(names, str):
        names = names.split(",")
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise UserError(f"objectives is {names!r}, but must be names such as ['accuracy', 'latency']")
    out = [n.strip().lower() for n in names if n.strip()]
    if not out:
        raise UserError("objectives is empty; give e.g. ['accuracy', 'latency'] (--objectives accuracy,latency)")
    return out



@dataclass(frozen=True)
class Measurement:
    """What :func:`measure` found: milliseconds per single row (median), per batch of 64
    (median), the file's bytes, and the load average when it was measured."""

    latency_ms: float
    batch64_ms: float
    size_bytes: int
    load: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _feeds(meta: Mapping[str, Any], rows) -> dict[str, np.ndarray]:
    from autodl.export import runtime

    if meta.get("kind") == "torch" and meta.get("input_scheme") != "columns":
        return runtime.array_to_feeds(rows, meta)
    return runtime.table_to_feeds(rows, meta) if hasattr(rows, "columns") else runtime.array_to_feeds(rows, meta)


def _take(rows, idx: np.ndarray):
    if hasattr(rows, "iloc"):
        return rows.iloc[idx]
    return rows[idx]


def _median_ms(fn: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def load_latency_fn(text: str) -> Callable[[bytes], float]:
    """The function ``module:function`` names (``--latency-fn``); the current folder is searched
    for the module first. One line when it cannot be found."""
    import importlib
    import sys

    from autodl.errors import UserError

    module, _, name = str(text).partition(":")
    if not module or not name:
        raise UserError(f"--latency-fn is '{text}', but must be module:function (e.g. mymachine:latency_ms)")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"--latency-fn: cannot import module '{module}' ({exc}); run from its folder or "
                        "install it") from None
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise UserError(f"--latency-fn: module '{module}' has no function '{name}'")
    return fn


def measure(data: bytes, rows, *, latency_fn: Callable[[bytes], float] | None = None,
            single_calls: int = SINGLE_CALLS, batch_calls: int = BATCH_CALLS) -> Measurement:
    """Time the ONNX file ``data`` (from :func:`autodl.export.core.onnx_bytes`) on ``rows``.

    Args:
        data: the serialized model.
        rows: input rows the model takes (a DataFrame of raw columns or an array/tensor with the
            batch axis first); the single-row calls cycle through them, the batch calls take 64
            of them (repeated if fewer).
        latency_fn: a callable ``bytes -> milliseconds`` that replaces the local single-row
            timing (for another deployment machine); the batch-64 figure is then not measured
            (NaN).
    """
    from autodl.export import runtime

    n = len(rows)
    if n == 0:
        raise ExportError("no rows to time the model on")
    if latency_fn is not None:
        ms = float(latency_fn(data))
        if not np.isfinite(ms) or ms < 0:
            raise ExportError(f"latency_fn returned {ms!r}; it must return milliseconds >= 0")
        return Measurement(ms, float("nan"), len(data), _load())
    session = runtime.make_session(data, threads=1)
    meta = runtime.read_metadata(session)
    singles = [_feeds(meta, _take(rows, np.array([i % n]))) for i in range(min(n, 16))]
    batch = _feeds(meta, _take(rows, np.resize(np.arange(n), 64)))
    for i in range(WARMUP):
        session.run(None, singles[i % len(singles)])
    it = iter(range(10 ** 9))
    single = _median_ms(lambda: session.run(None, singles[next(it) % len(singles)]), single_calls)
    session.run(None, batch)
    batched = _median_ms(lambda: session.run(None, batch), batch_calls)
    return Measurement(single, batched, len(data), _load())


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def config_key(config: Mapping[str, Any], context: str = "") -> str:
    """A stable key of a configuration (and of what else decides the model, e.g. the data's
    columns): the cache's key."""
    text = json.dumps({"config": dict(config), "context": context}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class LatencyCache:
    """Measurements per configuration key; kept in ``path`` (JSON, rewritten atomically) when
    one is given, else in memory."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._items: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.is_file():
            try:
                self._items = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError):
                self._items = {}

    def get(self, key: str) -> Measurement | None:
        if self.path is not None and key not in self._items and self.path.is_file():
            try:  # another process of the run may have measured it meanwhile
                self._items.update(json.loads(self.path.read_text()))
            except (OSError, json.JSONDecodeError):
                pass
        item = self._items.get(key)
        if item is None:
            return None
        return Measurement(**{k: (float("nan") if k == "batch64_ms" and v is None else v) for k, v in item.items()})

    def put(self, key: str, m: Measurement) -> None:
        # NaN (no batch time with a latency_fn) is stored as null: the file stays strict JSON
        self._items[key] = {k: (None if isinstance(v, float) and v != v else v) for k, v in m.to_dict().items()}
        if self.path is not None:
            from autodl.runs.folder import atomic_write

            try:
                merged = json.loads(self.path.read_text()) if self.path.is_file() else {}
            except (OSError, json.JSONDecodeError):
                merged = {}
            merged.update(self._items)
            # one temporary file per process and thread (atomic_write): two trials of one process
            # (a Dask worker's threads) do not rename each other's file away
            atomic_write(self.path, lambda tmp: tmp.write_text(json.dumps(merged, sort_keys=True)))

    def measure(self, key: str, build: Callable[[], tuple[bytes, Any]], *,
                latency_fn: Callable[[bytes], float] | None = None) -> Measurement:
        """The cached measurement of ``key``, or ``build()`` (the ONNX bytes and rows to time on)
        measured and stored."""
        got = self.get(key)
        if got is not None:
            return got
        data, rows = build()
        m = measure(data, rows, latency_fn=latency_fn)
        self.put(key, m)
        return m
