"""What the network kinds' specs (``--model``: :class:`autodl.nn.search.NNSearchSpec`, ``--nas``:
:class:`autodl.nas.search.NasSpec`) share: where their trials run and what a trial measures
besides the metric. Both specs are dataclasses derived from :class:`TrialSettings`, which declares
these fields (keyword-only, so each spec keeps its own field order for the rest), their checks and
the ``Study.optimize`` arguments once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autodl.errors import UserError


@dataclass(kw_only=True)
class TrialSettings:
    """Base of a network spec: what a trial measures besides the metric and where trials run."""

    #: trials run in parallel in that many processes
    n_workers: int = 1
    #: None: in-process for one worker without a deadline, else "local"; or "dask"
    executor: str | None = None
    dask_scheduler: str | None = None
    trial_timeout: float | None = None
    #: bytes a trial's worker process may allocate (Linux)
    trial_memory: float | None = None
    max_retries: int = 1
    #: several objectives: the metric first ("accuracy"), then "latency", "size", "params"
    #: (see :mod:`autodl.nn.objectives`); None or the metric alone: one objective
    objectives: list[str] | None = None
    #: the network's latency limit: every trial gets the constraint latency - X <= 0
    max_latency_ms: float | None = None
    #: "module:function" measuring latency instead of the local timing (ONNX bytes -> ms)
    latency_fn: str | None = None

    @property
    def multi_objective(self) -> bool:
        return bool(self.objectives) and len(self.objectives) > 1

    def check_objectives(self) -> None:
        """Normalize and check the objectives, the latency limit and the latency function."""
        from autodl.nn.objectives import check_latency_fn, check_max_latency, check_objectives

        self.objectives = check_objectives(self.objectives)
        self.max_latency_ms = check_max_latency(self.max_latency_ms)
        check_latency_fn(self.latency_fn, self.objectives, self.max_latency_ms)

    def check_executor(self) -> None:
        """Check where trials run (executor, Dask address, timeout, memory cap); starts nothing."""
        if self.executor not in (None, "local", "dask"):
            raise UserError(f"unknown executor '{self.executor}'; choose one of: local, dask")
        if self.trial_timeout is not None and not self.trial_timeout > 0:
            raise UserError(f"trial timeout is {self.trial_timeout}, but must be positive")
        if self.dask_scheduler is not None:
            from autodl.study.dask_executor import check_address

            check_address(self.dask_scheduler)
        from autodl.study.executors import make_executor

        make_executor(self.executor, self.n_workers, self.trial_timeout, self.dask_scheduler,
                      trial_memory=self.trial_memory)

    def executor_kwargs(self) -> dict[str, Any]:
        """The ``Study.optimize`` arguments that choose where trials run."""
        return {"n_workers": self.n_workers, "executor": self.executor, "dask_scheduler": self.dask_scheduler,
                "trial_timeout": self.trial_timeout, "max_retries": self.max_retries,
                "trial_memory": self.trial_memory}


__all__ = ["TrialSettings"]
