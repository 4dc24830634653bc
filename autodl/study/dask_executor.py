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
``LocalCluster(n_workers=N, threads_per_worker=1, processes=True)`` on this machine, with Dask's
dashboard-only monitors (profiler, event-loop ticks) turned down so they do not take CPU from
the trials.

The objective is pickled once and installed on every worker by a Dask worker plugin: the
scheduler keeps it while the study runs and hands it to workers that join or restart later;
each task carries only the trial's config. On a shared cluster the plugin is removed when the
study ends.

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

import functools
import logging
import re
import threading
import time
import uuid
from typing import Any, Callable

from autodl._deps import require
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
# The objective (with whatever data it holds) reaches each worker once, through a worker plugin
# that the scheduler keeps and hands to every worker that joins later, including one the nanny
# restarts after a crash. Tasks carry only a token. (Scattered data would not do: its replicas
# die with their workers, and tasks depending on it are placed where the data is, not where a
# thread is free.)
_PAYLOADS: dict[str, bytes] = {}  # token -> cloudpickled objective, installed by the plugin
_OBJECTIVES: dict[str, Callable] = {}  # token -> objective, unpickled on first use
_LOCK = threading.Lock()  # a worker process may run several trials at once (--nthreads > 1)


class ObjectiveMissing(RuntimeError):
    """Raised on a worker that has no objective for a study's token (the driver then sends the
    trial again with the objective in its payload)."""


def _objective(token: str, payload: bytes | None) -> Callable:
    objective = _OBJECTIVES.get(token)
    if objective is not None:
        return objective
    with _LOCK:
        if token not in _OBJECTIVES:
            data = payload if payload is not None else _PAYLOADS.get(token)
            if data is None:
                raise ObjectiveMissing(f"no objective for study token {token} on this worker")
            import cloudpickle

            _OBJECTIVES[token] = cloudpickle.loads(data)
        return _OBJECTIVES[token]


def _run_trial(token: str, task: TrialTask, payload: bytes | None = None) -> TrialOutcome:
    """Run one trial on a Dask worker; the objective comes from this worker's cache (filled by
    the plugin) or, as a fallback, from ``payload``."""
    objective = _objective(token, payload)
    handle = RunningTrial(task.trial_id, task.config, task.budget, run_dir=task.run_dir, stop_at=task.stop_at)
    try:
        return execute(objective, handle)
    except (SystemExit, KeyboardInterrupt) as exc:
        return TrialOutcome(TrialState.FAILED, None, f"objective raised {type(exc).__name__}",
                            dict(handle.intermediate))


@functools.lru_cache(maxsize=None)
def _plugin_class() -> type:
    """``ObjectivePlugin``, built on first use so that importing this module does not import
    distributed (the module's ``__getattr__`` returns it, so pickle finds it by name)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class ObjectivePlugin(WorkerPlugin):
        """Installs one study's pickled objective on a worker (and removes it at teardown)."""

        def __init__(self, token: str, payload: bytes):
            self.token = token
            self.payload = payload
            self.name = f"autodl-objective-{token}"

        def setup(self, worker) -> None:
            _PAYLOADS[self.token] = self.payload

        def teardown(self, worker) -> None:
            with _LOCK:
                _PAYLOADS.pop(self.token, None)
                _OBJECTIVES.pop(self.token, None)

    ObjectivePlugin.__module__ = __name__
    ObjectivePlugin.__qualname__ = "ObjectivePlugin"
    return ObjectivePlugin


def __getattr__(name: str) -> Any:
    if name == "ObjectivePlugin":
        return _plugin_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------- on the driver
#: settings of the LocalCluster that autodl starts (a cluster of your own keeps its settings)
_LOCAL_CLUSTER_CONFIG = {
    # the study's own retry rule (max_retries) decides about trials on dead workers
    "distributed.scheduler.allowed-failures": 0,
    # no dashboard, logs silenced: the statistical profiler (every 10 ms in each worker), the
    # event-loop health check (every 20 ms in every process), the system monitor and a memory
    # check every 100 ms would only take CPU from the trials. With two idle workers the cluster
    # used 11 % of a core with Dask's defaults and 1.6 % with these (measured on 2 cores).
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.worker.memory.monitor-interval": "500ms",
}

