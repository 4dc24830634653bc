"""The :class:`Study`: a searcher, a storage and the loop that runs an objective."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from autodl.errors import SearchExhausted, StorageError, UserError
from autodl.searchers import Searcher, Trial, make_searcher
from autodl.space import Space
from autodl.study.executors import Hooks, TrialOutcome, TrialTask
from autodl.study.storage import ConfigTaken, Heartbeat, SQLiteStorage, Storage, open_storage
from autodl.study.trial import FrozenTrial, RunningTrial, TrialState

if TYPE_CHECKING:
    from autodl.study.executors import Executor

Objective = Callable[[RunningTrial], Any]
Callback = Callable[["Study", FrozenTrial], None]

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)
_POLL = 0.25  # seconds between looks at trials whose worker has not begun them (deadline)
#: with ``trial_cost``: after this many trials in a row were skipped as too costly, no new trial starts
MAX_SKIPS_IN_A_ROW = 20
_ACTIVE = (TrialState.RUNNING, *_FINISHED)
#: asks again when another process already runs the proposed config (then it is accepted)
_TAKEN_RETRIES = 3


@dataclass
class _Job:
    """A trial in flight: its storage id and the searcher's view of it."""

    id: int
    trial: Trial
    deaths: list[str] = field(default_factory=list)  # why earlier attempts' workers died
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Deadline:
    """When a study that stops at its timeout must be done (``time.monotonic()`` values).

    ``ratio`` keeps time free after the search for work whose cost grows with a trial's
    duration (``autodl.search`` refits the winner there): ``ratio`` x the best trial's duration
    before ``at``. A running trial is hopeless once it could no longer finish and still leave its
    own reserve before ``at``: started at ``s``, that is at ``s + (at - s) / (1 + ratio)``.
    """

    at: float
    ratio: float = 0.0
    reserve: float = 0.0  # ratio x the best trial's duration so far (at the full budget)

    @property
    def end(self) -> float:
        """No trial starts or runs past this."""
        return self.at - self.reserve

    def cutoff(self, started: float) -> float:
        """When a trial started at ``started`` is stopped."""
        return min(self.end, started + max(0.0, self.at - started) / (1.0 + self.ratio))


