"""Where trials run: one :class:`Executor` seam, three implementations.

* :class:`InlineExecutor` - in the driver's own process (``executor="inline"``); the default
  with one worker and no per-trial timeout. ``trial.should_prune()`` is decided live; a
  ``trial_timeout`` stops a trial at its next ``trial.report()`` / ``should_prune()`` /
  ``should_stop()`` (FAILED, "timed out after Xs", as the process executors record it).
* :class:`ProcessExecutor` - a small pool of local worker processes (``executor="local"``),
  the default for ``n_workers > 1`` or a ``trial_timeout``. One pipe per worker, so the driver
  knows exactly which worker runs which trial: a trial past its timeout is stopped by killing
  its worker (FAILED, "timed out after Xs"), and a worker that dies (``os._exit``, SIGKILL, a
  segfault) is reported with its exit code so the study can retry the trial; ``cancel(trial
  id)`` kills one trial's worker (the study's ``stop_at_timeout`` deadline). Reports and
  ``should_prune()`` travel over the pipe, so they reach the searcher while the trial runs.
  ``trial_memory`` caps each worker's memory (see :func:`cap_memory`): a trial that exceeds it
  is FAILED ("exceeded the memory cap of 2.0 GB (--trial-memory): ...") and its worker replaced.
* :class:`~autodl.study.dask_executor.DaskExecutor` - a Dask cluster (``executor="dask"``).

The study drives every executor the same way: :meth:`Executor.start` once, then
:meth:`Executor.submit` a trial whenever fewer than :attr:`Executor.capacity` are running and
:meth:`Executor.wait_any` for the next finished ones (asynchronous dispatch: a new trial starts
the moment one finishes), and :meth:`Executor.shutdown` at the end.

The objective is shipped to each worker once (cloudpickled, so lambdas and closures work;
its code keeps its file names, so failures name the user's file and line); afterwards only
``(trial id, config, budget)`` crosses the process boundary, and a picklable
:class:`TrialOutcome` comes back.

Native thread pools (OpenMP, BLAS, and torch when already imported) are capped at
:func:`trial_threads` (``OMP_NUM_THREADS`` when set, else usable cores // workers) in every
process that runs trials: in each worker, and in the driver while an inline study runs (the
previous limits are restored when ``Study.optimize`` returns).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import multiprocessing
import os
import sys
from pickle import PicklingError
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as mp_wait
from typing import Any, Callable, Protocol, runtime_checkable

from autodl._deps import require
from autodl.errors import TrialPruned, UserError
from autodl.study.trial import (RunningTrial, TrialState, TrialTimedOut, check_value, check_values,
                                is_sequence)


@dataclass
class TrialOutcome:
    """What running an objective produced, before it is stored.

    ``lost`` marks a trial whose worker died (or whose result was lost with its worker): the
    study may run it again, up to ``max_retries`` times. ``out_of_memory`` marks a trial that
    failed an allocation under the memory cap (its worker is replaced afterwards).
    """

    state: TrialState
    value: float | None
    message: str | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    lost: bool = False
    out_of_memory: bool = False
    #: the objective returned a sequence: its values (the study checks their number)
    values: tuple[float, ...] | None = None
    #: set with ``trial.set_constraint``, by name
    constraints: dict[str, float] | None = None


@dataclass(frozen=True)
class TrialTask:
    """One trial to run: what crosses the process (or network) boundary."""

    trial_id: int
    config: dict[str, Any]
    budget: float | None = None
    run_dir: str | None = None
    #: ``time.time()`` at which the study's deadline stops this trial (``trial.should_stop()``)
    stop_at: float | None = None


@dataclass
class Hooks:
    """Driver-side callbacks a running trial reaches (live with inline and local executors)."""

    on_report: Callable[[int, int, float], None] = lambda tid, step, value: None
    should_prune: Callable[[int], bool] = lambda tid: False
    #: ``(trial id, final value in the study's direction)``: is the trial's state worth saving
    worth_keeping: Callable[[int, float], bool] = lambda tid, value: True


def lost(message: str) -> TrialOutcome:
    """The outcome of a trial whose worker died."""
    return TrialOutcome(TrialState.FAILED, None, message, lost=True)


def timed_out(seconds: float, duration: float | None = None) -> TrialOutcome:
    """The outcome of a trial stopped by the per-trial timeout."""
    return TrialOutcome(TrialState.FAILED, None, f"timed out after {seconds:g}s",
                        duration=duration if duration is not None else seconds)


@runtime_checkable
class Executor(Protocol):
    """Runs trials for a study; see the module docstring for the protocol."""

    #: "inline", "local" or "dask"
    name: str
    #: whether ``trial.report()`` / ``should_prune()`` reach the driver while the trial runs;
    #: if not, the intermediate values arrive with the outcome
    live_reports: bool

    @property
    def capacity(self) -> int:
        """How many trials may run at once (the study keeps that many in flight)."""

    def start(self, objective: Callable[[RunningTrial], Any], hooks: Hooks) -> None:
        """Prepare workers for ``objective``; called once per ``Study.optimize``."""

    def submit(self, task: TrialTask) -> None:
        """Start running ``task`` (never blocks on the trial itself)."""

    def wait_any(self, timeout: float | None = None) -> list[tuple[int, TrialOutcome]]:
        """Block until at least one trial finished (or ``timeout`` seconds passed: then ``[]``);
        returns ``(trial id, outcome)`` pairs. Raises ``KeyboardInterrupt`` if a trial was
        interrupted."""

    def shutdown(self) -> None:
        """Stop every worker now; trials still running are dropped (the study abandons them)."""


# ---------------------------------------------------------------------- memory cap
def describe_memory(nbytes: float) -> str:
    """``2147483648`` -> ``"2.0 GB"``, ``536870912`` -> ``"512 MB"`` (powers of 1024, as parsed
    by ``--trial-memory``)."""
    gb = nbytes / 2**30
    if gb >= 1:
        text = f"{gb:.2f}".rstrip("0")
        return f"{text}0 GB" if text.endswith(".") else f"{text} GB"
    return f"{nbytes / 2**20:.0f} MB"


def memory_cap_message(cap: float) -> str:
    return f"exceeded the memory cap of {describe_memory(cap)} (--trial-memory)"


def check_memory_cap(trial_memory: float | None) -> None:
    """Raise :class:`UserError` unless ``trial_memory`` is None or a positive byte count this
    platform can enforce."""
    if trial_memory is None:
        return
    if isinstance(trial_memory, bool) or not isinstance(trial_memory, (int, float)) or not trial_memory > 0:
        raise UserError(f"trial_memory is {trial_memory!r}, but must be a positive number of bytes")
    if not sys.platform.startswith("linux"):
        raise UserError(f"trial_memory needs Linux (it sets RLIMIT_DATA, which {sys.platform} does not "
                        "enforce on memory maps); leave it out here")


def cap_memory(nbytes: float) -> None:
    """Limit this process's private writable memory to ``nbytes`` (``RLIMIT_DATA``).

    Why DATA and not AS: since Linux 4.7 ``RLIMIT_DATA`` counts every private writable mapping
    (the heap, ``mmap``-ed arrays, thread stacks), which is what numpy, torch and Python
    allocate; a failed allocation raises ``MemoryError`` (numpy, Python) or torch's
    "DefaultCPUAllocator: can't allocate memory" instead of the kernel killing the machine's
    biggest process. ``RLIMIT_AS`` also counts shared libraries and address space only reserved
    (glibc's 64 MB malloc arenas, one per thread): measured here, importing torch leaves 1.05 GB
    of address space for 0.40 GB of data, and 16 torch threads 2.2 GB for 0.65 GB, so an
    address-space cap would refuse threads long before the memory is used. The worker's own
    imports count toward the cap (about 0.2-0.3 GB with numpy and scikit-learn, 0.4 GB with
    torch). Processes the trial starts (joblib workers) inherit the same cap each.
    """
    import resource

    cap = int(nbytes)
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))


_ENOMEM_TEXT = ("cannot allocate memory", "can't allocate memory")  # strerror(ENOMEM); torch's allocator


def is_memory_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a failed allocation: MemoryError,
    an OSError with ENOMEM, or a message quoting ENOMEM (torch's CPU allocator raises
    RuntimeError "... can't allocate memory ... Error code 12 (Cannot allocate memory)")."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, MemoryError):
            return True
        if isinstance(e, OSError) and e.errno == errno.ENOMEM:
            return True
        if isinstance(e, RuntimeError) and any(t in str(e).lower() for t in _ENOMEM_TEXT):
            return True
        e = e.__cause__ or e.__context__
    return False


# ---------------------------------------------------------------------- running one trial
def execute(objective: Callable[[RunningTrial], Any], handle: RunningTrial,
            memory_cap: float | None = None) -> TrialOutcome:
    """Call ``objective(handle)`` and turn whatever happens into a :class:`TrialOutcome`.

    Exceptions, NaN/inf and non-numbers become FAILED with a message; ``TrialPruned`` becomes
    PRUNED with the last reported value. ``KeyboardInterrupt`` and ``SystemExit`` propagate.
    With ``memory_cap`` (bytes; the process runs under :func:`cap_memory`), a failed allocation
    becomes FAILED "exceeded the memory cap of ... (--trial-memory): <the error>".
    """
    start = time.perf_counter()
    try:
        raw = objective(handle)
    except TrialPruned:
        last = handle.intermediate[max(handle.intermediate)] if handle.intermediate else None
        return TrialOutcome(TrialState.PRUNED, last, "pruned", dict(handle.intermediate),
                            dict(handle.user_attrs), time.perf_counter() - start)
    except TrialTimedOut as exc:  # the inline executor's per-trial timeout (see RunningTrial)
        return TrialOutcome(TrialState.FAILED, None, f"timed out after {exc.seconds:g}s",
                            dict(handle.intermediate), dict(handle.user_attrs), time.perf_counter() - start)
    except Exception as exc:  # the objective's own error: record it, keep the study going
        oom = memory_cap is not None and is_memory_error(exc)
        if oom:  # what the trial allocated hangs off the traceback's frames: free it first
            traceback.clear_frames(exc.__traceback__)
        message = describe_error(exc)
        if memory_cap is not None and oom:
            detail = " ".join(message.split())  # torch's message spans lines
            detail = detail if len(detail) <= 200 else detail[:197] + "..."
            message = f"{memory_cap_message(memory_cap)}: {detail}"
            return TrialOutcome(TrialState.FAILED, None, message, dict(handle.intermediate),
                                dict(handle.user_attrs), time.perf_counter() - start, out_of_memory=True)
        return TrialOutcome(TrialState.FAILED, None, message, dict(handle.intermediate),
                            dict(handle.user_attrs), time.perf_counter() - start)
    constraints = dict(handle.constraints) or None
    if is_sequence(raw):  # several objectives (the study checks how many)
        values, why = check_values(raw)
        state = TrialState.COMPLETE if values is not None else TrialState.FAILED
        # what a single-objective study says of it ("objective returned list [...], expected a
        # float"); a study with several directions clears it
        why = why or check_value(raw)[1]
        return TrialOutcome(state, None, why, dict(handle.intermediate), dict(handle.user_attrs),
                            time.perf_counter() - start, values=values, constraints=constraints)
    value, why = check_value(raw)
    state = TrialState.COMPLETE if value is not None else TrialState.FAILED
    return TrialOutcome(state, value, why, dict(handle.intermediate), dict(handle.user_attrs),
                        time.perf_counter() - start, constraints=constraints)


_LIBRARY_DIRS: list[str] = []


def _is_library(filename: str) -> bool:
    """Whether a traceback frame's file is autodl's, the standard library's or an installed
    package's (``site-packages``/``dist-packages``), not the user's own code."""
    if not _LIBRARY_DIRS:
        import sysconfig

        import autodl

        paths = sysconfig.get_paths()
        _LIBRARY_DIRS.extend(os.path.join(os.path.realpath(d), "") for d in {
            os.path.dirname(autodl.__file__), paths["stdlib"], paths["platstdlib"],
            paths["purelib"], paths["platlib"]})
    if filename.startswith("<frozen"):
        return True
    if os.sep + "site-packages" + os.sep in filename or os.sep + "dist-packages" + os.sep in filename:
        return True
    real = os.path.realpath(filename) if os.path.isabs(filename) else filename
    return any(real.startswith(d) for d in _LIBRARY_DIRS)


def describe_error(exc: BaseException) -> str:
    """``"ValueError: bad lr (my_script.py:19)"``: the exception and where it was raised in the
    user's code, i.e. the innermost traceback frame outside autodl, the standard library and
    installed packages (the innermost frame of all when no frame is the user's)."""
    tb = traceback.extract_tb(exc.__traceback__)
    frame = next((f for f in reversed(tb) if not _is_library(f.filename)), tb[-1] if tb else None)
    where = f" ({os.path.basename(frame.filename)}:{frame.lineno})" if frame is not None else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _code_reduce_keeping_filename(code):
    """cloudpickle's reduction of a code object, with ``co_filename`` kept (cloudpickle writes
    ``"<dynamic-code>"`` there, so tracebacks in workers would not name the user's file)."""
    from cloudpickle import cloudpickle as _cp

    rebuild, args = _cp._code_reduce(code)
    return rebuild, tuple(code.co_filename if isinstance(a, str) and a == "<dynamic-code>" else a for a in args)


def _dumps(obj: Any) -> bytes:
    """``cloudpickle.dumps(obj)``, keeping the file names of code pickled by value (functions of
    ``__main__``, lambdas, closures); plain ``cloudpickle.dumps`` if this cloudpickle lacks the
    hook."""
    import io
    import types
    from collections import ChainMap

    import cloudpickle

    if not callable(getattr(getattr(cloudpickle, "cloudpickle", None), "_code_reduce", None)):
        return cloudpickle.dumps(obj)

    class _Pickler(cloudpickle.Pickler):
        dispatch_table = ChainMap({types.CodeType: _code_reduce_keeping_filename},
                                  cloudpickle.Pickler.dispatch_table)

    buf = io.BytesIO()
    _Pickler(buf, protocol=cloudpickle.DEFAULT_PROTOCOL).dump(obj)
    return buf.getvalue()


def dump_objective(objective: Callable, where: str = "worker processes") -> bytes:
    """Cloudpickle ``objective`` for shipping to workers, or raise a one-line TypeError."""
    try:
        return _dumps(objective)
    except Exception as exc:  # noqa: BLE001 - report any pickling failure the same way
        raise TypeError(
            f"the objective cannot be sent to {where} ({type(exc).__name__}: {exc}); "
            "use executor='inline' (n_workers=1) or an objective without open files, locks "
            "or connections"
        ) from None


def describe_exit(code: int | None, memory_cap: float | None = None) -> str:
    """``"worker process died (exit code -9, SIGKILL)"`` for a worker's exit code; with a
    ``memory_cap``, a worker killed by a signal gets the note that the cap may be the cause (the
    kernel's OOM killer sends SIGKILL; native code that cannot allocate often aborts or
    segfaults)."""
    text = f"worker process died (exit code {code})"
    if code is not None and code < 0:
        import signal

        try:
            text = f"worker process died (exit code {code}, {signal.Signals(-code).name})"
        except ValueError:
            pass
    if memory_cap is not None and code is not None and code < 0:  # killed, not a plain exit
        text += f", possibly by exceeding the memory cap of {describe_memory(memory_cap)} (--trial-memory)"
    return text


# ---------------------------------------------------------------------- in this process
class InlineExecutor:
    """Runs each trial in the driver's process, one at a time (``wait_any`` runs it).

    Args:
        trial_timeout: seconds after which a trial is stopped at its next ``trial.report()``,
            ``should_prune()`` or ``should_stop()`` and recorded FAILED, "timed out after Xs".
            Code in the driver's own thread cannot be killed, so an objective that never calls
            those runs on; :class:`ProcessExecutor` (``executor="local"``) kills it instead.
        threads: native threads while trials run (default :func:`trial_threads` of one
            worker); the previous limits are restored by ``shutdown()``.
    """

    name = "inline"
    live_reports = True
    capacity = 1

    def __init__(self, trial_timeout: float | None = None, threads: int | None = None):
        self.trial_timeout = trial_timeout
        self.threads = threads or trial_threads(1)
        self._objective: Callable | None = None
        self._hooks = Hooks()
        self._queue: list[TrialTask] = []
        self._limit: ThreadLimit | None = None

    def start(self, objective, hooks: Hooks) -> None:
        self._objective = objective
        self._hooks = hooks
        self._limit = ThreadLimit(self.threads)

    def submit(self, task: TrialTask) -> None:
        self._queue.append(task)

    def wait_any(self, timeout: float | None = None) -> list[tuple[int, TrialOutcome]]:
        if not self._queue:
            return []
        task = self._queue.pop(0)
        hooks = self._hooks
        tid = task.trial_id
        handle = RunningTrial(tid, task.config, task.budget, run_dir=task.run_dir, stop_at=task.stop_at,
                              on_report=lambda step, value: hooks.on_report(tid, step, value),
                              pruner=lambda: hooks.should_prune(tid),
                              keeper=lambda value: hooks.worth_keeping(tid, value),
                              timeout=self.trial_timeout)
        assert self._objective is not None, "start() was not called"
        if self._limit is not None:
            self._limit.apply()
        return [(tid, execute(self._objective, handle))]

    def shutdown(self) -> None:
        self._queue.clear()
        if self._limit is not None:
            self._limit.restore()
            self._limit = None


# ---------------------------------------------------------------------- local processes
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS")


def cpu_cores() -> int:
    """Cores this process may use: the CPU affinity mask where the platform has one (a
    container or ``taskset`` may allow fewer than ``os.cpu_count()``), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory new processes can take without swapping: ``MemAvailable`` of
    ``/proc/meminfo`` on Linux (free memory plus the page cache the kernel can drop), else free
    pages from ``sysconf``; None where neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def trial_threads(n_workers: int) -> int:
    """Native threads per trial when ``n_workers`` trials run at once: ``OMP_NUM_THREADS`` when
    the user set it, else ``max(1, cpu_cores() // n_workers)``, and 1 when other processes
    keep the cores busy right now (:func:`cores_free` below 2).

    Why the last rule: OpenMP threads wait for each other at every parallel region, and on an
    oversubscribed machine a waiting thread loses its core; measured on 2 cores under a load
    average of 3.4, scikit-learn's HistGradientBoosting (2,400 rows) fitted in 2.1-2.2 s with
    2 threads and 0.44-0.58 s with 1 (on a quiet machine 2 threads are the faster: the 20,000-row
    messy tables of ``benchmarks/tabular.py --messy`` completed 3-5 trials in 30 s instead of 5-8
    when back-to-back searches made a load-average rule pick 1 thread)."""
    env = _env_threads()
    if env:
        return env
    per_worker = max(1, cpu_cores() // max(1, int(n_workers)))
    return 1 if per_worker > 1 and cores_free() < 2 else per_worker


def cores_free(window: float = 0.1) -> float:
    """Cores the other processes of the machine leave idle right now: the machine's busy time over
    ``window`` seconds (``/proc/stat``), minus this process's own, in cores, subtracted from the
    usable cores. Not the load average: it trails the last minute, so a search started right
    after another one would see the first one's load as someone else's. Where there is no
    ``/proc/stat``: all usable cores."""
    def busy_total() -> tuple[float, float]:
        with open("/proc/stat") as fh:
            fields = [float(v) for v in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    try:
        busy0, total0 = busy_total()
        own0, wall0 = sum(os.times()[:2]), time.monotonic()
        time.sleep(window)
        busy1, total1 = busy_total()
        own1, wall1 = sum(os.times()[:2]), time.monotonic()
    except (OSError, ValueError, IndexError):
        return float(cpu_cores())
    if total1 <= total0:
        return float(cpu_cores())
    machine = os.cpu_count() or 1
    others = (busy1 - busy0) / (total1 - total0) * machine - (own1 - own0) / max(wall1 - wall0, 1e-9)
    return cpu_cores() - max(0.0, others)


def limit_threads(threads: int) -> None:
    """Cap native thread pools (OpenMP, BLAS, torch) of this (worker) process at ``threads``,
    for good.

    n workers x all cores each oversubscribes the machine, and spinning OpenMP threads then slow
    trials down by an order of magnitude (HistGradientBoosting).
    """
    for var in _THREAD_VARS:  # libraries loaded later read these
        os.environ[var] = str(threads)
    ThreadLimit(threads).apply()  # pools already loaded (numpy's BLAS) do not re-read them


class ThreadLimit:
    """Caps native thread pools of this process at ``threads`` until :meth:`restore`.

    :meth:`apply` limits every OpenMP/BLAS pool loaded so far (threadpoolctl) and torch's
    intra-op pool when torch is already imported (torch is never imported for this); called
    before each trial, it also catches pools that earlier trials loaded (it looks again only
    when ``sys.modules`` grew). :meth:`restore` puts back each pool's previous limit.
    """

    def __init__(self, threads: int):
        self.threads = int(threads)
        self._limiters: list = []
        self._torch_before: int | None = None
        self._n_modules = -1

    def apply(self) -> None:
        torch = sys.modules.get("torch")
        if torch is not None and self._torch_before is None and hasattr(torch, "set_num_threads"):
            self._torch_before = torch.get_num_threads()
            if self._torch_before != self.threads:
                torch.set_num_threads(self.threads)
        if len(sys.modules) == self._n_modules:
            return
        self._n_modules = len(sys.modules)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return
        self._limiters.append(threadpool_limits(limits=self.threads))

    def restore(self) -> None:
        while self._limiters:  # newest first: each one restores what it found
            self._limiters.pop().restore_original_limits()
        torch = sys.modules.get("torch")
        if torch is not None and self._torch_before is not None:
            if torch.get_num_threads() != self._torch_before:
                torch.set_num_threads(self._torch_before)
            self._torch_before = None
        self._n_modules = -1


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _env_threads() -> int | None:
    """``OMP_NUM_THREADS`` of the driver, when set to a positive integer: a thread limit the
    user chose holds in the workers too."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def _watch_parent(parent_pid: int) -> None:
    """Exit when the driver is gone (killed with -9): the trial's result has nowhere to go."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def _data_in_use() -> int | None:
    """Bytes of this process's memory that ``RLIMIT_DATA`` counts (``VmData``), if known."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _send(conn: Connection, msg: Any) -> None:
    """Send to the driver; if it is gone (killed), this worker has nothing left to do."""
    try:
        conn.send(msg)
    except (BrokenPipeError, ConnectionError, EOFError):
        os._exit(0)


def _worker_main(conn: Connection, payload: str, threads: int, parent_pid: int,
                 memory_cap: float | None = None) -> None:
    """Body of a worker process: run the trials the driver sends until told to stop."""
    import signal

    # Ctrl-C in a terminal reaches the whole process group; the driver handles it (marks the
    # running trials abandoned and stops the workers), so workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads(threads)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    import cloudpickle

    if memory_cap is not None:  # before the objective's imports, which count toward it
        used = _data_in_use()
        if used is not None and used >= memory_cap:
            _send(conn, ("broken", f"the memory cap of {describe_memory(memory_cap)} (trial_memory, "
                                   f"--trial-memory) is below the {describe_memory(used)} a worker "
                                   "process uses before loading it; raise the cap"))
            return
        cap_memory(memory_cap)
    try:
        with open(payload, "rb") as f:  # the file ProcessExecutor.start wrote
            objective = cloudpickle.loads(f.read())
    except Exception as exc:  # noqa: BLE001 - any failure to rebuild the objective is fatal here
        why = f"{type(exc).__name__}: {exc}"
        if memory_cap is not None and is_memory_error(exc):
            why = (f"{why} (under the memory cap of {describe_memory(memory_cap)} set by trial_memory, "
                   "--trial-memory, which the objective's imports count toward; raise the cap)")
        _send(conn, ("broken", why))
        return
    asking = threading.Lock()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        task: TrialTask = msg
        _send(conn, ("start", task.trial_id))  # the timeout counts from here, not from spawn

        def report(step: int, value: float, tid: int = task.trial_id) -> None:
            with asking:
                _send(conn, ("report", tid, step, value))

        def ask(question: tuple) -> bool:
            with asking:  # one question at a time, so answers cannot cross between threads
                _send(conn, question)
                try:
                    return bool(conn.recv())
                except (EOFError, OSError):
                    os._exit(0)

        def prune(tid: int = task.trial_id) -> bool:
            return ask(("prune?", tid))

        def keep(value: float, tid: int = task.trial_id) -> bool:
            return ask(("keep?", tid, value))

        handle = RunningTrial(task.trial_id, task.config, task.budget, run_dir=task.run_dir, stop_at=task.stop_at,
                              on_report=report, pruner=prune, keeper=keep)
        try:
            out = execute(objective, handle, memory_cap)
        except KeyboardInterrupt:
            _send(conn, ("interrupt", task.trial_id))
            continue
        except SystemExit as exc:
            out = TrialOutcome(TrialState.FAILED, None, f"objective called sys.exit({exc.code!r})",
                               dict(handle.intermediate))
        try:
            _send(conn, ("done", task.trial_id, out))
        except (TypeError, AttributeError, ValueError, PicklingError) as exc:  # e.g. an unpicklable user attr
            out = TrialOutcome(TrialState.FAILED, None,
                               f"the trial's result cannot be sent back ({type(exc).__name__}: {exc})",
                               dict(handle.intermediate), duration=out.duration)
            _send(conn, ("done", task.trial_id, out))
        if out.out_of_memory:  # the driver replaces this worker (see ProcessExecutor._drain)
            return
        long = (out.duration or 0.0) >= COLLECT_AFTER_SECONDS
        del handle, out
        release_memory(collect=long)


#: a worker collects garbage after a trial that ran this long: a full collection with
#: scikit-learn imported takes about 70 ms, which trials of a few milliseconds must not pay
COLLECT_AFTER_SECONDS = 5.0


def release_memory(collect: bool = True) -> None:
    """Give the memory a finished trial freed back to the operating system: collect its
    reference cycles (``collect``), then (glibc) ``malloc_trim(0)`` (about 0.1 ms), which returns
    the free pages of the heap; without it a worker stays at the size of its largest trial so far."""
    if collect:
        import gc

        gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim  # the C library this process already has loaded
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows)
        return None


@contextlib.contextmanager
def main_not_reimported():
    """Start spawned processes without re-running the user's ``__main__``.

    ``spawn`` children normally import the parent's main script (or ``-m`` module) again, as
    ``__mp_main__``, so that pickled references to its functions resolve; a script without an
    ``if __name__ == "__main__":`` guard then starts its search again in every worker (and
    multiprocessing refuses with a RuntimeError). autodl's workers need nothing from the main
    module: they run :func:`_worker_main`, and the objective arrives cloudpickled, which carries
    functions defined in ``__main__`` by value. So while a worker starts, the main module's
    ``__file__`` and ``__spec__`` are hidden from multiprocessing's preparation data, and put back
    right after. Works the same from a script, ``python -c``, ``python -m`` and a notebook.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class _Slot:
    """One worker process, its pipe, and the trial it runs (if any)."""

    def __init__(self, ctx, payload: str, threads: int, memory_cap: float | None = None):
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main,
                                args=(child, payload, threads, os.getpid(), memory_cap),
                                daemon=True, name="autodl-worker")
        with main_not_reimported():
            self.proc.start()
        child.close()
        self.task: TrialTask | None = None
        self.started: float | None = None  # when the worker began the trial

    def kill(self, grace: float = 0.0) -> int | None:
        """Stop the worker (after ``grace`` seconds to exit by itself); its exit code."""
        if grace:
            self.proc.join(timeout=grace)
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=10)
        self.conn.close()
        return self.proc.exitcode


class ProcessExecutor:
    """``n_workers`` local worker processes (spawned), one pipe each.

    Args:
        n_workers: worker processes (each runs one trial at a time).
        trial_timeout: seconds after which a trial's worker is killed and the trial FAILED.
        threads: native threads per worker (default :func:`trial_threads`: ``OMP_NUM_THREADS``
            when it is set, else usable cores // ``n_workers``, at least 1).
        trial_memory: bytes of memory each worker may use (Linux, see :func:`cap_memory`); a
            trial that exceeds it is FAILED, "exceeded the memory cap of 2.0 GB
            (--trial-memory): <the allocation error>", and its worker is replaced.
    """

    name = "local"
    live_reports = True

    def __init__(self, n_workers: int = 1, trial_timeout: float | None = None,
                 threads: int | None = None, trial_memory: float | None = None):
        check_memory_cap(trial_memory)
        self.n_workers = int(n_workers)
        self.trial_timeout = trial_timeout
        self.trial_memory = trial_memory
        self.threads = threads or trial_threads(self.n_workers)
        self._ctx = multiprocessing.get_context("spawn")
        self._slots: list[_Slot] = []
        self._payload = ""  # path of the cloudpickled objective
        self._hooks = Hooks()

    @property
    def capacity(self) -> int:
        return self.n_workers

    @property
    def pids(self) -> dict[int, int]:
        """``{trial id: pid of the worker running it}``."""
        return {s.task.trial_id: s.proc.pid for s in self._slots if s.task is not None}

    def start(self, objective, hooks: Hooks) -> None:
        # workers read the objective from a file: as a Process argument, an objective larger
        # than a pipe's buffer (one holding the data) would block the driver until each new
        # worker had finished its imports (seconds), deaf to results, timeouts and deadlines
        import tempfile
        import weakref

        payload = dump_objective(objective)  # may raise: nothing is written then
        self._remove_payload()
        fd, self._payload = tempfile.mkstemp(prefix="autodl-objective-", suffix=".pkl")
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        # removed by shutdown(), else when the executor is collected or the interpreter exits
        self._payload_finalizer = weakref.finalize(self, _unlink, self._payload)
        self._hooks = hooks
        # all workers start now, so their imports overlap with each other
        self._slots = [self._new_slot() for _ in range(self.n_workers)]

    def _new_slot(self) -> _Slot:
        return _Slot(self._ctx, self._payload, self.threads, self.trial_memory)

    def submit(self, task: TrialTask) -> None:
        for i, slot in enumerate(self._slots):
            if slot.task is None:
                if not slot.proc.is_alive():  # died while idle: replace it silently
                    slot.kill()
                    slot = self._slots[i] = self._new_slot()
                try:
                    slot.conn.send(task)
                except (BrokenPipeError, OSError):
                    slot.kill()
                    slot = self._slots[i] = self._new_slot()
                    slot.conn.send(task)
                slot.task, slot.started = task, None
                return
        raise RuntimeError("submit() with every worker busy; keep at most `capacity` trials running")

    def wait_any(self, timeout: float | None = None) -> list[tuple[int, TrialOutcome]]:
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            busy = [s for s in self._slots if s.task is not None]
            if not busy:
                return []
            now = time.monotonic()
            wait_for = None if end is None else max(0.0, end - now)
            started = [s.started for s in busy if s.started is not None]
            if self.trial_timeout is not None and started:
                first = min(started) + self.trial_timeout - now
                wait_for = max(0.0, first) if wait_for is None else min(wait_for, max(0.0, first))
            ready = mp_wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], wait_for)
            results: list[tuple[int, TrialOutcome]] = []
            for i, slot in enumerate(self._slots):
                if slot.task is None:
                    continue
                if slot.conn in ready or slot.proc.sentinel in ready:
                    out = self._drain(i)
                    if out is not None:
                        results.append(out)
            results += self._stop_overdue()
            if results or (end is not None and time.monotonic() >= end):
                return results

    def _drain(self, i: int) -> tuple[int, TrialOutcome] | None:
        """Handle every message waiting on slot ``i``'s pipe; the finished trial, if any."""
        slot = self._slots[i]
        assert slot.task is not None
        tid = slot.task.trial_id
        eof = False
        try:
            while slot.conn.poll():
                msg = slot.conn.recv()
                kind = msg[0]
                if kind == "start":
                    slot.started = time.monotonic()
                elif kind == "report":
                    self._hooks.on_report(msg[1], msg[2], msg[3])
                elif kind == "prune?":
                    slot.conn.send(bool(self._hooks.should_prune(msg[1])))
                elif kind == "keep?":
                    slot.conn.send(bool(self._hooks.worth_keeping(msg[1], msg[2])))
                elif kind == "done":
                    slot.task = None
                    if msg[2].out_of_memory:  # the worker exits: start its successor now
                        slot.kill(grace=5.0)
                        self._slots[i] = self._new_slot()
                    return msg[1], msg[2]
                elif kind == "interrupt":
                    raise KeyboardInterrupt
                elif kind == "broken":
                    raise UserError(f"the objective cannot be loaded in a worker process: {msg[1]}")
        except (EOFError, OSError):
            eof = True  # the worker is gone (or going); see below
        if not eof and slot.proc.is_alive():
            return None
        code = slot.kill(grace=2.0)
        slot.task = None
        self._slots[i] = self._new_slot()
        return tid, lost(describe_exit(code, self.trial_memory))

    # the study's deadline (stop_at_timeout) uses these two when an executor has them
    def cancel(self, trial_id: int) -> bool:
        """Stop a running trial now by killing its worker (the next ``submit`` starts a new
        one, so none is left starting up at the end). False if the trial is not running here."""
        for slot in self._slots:
            if slot.task is not None and slot.task.trial_id == trial_id:
                slot.kill()
                slot.task = None
                return True
        return False

    def trial_started(self, trial_id: int) -> float | None:
        """``time.monotonic()`` at which the worker began the trial (None: not yet, e.g. while a
        new worker starts up)."""
        for slot in self._slots:
            if slot.task is not None and slot.task.trial_id == trial_id:
                return slot.started
        return None

    def _stop_overdue(self) -> list[tuple[int, TrialOutcome]]:
        if self.trial_timeout is None:
            return []
        out = []
        now = time.monotonic()
        for i, slot in enumerate(self._slots):
            if (slot.task is not None and slot.started is not None
                    and now - slot.started >= self.trial_timeout):
                tid = slot.task.trial_id
                slot.kill()
                self._slots[i] = self._new_slot()
                out.append((tid, timed_out(self.trial_timeout, now - slot.started)))
        return out

    def shutdown(self) -> None:
        for slot in self._slots:
            if slot.task is None and slot.proc.is_alive():
                try:
                    slot.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        deadline = time.monotonic() + 2.0
        for slot in self._slots:
            if slot.task is None:
                slot.proc.join(timeout=max(0.0, deadline - time.monotonic()))
            slot.kill()
        self._slots = []
        self._remove_payload()

    def _remove_payload(self) -> None:
        if self._payload:
            self._payload_finalizer()
            self._payload = ""


# ---------------------------------------------------------------------- choosing one
EXECUTORS = ("inline", "local", "dask")


def make_executor(executor: "str | Executor | None", n_workers: int | None = 1,
                  trial_timeout: float | None = None,
                  dask_scheduler: str | None = None, *,
                  trial_memory: float | None = None) -> Executor:
    """Build the executor a study asked for.

    ``None``/``"auto"``: in-process for one worker without a timeout or memory cap, else local
    processes; ``"dask"`` with ``dask_scheduler`` joins that cluster, without it starts a local
    one. ``trial_memory`` (bytes) needs local processes. ``n_workers=None``: one per usable core
    (:func:`cpu_cores`). ``"inline"`` with a ``trial_timeout`` stops a trial at its next
    ``trial.report()`` / ``should_prune()`` / ``should_stop()`` (see :class:`InlineExecutor`).
    """
    check_memory_cap(trial_memory)
    if n_workers is None:
        n_workers = cpu_cores()
    if executor is not None and not isinstance(executor, str):
        if not isinstance(executor, Executor):
            raise UserError(f"executor must be one of {', '.join(EXECUTORS)} or an Executor, "
                            f"got {type(executor).__name__}")
        if trial_memory is not None:
            raise UserError("trial_memory applies to the executors autodl builds; for your own "
                            "executor, give it to ProcessExecutor(trial_memory=...) directly")
        return executor
    name = (executor or "auto").lower()
    if dask_scheduler is not None:
        if name == "auto":
            name = "dask"
        elif name != "dask":
            raise UserError(f"dask_scheduler only applies with executor='dask', not '{name}'")
    if name == "auto":
        name = "inline" if n_workers == 1 and trial_timeout is None and trial_memory is None else "local"
    if trial_memory is not None and name == "inline":
        raise UserError("a per-trial memory cap needs worker processes to hold it; use "
                        "executor='local' (n_workers=1 is fine)")
    if trial_memory is not None and name == "dask":
        raise UserError("trial_memory applies to executor='local'; on Dask, cap the workers "
                        "instead (dask-worker --memory-limit 2GB)")
    if name == "inline":
        if n_workers != 1:
            raise UserError(f"executor='inline' runs one trial at a time; got n_workers={n_workers}")
        return InlineExecutor(trial_timeout)
    if name == "local":
        return ProcessExecutor(n_workers, trial_timeout, trial_memory=trial_memory)
    if name == "dask":
        require(("dask", "distributed"), "dask", "executor='dask'")  # before the run starts
        from autodl.study.dask_executor import DaskExecutor, check_address

        if dask_scheduler is not None:
            check_address(dask_scheduler)
        return DaskExecutor(n_workers=n_workers, scheduler=dask_scheduler, trial_timeout=trial_timeout)
    raise UserError(f"unknown executor '{executor}'; choose one of: {', '.join(EXECUTORS)}")
