"""Running trials on a Dask cluster (``executor="dask"``); ``dask.distributed`` is imported lazily.

Running on a cluster
====================

Trials can run on any Dask cluster. Start a scheduler on one machine and workers wherever
there are cores (each worker needs the same Python environment, with autodl and your
objective's libraries installed)::

    dask-scheduler                                   # prints: tcp://10.0.0.5:8786
    dask-worker tcp://10.0.0.5:8786 --nworkers 8 --nthreads 1   # on each machine

Then point a search at the scheduler::

    autodl search --dataset digits --trials 200 --executor dask \\
        --dask-scheduler tcp://10.0.0.5:8786 --trial-timeout 5m --out runs/digits

or from Python::

    study.optimize(objective, n_trials=200, executor="dask",
                   dask_scheduler="tcp://10.0.0.5:8786", trial_timeout=300)

The driver (the process that runs ``autodl search``) keeps the study in its SQLite run folder
and keeps every worker thread busy: a new trial is submitted the moment one finishes. Use one
thread per worker process (``--nthreads 1``): trials are CPU-bound and a per-trial timeout
restarts the whole worker process. ``executor="dask"`` without a scheduler address starts a
``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)`` on this machine.

Failures:

* a worker that dies mid-trial (killed, out of memory, a segfault) loses its trial; the study
  runs it again up to ``max_retries`` times (default 1), then records it FAILED with the cause.
  On the local cluster autodl sets ``distributed.scheduler.allowed-failures`` to 0 so this
  retry rule is the only one; on your own cluster Dask first retries on its own (its
  ``allowed-failures`` setting, default 3) and autodl's rule applies once Dask gives up;
* ``--trial-timeout`` marks the trial FAILED ("timed out after 300s") and restarts the worker
  running it (needs a nanny, which ``dask-worker`` starts by default);
* if the scheduler stays unreachable for ``lost_after`` seconds (default 60), the study stops
  with an error and marks its running trials ABANDONED; ``autodl resume`` re-runs them.

On Dask, ``trial.report()`` values are stored when the trial ends and ``trial.should_prune()``
is always False (use the local executor for define-by-run pruning).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from typing import Any, Callable

from autodl.errors import UserError
from autodl.study.executors import (Hooks, TrialOutcome, TrialTask, dump_objective, execute, lost,
                                    timed_out)
from autodl.study.trial import RunningTrial, TrialState

_ADDRESS = re.compile(r"^((tcp|tls|ws|wss|ucx)://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


def check_address(address: str) -> str:
    """Raise a one-line UserError unless ``address`` looks like ``tcp://host:8786``."""
    if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
        raise UserError(f"Dask scheduler address '{address}' is not like tcp://host:8786")
    return address.strip()


# ---------------------------------------------------------------------- on the Dask worker
_OBJECTIVES: dict[str, Callable] = {}


def _run_trial(token: str, payload: bytes, task: TrialTask) -> TrialOutcome:
    """Run one trial on a Dask worker (the objective is unpickled once per worker process)."""
    objective = _OBJECTIVES.get(token)
    if objective is None:
        import cloudpickle

        objective = _OBJECTIVES[token] = cloudpickle.loads(payload)
    handle = RunningTrial(task.trial_id, task.config, task.budget, run_dir=task.run_dir)
    try:
        return execute(objective, handle)
    except (SystemExit, KeyboardInterrupt) as exc:
        return TrialOutcome(TrialState.FAILED, None, f"objective raised {type(exc).__name__}",
                            dict(handle.intermediate))