class Study:
    """Trials of one search, kept in a storage that survives crashes.

    Args:
        space: the :class:`~autodl.Space` (or a built-in name / YAML path).
        searcher: a :class:`~autodl.searchers.Searcher`, or a name (``"random"``, ``"grid"``,
            ``"tpe"``, ...). The default ``"auto"`` picks one of autodl's searchers from the
            space and ``searcher_params`` (a budget range, the planned ``n_trials``); the rule
            is in :mod:`autodl.searchers.auto`, the pick in ``study.searcher.choice``.
        direction: ``"minimize"`` (default) or ``"maximize"`` the objective's value.
        storage: None (in memory), a run folder, a ``.db`` path or a Storage. Re-opening an
            existing storage resumes it: completed trials are kept, the searcher is rebuilt
            from them, and trials left running by a crash are marked ABANDONED and run again.
        seed: seeds the searcher (same seed -> same sequence of trials when run sequentially).
        searcher_params: extra arguments for a searcher given by name.
        directions: several objectives (Optuna's naming), e.g. ``["maximize", "minimize"]``:
            the objective returns one value per direction (a tuple), ``best_trials`` is the
            Pareto front. Give ``direction`` or ``directions``, not both. Needs a searcher
            that takes several objectives (``"motpe"``, ``"nsga2"``, ``"random"``); the
            default searcher becomes ``"motpe"``.
        constraints_func: ``constraints_func(frozen_trial) -> [c1, c2, ...]`` (Optuna's
            samplers' argument), called when a trial completes; a value <= 0 is feasible. The
            objective may instead call ``trial.set_constraint(name, value)``. Searchers rank
            feasible trials first and infeasible ones by total violation; ``best_trial`` and
            ``best_trials`` hold feasible trials only.

    Example:
        >>> study = Study(space, searcher="random", direction="maximize", storage="runs/x")
        >>> study.optimize(objective, n_trials=50)
        >>> study.best_config, study.best_value
        >>> mo = Study(space, directions=["maximize", "minimize"])  # objective -> (acc, ms)
        >>> mo.optimize(lambda t: (accuracy(t.config), latency(t.config)), n_trials=100)
        >>> [t.values for t in mo.best_trials]
    """

    def __init__(
        self,
        space: Space | str,
        searcher: Searcher | str = "auto",
        direction: str | None = None,
        storage: str | Path | Storage | None = None,
        seed: int | None = None,
        searcher_params: dict[str, Any] | None = None,
        *,
        directions: Sequence[str] | None = None,
        constraints_func: Callable[[FrozenTrial], Sequence[float]] | None = None,
    ):
        #: one entry per objective
        self.directions: list[str] = _check_directions(direction, directions)
        self.space = Space.load(space)
        #: the direction of a single-objective study (None with several: see ``directions``)
        self.direction = self.directions[0] if len(self.directions) == 1 else None
        if constraints_func is not None and not callable(constraints_func):
            raise UserError(f"constraints_func is {constraints_func!r}, but must be a callable "
                            "frozen_trial -> sequence of floats")
        self.constraints_func = constraints_func
        self.seed = seed
        if self.n_objectives > 1 and isinstance(searcher, str) and searcher == _default_searcher():
            if (searcher_params or {}).get("max_budget") is not None:
                # budgets: "auto" picks multi-objective ASHA, told how many objectives there are
                searcher_params = {**searcher_params, "n_objectives": self.n_objectives}
            else:
                searcher = MULTI_OBJECTIVE_DEFAULT
        # the searcher first: a mistake in it must not leave a new, empty storage file behind
        if isinstance(searcher, Searcher):
            if searcher_params:
                raise UserError("searcher_params only applies when the searcher is given by name")
            self.searcher = searcher
        else:
            self.searcher = make_searcher(searcher, self.space, seed=seed, **(searcher_params or {}))
        if self.n_objectives > 1 and not getattr(self.searcher, "multi_objective", False):
            from autodl.searchers.base import multi_objective_names

            raise UserError(
                f"searcher '{self.searcher.name}' optimizes one objective, but the study has "
                f"{self.n_objectives} directions; use one of: {', '.join(multi_objective_names())}")
        self.storage = open_storage(storage)
        self.run_dir = str(self.storage.path.parent) if self.storage.path is not None else None

        meta = self.storage.get_meta()
        if meta:
            self._check_same_study(meta)
        else:
            from autodl._version import __version__

            self.storage.set_meta({
                "space": self.space.to_dict(),
                "direction": self.direction,
                "directions": self.directions,
                "searcher": self.searcher.name,
                "searcher_params": self.searcher.get_params(),
                "seed": seed,
                "created": time.time(),
                "autodl_version": __version__,
            })
        #: storage ids of the trials the searcher knows (restored, or run by this process);
        #: finished trials of other processes sharing the storage are told before each ask
        self._known: set[int] = set()
        self._asked: dict[int, _Job] = {}  # trials started by ask(), awaiting tell()
        self._n_known_finished = 0
        self._foreign_running: dict[int, Any] = {}  # another process's running trial -> ours
        self._limit_hit = False
        self._queue: list[dict[str, Any]] = []  # configs to run before the searcher's own (enqueue)
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
        stored = meta.get("directions") or [meta.get("direction")]
        if list(stored) != self.directions:
            what = f"direction='{stored[0]}'" if len(stored) == 1 else f"directions={list(stored)}"
            got = f"direction='{self.direction}'" if self.direction else f"directions={self.directions}"
            raise StorageError(f"{where} holds a study with {what}; got {got}")

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
        directions = meta.get("directions") or [meta["direction"]]
        return cls(
            space,
            searcher=searcher or meta["searcher"],
            direction=directions[0] if len(directions) == 1 else None,
            directions=directions if len(directions) > 1 else None,
            storage=storage,
            seed=meta.get("seed"),
            searcher_params=None if searcher is not None else meta.get("searcher_params"),
        )

    def _restore_searcher(self) -> None:
        history = []
        for t in self.storage.get_trials(_FINISHED):
            st = Trial(t.id, dict(t.config), t.budget, dict(t.info))
            history.append((st, *self._searcher_result(t.state, t.value, t.values, t.constraints)))
            self._known.add(t.id)
        self._n_known_finished = len(history)
        if history:
            self.searcher.restore(history)  # reseeds from (seed, finished trials)
        n_rows = self.storage.count(list(TrialState))
        seed = self.seed if self.seed is not None else self.searcher.seed
        if n_rows > len(history) and seed is not None:
            # trials were started but not finished (a crash): a stream seeded only from the
            # finished count would propose those configs again besides retrying them
            self.searcher.reseed([abs(int(seed)), len(history), n_rows])

    # ------------------------------------------------------------------ sign handling
    @property
    def n_objectives(self) -> int:
        """How many values the objective returns (``len(directions)``)."""
        return len(self.directions)

    def _to_min(self, value: float | None) -> float | None:
        if value is None:
            return None
        return value if self.directions[0] == "minimize" else -value

    def _values_to_min(self, values: Sequence[float]) -> tuple[float, ...]:
        return tuple(v if d == "minimize" else -v for v, d in zip(values, self.directions))

    def _report_to_min(self, value: Any) -> Any:
        """A reported value (a float, or a tuple with several directions) flipped to minimize."""
        if isinstance(value, tuple):
            return self._values_to_min(value)
        return self._to_min(value)

    def _searcher_result(self, state: TrialState, value: float | None,
                         values: Sequence[float] | None, constraints) -> tuple:
        """What the searcher is told of a finished trial: ``(value,)`` or ``(value,
        constraints)``, the value(s) flipped to minimize (None for a failure; a pruned trial of
        several objectives is told the last tuple it reported, and counts as a failure when it
        reported none)."""
        if state == TrialState.FAILED:
            told = None
        elif self.n_objectives > 1:
            usable = values is not None and len(values) == self.n_objectives
            told = self._values_to_min(values) if usable and state in (
                TrialState.COMPLETE, TrialState.PRUNED) else None
        else:
            told = self._to_min(value)
        return (told,) if not constraints else (told, tuple(constraints.values()))

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

    def _candidates(self) -> list[FrozenTrial]:
        """Complete trials that compete for best: at the top budget, feasible ones only when
        any trial has constraints. ValueError when there are none."""
        complete = _at_top_budget(self.storage.get_trials([TrialState.COMPLETE]))
        if not complete:
            raise ValueError("no trial has completed yet")
        feasible = [t for t in complete if t.feasible]
        if not feasible:
            least = min(complete, key=lambda t: (t.violation, t.id))
            raise ValueError(f"no feasible trial yet: all {len(complete)} complete trials violate "
                             f"their constraints (least: trial {least.id}, total violation "
                             f"{least.violation:.4g})")
        return feasible

    @property
    def best_trials(self) -> list[FrozenTrial]:
        """The Pareto front: complete trials no other complete trial dominates (in every
        direction at least as good and better in one), in id order; feasible trials only when
        constraints exist; with budgets, those at the largest budget (as :attr:`best_trial`).
        With one objective, the trials that share the best value. Empty before any trial
        completes (or while none is feasible)."""
        from autodl.searchers.pareto import pareto_mask

        try:
            complete = self._candidates()
        except ValueError:
            return []
        y = [self._values_to_min(t.values) for t in complete]
        return [t for t, keep in zip(complete, pareto_mask(y)) if keep]

    def _single_objective(self, what: str) -> None:
        if self.n_objectives > 1:
            raise UserError(f"study.{what} is for one objective, but this study has "
                            f"{self.n_objectives} directions ({', '.join(self.directions)}); "
                            "use study.best_trials (the Pareto front)")

    @property
    def best_trial(self) -> FrozenTrial:
        """The best complete trial. With budgets (multi-fidelity searchers), only the trials at
        the largest budget a complete trial reached compete: a value after 1 epoch is not
        comparable with one after 27. A trial without a budget ran the full budget. With
        constraints, the best feasible trial (ValueError while there is none).

        Raises:
            UserError: the study has several objectives (see :attr:`best_trials`).
            ValueError: no (feasible) trial has completed yet.
        """
        self._single_objective("best_trial")
        complete = self._candidates()
        best = complete[0]
        for t in complete[1:]:
            if self._better(t.value, best.value):
                best = t
        return best

    @property
    def best_value(self) -> float:
        self._single_objective("best_value")
        return float(self.best_trial.value)

    @property
    def best_config(self) -> dict[str, Any]:
        self._single_objective("best_config")
        return dict(self.best_trial.config)

    def leaderboard(self, top: int | None = None):
        """Completed trials best first, as a pandas DataFrame (config flattened to columns);
        with budgets, the largest budget first (as :attr:`best_trial`)."""
        import pandas as pd

        if self.n_objectives > 1:
            return self._front_table(top)
        rows = []
        constrained = False
        for t in self.storage.get_trials([TrialState.COMPLETE]):
            row = {"id": t.id, "value": t.value, "budget": t.budget, "duration": t.duration}
            if t.constraints:
                constrained = True
                row["violation"] = t.violation
            row.update(t.config)
            rows.append(row)
        df = pd.DataFrame(rows)
        if df.empty:
            return df
        # feasible first (as best_trial), infeasible ones by their violation
        first = ["violation"] if constrained else []
        if constrained:
            df["violation"] = df["violation"].fillna(0.0)
        if df["budget"].isna().all():
            df = df.drop(columns=["budget"])
            df = df.sort_values([*first, "value", "id"],
                                ascending=[True] * len(first) + [self.direction == "minimize", True])
        else:  # largest budget first (as best_trial): values at different budgets do not compare
            df = df.assign(_budget=df["budget"].fillna(float("inf")))
            df = df.sort_values(["_budget", *first, "value", "id"],
                                ascending=[False] + [True] * len(first) + [self.direction == "minimize", True])
            df = df.drop(columns=["_budget"])
        df = df.reset_index(drop=True)
        return df.head(top) if top else df

    def _front_table(self, top: int | None):
        """Leaderboard of a study with several objectives: complete trials by non-dominated
        front (``front`` 0 is the Pareto front; infeasible trials after the feasible ones, by
        violation), then by id; one ``value_<i>`` column per direction."""
        import pandas as pd

        from autodl.searchers.pareto import non_dominated_sort

        complete = _at_top_budget(self.storage.get_trials([TrialState.COMPLETE]))
        if not complete:
            return pd.DataFrame()
        y = [self._values_to_min(t.values) for t in complete]
        fronts = non_dominated_sort(y, [t.violation for t in complete])
        rank = {int(i): k for k, f in enumerate(fronts) for i in f}
        constrained = any(t.constraints for t in complete)
        rows = []
        for i, t in enumerate(complete):
            row: dict[str, Any] = {"id": t.id, "front": rank[i]}
            row.update({f"value_{k}": v for k, v in enumerate(t.values)})
            if constrained:
                row["violation"] = t.violation
            row.update({"budget": t.budget, "duration": t.duration})
            row.update(t.config)
            rows.append(row)
        df = pd.DataFrame(rows).sort_values(["front", "id"], kind="stable")
        if df["budget"].isna().all():
            df = df.drop(columns=["budget"])
        df = df.reset_index(drop=True)
        return df.head(top) if top else df

    def to_optuna(self, storage: str | None = None, study_name: str | None = None):
        """An Optuna study with every finished trial, for Optuna's plots and optuna-dashboard.

        Complete, pruned and failed trials map to Optuna's COMPLETE, PRUNED and FAIL; abandoned
        trials become FAIL with the user attribute ``autodl_state="abandoned"``; running trials
        are skipped. The autodl trial id, budget and message are kept as user attributes.

        Args:
            storage: an Optuna storage URL (e.g. ``sqlite:///optuna.db`` for
                optuna-dashboard); in memory by default.
            study_name: the Optuna study name.
        """
        from autodl.searchers.optuna import distributions, import_optuna

        optuna = import_optuna()
        states = {
            TrialState.COMPLETE: optuna.trial.TrialState.COMPLETE,
            TrialState.PRUNED: optuna.trial.TrialState.PRUNED,
            TrialState.FAILED: optuna.trial.TrialState.FAIL,
            TrialState.ABANDONED: optuna.trial.TrialState.FAIL,
        }
        target = optuna.create_study(directions=self.directions, storage=storage,
                                     study_name=study_name, load_if_exists=False)
        frozen = []
        for t in self.trials:
            if t.state not in states:
                continue
            attrs = {**dict(t.user_attrs), "autodl_id": t.id, "autodl_state": t.state.value}
            if t.budget is not None:
                attrs["budget"] = t.budget
            if t.message:
                attrs["message"] = t.message
            # Optuna's intermediate values are floats: reported tuples (several objectives)
            # travel as a user attribute, {step: [values]}
            tuples = {str(k): list(v) for k, v in t.intermediate.items() if isinstance(v, tuple)}
            if tuples:
                attrs["autodl_intermediate_values"] = tuples
            complete = t.state == TrialState.COMPLETE
            frozen.append(optuna.trial.create_trial(
                state=states[t.state],
                values=list(t.values) if complete and t.values is not None else None,
                params=dict(t.config),
                distributions=distributions(self.space, t.config),
                intermediate_values={int(k): float(v) for k, v in t.intermediate.items()
                                     if not isinstance(v, tuple)},
                user_attrs=attrs,
                # Optuna 5 keeps constraints as system attributes "constraints:<name>"
                system_attrs={f"constraints:{k}": float(v) for k, v in (t.constraints or {}).items()},
            ))
        target.add_trials(frozen)
        return target

    # ------------------------------------------------------------------ ask / tell
    def _sync_foreign(self) -> None:
        """Tell the searcher what other processes do in a shared SQLite study.

        Their running trials are adopted as pending (the searcher gives each an id of its own,
        so it never collides with this searcher's pending trials): a model-based searcher then
        treats them like its own running trials (constant liar, kriging believer) and does not
        propose the same point at the same time. Their finished trials are told (adopted first
        if this process never saw them run); one that ends abandoned is discarded, and the
        process that retries it adopts the retry.
        """
        if not isinstance(self.storage, SQLiteStorage):
            return
        running = self.storage.running_ids() - self._known
        for tid in sorted(running - self._foreign_running.keys()):
            t = self.storage.get_trial(tid)
            self._foreign_running[tid] = self.searcher.adopt(dict(t.config), t.budget, dict(t.info))
        gone = [tid for tid in self._foreign_running if tid not in running]
        if not gone and self.storage.count(_FINISHED) == self._n_known_finished:
            return
        finished = self.storage.finished_ids()
        for tid in gone:
            if tid not in finished:  # abandoned: its retry is adopted by whoever runs it
                self.searcher.discard(self._foreign_running.pop(tid))
        for tid in sorted(finished - self._known):
            t = self.storage.get_trial(tid)
            told = self._searcher_result(t.state, t.value, t.values, t.constraints)
            trial = self._foreign_running.pop(tid, None)
            if trial is None:
                trial = self.searcher.adopt(dict(t.config), t.budget, dict(t.info))
            self.searcher.tell(trial, *told)
            self._known.add(tid)
            self._n_known_finished += 1

    def _next_job(self, total: int | None = None) -> _Job | None:
        """A retry of an abandoned trial if there is one, else a new ask; None when exhausted
        (or when ``total`` trials are finished or running: then ``_limit_hit`` is set)."""
        self._limit_hit = False
        self._sync_foreign()
        for old in self.storage.abandoned_to_retry():
            new_id = self.storage.claim_retry(old.id, dict(old.config), old.budget, dict(old.info),
                                              limit=total)
            if new_id is not None:
                # the retry becomes one of the searcher's pending trials (with an id of its own),
                # so it is not proposed again while it runs (e.g. the same grid point)
                trial = self.searcher.adopt(dict(old.config), old.budget, dict(old.info))
                self._known.add(new_id)
                return _Job(new_id, trial)
        if total is not None and self.storage.count(_ACTIVE) >= total:
            self._limit_hit = True
            return None
        shared = isinstance(self.storage, SQLiteStorage)
        for attempt in range(_TAKEN_RETRIES + 1):
            try:
                queued = self._dequeue()
                trial = queued or self.searcher.ask()
            except SearchExhausted:
                return None
            try:
                # two processes that ask at the same moment see the same history: a model-based
                # searcher may then propose the very same point in both
                unique = shared and queued is None and attempt < _TAKEN_RETRIES
                tid = self.storage.create_trial(trial.config, trial.budget, dict(trial.info), limit=total,
                                                **({"unique": True} if unique else {}))
            except ConfigTaken:
                self.searcher.discard(trial)
                self._sync_foreign()  # the other process's twin becomes pending here: ask again
                continue
            break
        if tid is None:  # another process took the last slot meanwhile
            self.searcher.discard(trial)
            self._limit_hit = True
            return None
        self._known.add(tid)
        return _Job(tid, trial)

    def enqueue(self, config: Mapping[str, Any]) -> None:
        """Run ``config`` before the searcher's own proposals (Optuna's ``enqueue_trial``): the
        next trial this process starts takes the oldest queued config. The searcher adopts it
        (:meth:`autodl.searchers.Searcher.adopt`), so it learns from the result as from its own
        trials and does not propose the same point while it runs. A config that is not a point
        of the space is a :class:`~autodl.SpaceError` here; the queue lives in this object (a
        resumed study starts without it)."""
        self.space.validate_config(config)
        self._queue.append(dict(config))

    def _dequeue(self):
        """The searcher's trial for the oldest queued config, or None. Multi-fidelity searchers
        adopt it at their largest budget (a full evaluation)."""
        if not self._queue:
            return None
        config = self._queue.pop(0)
        budget = getattr(self.searcher, "max_budget", None) if getattr(self.searcher, "uses_budget", False) else None
        return self.searcher.adopt(config, budget, {"enqueued": True})

    def ask(self) -> RunningTrial:
        """Start a trial by hand (for loops you drive yourself); finish it with :meth:`tell`.

        Raises:
            SearchExhausted: when the searcher has nothing left (e.g. the grid is used up).
        """
        job = self._next_job()
        if job is None:
            raise SearchExhausted("the searcher has nothing left to propose")
        self._asked[job.id] = job
        return self._handle(job)

    def tell(self, trial: RunningTrial | int, value: Any = None, state: TrialState | str | None = None) -> FrozenTrial:
        """Finish a trial started with :meth:`ask` with its value (None or NaN: failed); with
        several directions, a sequence of values. Constraints set on the trial
        (``trial.set_constraint``) are kept."""
        from autodl.study.trial import check_value, check_values, is_sequence

        tid = trial.id if isinstance(trial, RunningTrial) else int(trial)
        job = self._asked.pop(tid, None)
        if job is None:
            raise UserError(f"trial {tid} was not started by this study's ask()")
        values = None
        if is_sequence(value):
            values, why = check_values(value)
            v = None
            ok = values is not None
        else:
            v, why = check_value(value)
            ok = v is not None
        st = TrialState(state) if state is not None else (TrialState.COMPLETE if ok else TrialState.FAILED)
        inter = trial.intermediate if isinstance(trial, RunningTrial) else {}
        attrs = trial.user_attrs if isinstance(trial, RunningTrial) else {}
        cons = (dict(trial.constraints) or None) if isinstance(trial, RunningTrial) else None
        return self._finish(job, TrialOutcome(st, v, why, dict(inter), dict(attrs), values=values,
                                              constraints=cons), reported=True)

    def _handle(self, job: _Job) -> RunningTrial:
        def on_report(step: int, value: float) -> None:
            self.storage.report(job.id, step, value)
            self.searcher.report(job.trial, value=self._report_to_min(value), step=step)

        return RunningTrial(job.id, job.trial.config, job.trial.budget, on_report=on_report,
                            pruner=lambda: self.searcher.should_prune(job.trial), run_dir=self.run_dir,
                            keeper=lambda value: self._worth_keeping(job, value),
                            n_objectives=self.n_objectives)

    def _finish(self, job: _Job, out: TrialOutcome, reported: bool) -> FrozenTrial:
        if not reported and out.intermediate:
            self.storage.report_many(job.id, out.intermediate)
            for step, v in out.intermediate.items():
                self.searcher.report(job.trial, value=self._report_to_min(v), step=step)
        state, value, values, message, constraints = self._checked(job, out)
        self.storage.finish_trial(job.id, state, value, message, out.user_attrs,
                                  values=values, constraints=constraints)
        self._n_known_finished += 1
        self.searcher.tell(job.trial, *self._searcher_result(state, value, values, constraints))
        return self.storage.get_trial(job.id)

    def _checked(self, job: _Job, out: TrialOutcome) -> tuple:
        """``(state, value, values, message, constraints)`` to store: the number of values
        checked against the directions (a mismatch fails the trial, saying so), and the
        ``constraints_func`` applied to a complete trial."""
        state, value, values, message = out.state, out.value, out.values, out.message
        constraints = out.constraints
        n = self.n_objectives
        if state == TrialState.COMPLETE:
            got = values if values is not None else (value,)
            if n == 1 and values is not None:  # one objective takes a float, as it always did
                state, value, values = TrialState.FAILED, None, None
                message = (f"{message or 'objective returned a sequence, expected a float'}; "
                           "for several objectives give Study(directions=[...])")
            elif len(got) != n:
                state, value, values = TrialState.FAILED, None, None
                message = (f"objective returned {len(got)} value{'s' * (len(got) != 1)}, "
                           f"but the study has {n} directions ({', '.join(self.directions)}); "
                           f"return a tuple of {n} floats")
            elif n == 1:
                value, values = float(got[0]), (float(got[0]),)
            else:
                value, values, message = None, tuple(got), None
        elif n > 1:
            # a pruned trial keeps its last reported tuple (what multi-objective pruning ranked)
            last = out.intermediate[max(out.intermediate)] if out.intermediate else out.value
            pruned = state == TrialState.PRUNED and isinstance(last, tuple) and len(last) == n
            value, values = None, tuple(last) if pruned else None
        if state == TrialState.COMPLETE and self.constraints_func is not None:
            from autodl.study.trial import check_constraints

            preview = FrozenTrial(job.id, state, dict(job.trial.config), value, job.trial.budget,
                                  message, intermediate=dict(out.intermediate),
                                  user_attrs=dict(out.user_attrs), info=dict(job.trial.info),
                                  values=values, constraints=constraints)
            try:
                constraints = {**(constraints or {}), **check_constraints(self.constraints_func(preview))}
            except Exception as exc:  # the user's function: the trial fails, the study goes on
                from autodl.study.executors import describe_error

                state, value, values = TrialState.FAILED, None, None
                message = f"constraints_func raised {describe_error(exc)}"
        return state, value, values, message, constraints

    def _abandon(self, job: _Job, message: str) -> None:
        self.storage.finish_trial(job.id, TrialState.ABANDONED, None, message)
        self.searcher.discard(job.trial)  # its retry is adopted again by whoever runs it

    # ------------------------------------------------------------------ the loop
    def optimize(
        self,
        objective: Objective,
        n_trials: int | None = None,
        timeout: float | None = None,
        n_workers: int | None = 1,
        callbacks: Sequence[Callback] = (),
        show_progress: bool | None = None,
        *,
        executor: "str | Executor | None" = None,
        dask_scheduler: str | None = None,
        trial_timeout: float | None = None,
        trial_memory: float | None = None,
        max_retries: int = 1,
        total_trials: int | None = None,
        stop_at_timeout: bool = False,
        reserve_ratio: float = 0.0,
        trial_cost: "Callable[[Mapping[str, Any], float | None, list[FrozenTrial]], float | None] | None" = None,
    ) -> "Study":
        """Run ``objective(trial)`` on new trials until ``n_trials`` more have finished, the
        ``timeout`` (seconds) has passed, the study holds ``total_trials``, or the searcher is
        exhausted.

        ``objective`` returns a float (with several ``directions``, a tuple of one float per
        direction); it may call ``trial.report(value, step)``, ``trial.should_prune()`` and
        ``trial.set_constraint(name, value)``. An exception, NaN/inf or a non-number marks the trial FAILED
        (with the message, e.g. "ValueError: bad lr (my_script.py:19)": the innermost line of
        the user's own code) and the study goes on. Failed trials are never silent: stderr gets
        one line the first time each distinct message appears and, at the end, "3 of 20 trials
        failed: <the most common message>". No new trial starts after the timeout; running
        ones finish (with ``stop_at_timeout`` they are stopped). On Ctrl-C the running trials are
        marked ABANDONED (resume re-runs them) and ``KeyboardInterrupt`` is raised again.

        Args:
            objective: the function to optimize.
            n_trials: trials this call finishes (complete, pruned or failed).
            timeout: seconds after which no new trial starts.
            n_workers: trials running at once (worker processes; Dask: local cluster size);
                None: one per usable core. Native thread pools (OpenMP, BLAS, torch if
                imported) of every process running trials, this one included with
                ``"inline"``, are capped at usable cores // ``n_workers`` (``OMP_NUM_THREADS``
                when set) while the call runs.
            callbacks: ``callback(study, frozen_trial)`` after each finished trial.
            show_progress: draw a progress bar on stderr and name the winner at the end; None
                (default): when stderr is a terminal and no other autodl progress bar is
                drawing (``autodl.search`` draws its own).
            executor: ``"inline"`` (this process), ``"local"`` (worker processes, spawned; the
                objective is cloudpickled once per worker so closures work), ``"dask"``, or an
                :class:`~autodl.study.executors.Executor`. Default: inline for one worker
                without ``trial_timeout``, else local.
            dask_scheduler: ``tcp://host:8786`` of a running Dask scheduler (implies
                ``executor="dask"``); without it ``"dask"`` starts a local cluster.
            trial_timeout: seconds after which a trial is stopped and recorded FAILED, "timed
                out after Xs": its worker process is killed (``"local"``, chosen for you with one
                worker; Dask). With ``executor="inline"`` the trial stops at its next
                ``trial.report()``, ``should_prune()`` or ``should_stop()`` after the timeout
                (code in this process cannot be killed).
            trial_memory: bytes of memory each worker process may use (Linux; ``RLIMIT_DATA``,
                its imports included). A trial that exceeds it is recorded FAILED, "exceeded the
                memory cap of 2.0 GB (--trial-memory): <the allocation error>", its worker is
                replaced and the study goes on. Needs ``"local"`` (chosen for you with one
                worker); ``"inline"`` and ``"dask"`` are refused.
            max_retries: times a trial whose worker died (``os._exit``, SIGKILL, a segfault) is
                run again before it is recorded FAILED with the cause. The lost attempt stays
                in the study as ABANDONED (``retry_of`` links the retry to it).
            total_trials: a study-wide limit shared by every process working on the same
                SQLite study (``autodl worker``): a trial is only created while fewer than this
                many are finished or running, checked atomically in the database.
            stop_at_timeout: make ``timeout`` a deadline: trials still running then are stopped
                and recorded PRUNED ("stopped at the deadline ..."; their last reported value,
                if any, is kept), and the call returns right after. Stopping a trial needs a
                process to kill, so with one worker the default executor becomes ``"local"``
                (the objective then runs in a worker process); with ``"inline"`` a running trial
                stops only if the objective checks ``trial.should_stop()`` (set to the same
                deadline for every executor) and raises ``TrialPruned``; on Dask the stopped
                trial's task is cancelled and a local cluster is closed.
            reserve_ratio: with ``stop_at_timeout``, keep ``reserve_ratio`` x (the best trial's
                duration, scaled to the max budget if it ran a lower one) seconds before the
                timeout free for work after the search (such as
                refitting the winner): the search ends that much earlier, and a running trial
                is stopped (PRUNED) as soon as it could no longer finish and leave its own
                reserve in time.
            trial_cost: with ``stop_at_timeout``, ``trial_cost(config, budget, finished_trials)``
                predicts a new trial's seconds (None: no idea). A trial predicted to need more
                than the time it would be given is not run: it is recorded PRUNED ("skipped:
                expected to need 40s, 12s left") and the searcher is told, so the time goes to
                trials that can finish. After :data:`MAX_SKIPS_IN_A_ROW` skips in a row no
                new trial starts (the time left is too short for what the searcher proposes).

        Intermediate values and ``should_prune()`` reach the searcher live with the inline and
        local executors; on Dask the values arrive with the result and pruning is off.
        """
        from autodl.study.executors import make_executor

        if n_trials is not None and (not isinstance(n_trials, int) or n_trials < 1):
            raise UserError(f"n_trials is {n_trials!r}, but must be a positive integer")
        if total_trials is not None and (not isinstance(total_trials, int) or total_trials < 1):
            raise UserError(f"total_trials is {total_trials!r}, but must be a positive integer")
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
            raise UserError(f"timeout is {timeout!r}, but must be a positive number of seconds")
        if trial_timeout is not None and not (isinstance(trial_timeout, (int, float))
                                              and not isinstance(trial_timeout, bool)
                                              and trial_timeout > 0):
            raise UserError(f"trial_timeout is {trial_timeout!r}, but must be a positive number of seconds")
        if n_workers is None:
            from autodl.study.executors import cpu_cores

            n_workers = cpu_cores()
        if not isinstance(n_workers, int) or n_workers < 1:
            raise UserError(f"n_workers is {n_workers!r}, but must be an integer >= 1")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise UserError(f"max_retries is {max_retries!r}, but must be an integer >= 0")
        if not (isinstance(reserve_ratio, (int, float)) and reserve_ratio >= 0):
            raise UserError(f"reserve_ratio is {reserve_ratio!r}, but must be a number >= 0")
        if reserve_ratio and not stop_at_timeout:
            raise UserError("reserve_ratio only applies with stop_at_timeout=True")
        stop = bool(stop_at_timeout and timeout is not None)
        if stop:
            name = executor.lower() if isinstance(executor, str) else executor
            if name in (None, "auto") and dask_scheduler is None:
                executor = "local"  # "inline" only stops objectives that check trial.should_stop()
        ex = make_executor(executor, n_workers, trial_timeout, dask_scheduler, trial_memory=trial_memory)
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        limit = _Deadline(deadline, float(reserve_ratio)) if stop and deadline is not None else None

        from autodl.study import progress as progress_mod

        if show_progress is None:
            show_progress = _is_terminal() and not progress_mod.live()
        failures = progress_mod.FailureReport()
        callbacks = [*callbacks, failures.update]
        progress = None
        if show_progress:
            progress = progress_mod.StudyProgress(self, n_trials=n_trials, timeout=timeout)
            callbacks.append(progress.update)
        try:
            if progress is not None:
                progress.start()
            with Heartbeat(self.storage):
                self._run(ex, objective, n_trials, total_trials, deadline, callbacks, progress,
                          max_retries, limit, trial_cost)
        finally:
            if progress is not None:
                progress.stop()
            failures.finish(self, show_best=bool(show_progress))
        return self

    def wait_for_others(self, deadline: float | None = None, poll: float = 0.5) -> bool:
        """Wait while other processes (``autodl worker``) run trials of this shared study.

        Trials of processes that die meanwhile are marked ABANDONED. Returns True if there was
        anything to wait for (then the caller may run the study again to reach its total).
        """
        waited = False
        while self.storage.count([TrialState.RUNNING]):
            if self.storage.abandon_orphans():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return waited
            waited = True
            time.sleep(poll)
        return waited or bool(self.storage.abandoned_to_retry())

    def diversify(self, salt: int) -> None:
        """Give this process's searcher a random stream of its own.

        Processes that open one study with the same seed would otherwise propose the same
        configurations; ``autodl worker`` calls this with its pid. Every searcher is reseeded
        (see :meth:`~autodl.searchers.Searcher.reseed`), Optuna samplers included.
        """
        seed = self.seed if self.seed is not None else self.searcher.seed
        self.searcher.reseed([abs(int(seed or 0)), len(self._known), abs(int(salt))])

    @staticmethod
    def _time_left(deadline: float | None) -> bool:
        return deadline is None or time.monotonic() < deadline

    def _hooks(self, running: dict[int, _Job]) -> Hooks:
        def on_report(tid: int, step: int, value: float) -> None:
            self.storage.report(tid, step, value)
            job = running.get(tid)
            if job is not None:
                self.searcher.report(job.trial, value=self._report_to_min(value), step=step)

        def should_prune(tid: int) -> bool:
            job = running.get(tid)
            return job is not None and bool(self.searcher.should_prune(job.trial))

        def worth_keeping(tid: int, value: float) -> bool:
            job = running.get(tid)
            return job is None or self._worth_keeping(job, value)

        return Hooks(on_report, should_prune, worth_keeping)

    def _worth_keeping(self, job: _Job, value: Any) -> bool:
        from autodl.study.trial import check_value

        if self.n_objectives > 1:
            return True  # multi-objective promotion rules judge whole fronts; keep the state
        v, _ = check_value(value)
        return bool(self.searcher.worth_keeping(job.trial, None if v is None else self._to_min(v)))

    def _full_budget_time(self, budget: float | None, duration: float | None) -> float:
        """A trial's time scaled to the searcher's max budget (the refit is a full fit)."""
        top = self.searcher.max_budget
        if not duration:
            return 0.0
        if budget and top and budget < top:
            return float(duration) * float(top) / float(budget)
        return float(duration)

    def _too_costly(self, job: _Job, trial_cost, limit: _Deadline) -> str | None:
        """Why ``job`` is not worth starting (its predicted seconds exceed the time it would
        get before it is stopped), or None."""
        now = time.monotonic()
        left = limit.cutoff(now) - now
        need = trial_cost(job.trial.config, job.trial.budget, self.get_trials(_FINISHED))
        if need is None or need <= left:
            return None
        return f"skipped: expected to need {need:.1f}s, {max(left, 0.0):.1f}s left"

    def _run(self, ex: "Executor", objective, n_trials, total, deadline, callbacks, progress,
             max_retries, limit: _Deadline | None = None, trial_cost=None) -> None:
        running: dict[int, _Job] = {}
        started = skipped = 0
        exhausted = False
        # while time is kept free after the search, the best complete trial sets how much
        track = limit is not None and limit.ratio > 0
        best = self._best_or_none() if track else None
        if best is not None:
            limit.reserve = limit.ratio * self._full_budget_time(best.budget, best.duration)
        cutoff = self._cutoffs(ex, limit) if limit is not None else None
        ex.start(objective, self._hooks(running))
        try:
            while True:
                if limit is not None:
                    deadline = limit.end
                while (not exhausted and len(running) < ex.capacity
                       and (n_trials is None or started < n_trials) and self._time_left(deadline)):
                    job = self._next_job(total)
                    if job is None:
                        exhausted = True
                        break
                    if trial_cost is not None and limit is not None:
                        why = self._too_costly(job, trial_cost, limit)
                        if why is not None:
                            frozen = self._finish(job, TrialOutcome(TrialState.PRUNED, None, why, duration=0.0),
                                                  reported=True)
                            for cb in callbacks:
                                cb(self, frozen)
                            skipped += 1
                            started += 1
                            exhausted = skipped >= MAX_SKIPS_IN_A_ROW
                            continue
                        skipped = 0
                    stop_at = None if limit is None else time.time() + limit.cutoff(time.monotonic()) - time.monotonic()
                    ex.submit(TrialTask(job.id, dict(job.trial.config), job.trial.budget, self.run_dir, stop_at))
                    running[job.id] = job
                    started += 1
                if progress is not None:
                    progress.set_running(len(running))
                if not running:
                    if exhausted and self._limit_hit and self.storage.abandon_orphans():
                        exhausted = False  # another process died: its trials can run here
                        continue
                    return
                wait = None
                if limit is not None:
                    first = min(cutoff(tid) for tid in running)
                    wait = max(0.0, first - time.monotonic())
                for tid, out in ex.wait_any(timeout=wait):
                    job = running[tid]
                    if out.lost:
                        job.deaths.append(out.message or "worker died")
                        if len(job.deaths) <= max_retries:
                            self._retry_lost(ex, job, running)
                            continue
                        out = _dead_too_often(job.deaths, out)
                    # popped only now: a KeyboardInterrupt from wait_any leaves the job in
                    # `running`, so it is marked ABANDONED below like the others
                    del running[tid]
                    frozen = self._finish(job, out, reported=ex.live_reports)
                    if track and frozen.state == TrialState.COMPLETE:
                        # the objective's own time (a new worker's start-up is not refitted)
                        need = limit.ratio * self._full_budget_time(frozen.budget, out.duration or frozen.duration)
                        if self.n_objectives > 1:  # any front member may be the one refitted
                            limit.reserve = max(limit.reserve, need)
                        elif best is None or self._better(frozen.value, best.value):
                            best, limit.reserve = frozen, need
                    for cb in callbacks:
                        cb(self, frozen)
                if limit is not None and running:
                    if time.monotonic() >= limit.end:  # the deadline: stop all, then return
                        self._stop_running(ex, running, callbacks, "the time budget ran out",
                                           cancel=False)
                        return
                    self._stop_running(ex, running, callbacks,
                                       "it could no longer finish with time left for work after "
                                       "the search", cutoff=cutoff)
        except (KeyboardInterrupt, SystemExit):
            for job in running.values():
                self._abandon(job, "interrupted (Ctrl-C); resume runs it again")
            running.clear()
            raise
        finally:
            ex.shutdown()
            for job in running.values():
                self._abandon(job, "study loop ended while the trial was running")

    def _best_or_none(self) -> FrozenTrial | None:
        try:
            return self.best_trial
        except ValueError:
            return None

    @staticmethod
    def _cutoffs(ex: "Executor", limit: _Deadline) -> Callable[[int], float]:
        """``cutoff(trial id)``: when that running trial is stopped.

        A trial is stopped before the study's end only where the executor can stop one trial
        (``cancel``) and says when it began (``trial_started``; a worker's start-up is not part
        of the trial). A trial not begun yet is looked at again every ``_POLL`` seconds.
        """
        cancel = getattr(ex, "cancel", None)
        began = getattr(ex, "trial_started", None)
        if not (callable(cancel) and callable(began)):
            return lambda tid: limit.end

        def cutoff(tid: int) -> float:
            at = began(tid)
            if at is None:
                return min(limit.end, time.monotonic() + _POLL)
            return limit.cutoff(at)

        return cutoff

    def _stop_running(self, ex: "Executor", running: dict[int, _Job], callbacks, why: str,
                      cutoff: Callable[[int], float] | None = None, cancel: bool = True) -> None:
        """Record running trials past their ``cutoff`` (all without one) PRUNED and stop them.

        ``cancel``: stop each one now with the executor's ``cancel(trial_id)`` (executors
        without one keep running it until the study's deadline); otherwise the caller ends the
        loop and ``shutdown()`` stops them.
        """
        now = time.monotonic()
        for tid, job in list(running.items()):
            if cutoff is not None and now < cutoff(tid):
                continue
            if cancel:
                stopper = getattr(ex, "cancel", None)
                if stopper is None or not stopper(tid):
                    continue
            del running[tid]
            ran = now - job.started
            reported = self.storage.get_trial(tid).intermediate
            last = reported[max(reported)] if reported else None
            out = TrialOutcome(TrialState.PRUNED, last, f"stopped after {ran:.1f}s: {why}",
                               duration=ran)
            frozen = self._finish(job, out, reported=True)
            for cb in callbacks:
                cb(self, frozen)

    def _retry_lost(self, ex: "Executor", job: _Job, running: dict[int, _Job]) -> None:
        """Record the attempt as ABANDONED and run the same trial again as a new one."""
        del running[job.id]
        new_id = self.storage.retry_lost(job.id, f"{job.deaths[-1]}; retried")
        self._known.add(new_id)
        new = _Job(new_id, job.trial, job.deaths)
        ex.submit(TrialTask(new.id, dict(new.trial.config), new.trial.budget, self.run_dir))
        running[new_id] = new

    def __repr__(self) -> str:
        where = self.storage.path or "memory"
        goal = f"direction={self.direction}" if self.direction else f"directions={self.directions}"
        return (f"Study(searcher={self.searcher.name}, {goal}, "
                f"trials={len(self.trials)}, storage={where})")


