"""The :class:`Study`: a searcher, a storage and the loop that runs an objective."""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from autodl.errors import SearchExhausted, StorageError, UserError
from autodl.searchers import Searcher, Trial, make_searcher
from autodl.space import Space
from autodl.study.executors import TrialOutcome, execute, process_pool, submit
from autodl.study.storage import Storage, open_storage
from autodl.study.trial import FrozenTrial, RunningTrial, TrialState

Objective = Callable[[RunningTrial], Any]
Callback = Callable[["Study", FrozenTrial], None]

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)


@dataclass
class _Job:
    """A trial in flight: its storage id and the searcher's view of it."""

    id: int
    trial: Trial


class Study:
    """Trials of one search, kept in a storage that survives crashes.

    Args:
        space: the :class:`~autodl.Space` (or a built-in name / YAML path).
        searcher: a :class:`~autodl.searchers.Searcher`, or a name (``"random"``, ``"grid"``,
            ``"tpe"``, ...).
        direction: ``"minimize"`` or ``"maximize"`` the objective's value.
        storage: None (in memory), a run folder, a ``.db`` path or a Storage. Re-opening an
            existing storage resumes it: completed trials are kept, the searcher is rebuilt
            from them, and trials left running by a crash are marked ABANDONED and run again.
        seed: seeds the searcher (same seed -> same sequence of trials when run sequentially).
        searcher_params: extra arguments for a searcher given by name.

    Example:
        >>> study = Study(space, searcher="random", direction="maximize", storage="runs/x")
        >>> study.optimize(objective, n_trials=50)
        >>> study.best_config, study.best_value
    """

    def __init__(
        self,
        space: Space | str,
        searcher: Searcher | str = "random",
        direction: str = "minimize",
        storage: str | Path | Storage | None = None,
        seed: int | None = None,
        searcher_params: dict[str, Any] | None = None,
    ):
        if direction not in ("minimize", "maximize"):
            raise UserError(f"direction is '{direction}', but must be 'minimize' or 'maximize'")
        self.space = Space.load(space)
        self.direction = direction
        self.seed = seed
        # the searcher first: a mistake in it must not leave a new, empty storage file behind
        if isinstance(searcher, Searcher):
            if searcher_params:
                raise UserError("searcher_params only applies when the searcher is given by name")
            self.searcher = searcher
        else:
            self.searcher = make_searcher(searcher, self.space, seed=seed, **(searcher_params or {}))
        self.storage = open_storage(storage)
        self.run_dir = str(self.storage.path.parent) if self.storage.path is not None else None

        meta = self.storage.get_meta()
        if meta:
            self._check_same_study(meta)
        else:
            from autodl._version import __version__

            self.storage.set_meta({
                "space": self.space.to_dict(),
                "direction": direction,
                "searcher": self.searcher.name,
                "searcher_params": self.searcher.get_params(),
                "seed": seed,
                "created": time.time(),
                "autodl_version": __version__,
            })
        self.storage.abandon_orphans()
        self._restore_searcher()

    # ------------------------------------------------------------------ opening
    def _check_same_study(self, meta: dict[str, Any]) -> None:
        where = self.storage.path or "storage"
        if meta.get("space", {}).get("parameters") != self.space.to_dict()["parameters"]:
            raise StorageError(
                f"{where} holds a study over a different space; use Study.load() to reopen it "
                "or another storage path for a new study"
            )
        if meta.get("direction") != self.direction:
            raise StorageError(
                f"{where} holds a study that {meta.get('direction')}s; got direction="
                f"'{self.direction}'"
            )

    @classmethod
    def load(cls, path: str | Path, searcher: Searcher | str | None = None) -> "Study":
        """Open an existing study from a run folder or a storage path; it resumes where it was.

        The space, direction, searcher and seed come from the storage.
        """
        p = Path(str(path).removeprefix("sqlite:///"))
        db = p / "study.db" if p.is_dir() else p
        if not db.is_file():
            raise StorageError(f"no study at {path} (expected a run folder with study.db or a .db file)")
        storage = open_storage(db)
        meta = storage.get_meta()
        if not meta:
            raise StorageError(f"{db} is not an autodl study (no metadata)")
        space = Space.from_dict(meta["space"], source=str(db))
        return cls(
            space,
            searcher=searcher or meta["searcher"],
            direction=meta["direction"],
            storage=storage,
            seed=meta.get("seed"),
            searcher_params=None if searcher is not None else meta.get("searcher_params"),
        )

    def _restore_searcher(self) -> None:
        history = []
        for t in self.storage.get_trials(_FINISHED):
            st = Trial(t.id, dict(t.config), t.budget, dict(t.info))
            value = None if t.state == TrialState.FAILED else self._to_min(t.value)
            history.append((st, value))
        if history:
            self.searcher.restore(history)

    # ------------------------------------------------------------------ sign handling
    def _to_min(self, value: float | None) -> float | None:
        if value is None:
            return None
        return value if self.direction == "minimize" else -value

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "minimize" else a > b

    # ------------------------------------------------------------------ trials
    @property
    def trials(self) -> list[FrozenTrial]:
        """All trials, in id order."""
        return self.storage.get_trials()

    def get_trials(self, states: Iterable[TrialState | str] | None = None) -> list[FrozenTrial]:
        return self.storage.get_trials(None if states is None else [TrialState(s) for s in states])

    @property
    def n_finished(self) -> int:
        """Trials that count toward ``n_trials``: complete, pruned or failed."""
        return self.storage.count(_FINISHED)

    @property
    def best_trial(self) -> FrozenTrial:
        complete = self.storage.get_trials([TrialState.COMPLETE])
        if not complete:
            raise ValueError("no trial has completed yet")
        best = complete[0]
        for t in complete[1:]:
            if self._better(t.value, best.value):
                best = t
        return best

    @property
    def best_value(self) -> float:
        return float(self.best_trial.value)

    @property
    def best_config(self) -> dict[str, Any]:
        return dict(self.best_trial.config)

    def leaderboard(self, top: int | None = None):
        """Completed trials best first, as a pandas DataFrame (config flattened to columns)."""
        import pandas as pd

        rows = []
        for t in self.storage.get_trials([TrialState.COMPLETE]):
            row = {"id": t.id, "value": t.value, "budget": t.budget, "duration": t.duration}
            row.update(t.config)
            rows.append(row)
        df = pd.DataFrame(rows)
        if df.empty:
            return df
        if df["budget"].isna().all():
            df = df.drop(columns=["budget"])
        df = df.sort_values(["value", "id"], ascending=[self.direction == "minimize", True])
        df = df.reset_index(drop=True)
        return df.head(top) if top else df

    def to_optuna(self, storage: str | None = None, study_name: str | None = None):
        """An Optuna study with every finished trial, for Optuna's plots and optuna-dashboard.

        See :func:`autodl.integrations.optuna.to_optuna`.
        """
        from autodl.integrations.optuna import to_optuna

        return to_optuna(self, storage=storage, study_name=study_name)

    # ------------------------------------------------------------------ ask / tell
    def _next_job(self) -> _Job | None:
        """A retry of an abandoned trial if there is one, else a new ask; None when exhausted."""
        for old in self.storage.get_trials([TrialState.ABANDONED]):
            new_id = self.storage.claim_retry(old.id, dict(old.config), old.budget, dict(old.info))
            if new_id is not None:
                # the retry becomes one of the searcher's pending trials (with an id of its own),
                # so it is not proposed again while it runs (e.g. the same grid point)
                trial = self.searcher._new_trial(dict(old.config), old.budget, **dict(old.info))
                return _Job(new_id, trial)
        try:
            trial = self.searcher.ask()
        except SearchExhausted:
            return None
        tid = self.storage.create_trial(trial.config, trial.budget, dict(trial.info))
        return _Job(tid, trial)

    def ask(self) -> RunningTrial:
        """Start a trial by hand (for loops you drive yourself); finish it with :meth:`tell`.

        Raises:
            SearchExhausted: when the searcher has nothing left (e.g. the grid is used up).
        """
        job = self._next_job()
        if job is None:
            raise SearchExhausted("the searcher has nothing left to propose")
        self._asked = getattr(self, "_asked", {})
        self._asked[job.id] = job
        return self._handle(job)

    def tell(self, trial: RunningTrial | int, value: Any = None, state: TrialState | str | None = None) -> FrozenTrial:
        """Finish a trial started with :meth:`ask` with its value (None or NaN: failed)."""
        from autodl.study.trial import check_value

        tid = trial.id if isinstance(trial, RunningTrial) else int(trial)
        job = getattr(self, "_asked", {}).pop(tid, None)
        if job is None:
            raise UserError(f"trial {tid} was not started by this study's ask()")
        v, why = check_value(value)
        st = TrialState(state) if state is not None else (TrialState.COMPLETE if v is not None else TrialState.FAILED)
        inter = trial.intermediate if isinstance(trial, RunningTrial) else {}
        attrs = trial.user_attrs if isinstance(trial, RunningTrial) else {}
        return self._finish(job, TrialOutcome(st, v, why, dict(inter), dict(attrs)), reported=True)

    def _handle(self, job: _Job) -> RunningTrial:
        def on_report(step: int, value: float) -> None:
            self.storage.report(job.id, step, value)
            self.searcher.report(job.trial, step, self._to_min(value))

        return RunningTrial(job.id, job.trial.config, job.trial.budget, on_report=on_report,
                            pruner=lambda: self.searcher.should_prune(job.trial), run_dir=self.run_dir)

    def _finish(self, job: _Job, out: TrialOutcome, reported: bool) -> FrozenTrial:
        if not reported and out.intermediate:
            self.storage.report_many(job.id, out.intermediate)
            for step, v in out.intermediate.items():
                self.searcher.report(job.trial, step, self._to_min(v))
        self.storage.finish_trial(job.id, out.state, out.value, out.message, out.user_attrs)
        if out.state == TrialState.FAILED:
            self.searcher.tell(job.trial, None)
        else:
            self.searcher.tell(job.trial, self._to_min(out.value))
        return self.storage.get_trial(job.id)

    def _abandon(self, job: _Job, message: str) -> None:
        self.storage.finish_trial(job.id, TrialState.ABANDONED, None, message)
        self.searcher.pending.pop(job.trial.id, None)

    # ------------------------------------------------------------------ the loop
    def optimize(
        self,
        objective: Objective,
        n_trials: int | None = None,
        timeout: float | None = None,
        n_workers: int = 1,
        callbacks: Sequence[Callback] = (),
        show_progress: bool = False,
    ) -> "Study":
        """Run ``objective(trial)`` on new trials until ``n_trials`` more have finished, the
        ``timeout`` (seconds) has passed, or the searcher is exhausted.

        ``objective`` returns a float; it may call ``trial.report(step, value)`` and
        ``trial.should_prune()``. An exception, NaN/inf or a non-number marks the trial FAILED
        (with the message) and the study goes on. No new trial starts after the timeout; running
        ones finish. On Ctrl-C the running trials are marked ABANDONED (resume re-runs them) and
        ``KeyboardInterrupt`` is raised again.

        With ``n_workers > 1`` trials run in that many local processes (spawned; the objective
        is cloudpickled once per worker, so closures work). Define-by-run pruning
        (``should_prune``) is decided in-process only; in workers it returns False.
        """
        if n_trials is not None and (not isinstance(n_trials, int) or n_trials < 1):
            raise UserError(f"n_trials is {n_trials!r}, but must be a positive integer")
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise UserError(f"timeout is {timeout!r}, but must be a positive number of seconds")
        if not isinstance(n_workers, int) or n_workers < 1:
            raise UserError(f"n_workers is {n_workers!r}, but must be an integer >= 1")
        deadline = None if timeout is None else time.monotonic() + float(timeout)

        progress = None
        if show_progress:
            from autodl.study.progress import StudyProgress

            progress = StudyProgress(self, n_trials=n_trials, timeout=timeout)
            callbacks = [*callbacks, progress.update]
        try:
            if progress is not None:
                progress.start()
            if n_workers == 1:
                self._run_sequential(objective, n_trials, deadline, callbacks)
            else:
                self._run_parallel(objective, n_trials, deadline, n_workers, callbacks, progress)
        finally:
            if progress is not None:
                progress.stop()
        return self

    @staticmethod
    def _time_left(deadline: float | None) -> bool:
        return deadline is None or time.monotonic() < deadline

    def _run_sequential(self, objective, n_trials, deadline, callbacks) -> None:
        done = 0
        while (n_trials is None or done < n_trials) and self._time_left(deadline):
            job = self._next_job()
            if job is None:
                return
            try:
                out = execute(objective, self._handle(job))
            except (KeyboardInterrupt, SystemExit):
                self._abandon(job, "interrupted (Ctrl-C); resume runs it again")
                raise
            frozen = self._finish(job, out, reported=True)
            done += 1
            for cb in callbacks:
                cb(self, frozen)

    def _run_parallel(self, objective, n_trials, deadline, n_workers, callbacks, progress) -> None:
        pool = process_pool(objective, n_workers)
        running: dict[Future, _Job] = {}
        started = 0
        exhausted = False
        try:
            while True:
                while (not exhausted and len(running) < n_workers
                       and (n_trials is None or started < n_trials) and self._time_left(deadline)):
                    job = self._next_job()
                    if job is None:
                        exhausted = True
                        break
                    try:
                        fut = submit(pool, job.id, job.trial.config, job.trial.budget, self.run_dir)
                    except BrokenProcessPool:
                        self._abandon(job, "worker pool broke before the trial started")
                        pool = self._replace_pool(pool, objective, n_workers)
                        continue
                    running[fut] = job
                    started += 1
                    if progress is not None:
                        progress.set_running(len(running))
                if not running:
                    return
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                broken = False
                for fut in finished:
                    job = running[fut]
                    try:
                        out = fut.result()
                    except BrokenProcessPool as exc:
                        broken = True
                        out = TrialOutcome(TrialState.FAILED, None,
                                           f"worker process died during the trial ({exc})")
                    # popped only now: a KeyboardInterrupt from the worker leaves the job in
                    # `running`, so it is marked ABANDONED below like the others
                    del running[fut]
                    frozen = self._finish(job, out, reported=False)
                    for cb in callbacks:
                        cb(self, frozen)
                if progress is not None:
                    progress.set_running(len(running))
                if broken:
                    for fut, job in list(running.items()):
                        self._finish(job, TrialOutcome(
                            TrialState.FAILED, None, "worker process died during the trial"), False)
                        running.pop(fut)
                    pool = self._replace_pool(pool, objective, n_workers)
        except (KeyboardInterrupt, SystemExit):
            for job in running.values():
                self._abandon(job, "interrupted (Ctrl-C); resume runs it again")
            running.clear()
            _kill_pool(pool)
            raise
        finally:
            if running:
                for job in running.values():
                    self._abandon(job, "study loop ended while the trial was running")
            _kill_pool(pool)

    @staticmethod
    def _replace_pool(pool, objective, n_workers):
        _kill_pool(pool)
        return process_pool(objective, n_workers)

    def __repr__(self) -> str:
        where = self.storage.path or "memory"
        return (f"Study(searcher={self.searcher.name}, direction={self.direction}, "
                f"trials={len(self.trials)}, storage={where})")


def _kill_pool(pool) -> None:
    """Shut a process pool down now, terminating workers still busy."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # None once shut down
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)