# ---------------------------------------------------------------------- on the driver
class DaskExecutor:
    """Trials as Dask futures (``Client.submit(..., pure=False)``), one per running trial.

    Args:
        n_workers: worker processes of the local cluster (when ``scheduler`` is None). With a
            scheduler the capacity is the cluster's total thread count, re-read as workers join.
        scheduler: address of a running scheduler (``tcp://host:8786``) or None for a
            ``LocalCluster``.
        trial_timeout: seconds (from when a worker starts it) after which a trial is FAILED and
            its worker restarted.
        connect_timeout: seconds to wait for the scheduler when connecting.
        lost_after: seconds without a scheduler connection before the study gives up.
    """

    name = "dask"
    live_reports = False

    def __init__(self, n_workers: int = 1, scheduler: str | None = None,
                 trial_timeout: float | None = None, connect_timeout: float = 30.0,
                 lost_after: float = 60.0, poll: float = 0.5):
        self.n_workers = int(n_workers)
        self.scheduler = check_address(scheduler) if scheduler is not None else None
        self.trial_timeout = trial_timeout
        self.connect_timeout = connect_timeout
        self.lost_after = lost_after
        self.poll = poll
        self.client: Any = None
        self.cluster: Any = None
        self._futures: dict[Any, int] = {}  # future -> trial id
        self._running_since: dict[Any, float] = {}  # future -> when a worker took it
        self._payload = b""
        self._token = ""
        self._capacity = (self.n_workers, 0.0)
        self._disconnected_since: float | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self, objective: Callable, hooks: Hooks) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise UserError("executor='dask' needs dask.distributed: pip install 'autodl[dask]'") from None
        self._payload = dump_objective(objective, "Dask workers")
        self._token = hashlib.sha1(self._payload).hexdigest()
        if self.scheduler is not None:
            try:
                self.client = Client(self.scheduler, timeout=self.connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise UserError(f"cannot reach the Dask scheduler at {self.scheduler} "
                                f"({type(exc).__name__}: {exc})") from None
        else:
            # the study's own retry rule (max_retries) decides about trials on dead workers
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self.cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                            processes=True, dashboard_address=None,
                                            silence_logs=logging.CRITICAL)
                self.client = Client(self.cluster)

    @property
    def capacity(self) -> int:
        if self.scheduler is None or self.client is None:
            return self.n_workers
        value, when = self._capacity
        if time.monotonic() - when > 2.0:
            try:
                value = max(1, sum(self.client.nthreads().values()))
            except (OSError, TimeoutError):
                pass  # keep the last known capacity while the scheduler is unreachable
            self._capacity = (value, time.monotonic())
        return value

    def submit(self, task: TrialTask) -> None:
        fut = self.client.submit(_run_trial, self._token, self._payload, task, pure=False,
                                 key=f"autodl-trial-{task.trial_id}-{uuid.uuid4().hex[:8]}")
        self._futures[fut] = task.trial_id

    def wait_any(self, timeout: float | None = None) -> list[tuple[int, TrialOutcome]]:
        from distributed import wait

        end = None if timeout is None else time.monotonic() + timeout
        while self._futures:
            self._check_connection()
            results = [self._collect(f) for f in list(self._futures) if f.done()]
            results += self._stop_overdue()
            if results or (end is not None and time.monotonic() >= end):
                return results
            step = self.poll if end is None else max(0.0, min(self.poll, end - time.monotonic()))
            try:
                wait(list(self._futures), timeout=step, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
        return []

    def shutdown(self) -> None:
        for fut in list(self._futures):
            fut.cancel()
        self._futures.clear()
        self._running_since.clear()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    # ------------------------------------------------------------------ details
    def _collect(self, fut) -> tuple[int, TrialOutcome]:
        tid = self._futures.pop(fut)
        self._running_since.pop(fut, None)
        if fut.status == "finished":
            try:
                return tid, fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. the result could not be deserialized
                return tid, TrialOutcome(TrialState.FAILED, None, f"{type(exc).__name__}: {exc}")
        if fut.status == "error":
            exc = fut.exception()
            if type(exc).__name__ == "KilledWorker":
                worker = getattr(getattr(exc, "last_worker", None), "address", None)
                where = f" {worker}" if worker else ""
                return tid, lost(f"worker process died on Dask (KilledWorker{where})")
            return tid, TrialOutcome(TrialState.FAILED, None, f"{type(exc).__name__}: {exc}")
        return tid, lost(f"Dask lost the trial (future {fut.status})")

    def _stop_overdue(self) -> list[tuple[int, TrialOutcome]]:
        """Fail trials running longer than the timeout, counted from when a worker took them
        (not from submission: a trial may wait for a worker that is being restarted)."""
        if self.trial_timeout is None:
            return []
        try:
            processing = self.client.processing()
        except (OSError, TimeoutError):
            return []
        now = time.monotonic()
        where = {key: w for w, keys in processing.items() for key in keys}
        for fut in self._futures:
            if fut.key in where:
                self._running_since.setdefault(fut, now)
        overdue = [f for f, t0 in self._running_since.items() if now - t0 >= self.trial_timeout]
        out = []
        for fut in overdue:
            tid = self._futures.pop(fut)
            t0 = self._running_since.pop(fut)
            workers = [where[fut.key]] if fut.key in where else []
            fut.cancel()
            if workers:
                try:  # stops the trial: the worker process is replaced by its nanny
                    self.client.restart_workers(workers, raise_for_error=False)
                except Exception:  # noqa: BLE001 - best effort; the result is ignored anyway
                    logging.getLogger(__name__).warning("could not restart Dask worker %s", workers)
            out.append((tid, timed_out(self.trial_timeout, now - t0)))
        return out

    def _check_connection(self) -> None:
        status = getattr(self.client, "status", "running")
        if status == "running":
            self._disconnected_since = None
            return
        if self._disconnected_since is None:
            self._disconnected_since = time.monotonic()
        elif time.monotonic() - self._disconnected_since > self.lost_after:
            raise UserError(f"lost the Dask scheduler {self.scheduler or '(local cluster)'} for "
                            f"{self.lost_after:g}s; resume the run when it is back")
