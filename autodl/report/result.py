"""The fields of a run's ``result.json`` the report reads, whatever shape the file has.

Two shapes exist: the envelope every kind writes (``kind, metric, direction, best_value,
best_config, best_trial, best_budget, test_score, n_complete, n_failed, n_pruned, extra``) and
the older per-kind files (tabular: ``best_score`` / ``test_score``; nn: ``best_val_accuracy`` /
``test_accuracy``; nas: ``test_accuracy`` with ``settings`` nested). :func:`result_fields`
reads both into one :class:`RunResult` (through :func:`autodl.runs.folder.upgrade_result`), so
nothing else in the report knows the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

_FIELDS = ("kind", "metric", "direction", "best_value", "best_config", "best_trial", "best_budget",
           "test_score", "n_complete", "n_failed", "n_pruned")


@dataclass(frozen=True)
class RunResult:
    """What a run found. ``extra`` holds the kind's own fields (epochs trained, search seconds, ...)."""

    kind: str | None = None
    metric: Any = None
    direction: Any = None
    best_value: Any = None
    best_config: Mapping[str, Any] | None = None
    best_trial: int | None = None
    best_budget: float | None = None
    test_score: Any = None
    n_complete: int | None = None
    n_failed: int | None = None
    n_pruned: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def result_fields(data: Mapping[str, Any] | None) -> RunResult:
    """``result.json`` (envelope or an older per-kind shape) as a :class:`RunResult`.

    Example:
        >>> result_fields({"best_score": 0.95, "test_score": 0.93, "task": "classification"}).best_value
        0.95
    """
    if not data:
        return RunResult()
    from autodl.runs.folder import upgrade_result

    envelope = upgrade_result(data)
    extra = dict(envelope.get("extra") or {})
    extra.pop("format", None)
    return RunResult(**{k: envelope.get(k) for k in _FIELDS}, extra=extra)
