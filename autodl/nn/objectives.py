"""Several objectives and a latency limit for network searches (``--model``, ``--nas``).

``objectives``: the first is the search metric (``"accuracy"``, ``"r2"`` or ``"metric"``), the
others from :data:`NET_OBJECTIVES`:

* ``latency``: milliseconds per single-row onnxruntime call (median, one thread; see
  :mod:`autodl.export.latency`) of the trial's network exported to ONNX
  (:func:`autodl.export.core.onnx_bytes`, ``check=False``), timed on the rows of the
  validation split;
* ``size``: bytes of that ONNX file;
* ``params``: trainable parameters of the network.

A network's latency, size and parameter count do not depend on its weights, so they are measured
when the trial starts, before it trains, and kept per configuration in the run folder's
``latency.json`` (:class:`~autodl.export.latency.LatencyCache`): a promoted trial, a retry or a
resumed run does not time the same network twice. That is what makes multi-objective *pruning*
possible: from its first epoch, a trial reports ``(accuracy, latency, ...)`` (the fixed objectives
repeated at every step) and multi-objective ASHA ranks those tuples
(:mod:`autodl.searchers.moasha`).

``max_latency_ms=X`` sets the constraint ``latency - X <= 0`` on every trial (named
:data:`LATENCY_CONSTRAINT`); the searchers rank feasible trials first and the final network is
the best feasible one.

The measurement is kept with each trial as user attributes (:data:`ATTRS`, plus ``params``).
Torch and onnxruntime are imported only when a trial measures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from autodl.errors import UserError
from autodl.export.latency import ATTRS, LATENCY_CONSTRAINT, LATENCY_FILE, load_latency_fn, split_names

#: objectives a network search takes besides its metric
NET_OBJECTIVES = ("latency", "size", "params")
#: names that stand for the search metric in first place
METRIC_NAMES = ("metric", "accuracy", "r2")
#: the run folder's cache of measurements
CACHE_FILE = LATENCY_FILE
#: the value of each objective a trial records, from a measurement's attributes
_ATTR_OF = {"latency": "latency_ms", "size": "size_bytes", "params": "params"}


def check_objectives(names: Any) -> list[str] | None:
    """``objectives`` checked: None, or a list (or ``"accuracy,latency"``) whose first name is the
    metric and whose others come from :data:`NET_OBJECTIVES`, each once. A metric alone is one
    objective (returned as given)."""
    out = split_names(names)
    if out is None:
        return None
    first, rest = out[0], out[1:]
    if first not in METRIC_NAMES:
        raise UserError(f"the first objective is the search metric ({', '.join(METRIC_NAMES)}), then "
                        f"{', '.join(NET_OBJECTIVES)}; got '{first}' first")
    for name in rest:
        if name not in NET_OBJECTIVES:
            raise UserError(f"unknown objective '{name}'; after the metric choose from: {', '.join(NET_OBJECTIVES)}")
    if len(set(rest)) != len(rest):
        raise UserError(f"objectives {out} name one twice; give each once")
    return out


def check_max_latency(value: Any) -> float | None:
    """``max_latency_ms`` as a positive float (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UserError(f"max latency is {value!r} ms, but must be a positive number")
    return float(value)


def count_params(model) -> int:
    """Trainable parameters of a torch module."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


@dataclass
class NetObjectives:
    """What each trial of a network search measures, and how its result becomes the study's
    values (picklable: it travels with the objective to worker processes).

    Args:
        objectives: every objective's name, the metric's first (None or one name: the metric).
        max_latency_ms: the latency limit (a constraint on every trial), or None.
        rows: the rows the latency is timed on (the validation split, as the network takes them).
        cache_path: the run folder's ``latency.json`` (None: in memory).
        context: what else decides the network besides its config (data shape, classes, kind).
        latency_fn: ``"module:function"`` (imported where the trial runs) or a callable taking
            the ONNX file's bytes and returning milliseconds, used instead of the local timing.
    """

    objectives: list[str] | None = None
    max_latency_ms: float | None = None
    rows: np.ndarray | None = None
    cache_path: str | None = None
    context: str = ""
    latency_fn: Any = None
    _memory: Any = field(default=None, repr=False)

    @property
    def multi(self) -> bool:
        return bool(self.objectives) and len(self.objectives) > 1

    @property
    def extra(self) -> list[str]:
        """The objectives after the metric."""
        return list(self.objectives[1:]) if self.objectives else []

    @property
    def active(self) -> bool:
        """Whether trials measure anything (several objectives or a latency limit)."""
        return self.multi or self.max_latency_ms is not None

    @property
    def needs_onnx(self) -> bool:
        return self.max_latency_ms is not None or bool({"latency", "size"} & set(self.extra))

    def directions(self, metric_direction: str = "maximize") -> list[str]:
        return [metric_direction] + ["minimize"] * len(self.extra)

    def _cache(self):
        from autodl.export.latency import LatencyCache

        if self.cache_path is not None:
            return LatencyCache(self.cache_path)
        if self._memory is None:
            self._memory = LatencyCache()
        return self._memory

    def measure(self, model, config: Mapping[str, Any]) -> dict[str, float]:
        """``params`` of ``model`` and, when an objective or the limit needs them, its ONNX
        latency and size (cached per ``config``): the trial attributes :data:`ATTRS` + params."""
        out: dict[str, float] = {"params": count_params(model)}
        if not self.needs_onnx:
            return out
        from autodl.export.latency import config_key

        rows = np.ascontiguousarray(np.asarray(self.rows, dtype=np.float32))

        def build():
            from autodl.export.core import onnx_bytes

            was_training = model.training
            model.eval()
            try:
                return onnx_bytes(model, sample=rows[:8], check=False), rows
            finally:
                model.train(was_training)

        fn = self.latency_fn
        if isinstance(fn, str):
            fn = self.latency_fn = load_latency_fn(fn)
        m = self._cache().measure(config_key(config, self.context), build, latency_fn=fn)
        out.update({"latency_ms": m.latency_ms, "batch64_ms": m.batch64_ms, "size_bytes": m.size_bytes,
                    "latency_load": m.load})
        return out

    def record(self, trial, measured: Mapping[str, float]) -> None:
        """Keep the measurement with ``trial`` and set the latency constraint."""
        for k in (*ATTRS, "params"):
            if k in measured and measured[k] is not None and not (isinstance(measured[k], float)
                                                                   and math.isnan(measured[k])):
                trial.set_user_attr(k, measured[k])
        if self.max_latency_ms is not None:
            trial.set_constraint(LATENCY_CONSTRAINT, float(measured["latency_ms"]) - self.max_latency_ms)

    def values(self, metric: float, measured: Mapping[str, float]) -> float | tuple[float, ...]:
        """The study's value: the metric alone, or ``(metric, latency, ...)``."""
        if not self.multi:
            return metric
        return (float(metric), *(float(measured[_ATTR_OF[name]]) for name in self.extra))


def net_context(kind: str, n_features: int, n_classes: int, image_shape: Sequence[int] | None,
                latency_fn: str | None = None) -> str:
    """What besides its config decides a network's graph, and how it is timed (the cache key's
    context)."""
    context = {"kind": kind, "n_features": int(n_features), "n_classes": int(n_classes),
               "image_shape": list(image_shape) if image_shape else None}
    if latency_fn:
        context["latency_fn"] = str(latency_fn)
    return json.dumps(context, sort_keys=True)


def check_latency_fn(latency_fn: Any, objectives: list[str] | None, max_latency_ms: float | None) -> None:
    """``latency_fn`` ("module:function") importable, and only where latency is measured."""
    if latency_fn is None:
        return
    if not isinstance(latency_fn, str):
        raise UserError(f"latency_fn is {latency_fn!r}, but must be 'module:function'")
    if max_latency_ms is None and "latency" not in (objectives or [])[1:]:
        raise UserError("--latency-fn measures latency: add latency to --objectives or give --max-latency-ms")
    load_latency_fn(latency_fn)


def metric_meta(result: Mapping[str, Any]) -> dict[str, Any]:
    """The exported file's metadata about the score of a network run's ``result.json``: the
    metric's validation and test scores; with several objectives, every kept value by name."""
    metric, best, test = result.get("metric", "accuracy"), result.get("best_value"), result.get("test_score")
    if not isinstance(metric, list):
        return {"score": best, "metric": f"{metric} (validation split)", "test_score": test}
    return {"score": best[0] if best else None, "metric": f"{metric[0]} (validation split)",
            "test_score": test[0] if isinstance(test, list) and test else test,
            "objectives": dict(zip(metric, best or []))}


def trial_meta(result: Mapping[str, Any], trial) -> dict[str, Any]:
    """:func:`metric_meta` for trial ``trial`` of the run (its own values, its config and id)."""
    several = isinstance(result.get("metric"), list)
    scores = {"metric": result.get("metric", "accuracy"), "test_score": None,
              "best_value": list(trial.values or []) if several else trial.value}
    return {**metric_meta(scores), "config": dict(trial.config), "trial_id": trial.id}


def cache_path(run_dir: str | Path | None) -> str | None:
    return None if run_dir is None else str(Path(run_dir) / CACHE_FILE)


__all__ = ["check_latency_fn", "trial_meta", "NetObjectives", "check_objectives", "check_max_latency", "count_params", "net_context",
           "NET_OBJECTIVES", "LATENCY_CONSTRAINT", "ATTRS", "CACHE_FILE"]
