"""Running one trial, in this process or in a worker process.

The objective is shipped to each worker once (cloudpickled, so lambdas and closures work);
afterwards only ``(trial id, config, budget)`` crosses the process boundary, and a picklable
:class:`TrialOutcome` comes back.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from autodl.errors import TrialPruned
from autodl.study.trial import RunningTrial, TrialState, check_value


@dataclass
class TrialOutcome:
    """What running an objective produced, before it is stored."""

    state: TrialState
    value: float | None
    message: str | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0


def execute(objective: Callable[[RunningTrial], Any], handle: RunningTrial) -> TrialOutcome:
    """Call ``objective(handle)`` and turn whatever happens into a :class:`TrialOutcome`.

    Exceptions, NaN/inf and non-numbers become FAILED with a message; ``TrialPruned`` becomes
    PRUNED with the last reported value. ``KeyboardInterrupt`` and ``SystemExit`` propagate.
    """
    start = time.perf_counter()
    try:
        raw = objective(handle)
    except TrialPruned:
        last = handle.intermediate[max(handle.intermediate)] if handle.intermediate else None
        return TrialOutcome(TrialState.PRUNED, last, "pruned", dict(handle.intermediate),
                            dict(handle.user_attrs), time.perf_counter() - start)
    except Exception as exc:  # the objective's own error: record it, keep the study going
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" ({tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
        message = f"{type(exc).__name__}: {exc}{where}"
        return TrialOutcome(TrialState.FAILED, None, message, dict(handle.intermediate),
                            dict(handle.user_attrs), time.perf_counter() - start)
    value, why = check_value(raw)
    state = TrialState.COMPLETE if value is not None else TrialState.FAILED
    return TrialOutcome(state, value, why, dict(handle.intermediate), dict(handle.user_attrs),
                        time.perf_counter() - start)


# ---------------------------------------------------------------------- worker processes
_WORKER_OBJECTIVE: Callable | None = None


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


def _init_worker(payload: bytes, threads: int) -> None:
    # Cap native thread pools (OpenMP in HistGradientBoosting, BLAS) before the objective's
    # libraries load: n workers x all cores each oversubscribes the machine, and spinning
    # OpenMP threads then slow trials down by an order of magnitude.
    import os
    import signal

    # Ctrl-C in a terminal reaches the whole process group; the driver handles it (marks the
    # running trials abandoned and stops the workers), so workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    import cloudpickle

    global _WORKER_OBJECTIVE
    _WORKER_OBJECTIVE = cloudpickle.loads(payload)
    try:  # pools already loaded (numpy's BLAS) do not re-read the variables
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)
    except ImportError:
        pass


def _run_in_worker(trial_id: int, config: dict, budget: float | None, run_dir: str | None) -> TrialOutcome:
    assert _WORKER_OBJECTIVE is not None, "worker was not initialised with an objective"
    handle = RunningTrial(trial_id, config, budget, run_dir=run_dir)
    return execute(_WORKER_OBJECTIVE, handle)


def process_pool(objective: Callable, n_workers: int) -> ProcessPoolExecutor:
    """A pool of ``n_workers`` fresh processes (spawn), each holding ``objective`` and using
    ``cpu_count // n_workers`` native threads (at least one)."""
    import os

    import cloudpickle

    threads = max(1, (os.cpu_count() or 1) // n_workers)
    try:
        payload = cloudpickle.dumps(objective)
    except Exception as exc:  # noqa: BLE001 - report any pickling failure the same way
        raise TypeError(
            f"the objective cannot be sent to worker processes ({type(exc).__name__}: {exc}); "
            "use n_workers=1 or an objective without open files, locks or connections"
        ) from None
    return ProcessPoolExecutor(
        max_workers=n_workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(payload, threads),
    )


def submit(pool: ProcessPoolExecutor, trial_id: int, config: dict, budget: float | None,
           run_dir: str | None):
    return pool.submit(_run_in_worker, trial_id, config, budget, run_dir)