class DaskExecutor:
    """Trials as Dask futures (``Client.submit(..., pure=False)``), one per running trial.

    The objective is sent once per worker, by a worker plugin registered at :meth:`start`
    (removed again at :meth:`shutdown`); each task carries only a study token and the
    :class:`TrialTask`.

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
        self._futures: dict[Any, TrialTask] = {}  # future -> the trial it runs
        self._running_since: dict[Any, float] = {}  # future -> when a worker took it
        self._payload = b""
        self._token = ""
        self._capacity = (self.n_workers, 0.0)
        self._disconnected_since: float | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self, objective: Callable, hooks: Hooks) -> None:
        require(("dask", "distributed"), "dask", "executor='dask'")
        import dask
        from distributed import Client, LocalCluster

        self._payload = dump_objective(objective, "Dask workers")
        # unique per start: two studies (or two optimize calls) on one cluster never share or
        # remove each other's objective
        self._token = uuid.uuid4().hex
        if self.scheduler is not None:
            try:
                self.client = Client(self.scheduler, timeout=self.connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise UserError(f"cannot reach the Dask scheduler at {self.scheduler} "
                                f"({type(exc).__name__}: {exc})") from None
        else:
            with dask.config.set(_LOCAL_CLUSTER_CONFIG):
                self.cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                            processes=True, dashboard_address=None,
                                            silence_logs=logging.CRITICAL)
                self.client = Client(self.cluster)
        try:
            self.client.register_plugin(_plugin_class()(self._token, self._payload))
        except Exception as exc:  # noqa: BLE001 - raised by a worker that cannot load the plugin
            self.shutdown()
            raise UserError(f"cannot send the objective to the Dask workers ({type(exc).__name__}: "
                            f"{exc}); install autodl and the objective's libraries on every "
                            "worker") from None

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

    def submit(self, task: TrialTask, *, with_objective: bool = False) -> None:
        """Run ``task`` on the cluster; ``with_objective`` puts the pickled objective in the
        task itself (only for a worker that lacks it)."""
        args = (self._token, task) + ((self._payload,) if with_objective else ())
        fut = self.client.submit(_run_trial, *args, pure=False,
                                 key=f"autodl-trial-{task.trial_id}-{uuid.uuid4().hex[:8]}")
        self._futures[fut] = task

    def wait_any(self, timeout: float | None = None) -> list[tuple[int, TrialOutcome]]:
        from distributed import wait

        end = None if timeout is None else time.monotonic() + timeout
        while self._futures:
            self._check_connection()
            results = [r for f in list(self._futures) if f.done() for r in self._collect(f)]
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
            if self.cluster is None and self._token:  # a shared cluster: free its workers' memory
                try:
                    self.client.unregister_worker_plugin(f"autodl-objective-{self._token}")
                except Exception:  # noqa: BLE001 - not registered, or the scheduler is gone
                    pass
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    # ------------------------------------------------------------------ details
    def _collect(self, fut) -> list[tuple[int, TrialOutcome]]:
        """The outcome of a finished future (none if its trial was sent again)."""
        task = self._futures.pop(fut)
        tid = task.trial_id
        self._running_since.pop(fut, None)
        if fut.status == "finished":
            try:
                return [(tid, fut.result())]
            except Exception as exc:  # noqa: BLE001 - e.g. the result could not be deserialized
                return [(tid, TrialOutcome(TrialState.FAILED, None, f"{type(exc).__name__}: {exc}"))]
        if fut.status == "error":
            exc = fut.exception()
            if isinstance(exc, ObjectiveMissing):  # a worker without the plugin: bring it along
                self.submit(task, with_objective=True)
                return []
            if type(exc).__name__ == "KilledWorker":
                worker = getattr(getattr(exc, "last_worker", None), "address", None)
                where = f" {worker}" if worker else ""
                return [(tid, lost(f"worker process died on Dask (KilledWorker{where})"))]
            return [(tid, TrialOutcome(TrialState.FAILED, None, f"{type(exc).__name__}: {exc}"))]
        return [(tid, lost(f"Dask lost the trial (future {fut.status})"))]

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
            tid = self._futures.pop(fut).trial_id
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