#: the searcher a study with several directions gets when none is named (the better one at
#: 50-100 trials in benchmarks/multiobjective.py)
MULTI_OBJECTIVE_DEFAULT = "motpe"


def _default_searcher() -> Any:
    """The default of ``Study(searcher=...)`` (a study with several directions replaces it with
    :data:`MULTI_OBJECTIVE_DEFAULT` unless it takes several objectives itself)."""
    import inspect

    return inspect.signature(Study.__init__).parameters["searcher"].default


def _check_directions(direction: str | None, directions: Sequence[str] | None) -> list[str]:
    """The study's directions; a UserError naming the bad argument."""
    if direction is not None and directions is not None:
        raise UserError("give direction= (one objective) or directions= (several), not both")
    if directions is None:
        directions = ["minimize" if direction is None else direction]
        name = "direction"
    else:
        name = "directions"
        if isinstance(directions, str) or not isinstance(directions, Sequence) or not directions:
            raise UserError(f"directions is {directions!r}, but must be a non-empty list of "
                            "'minimize' / 'maximize'")
    out = []
    for d in directions:
        if d not in ("minimize", "maximize"):
            raise UserError(f"{name} is {d!r}, but must be 'minimize' or 'maximize'"
                            if name == "direction" else
                            f"directions holds {d!r}, but each must be 'minimize' or 'maximize'")
        out.append(str(d))
    return out


def _is_terminal() -> bool:
    """Whether stderr is a terminal (where progress is shown by default)."""
    import sys

    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def _at_top_budget(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials at the largest budget among ``trials`` (a trial without a budget ran the
    full budget and always stays)."""
    budgets = [t.budget for t in trials if t.budget is not None]
    if not budgets:
        return trials
    top = max(budgets)
    return [t for t in trials if t.budget is None or t.budget >= top]


def _dead_too_often(deaths: list[str], out: TrialOutcome) -> TrialOutcome:
    """FAILED outcome of a trial whose worker died on every attempt."""
    n = len(deaths)
    if len(set(deaths)) == 1:
        times = {1: "", 2: " twice"}.get(n, f" {n} times")
        message = f"{deaths[0]}{times}"
    else:
        message = "; ".join(deaths)
    return TrialOutcome(TrialState.FAILED, None, message, dict(out.intermediate),
                        dict(out.user_attrs), out.duration)
