"""``autodl.search``: tune a scikit-learn pipeline on a table, keep everything in a run folder.

A run folder holds:

* ``study.db``    every trial (SQLite; resumable),
* ``run.json``    what was asked (data source, task, metric, searcher and its budgets, budget
  resource, time budget, seed, the weight, group and time columns),
* ``result.json`` task, metric, best score and config, held-out test score,
* ``model.skops`` the predictor (skops format, no pickle): the ensemble's members (or the best
  pipeline) refit on all data, or with ``refit=False`` the ensemble of the trials' fold models
  (under a time budget, members whose refits did not fit in time keep their fold models),
* ``predictions/`` the out-of-fold predictions of the best trials (``<trial id>.npy``),
* ``split.npz``   the held-out test rows (and the training rows, in time order with ``cv="time"``),
* ``data.parquet`` the data when it was given in memory, with the ``sample_weight`` and ``groups``
  given to :func:`search` as the columns :data:`~autodl.tabular.rows.WEIGHT_COLUMN` and
  :data:`~autodl.tabular.rows.GROUPS_COLUMN`.

Sample weights, groups and time order: see :mod:`autodl.tabular.rows`.

A time budget is a deadline for the whole search, refit included. Trials run in a worker
process (``Study.optimize(stop_at_timeout=True)``), so one still running when time is up is
killed and recorded PRUNED ("stopped after Xs: ..."), never left to finish. The refit of the
winner happens after the search, so the search keeps time free for it: the refit costs about
:func:`refit_ratio` x the winner's cross-validation time (fits scale with rows), so the search
ends that much before the budget, and a running trial is stopped as soon as it could no longer
finish and be refit in time. :data:`FINISH_MARGIN` seconds are kept for stopping the worker and
writing the run folder. The call then ends within the budget plus the error of the refit
estimate (a model whose fit grows faster than its rows, or feature engineering that the trials
took from the cache but the refit computes afresh, takes longer than estimated).
"""

from __future__ import annotations

import contextlib

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from autodl.errors import DataError, ExportError, UserError
from autodl.runs import (Deadline, atomic_write, create_run, load_split, new_run_dir, read_run, result_envelope,
                         save_split, study_counts, write_json, write_result)
from autodl.searchers import make_searcher
from autodl.space import Space
from autodl.study import Study, TrialState
from autodl.tabular import data as data_mod
from autodl.tabular.metrics import DIRECTIONS, Metric, function_metric, get_metric, imbalance_note
from autodl.tabular.persist import MemberBlobs, load_model, save_model
from autodl.tabular.pipeline import (BUDGET_RESOURCES, ITERATION_PARAMS, CVObjective, build_pipeline, check_space,
                                     cv_splits, fit_pipeline, quiet_fit, resolve_cv, score_model, take_rows)
from autodl.tabular.rows import make_split, row_columns, row_times, weight_notes, with_row_arrays

#: budgets of a multi-fidelity searcher on tables unless given: fractions 1/9, 1/3 and 1 of the
#: full fit (see :class:`~autodl.tabular.pipeline.CVObjective`)
FIDELITY_DEFAULTS = {"min_budget": 1.0, "max_budget": 9.0, "eta": 3.0}


#: ``refit=None``: whether a search with an ensemble keeps its trials' fold models instead of
#: fitting the chosen members again. Measured by ``benchmarks/ensemble_refit.py`` (10 tables,
#: the portfolio and 5 random configurations, 5 folds): the ensemble of fold models scored
#: +0.0014 on the test rows on average against the refit members (better on 5 tables, equal on 3,
#: worse on 2), but its ONNX file was 4.2x as large and 5.7x as slow per row (median); the refits
#: took a median 2.0 s, 3 % of the validation's time. With a holdout split the file is the same
#: size, but the single best trained on 80 % of the rows lost to its refit on 6 of 10 tables
#: (-0.0033). So members are refit by default; ``refit=False`` keeps the fold models. Under a
#: time budget the refits often do not all fit (at 30 s on the AutoML benchmark's 14 tables an
#: ensemble formed on 1 with refits alone, benchmarks/results/automl.json's run at 9e1c77b), so
#: the members whose refits do not fit predict with their fold models (:func:`keeps_fold_models`).
FOLD_MODELS_BY_DEFAULT = False


def uses_fold_models(spec: "SearchSpec") -> bool:
    """Whether the search predicts with its trials' fold models (each member the average of the
    models its validation fitted; nothing is fitted again after the search) rather than refitting
    the members on all rows. Only with an ensemble (the trials keep their validation output)."""
    if not spec.ensemble:
        return False
    return not spec.refit if spec.refit is not None else FOLD_MODELS_BY_DEFAULT


def keeps_fold_models(spec: "SearchSpec", deadline: Deadline | None) -> bool:
    """Whether the trials keep their fold models: always with :func:`uses_fold_models`, and with
    the default ``refit=None`` under a deadline too, as the fallback for the members whose refit
    does not fit in the time left after the search (:func:`finalize`): the best member is refit,
    the others are refit while their refits fit and predict with their fold models after that."""
    if uses_fold_models(spec):
        return True
    return bool(spec.ensemble and spec.refit is None and deadline is not None and deadline.is_set)


#: memory a tabular worker process takes besides its copies of the data (numpy, pandas,
#: scikit-learn, torch once an MLP trial ran, fitted models): see :func:`default_workers`.
WORKER_MEMORY_BYTES = 1 << 30
#: copies of the training table a worker holds at once (the table, its encoded matrix, a fold's
#: training and validation parts, out-of-fold predictions)
WORKER_DATA_COPIES = 4


def default_workers(data_bytes: int = 0) -> int:
    """``n_workers=None``: one worker process per usable core, as many as the available memory
    holds at :data:`WORKER_MEMORY_BYTES` + :data:`WORKER_DATA_COPIES` x ``data_bytes`` each
    (so a 64-core machine with 16 GB free does not start 64 workers), at least 1."""
    from autodl.study.executors import available_memory, cpu_cores

    cores = cpu_cores()
    free = available_memory()
    if free is None:
        return cores
    return max(1, min(cores, int(free // (WORKER_MEMORY_BYTES + WORKER_DATA_COPIES * max(0, int(data_bytes))))))


def table_bytes(X) -> int:
    """In-memory size of a table (a DataFrame's columns, strings included, or an array)."""
    if hasattr(X, "memory_usage"):
        return int(X.memory_usage(index=False, deep=True).sum())
    return int(getattr(X, "nbytes", 0) or 0)


def uses_budget(searcher: str) -> bool:
    """Whether the searcher called ``searcher`` gives trials budgets (sh, hyperband, asha, bohb)."""
    from autodl.searchers import SEARCHERS

    cls = SEARCHERS.get(str(searcher).lower())
    return bool(getattr(cls, "uses_budget", False))


@dataclass
class SearchSpec:
    """Everything needed to run (and later resume) a tabular search; stored as ``run.json``."""

    dataset: str | None = None  # a built-in dataset name
    data: str | None = None  # a CSV/Parquet path (absolute)
    target: str | None = None
    task: str | None = None  # None / "auto": inferred
    metric: str | None = None
    space: Any = "tabular"  # a built-in name, a path, or a space dict
    searcher: str = "tpe"
    searcher_params: dict[str, Any] = field(default_factory=dict)
    n_trials: int | None = None  # total trials the run should finish
    time_budget: float | None = None  # seconds of searching per invocation
    seed: int = 0
    cv: int | str = 5  # folds, "holdout", "time" or "auto" (resolved when the run starts; see resolve_cv)
    test_size: float = 0.2
    n_workers: int = 1
    executor: str | None = None  # None: in-process for one worker, else "local"; or "dask"
    dask_scheduler: str | None = None  # tcp://host:8786 of a running Dask scheduler
    trial_timeout: float | None = None  # seconds; a longer trial is stopped and FAILED
    trial_memory: float | None = None  # bytes a trial's worker process may allocate (Linux)
    max_retries: int = 1  # re-runs of a trial whose worker process died
    features: Any = None  # None, "featuretools", "tsfresh" or {"kind": ..., **transformer args}
    timeseries: dict[str, Any] | None = None  # long-form series: id_column, sort_column, labels
    entityset: str | None = None  # a YAML entity-set description (absolute path)
    #: what a multi-fidelity searcher's budget cuts: "auto", "iterations" or "rows" (see
    #: :class:`~autodl.tabular.pipeline.CVObjective`); ignored by full-budget searchers
    budget_resource: str = "auto"
    #: user roles for columns, e.g. {"zip": "categorical", "note": "ignore"} (see
    #: :mod:`autodl.tabular.columns`); they win over the inferred roles
    column_roles: dict[str, str] | None = None
    #: the column plan inferred when the run started (:meth:`ColumnPlan.to_dict`); a resumed run
    #: reuses it, so the columns mean the same in every trial ({}: none, split by dtype)
    column_plan: dict[str, Any] | None = None
    #: print the column plan when it is inferred; None: when stderr is a terminal (not stored)
    announce_columns: bool | None = False
    #: start from strong default configurations (:mod:`autodl.tabular.portfolio`) before the
    #: searcher's own proposals (full-budget searchers other than grid)
    portfolio: bool = True
    ensemble: bool = True  # greedy ensemble selection over the trials' validation predictions
    #: fit the chosen members (or the winner) again on all rows; False: predict with the models
    #: the validation fitted (see :func:`uses_fold_models`); None: the measured default
    refit: bool | None = None
    #: columns of the data holding each row's sample weight / group label (not features; see the
    #: module docstring)
    weight_column: str | None = None
    groups_column: str | None = None
    #: cv="time": the date column ordering the rows (None: the one the column roles call
    #: datetime; filled in when the run starts)
    time_column: str | None = None
    #: "maximize" or "minimize" when ``metric`` names a Python function given to search(); run.json
    #: cannot hold the function, so resuming needs it again (resume_run(metric=...))
    metric_direction: str | None = None
    #: several objectives: the metric's name (or "metric") first, then "latency" and/or "size"
    #: (see :mod:`autodl.tabular.objectives`); None or the metric alone: one objective
    objectives: list[str] | None = None
    #: the deployed predictor's latency limit: every trial gets the constraint latency - X <= 0
    max_latency_ms: float | None = None
    #: how one front member is chosen ("accuracy, latency<=1ms"; "python:<name>" for a callable
    #: given to search(), which resume_run needs again); None: the best metric on the front
    select: str | None = None
    #: "module:function" measuring latency elsewhere (bytes -> ms); "python:<name>" for a callable
    latency_fn: str | None = None

    @property
    def multi_objective(self) -> bool:
        return bool(self.objectives) and len(self.objectives) > 1

    @property
    def measures_onnx(self) -> bool:
        """Whether trials measure their ONNX file (several objectives or a latency limit)."""
        return self.multi_objective or self.max_latency_ms is not None

    def _validate_objectives(self) -> None:
        from autodl.tabular.objectives import check_objectives, split_names

        self.objectives, self.metric = check_objectives(split_names(self.objectives), self.metric)
        if self.max_latency_ms is not None:
            if isinstance(self.max_latency_ms, bool) or not isinstance(self.max_latency_ms, (int, float)) \
                    or not self.max_latency_ms > 0 or not np.isfinite(self.max_latency_ms):
                raise UserError(f"max latency is {self.max_latency_ms!r} ms, but must be a positive number")
            self.max_latency_ms = float(self.max_latency_ms)
        if self.select is not None and not self.multi_objective:
            raise UserError("--select chooses one model from a Pareto front; give several objectives too "
                            "(--objectives metric,latency)")
        if self.latency_fn is not None and not self.measures_onnx:
            raise UserError("--latency-fn measures latency for --objectives ...,latency or --max-latency-ms; "
                            "give one of them")
        if self.measures_onnx and (self.features is not None or self.entityset or self.timeseries):
            raise UserError("latency and size are measured on the ONNX file, which a feature step (featuretools, "
                            "tsfresh) does not have; drop the feature step or the latency/size objectives")
        if self.multi_objective:
            from autodl.searchers import SEARCHERS
            from autodl.searchers.base import multi_objective_names

            if str(self.searcher).lower() == "tpe":  # the default: TPE's multi-objective form
                self.searcher = "motpe"
            cls = SEARCHERS.get(str(self.searcher).lower())
            if cls is not None and not getattr(cls, "multi_objective", False):
                raise UserError(f"searcher '{self.searcher}' optimizes one objective; for several use one of: "
                                f"{', '.join(multi_objective_names())}")
            self.ensemble = False  # one front member predicts: an ensemble is not a point of the front

    def validate(self) -> None:
        self._validate_objectives()
        if self.n_trials is None and self.time_budget is None:
            raise UserError("give a number of trials (--trials N) or a time budget (--time 10m)")
        if self.n_trials is not None and (not isinstance(self.n_trials, int) or self.n_trials < 1):
            raise UserError(f"trials is {self.n_trials}, but must be a positive integer")
        if self.time_budget is not None and not self.time_budget > 0:
            raise UserError(f"time budget is {self.time_budget}, but must be positive")
        if self.cv not in ("auto", "holdout", "time") and (not isinstance(self.cv, int) or self.cv < 2):
            raise UserError(f"cv is {self.cv!r}, but must be an integer >= 2 folds, 'holdout', 'time' or 'auto'")
        if self.refit not in (None, True, False):
            raise UserError(f"refit is {self.refit!r}, but must be True, False or None (the default)")
        if self.time_column is not None and self.cv != "time":
            raise UserError(f"a time column ('{self.time_column}') only applies with cv='time' (--cv time)")
        if self.metric_direction not in (None, *DIRECTIONS):
            raise UserError(f"metric direction is {self.metric_direction!r}, but must be one of: "
                            f"{', '.join(DIRECTIONS)}")
        if not 0 <= self.test_size < 1:
            raise UserError(f"test size is {self.test_size}, but must be in [0, 1)")
        if not isinstance(self.n_workers, int) or self.n_workers < 1:
            raise UserError(f"workers is {self.n_workers}, but must be an integer >= 1")
        if self.executor not in (None, "auto", "inline", "local", "dask"):
            raise UserError(f"unknown executor '{self.executor}'; choose one of: local, dask")
        if self.dask_scheduler is not None:
            from autodl.study.dask_executor import check_address

            check_address(self.dask_scheduler)
            if self.executor not in (None, "dask"):
                raise UserError(f"--dask-scheduler only applies with --executor dask, not '{self.executor}'")
        if self.trial_timeout is not None and not self.trial_timeout > 0:
            raise UserError(f"trial timeout is {self.trial_timeout}, but must be positive")
        if self.executor == "inline" and self.trial_timeout is not None:
            raise UserError("a trial timeout needs worker processes; use --executor local")
        if self.executor == "inline" and self.time_budget is not None:
            raise UserError("a time budget stops running trials, which needs worker processes; "
                            "use --executor local (the default)")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise UserError(f"max retries is {self.max_retries}, but must be an integer >= 0")
        from autodl.study.executors import make_executor

        # checks the executor settings (and that its extra is installed) before anything is written;
        # building an executor starts nothing
        make_executor(self.executor if self.executor != "auto" else None, self.n_workers, self.trial_timeout,
                      self.dask_scheduler, trial_memory=self.trial_memory)
        if self.column_roles is not None and not (
                isinstance(self.column_roles, dict) and all(isinstance(r, str) for r in self.column_roles.values())):
            raise UserError(f"column roles are {self.column_roles!r}, but must be a dict of column -> role")
        self._validate_budgets()

    def _validate_budgets(self) -> None:
        """Check the budget settings; fill in :data:`FIDELITY_DEFAULTS` for a multi-fidelity
        searcher (so run.json keeps the budgets the run used)."""
        if self.budget_resource not in BUDGET_RESOURCES:
            raise UserError(f"budget resource is '{self.budget_resource}', but must be one of: "
                            f"{', '.join(BUDGET_RESOURCES)}")
        if not isinstance(self.searcher_params, dict):
            raise UserError(f"searcher_params is {self.searcher_params!r}, but must be a dict")
        if not uses_budget(self.searcher):
            if self.budget_resource != "auto":
                raise UserError(f"budget resource '{self.budget_resource}' only applies with a multi-fidelity "
                                f"searcher (sh, hyperband, asha, bohb), not '{self.searcher}'")
            return
        from autodl.searchers.brackets import check_fidelity_flags

        params = {**FIDELITY_DEFAULTS, **self.searcher_params}
        check_fidelity_flags(params["min_budget"], params["max_budget"], params["eta"])
        self.searcher_params = params

    def check_budget_space(self, space: Space) -> None:
        """Budget resource "iterations" needs every model of the space to have an iteration count."""
        if self.budget_resource != "iterations" or not uses_budget(self.searcher):
            return
        choices = getattr(space["model"], "choices", None)
        lacking = [m for m in (choices or ()) if m not in ITERATION_PARAMS]
        if lacking:
            raise UserError(f"budget resource 'iterations': {', '.join(map(str, lacking))} have no iteration count "
                            f"(only {', '.join(ITERATION_PARAMS)} do); use --budget-resource auto (rows for "
                            "those) or rows, or a space without them")

    def executor_kwargs(self) -> dict[str, Any]:
        """The ``Study.optimize`` arguments that choose where trials run."""
        return {"n_workers": self.n_workers, "executor": self.executor,
                "dask_scheduler": self.dask_scheduler, "trial_timeout": self.trial_timeout,
                "max_retries": self.max_retries, "trial_memory": self.trial_memory}


@dataclass
class Prepared:
    """Data split and the objects a search needs, derived from a :class:`SearchSpec`."""

    spec: SearchSpec
    space: Space
    task: str
    metric: Metric
    X_train: Any
    y_train: Any
    X_test: Any | None
    y_test: Any | None
    X_all: Any
    y_all: Any
    features: Any = None  # an unfitted feature transformer, or None
    split: dict[str, np.ndarray] | None = None  # row indices of X_all: train, test
    plan: Any = None  # the ColumnPlan the pipelines split columns by (None with a feature step)
    weights: np.ndarray | None = None  # each row's sample weight (X_all's rows; None: unweighted)
    groups: np.ndarray | None = None  # each row's group, as codes 0, 1, ... (None: no groups)
    #: what trials measure on their ONNX file (several objectives, a latency limit), or None
    deployment: Any = None
    #: how the deployed front member is chosen (SelectRule, callable or None: the best metric)
    select: Any = None

    def rows(self, values, part: str):
        """``values`` (one per row of ``X_all``) of the ``"train"`` or ``"test"`` rows; None stays None."""
        return take_rows(values, self.split[part])


def prepare(spec: SearchSpec, X=None, y=None, features=None, split: dict | None = None, *, sample_weight=None,
            groups=None, metric_fn=None, latency_fn=None, select_fn=None) -> Prepared:
    """Validate ``spec`` and load/split the data. Raises UserError before anything is written.

    ``features`` is a feature transformer object given to :func:`search` (``spec.features``
    then only describes it); otherwise the transformer is made from ``spec.features``.
    ``split``: the row indices saved in a run folder (``train``, ``test``); made from the seed
    when None. ``sample_weight`` and ``groups``: arrays given to :func:`search` (one value per
    row of ``X``), kept with the rows as the columns ``spec.weight_column`` / ``groups_column``
    name (see :mod:`autodl.tabular.rows`), which are then taken out of the features.
    ``metric_fn``: the function of a metric given as one (``spec.metric_direction``);
    ``latency_fn``, ``select_fn``: the callables ``spec.latency_fn`` / ``spec.select`` mark.

    Rows whose target is missing are dropped (one line on stderr). Without a feature step the
    columns get roles (:func:`autodl.tabular.columns.infer_roles` on the training rows, with
    ``spec.column_roles`` winning; a resumed run reuses ``spec.column_plan``) and the data is
    converted for the pipelines (:func:`~autodl.tabular.columns.prepare_frame`: dates to epoch
    seconds, ...); ``spec.column_plan`` then holds the plan.
    """
    from autodl.tabular.columns import ColumnPlan, drop_missing_target, infer_roles, prepare_frame

    spec.validate()
    space = Space.load(spec.space if not isinstance(spec.space, dict) else Space.from_dict(spec.space))
    check_space(space)  # an unknown model or parameter is an error before any trial runs
    if X is None:
        X, y, features = _feature_data(spec, features)
    elif features is None and spec.features is not None:
        from autodl.features import make_features

        features = make_features(spec.features)
    make_searcher(spec.searcher, space, seed=spec.seed, **spec.searcher_params)  # validate early
    if X is None:
        if spec.dataset:
            ds = data_mod.load_builtin(spec.dataset)
        elif spec.data:
            ds = data_mod.load_file(spec.data, spec.target)
        else:
            raise UserError("give --dataset NAME or --data FILE --target COLUMN")
        X, y = ds.X, ds.y
    else:
        if y is None:
            raise UserError("search(X, y): y is missing")
        X = data_mod.as_frame(X)
        y = np.asarray(y).ravel() if not hasattr(y, "iloc") else y.reset_index(drop=True)
        if len(X) != len(y):
            raise DataError(f"X has {len(X)} rows but y has {len(y)}")
        X = with_row_arrays(X.reset_index(drop=True), spec, sample_weight, groups)
    if spec.column_roles and features is not None:
        raise UserError("column roles apply to the table's own columns; they cannot be combined with a feature step")
    X, y, dropped = drop_missing_target(X, y, say=spec.column_plan is None)
    X, weights, group_codes = row_columns(X, spec)
    if spec.cv == "time" and group_codes is not None:
        raise UserError("cv='time' splits by date, not by groups; give one of them (--cv time or --groups)")
    task = data_mod.check_task(spec.task, y)
    metric = get_metric(spec.metric, task, spec.metric_direction, metric_fn)
    if spec.column_plan is None:  # said once, when the run starts
        weight_notes(weights, metric, space)
    if task == "classification" and spec.column_plan is None:  # said once, when the run starts
        note = imbalance_note(y, spec.metric)
        if note:
            sys.stderr.write(note + "\n")
            sys.stderr.flush()
    spec.task, spec.metric = task, metric.name
    spec.check_budget_space(space)
    if split is None:
        split = make_split(len(y), y if task == "classification" else None, spec.test_size, spec.seed,
                           groups=group_codes, times=row_times(X, spec) if spec.cv == "time" else None)
    train, test = split["train"], split.get("test", np.arange(0))
    spec.cv = resolve_cv(spec.cv, len(train), spec.time_budget)  # run.json records what was used
    if len(train) + len(test) != len(y) or (len(test) and max(train.max(), test.max()) >= len(y)):
        raise DataError(f"the run's saved split ({len(train)} + {len(test)} rows) does not fit the data "
                        f"({len(y)} rows); the data file changed since the run started")
    if group_codes is not None and len(np.unique(group_codes[train])) < 2:
        raise DataError(f"the training rows hold {len(np.unique(group_codes[train]))} group; group-disjoint "
                        "validation needs at least 2 (give more groups, or a smaller test size)")
    plan = None
    if features is None and spec.column_plan != {}:  # {}: a run folder that has no plan
        if spec.column_plan is not None:
            plan = ColumnPlan.from_dict(spec.column_plan)
        else:
            plan = infer_roles(take_rows(X, train), overrides=spec.column_roles)
            plan.dropped_target_rows = dropped
            spec.column_plan = plan.to_dict()
            tty = sys.stderr is not None and sys.stderr.isatty()
            if spec.announce_columns or (spec.announce_columns is None and tty):
                sys.stderr.write(plan.announcement() + "\n")
                sys.stderr.flush()
        X = prepare_frame(X, plan)
    X_tr, y_tr = take_rows(X, train), take_rows(y, train)
    X_te, y_te = (take_rows(X, test), take_rows(y, test)) if len(test) else (None, None)
    deployment, select = _deployment(spec, metric, plan, latency_fn, select_fn)
    return Prepared(spec, space, task, metric, X_tr, y_tr, X_te, y_te, X, y, features,
                    {"train": np.asarray(train), "val": np.arange(0), "test": np.asarray(test)}, plan,
                    weights, group_codes, deployment, select)


def _deployment(spec: SearchSpec, metric: Metric, plan, latency_fn=None, select_fn=None):
    """``(Deployment or None, the select rule or callable or None)`` of a spec whose metric is
    known; the callables a run.json marks (``python:<name>``) must be given again."""
    from autodl.tabular.objectives import PYTHON_MARK, Deployment, parse_select

    if spec.objectives:
        spec.objectives = [metric.name, *spec.objectives[1:]]
    for what, mark, given in (("latency_fn", spec.latency_fn, latency_fn), ("select", spec.select, select_fn)):
        if isinstance(mark, str) and mark.startswith(PYTHON_MARK) and given is None:
            raise UserError(f"this run's {what} was a Python function ({mark[len(PYTHON_MARK):]}), which run.json "
                            f"cannot hold; resume it from Python: resume_run(RUN, {what}=...)")
    if not spec.measures_onnx:
        return None, None
    fn = latency_fn if latency_fn is not None else spec.latency_fn
    if isinstance(fn, str):
        from autodl.tabular.objectives import load_latency_fn

        load_latency_fn(fn)  # a bad module:function is one line before the search
    deployment = Deployment(list(spec.objectives or [metric.name]), metric.direction, spec.max_latency_ms,
                            latency_fn=fn, plan=plan)
    select = select_fn
    if select is None and spec.select is not None:
        select = parse_select(spec.select, deployment.objectives)
    return deployment, select


class SearchResult:
    """What :func:`search` returns.

    Attributes:
        best_config: the winning configuration.
        best_score: its cross-validated metric.
        test_score: the metric on the held-out test split (None without one).
        leaderboard: completed trials best first (a DataFrame).
        best_model: the winning pipeline refit on all data. It takes rows as the search's
            pipelines saw them (:func:`autodl.tabular.columns.prepare_frame` with ``plan``:
            dates as epoch seconds, ...); :meth:`predict` converts raw rows first.
        plan: the :class:`~autodl.tabular.columns.ColumnPlan` (None with a feature step).
        task, metric: what was optimized.
        study: the :class:`~autodl.Study`; run_dir: the run folder (or None).
    """

    def __init__(self, study: Study, best_model, task: str, metric: str, test_score: float | None,
                 run_dir: Path | None, best=None):
        self.study = study
        self.best_model = best_model
        self.task = task
        self.metric = metric
        self.test_score = test_score
        self.run_dir = run_dir
        best = study.best_trial if best is None else best
        self.best_config = dict(best.config)
        self.best_score = float(best.value if study.n_objectives == 1 else best.values[0])
        self.best_trial_id = best.id
        self.best_budget = best.budget
        #: several objectives: the names (the metric first), the chosen trial's values, how it was
        #: chosen, and the Pareto front it was chosen from (see :mod:`autodl.tabular.objectives`)
        self.objectives: list[str] | None = None
        self.best_values: list[float] | None = list(best.values) if study.n_objectives > 1 else None
        self.selected_by: str | None = None
        #: the deployed predictor's ONNX measurement (latency, size, the limit and what was done
        #: to meet it), when the search measured its trials' ONNX files
        self.deployment: dict[str, Any] | None = None
        self.plan = None
        #: the ensemble predicting (None: the best trial alone): validation scores of the best
        #: single trial and of the ensemble, and per member its trial, weight, CV score, refit
        #: seconds and milliseconds per predicted row
        self.ensemble: dict[str, Any] | None = None
        self.ensemble_note: str | None = None  # why the best trial alone predicts, when ensembles were on

    @property
    def leaderboard(self):
        """Completed trials best first (a DataFrame): the score column is named after the
        metric (e.g. ``accuracy``, the mean over the CV folds) and ``<metric>_cv_std`` is its
        spread over the folds; then duration and the config."""
        board = self.study.leaderboard()
        if board.empty:
            return board
        if self.study.n_objectives > 1:  # the front first; one column per objective, named
            names = self.objectives or [f"value_{i}" for i in range(self.study.n_objectives)]
            return board.rename(columns={f"value_{i}": n for i, n in enumerate(names)})
        spread = {t.id: t.user_attrs.get("cv_std") for t in self.study.trials}
        board.insert(int(board.columns.get_loc("value")) + 1, f"{self.metric}_cv_std", board["id"].map(spread))
        if self.ensemble:
            import pandas as pd

            members = {m["trial_id"]: m for m in self.ensemble["members"]}
            at = int(board.columns.get_loc("value")) + 2
            for k, name in enumerate(("weight", "fit_seconds", "predict_ms_per_row")):
                board.insert(at + k, name, board["id"].map(lambda i, n=name: members.get(i, {}).get(n)))
            board["weight"] = board["weight"].fillna(0.0)
            top = {"id": "ensemble", "value": self.ensemble["ensemble_score"], "weight": 1.0,
                   "fit_seconds": sum(m["fit_seconds"] for m in members.values()),
                   "predict_ms_per_row": sum(m["predict_ms_per_row"] for m in members.values()),
                   "model": f"ensemble of {len(members)}"}
            board = pd.concat([pd.DataFrame([top]), board], ignore_index=True)
        return board.rename(columns={"value": self.metric})

    def predict(self, X):
        return self.best_model.predict(self._frame(X))

    def predict_proba(self, X):
        if self.task != "classification":
            raise AttributeError("predict_proba is only available for classification")
        return self.best_model.predict_proba(self._frame(X))

    def _frame(self, X):
        frame = data_mod.as_frame(X, self._feature_names())
        if self.plan is None:
            return frame
        from autodl.tabular.columns import prepare_frame

        return prepare_frame(frame, self.plan)

    def _feature_names(self) -> list[str] | None:
        names = getattr(self.best_model, "feature_names_in_", None)
        return list(names) if names is not None else None

    def export_onnx(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Export :attr:`best_model` to ONNX, verified on the held-out test rows (the training
        rows without a test split); see :func:`autodl.export.export_onnx`. The file's inputs are
        the columns the column plan uses (a date column: float64 epoch seconds, which
        ``autodl predict`` converts from dates, see ``autodl.datetime_columns``)."""
        from autodl.export import export_onnx

        sample = getattr(self, "export_sample", None)
        if sample is None:
            raise UserError("this result has no stored rows to verify the export with; use "
                            "autodl.export_onnx(result.best_model, path, sample=X_heldout)")
        meta = {"config": self.best_config, "score": self.best_score, "metric": self.metric,
                "test_score": self.test_score, **(metadata or {})}
        if self.plan is not None:
            from autodl.tabular.columns import export_sample

            sample, plan_meta = export_sample(self.plan, sample)
            meta = {**plan_meta, **meta}
        return export_onnx(self.best_model, path, sample=sample, metadata=meta)

    def summary(self) -> dict[str, Any]:
        """The ``result.json`` envelope (see :func:`autodl.runs.result_envelope`)."""
        extra = {"task": self.task, "model_file": "model.skops",
                 "model_format": "skops (no pickle; see autodl.tabular.persist)",
                 "ensemble": self.ensemble, "ensemble_note": self.ensemble_note,
                 **({"columns": self.plan.to_dict()} if getattr(self, "plan", None) is not None else {})}
        metric, direction, best, test = self.metric, self.study.direction, self.best_score, self.test_score
        if self.study.n_objectives > 1:
            from autodl.tabular.objectives import front_summary

            metric, direction, best = list(self.objectives), list(self.study.directions), self.best_values
            deployed = self.deployment or {}
            measured = {"latency": deployed.get("latency_ms"), "size": deployed.get("size_bytes")}
            # the deployed model on the test rows: its metric there, its file's latency and size
            test = None if self.test_score is None else [self.test_score, *(measured[n] for n in metric[1:])]
            extra.update(objectives=[{"name": n, "direction": d} for n, d in zip(metric, direction)],
                         front=front_summary(self.study.best_trials), selected_by=self.selected_by)
        if self.deployment is not None:
            extra["deployment"] = self.deployment
        return result_envelope(
            "tabular", metric=metric, direction=direction, best_value=best,
            best_config=self.best_config, best_trial=self.best_trial_id,
            best_budget=self.best_budget,  # None without a multi-fidelity searcher
            test_score=test, counts=study_counts(self.study), extra=extra)

    def __repr__(self) -> str:
        test = f", test_score={self.test_score:.4g}" if self.test_score is not None else ""
        if self.ensemble:
            models = "+".join(m["model"] for m in self.ensemble["members"])
            return (f"SearchResult({self.metric}={self.ensemble['ensemble_score']:.4g} (ensemble, best trial "
                    f"{self.best_score:.4g}){test}, model=ensemble of {models})")
        if self.best_values is not None:
            values = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.objectives, self.best_values))
            return (f"SearchResult({values}{test}, trial {self.best_trial_id} of a front of "
                    f"{len(self.study.best_trials)}, model={self.best_config.get('model')})")
        return (f"SearchResult({self.metric}={self.best_score:.4g}{test}, "
                f"model={self.best_config.get('model')})")

    def feature_importance(self, X=None, y=None, *, n_repeats: int = 5, sample_weight=None):
        """Permutation importance of the input columns for the final predictor (the ensemble
        when there is one): the mean loss of the search metric when a column is shuffled, on
        held-out rows (default: the run's test split; give ``X, y`` for others), with its spread
        over ``n_repeats`` shuffles; see :mod:`autodl.tabular.importance`."""
        from autodl.tabular.importance import permutation_importance

        if X is None:
            frame, y, sample_weight = getattr(self, "_test", (None, None, None))
            if frame is None:
                raise UserError("this search held out no test rows (test_size=0): give X and y of rows it did not "
                                "train on")
        else:
            frame = self._frame(X)  # the columns as the pipelines take them (one per kept raw column)
        metric = getattr(self, "study_metric", None) or get_metric(self.metric, self.task)
        return permutation_importance(self.best_model, frame, y, metric, task=self.task, n_repeats=n_repeats,
                                      seed=0, sample_weight=sample_weight)




#: seconds of a time budget kept for stopping the worker and writing the result (see the module
#: docstring)
FINISH_MARGIN = 0.5
#: the refit estimate assumes fit time grows with rows; this covers models that grow faster
#: (SVM: about rows squared, forests: rows x log rows)
REFIT_SAFETY = 1.3


def refit_ratio(prep: Prepared) -> float:
    """Seconds the refit of the winner (in :func:`finalize`) takes per second of its
    cross-validation, estimated from the rows fitted.

    A trial fits the training parts of its folds (k folds: ``(k-1) n_train`` rows in all); the
    refit fits ``n_train`` rows for the test score (when there is a test split) and then all rows.
    """
    splits = cv_splits(prep.task, prep.X_train, prep.y_train, prep.spec.cv, prep.spec.seed,
                       prep.rows(prep.groups, "train"))
    n_train = len(prep.X_train)
    refit_rows = len(prep.X_all) + (n_train if prep.X_test is not None else 0)
    return REFIT_SAFETY * refit_rows / sum(len(train) for train, _ in splits)


def trial_cost(prep: Prepared, study: Study):
    """The cost model that skips trials predicted to overrun their time (:mod:`autodl.tabular.cost`)."""
    from autodl.tabular.cost import TrialCost

    splits = cv_splits(prep.task, prep.X_train, prep.y_train, prep.spec.cv, prep.spec.seed,
                       prep.rows(prep.groups, "train"))
    return TrialCost(fit_rows=int(np.mean([len(train) for train, _ in splits])), fits=len(splits),
                     max_budget=study.searcher.max_budget)


def enqueue_portfolio(study: Study, prep: Prepared) -> None:
    """Queue the portfolio's configurations (:mod:`autodl.tabular.portfolio`) that the study has
    not run yet, for searchers that evaluate every trial in full (not grid: it enumerates)."""
    spec = prep.spec
    if not spec.portfolio or uses_budget(spec.searcher) or str(spec.searcher).lower() == "grid":
        return
    from autodl.tabular.portfolio import portfolio

    tried = [t.config for t in study.trials]
    n_classes = len(set(np.asarray(prep.y_train).ravel().tolist())) if prep.task == "classification" else None
    for config in portfolio(prep.space, len(prep.y_train), n_classes):
        if config not in tried:
            study.enqueue(config)


def run_search(prep: Prepared, run_dir: Path | None, *, show_progress: bool | None = False,
               progress_mode: str = "bar", resume: bool = False,
               deadline: Deadline | None = None) -> SearchResult:
    """Run (or continue) the search described by ``prep``; write the run folder if given.

    ``deadline``: when the whole call must end (default: ``spec.time_budget`` from now).
    ``show_progress=None``: when stderr is a terminal. Failed trials are reported on stderr
    either way (see :meth:`Study.optimize`).
    """
    spec = prep.spec
    announce = show_progress is None  # the Python API's default: name the winner at the end
    if show_progress is None:
        from autodl.study.progress import live

        show_progress = announce = sys.stderr is not None and sys.stderr.isatty() and not live()
    if deadline is None:
        deadline = Deadline.after(spec.time_budget)
    storage = None if run_dir is None else run_dir / "study.db"
    if resume:
        study = Study.load(run_dir)
    else:
        goal = ({"directions": prep.deployment.directions} if spec.multi_objective
                else {"direction": prep.metric.direction})
        study = Study(prep.space, searcher=spec.searcher, storage=storage, seed=spec.seed,
                      searcher_params=spec.searcher_params, **goal)
    if prep.deployment is not None and run_dir is not None:
        from autodl.export.latency import LATENCY_FILE

        prep.deployment.cache_path = str(run_dir / LATENCY_FILE)
    scratch = None
    if spec.ensemble and run_dir is None:  # the trials' validation predictions live here meanwhile
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="autodl-predictions-")
    from autodl.tabular.ensemble import PREDICTIONS_DIR

    predictions = None if not spec.ensemble else Path(scratch.name) if scratch else run_dir / PREDICTIONS_DIR
    models = None
    if keeps_fold_models(spec, deadline):  # the trials' fold models, private to this search (see save_fold_models)
        import tempfile

        models = tempfile.TemporaryDirectory(prefix="autodl-models-")
    objective = make_objective(prep, run_dir, study, predictions, None if models is None else Path(models.name))
    enqueue_portfolio(study, prep)
    end = None if not deadline.is_set else time.monotonic() + deadline.remaining() - FINISH_MARGIN
    reserve = FOLD_MODELS_RESERVE if uses_fold_models(spec) else refit_ratio(prep) * (
        ENSEMBLE_RESERVE if spec.ensemble else 1.0)
    if models is not None and not uses_fold_models(spec):
        # the fallback: after the first member's refit, time to load the other members' fold models
        reserve += FOLD_MODELS_RESERVE
    stop = {} if end is None else {"stop_at_timeout": True, "reserve_ratio": reserve,
                                   "trial_cost": trial_cost(prep, study)}
    preload = []
    if end is not None:  # what runs after the search must not pay for imports there
        preload.append(_preload_torch_for_mlp)
        if run_dir is not None:
            _preload("skops.io")  # saves the model
        if prep.deployment is not None:  # the deployed model's ONNX file is measured at the end
            from autodl.tabular.objectives import preload_exporters

            preload_exporters()
    remaining = None
    if spec.n_trials is not None:
        remaining = spec.n_trials - study.n_finished
    while remaining is None or remaining > 0:
        from autodl.study.progress import StudyProgress

        progress = None
        callbacks = list(preload)
        if show_progress:
            progress = StudyProgress(study, n_trials=remaining, timeout=deadline.remaining(),
                                     mode=progress_mode)
            callbacks.append(progress.update)
            progress.start()
        left = None if end is None else end - time.monotonic()
        if left is not None and left <= 0:
            break
        try:
            study.optimize(objective, n_trials=remaining, timeout=left, callbacks=callbacks,
                           total_trials=spec.n_trials, show_progress=False, **stop, **spec.executor_kwargs())
        finally:
            if progress is not None:
                progress.stop()
        # `autodl worker` processes may still run trials of this study: wait for them, and
        # run again whatever a worker that died left behind
        if remaining is None or not study.wait_for_others(end):
            break
        remaining = spec.n_trials - study.n_finished
    try:
        result = finalize(study, prep, run_dir, predictions=predictions, deadline=deadline,
                          models=None if models is None else Path(models.name))
    finally:
        for folder in (scratch, models):
            if folder is not None:
                folder.cleanup()
    if announce:
        test = f", test {result.test_score:.4g}" if result.test_score is not None else ""
        if result.ensemble:
            members = " + ".join(f"{m['model']} {m['weight']:.2f}" for m in result.ensemble["members"])
            print(f"autodl: ensemble {result.metric} {result.ensemble['ensemble_score']:.4g} out-of-fold (best trial "
                  f"{result.best_score:.4g}){test}: {members}", file=sys.stderr)
        else:
            print(f"autodl: best {result.metric} {result.best_score:.4g}{test}: trial {result.best_trial_id}, "
                  f"{result.best_config.get('model')}", file=sys.stderr)
        if result.deployment is not None and result.deployment.get("latency_ms") is not None:
            d = result.deployment
            print(f"autodl: deployed ONNX {d['latency_ms']:.4g} ms per row, {d['size_bytes']} bytes"
                  + (f"; {d['note']}" if d.get("note") else ""), file=sys.stderr)
    return result


def _preload(module: str) -> None:
    """Import ``module`` in a background thread, once per process.

    With a time budget the trials run in a worker while this process waits; the refit and the
    saving after the search would otherwise pay for their imports (seconds for torch or skops
    on a loaded machine) outside the time kept for them.
    """
    if module in sys.modules or module in _PRELOADING:
        return
    import importlib
    import threading

    _PRELOADING.add(module)
    threading.Thread(target=importlib.import_module, args=(module,), daemon=True,
                     name=f"autodl-preload-{module}").start()


_PRELOADING: set[str] = set()


def _preload_torch_for_mlp(study: Study, trial) -> None:
    """A study callback: torch is needed once a torch MLP may win."""
    if trial.state == TrialState.COMPLETE and trial.config.get("model") == "mlp":
        _preload("torch")


def finalize(study: Study, prep: Prepared, run_dir: Path | None, *, predictions: Path | None = None,
             deadline: Deadline | None = None, models: Path | None = None) -> SearchResult:
    """Refit the best pipeline (or the ensemble chosen over the trials' validation predictions),
    score it on the test split, save model and result.json."""
    deployment = prep.deployment
    try:
        best, how = _chosen_trial(study, prep)
    except ValueError:
        if prep.spec.max_latency_ms is not None and study.get_trials([TrialState.COMPLETE]):
            from autodl.tabular.objectives import no_feasible_message

            raise UserError(no_feasible_message(study, prep.spec.max_latency_ms)) from None
        failed = study.get_trials([TrialState.FAILED])
        why = f"; first failure: {failed[0].message}" if failed else ""
        stopped = [t for t in study.get_trials([TrialState.PRUNED])
                   if (t.message or "").startswith("stopped after")]
        if stopped:
            budget = f" of the {prep.spec.time_budget:g}s time budget" if prep.spec.time_budget else ""
            why += f"; {len(stopped)} stopped at the deadline{budget}: give more time (--time)"
        raise UserError(f"no trial completed, so there is no best model{why}") from None
    members, info = [(1.0, best)], {}
    if predictions is not None:
        selecting = None  # under a deadline, selection may take a quarter of the time left
        if deadline is not None and deadline.is_set:
            selecting = max(0.0, SELECTION_SHARE * (deadline.remaining() - FINISH_MARGIN))
        members, info = _choose_ensemble(study, prep, predictions, max_seconds=selecting)
        members = members or [(1.0, best)]
    from autodl.study.executors import ThreadLimit, trial_threads
    from autodl.tabular.ensemble import EnsembleModel

    threads = ThreadLimit(trial_threads(1))  # the refits in this process: 1 thread on a busy machine
    threads.apply()
    blobs = MemberBlobs() if run_dir is not None else None  # members serialized for model.skops
    with quiet_fit(), contextlib.ExitStack() as stack:
        stack.callback(threads.restore)
        if models is not None and uses_fold_models(prep.spec):
            fits = _fold_members(prep, members, deadline, models, blobs)
            info["refit"] = False
        else:
            fits = _refit_members(prep, members, deadline)
            late = [(w, t) for w, t in members if t.id not in fits]
            if late and models is not None:  # refits out of time: these members keep their fold models
                if blobs is not None:  # the first member, serialized now: the rate for the others
                    first = members[0][1]
                    blobs.dump(fits[first.id]["all"], str(first.config.get("model")))
                fits.update(_fold_members(prep, late, deadline, models, blobs, first_free=False))
                folded = [t.id for _, t in late if t.id in fits]
                if folded:
                    info["fold_model_members"] = folded
        if len(fits) < len(members):  # the deadline left time for the first members only: choose among them
            kept = [t for _, t in members if t.id in fits]
            info["dropped_for_time"] = len(members) - len(kept)
            members, again = _choose_ensemble(study, prep, predictions, kept)
            info["ensemble_score"] = again.get("ensemble_score", info.get("single_score"))
        if deployment is not None and deployment.max_latency_ms is not None and not prep.spec.multi_objective:
            members = _within_limit(study, prep, predictions, members, fits, info)
            if len(members) == 1:  # the trial deployed alone (the best one that meets the limit)
                best = members[0][1]
        test_score = single_test = None
        if prep.X_test is not None:
            parts = [(w, fits[t.id]["train"]) for w, t in members]
            model = parts[0][1] if len(parts) == 1 else EnsembleModel(parts, prep.task)
            w_test = prep.rows(prep.weights, "test")
            test_score = float(score_model(model, prep.X_test, prep.y_test, prep.metric, w_test))
            if len(parts) > 1 and best.id in fits:
                single_test = float(score_model(fits[best.id]["train"], prep.X_test, prep.y_test, prep.metric,
                                                w_test))
    fitted = [(w, fits[t.id]["all"], fits[t.id]["seconds"]) for w, t in members]
    final = fitted[0][1] if len(fitted) == 1 else EnsembleModel([(w, m) for w, m, _ in fitted], prep.task)
    result = SearchResult(study, final, prep.task, prep.metric.name, test_score, run_dir, best)
    result.plan = prep.plan
    if deployment is not None:
        result.objectives, result.selected_by = list(deployment.objectives), how
        result.deployment = _deployed(final, members, prep, info.pop("latency_limit", None), how)
    result.study_metric = prep.metric
    result.export_sample = (prep.X_test if prep.X_test is not None else prep.X_all).iloc[:512]
    if prep.X_test is not None:  # raw rows for feature_importance()
        result._test = (prep.X_test, prep.y_test, prep.rows(prep.weights, "test"))
    if len(fitted) > 1:
        timing = prep.X_test if prep.X_test is not None else prep.X_all
        result.ensemble = dict(info, single_test_score=single_test, members=[
            {"trial_id": t.id, "model": t.config.get("model"), "weight": round(w, 6), "cv_score": t.value,
             "fitted": "fold models" if fits[t.id].get("fold_models") else "refit on all rows",
             "fit_seconds": round(sec, 4), "predict_ms_per_row": _predict_ms(m, timing)}
            for (w, t), (_, m, sec) in zip(members, fitted)])
    elif info:
        result.ensemble = None
        result.ensemble_note = info.get("why_single") or (
            "the other chosen members did not fit in the time left" if info.get("dropped_for_time")
            else "the best trial alone validated best")
    if run_dir is not None:
        save_model(final, run_dir / "model.skops", blobs)
        write_result(run_dir, result.summary())
        _keep_best_predictions(study, predictions)
    return result


#: with an ensemble, the search keeps this many times the best trial's refit time free for the
#: members' refits (the members after the first are refit only while their time fits). Measured
#: at 2.0 on the 20,000-row messy tables (30 s): the larger reserve also cuts running trials
#: earlier (a trial is stopped once it could not finish and leave its reserve), so the regression
#: tables completed 2 trials instead of 5-6 and scored lower; hence none beyond the first refit.
ENSEMBLE_RESERVE = 1.0


#: the share of the time left after the search that ensemble selection may use (the rest refits)
SELECTION_SHARE = 0.25


def _choose_ensemble(study: Study, prep: Prepared, predictions: Path, trials=None, max_seconds: float | None = None):
    """:func:`autodl.tabular.ensemble.choose_members` over ``trials`` (default: the study's
    complete trials at the full budget; the feasible ones under a latency limit)."""
    from autodl.tabular.ensemble import choose_members

    if trials is None:
        trials = [t for t in _choose_pool(study) if t.feasible]
    classes = np.unique(np.asarray(prep.y_train)) if prep.task == "classification" else None
    return choose_members(trials, predictions, prep.y_train, prep.metric, direction=study.direction,
                          classes=classes, sample_weight=prep.rows(prep.weights, "train"), max_seconds=max_seconds)


def _chosen_trial(study: Study, prep: Prepared):
    """``(the trial that predicts, how it was chosen)``: the best (feasible) trial, or with several
    objectives the front member the select rule picks. ValueError when there is none."""
    if not prep.spec.multi_objective:
        return study.best_trial, None
    from autodl.tabular.objectives import choose_from_front

    front = study.best_trials
    if not front:
        raise ValueError("no (feasible) trial completed")
    return choose_from_front(front, prep.deployment.objectives, study.directions, prep.select)


def _within_limit(study: Study, prep: Prepared, predictions, members, fits, info):
    """Members (``[(weight, trial), ...]``) whose predictor, refit on all rows, meets the latency
    limit (:func:`autodl.tabular.objectives.fit_to_limit`); ``fits`` gains the refits this needs."""
    from autodl.tabular.ensemble import EnsembleModel
    from autodl.tabular.objectives import deployed_key, fit_to_limit

    deployment = prep.deployment
    rows = prep.X_test if prep.X_test is not None else prep.X_all

    def model_of(chosen):
        missing = [(w, t) for w, t in chosen if t.id not in fits]
        fits.update(_refit_members(prep, missing, None))
        if len(chosen) == 1:
            return fits[chosen[0][1].id]["all"]
        return EnsembleModel([(w, fits[t.id]["all"]) for w, t in chosen], prep.task)

    def rechoose(kept):
        if predictions is None:
            return []
        again, _ = _choose_ensemble(study, prep, predictions, kept)
        return again

    sign = 1.0 if study.direction == "maximize" else -1.0
    feasible = sorted((t for t in _choose_pool(study) if t.feasible), key=lambda t: (-sign * t.value, t.id))
    chosen, done = fit_to_limit(members, deployment.max_latency_ms, model_of=model_of,
                                measure=lambda c, model: deployment.measure(model, rows, deployed_key(c, deployment)),
                                rechoose=rechoose, alternatives=feasible)
    model_of(chosen)
    info["latency_limit"] = done
    if len(chosen) == 1 and len(members) > 1:
        info["why_single"] = (f"the ensemble's ONNX file was over the {prep.spec.max_latency_ms:g} ms limit; "
                              f"trial {chosen[0][1].id} predicts alone")
    return chosen


def _choose_pool(study: Study):
    """The complete trials at the largest budget (those ensembles and limits choose from)."""
    top = study.searcher.max_budget
    return [t for t in study.get_trials([TrialState.COMPLETE]) if top is None or t.budget is None or t.budget >= top]


def _deployed(final, members, prep: Prepared, limit: dict[str, Any] | None, how: str | None) -> dict[str, Any]:
    """The deployed predictor's ONNX measurement for ``result.json`` (``extra.deployment``): its
    latency and size, the limit and whether it is met, and a note of what was done."""
    from autodl.tabular.objectives import deployed_key

    deployment, spec = prep.deployment, prep.spec
    rows = prep.X_test if prep.X_test is not None else prep.X_all
    out: dict[str, Any] = {"members": [t.id for _, t in members], "max_latency_ms": spec.max_latency_ms}
    notes: list[str] = []
    try:  # the limit check measured this predictor already (the same cache key)
        m = deployment.measure(final, rows, deployed_key(members, deployment))
    except ExportError as exc:
        out.update(latency_ms=None, size_bytes=None, meets_limit=None, note=f"not measured: {exc}")
        return out
    out.update(latency_ms=round(m.latency_ms, 6), batch64_ms=None if np.isnan(m.batch64_ms) else round(m.batch64_ms, 6),
               size_bytes=int(m.size_bytes), load=m.load)
    limit_ms = spec.max_latency_ms
    if limit_ms is not None:
        out["meets_limit"] = bool(m.latency_ms <= limit_ms)
        steps = (limit or {}).get("steps") or []
        out["measured"] = steps
        first = steps[0] if steps else None
        what = ""
        if first:
            what = (f"the ensemble of {len(first['members'])}" if len(first["members"]) > 1
                    else f"trial {first['members'][0]}")
        if first and len(steps) > 1:
            now = f"the ensemble of {len(members)}" if len(members) > 1 else f"trial {members[0][1].id} alone"
            notes.append(f"{what} measured {first['latency_ms']:.4g} ms refit on all rows, over the {limit_ms:g} ms "
                         f"limit; deployed {now} ({m.latency_ms:.4g} ms)")
        elif first:
            notes.append(f"{what} meets the {limit_ms:g} ms limit ({m.latency_ms:.4g} ms)")
        if not out["meets_limit"]:
            notes.append(f"no predictor tried met the limit refit on all rows (each of {len(steps)} measured over "
                         f"{limit_ms:g} ms); the best feasible trial is kept")
    out["note"] = "; ".join(notes) or None
    return out


def _refit_members(prep: Prepared, members, deadline: Deadline | None) -> dict[int, dict[str, Any]]:
    """Fit each member (largest weight first) on the training rows (for the test score) and on
    all rows: ``{trial id: {"train": model, "all": model, "seconds": refit seconds on all rows}}``.
    The first member is always fitted (the search kept time for it); under a deadline a later
    member only when its refits, predicted from its trial's duration at the rate the refits so
    far took, fit in the time left."""
    fits: dict[int, dict[str, Any]] = {}
    rate = 0.0  # refit seconds per second of trial
    for _, trial in members:
        if fits and deadline is not None and deadline.is_set:
            if rate * (trial.duration or 0.0) > deadline.remaining() - FINISH_MARGIN - 1.0:
                continue
        started = time.perf_counter()
        part = fit_config(prep, trial.config, "train") if prep.X_test is not None else None
        middle = time.perf_counter()
        whole = fit_config(prep, trial.config, "all")
        done = time.perf_counter()
        fits[trial.id] = {"train": part, "all": whole, "seconds": done - middle}
        rate = max(rate, (done - started) / max(trial.duration or 0.0, 1e-3))
    return fits


#: with fold models the search keeps this many times the best trial's duration free for loading
#: the members' models, scoring and saving the ensemble (nothing is fitted after the search); by
#: default under a deadline it is kept on top of the first member's refit, for the members whose
#: refits do not fit (at 30 s on benchmarks/automl.py's 14 tables, without it the first refit
#: left too little time to load them on 8 of the 11 tables whose chosen ensemble had several members)
FOLD_MODELS_RESERVE = 0.25


def _fold_members(prep: Prepared, members, deadline: Deadline | None, folder: Path,
                  blobs: MemberBlobs | None, first_free: bool = True) -> dict[int, dict[str, Any]]:
    """Each member's kept fold models (:func:`autodl.tabular.ensemble.load_fold_models`), largest
    weight first: ``{trial id: {"train": model, "all": model, "seconds": the trial's duration,
    "fold_models": True}}`` (the same model twice: it was fitted on training rows only). A member
    without kept models (a fold lacked a class) is refit, or with ``first_free=False`` (the
    fallback of members whose refit did not fit) left out. With a run folder (``blobs``) each
    member taken is serialized for the run's model file right away, measuring what that costs.
    Under a deadline a member (after the first, with ``first_free``) is taken only when loading
    it, and serializing it (:meth:`~autodl.tabular.persist.MemberBlobs.seconds_for`), is
    predicted to fit in the time left."""
    from autodl.tabular.ensemble import fold_models_bytes, load_fold_models

    fits: dict[int, dict[str, Any]] = {}
    for _, trial in members:
        size = fold_models_bytes(folder, trial.id)
        if (fits or not first_free) and deadline is not None and deadline.is_set:
            # no refit: reading the pickle (and serializing it) is all it costs, so only the
            # finishing margin is kept (a refit keeps 1 s more for its prediction's error)
            cost = float(trial.user_attrs.get("save_seconds") or 0.0)
            if blobs is not None and size:
                cost += blobs.seconds_for(str(trial.config.get("model")), size, cost)
            if cost > deadline.remaining() - FINISH_MARGIN:
                continue
        model = load_fold_models(folder, trial.id)
        if model is None:
            if first_free:
                fits.update(_refit_members(prep, [(1.0, trial)], deadline if fits else None))
                if blobs is not None and trial.id in fits:
                    blobs.dump(fits[trial.id]["all"], str(trial.config.get("model")))
            continue
        if blobs is not None:
            blobs.dump(model, str(trial.config.get("model")), size)
        fits[trial.id] = {"train": model, "all": model, "seconds": float(trial.duration or 0.0), "fold_models": True}
    return fits


def _predict_ms(model, X, rows: int = 256) -> float:
    """Milliseconds per row of ``model.predict`` on a batch of up to ``rows`` rows."""
    batch = X.iloc[:rows]
    started = time.perf_counter()
    model.predict(batch)
    return round(1000 * (time.perf_counter() - started) / max(len(batch), 1), 4)


def _keep_best_predictions(study: Study, folder: Path | None) -> None:
    """Bound the run folder: keep the validation predictions of the best trials only."""
    from autodl.tabular.ensemble import MAX_CANDIDATES

    if folder is None or not folder.is_dir():
        return
    sign = 1.0 if study.direction == "maximize" else -1.0
    done = sorted((t for t in study.get_trials([TrialState.COMPLETE]) if t.value is not None), key=lambda t: -sign * t.value)
    keep = {f"{t.id}.npy" for t in done[:MAX_CANDIDATES]}
    for path in folder.glob("*.npy"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def fit_config(prep: Prepared, config: dict[str, Any], rows: str):
    """The pipeline of ``config`` fitted on the ``"train"`` rows or on ``"all"`` rows, with their
    sample weights."""
    X, y, w = ((prep.X_all, prep.y_all, prep.weights) if rows == "all" else
               (prep.X_train, prep.y_train, prep.rows(prep.weights, "train")))
    pipe = build_pipeline(config, X, prep.task, prep.spec.seed, features=prep.features, plan=prep.plan)
    return fit_pipeline(pipe, X, y, w)


def start_run(spec: SearchSpec, out: str | Path, X=None, y=None, features=None, *, sample_weight=None,
              groups=None, metric_fn=None, latency_fn=None, select_fn=None) -> tuple[Prepared, Path]:
    """Validate everything, then create the run folder with ``run.json``, ``split.npz`` (the
    held-out rows) and, when the data was given in memory, ``data.parquet`` (with the weights
    and groups; so the run can be resumed and exported). Arguments as :func:`prepare`."""
    new_run_dir(out)  # a bad --out is said before the data is loaded (create_run checks it again)
    prep = prepare(spec, X, y, features, sample_weight=sample_weight, groups=groups, metric_fn=metric_fn,
                   latency_fn=latency_fn, select_fn=select_fn)
    spec_dict = asdict(spec)
    spec_dict.pop("announce_columns")
    if isinstance(spec.space, Space):
        spec_dict["space"] = spec.space.to_dict()

    if X is not None:  # the data lives in the run folder
        spec_dict.update(data=str((Path(out) / "data.parquet").resolve()), target="__target__", dataset=None)

    def fill(run_dir: Path) -> None:
        if X is not None:
            frame = prep.X_all.copy()
            frame["__target__"] = np.asarray(prep.y_all)
            for column, values in ((spec.weight_column, prep.weights), (spec.groups_column, prep.groups)):
                if values is not None:
                    frame[column] = values
            frame.columns = [str(c) for c in frame.columns]
            atomic_write(run_dir / "data.parquet", lambda p: frame.to_parquet(p))
        save_split(run_dir, **prep.split)
        if prep.plan is not None:
            write_json(run_dir / "columns.json", prep.plan.to_dict())

    run_dir = create_run(out, "tabular", spec_dict, fill)
    return prep, run_dir


def spec_from_dict(data: dict[str, Any]) -> SearchSpec:
    known = set(SearchSpec.__dataclass_fields__)
    return SearchSpec(**{k: v for k, v in data.items() if k in known})


def load_spec(run_dir: str | Path) -> SearchSpec:
    kind, data = read_run(run_dir)
    if kind != "tabular":
        raise UserError(f"{run_dir} is a '{kind}' run, not a tabular one")
    return spec_from_dict(data)


def prepare_run(run_dir: Path, spec: SearchSpec, metric_fn=None, latency_fn=None, select_fn=None) -> Prepared:
    """The data of an existing run folder, split by its saved ``split.npz`` (format-1 folders:
    the split rebuilt from the seed, then saved); ``metric_fn``: the function of a run whose
    metric was one."""
    if spec.data and not Path(spec.data).is_file():
        raise DataError(f"the run's data file {spec.data} is gone; restore it to continue")
    split = load_split(run_dir)
    if spec.column_plan is None:  # a run started before column roles (or with a feature step): none
        spec.column_plan = {}
    prep = prepare(spec, split=split, metric_fn=metric_fn, latency_fn=latency_fn, select_fn=select_fn)
    if split is None:
        save_split(run_dir, **prep.split)
    return prep


def resume_run(run_dir: str | Path, *, n_trials: int | None = None, time_budget: float | None = None,
               n_workers: int | None = None, show_progress: bool | None = None,
               progress_mode: str = "bar", deadline: Deadline | None = None, metric: Any = None,
               latency_fn: Callable[[bytes], float] | None = None, select: Callable | None = None,
               **executor: Any) -> SearchResult:
    """Continue a run folder: completed trials are kept, abandoned ones re-run, the rest asked.

    ``executor`` may override the run's ``executor``, ``dask_scheduler`` or ``trial_timeout``;
    ``time_budget`` (or ``deadline``) is a new deadline for this call. ``metric``: the function
    (or ``(function, direction)``) of a run whose metric was a Python function, which run.json
    cannot hold (``autodl resume`` refuses such a run); ``latency_fn``, ``select``: likewise for a
    run given those as Python callables. ``show_progress``: a progress bar on stderr; None
    (default): when stderr is a terminal, as :func:`search`.
    """
    run_dir = Path(run_dir)
    spec = load_spec(run_dir)
    metric_fn = None
    if metric is not None:
        if spec.metric_direction is None:
            raise UserError(f"metric= is for a run whose metric was a Python function; this run's is '{spec.metric}'")
        metric_fn = function_metric(metric)[0]
    for key, value in executor.items():
        setattr(spec, key, value)
    if n_trials is not None:
        spec.n_trials = n_trials
    if n_workers is not None:
        spec.n_workers = n_workers
    if deadline is None:
        deadline = Deadline.after(time_budget)
    spec.time_budget = deadline.budget
    prep = prepare_run(run_dir, spec, metric_fn, latency_fn, select)
    return run_search(prep, run_dir, show_progress=show_progress, progress_mode=progress_mode,
                      resume=True, deadline=deadline)


def open_result(run_dir: str | Path) -> dict[str, Any]:
    from autodl.runs import read_result

    return read_result(run_dir)


def load_best_model(run_dir: str | Path):
    """The best pipeline saved in a run folder."""
    return load_model(Path(run_dir) / "model.skops")


def search(
    X,
    y,
    *,
    task: str | None = None,
    space: str | Space = "tabular",
    searcher: str = "tpe",
    time_budget: float | None = None,
    n_trials: int | None = None,
    seed: int = 0,
    metric: str | Callable | tuple[Callable, str] | None = None,
    cv: int | str = "auto",
    test_size: float = 0.2,
    n_workers: int | None = None,
    out: str | Path | None = None,
    show_progress: bool | None = None,
    searcher_params: dict[str, Any] | None = None,
    features: Any = None,
    budget_resource: str = "auto",
    trial_timeout: float | None = None,
    column_roles: dict[str, str] | None = None,
    portfolio: bool = True,
    ensemble: bool = True,
    refit: bool | None = None,
    sample_weight=None,
    groups=None,
    time_column: str | None = None,
    objectives: list[str] | str | None = None,
    max_latency_ms: float | None = None,
    select: str | Callable | None = None,
    latency_fn: Callable[[bytes], float] | str | None = None,
) -> SearchResult:
    """Tune a scikit-learn pipeline on ``(X, y)`` by k-fold cross-validation.

    Args:
        X: a DataFrame (numeric, categorical and missing values are fine) or a 2-D array.
        y: the target.
        task: ``"classification"``, ``"regression"`` or None to infer it from ``y``.
        space: a built-in space name, a YAML path or a :class:`~autodl.Space`.
        searcher: ``"tpe"`` (default), ``"random"``, ``"grid"``, ``"gp"``, ... or a
            multi-fidelity searcher (``"sh"``, ``"hyperband"``, ``"asha"``, ``"bohb"``): a
            trial with budget ``b`` then fits ``b / max_budget`` of the full work (see
            ``budget_resource``); ``searcher_params`` may set ``min_budget``, ``max_budget``
            and ``eta`` (default 1, 9, 3: fractions 1/9, 1/3, 1). The best trial is chosen
            among those at the largest budget reached, and the winner is refit in full.
        time_budget: seconds for the whole call, refit of the winner included: a deadline at
            which running trials are stopped (see the module docstring for the slack).
        n_trials: number of trials. Give this, ``time_budget`` or both.
        seed: seeds the searcher, the folds and the test split.
        metric: accuracy, balanced_accuracy, f1, roc_auc, log_loss (classification); r2,
            rmse, mae (regression). Default accuracy / r2. Or a function ``fn(y_true, y_pred)
            -> float`` of the predicted labels (classification) or values, maximized;
            ``(fn, "minimize")`` to minimize it. It is named ``fn.__name__`` (the leaderboard's
            column) and gets ``sample_weight=`` when it has that parameter. A run folder then
            resumes from Python only (:func:`resume_run` with ``metric=fn``).
        cv: number of folds, ``"holdout"`` (one stratified 80/20 split of the training rows),
            ``"time"`` (rows ordered by ``time_column``: the test split is the latest
            ``test_size`` of them, the folds are 5 expanding windows, scikit-learn's
            ``TimeSeriesSplit``, over the others), or ``"auto"`` (default): under a time budget,
            by training rows per second of it, one holdout split from 1,000 (15,000 rows at
            15 s), 3 folds from 333 (10,000 rows at 30 s), else 5 folds (5 folds buy too few
            models in the time on large tables; measured, see
            :data:`autodl.tabular.pipeline.AUTO_FOLDS_ROWS_PER_SECOND`); 5 without a budget.
        test_size: fraction held out for a final test score (0 for none).
        sample_weight: a weight per row (finite, >= 0, not all 0) for every fit (k-NN's
            excepted: it takes none) and every score, in the folds and on the test split.
        groups: a group label per row: no group is in both the training and the validation
            rows of a fold (group k-fold, stratified for classes; a group-disjoint holdout), nor
            in both the test split (``test_size`` of the groups) and the rest.
        time_column: with ``cv="time"``, the date column ordering the rows; None: the one
            column the column roles call datetime.
        n_workers: trials run in parallel in that many processes. None (the default): under a
            time budget, one per usable core (fewer when the available memory holds fewer; see
            :func:`default_workers`); with ``n_trials`` alone, one, in this process, so that the
            same seed repeats the same trials (with several workers the order in which trials
            finish, and so what the searcher proposes next, depends on timing).
            Native thread pools (OpenMP, BLAS) of each are capped at cores // ``n_workers``
            (``OMP_NUM_THREADS`` when set), in this process too when trials run in it.
        out: a run folder to keep the study, result and model in (resumable).
        show_progress: a progress bar on stderr; None (default): when stderr is a terminal.
            Failed trials are reported on stderr either way, with the file and line.
        trial_timeout: seconds after which a trial is stopped and recorded FAILED ("timed out
            after Xs"); the trials then run in a worker process, which is killed.
        features: a feature-engineering step run before the preprocessing, refitted per fold
            and cached by content across trials: ``"featuretools"`` (transform primitives on
            ``X``), ``"tsfresh"`` (``X`` holds a series per row), a dict ``{"kind": ...,
            **args}`` or a transformer such as :class:`autodl.features.TsfreshTransformer`.
        budget_resource: what a budget below the maximum cuts: ``"auto"`` (the iteration
            count of hist_gb, random_forest, extra_trees and mlp; the training rows of each
            fold for linear, knn and svm), ``"iterations"`` (every model of the space must have
            one) or ``"rows"`` (every model). Only with a multi-fidelity searcher.
        portfolio: start from strong default configurations (:mod:`autodl.tabular.portfolio`:
            the library defaults of gradient boosting, a linear model and the forests) before the
            searcher's own proposals; the searcher learns from them. Not with grid or
            multi-fidelity searchers.
        ensemble: predict with a weighted ensemble of the trials (greedy ensemble selection on
            their out-of-fold predictions, :mod:`autodl.tabular.ensemble`; members refit on all
            rows) when it validates better than the best trial alone; False: the best trial.
        refit: True: fit the chosen members (or the best trial) again on all rows after the
            search, within the deadline (members whose refits do not fit are left out); False:
            predict with the models each trial's validation fitted (a member is the average of
            its fold models; nothing is fitted after the search, so more trials fit in the
            budget, but the predictor and its ONNX file hold k models per member). None
            (default): refit (:data:`FOLD_MODELS_BY_DEFAULT`), and under a time budget the
            members whose refits do not fit in the time left keep their fold models instead
            (``result.ensemble["members"][i]["fitted"]`` says which). Only with
            ``ensemble=True`` (else the winner is refit).
        column_roles: roles for columns, winning over the inferred ones, e.g. ``{"zip":
            "categorical", "note": "ignore", "when": "datetime"}`` (roles: numeric, categorical,
            high_cardinality, boolean, datetime, ignore; see :mod:`autodl.tabular.columns`).
            The plan is printed with the progress, kept as ``result.plan`` and in the run folder.
        objectives: several objectives, e.g. ``["accuracy", "latency"]``: the metric (its name or
            ``"metric"``) first, then ``"latency"`` (ms per single-row onnxruntime call, one
            thread) and/or ``"size"`` (bytes of the ONNX file), both minimized and measured on each
            trial's ONNX file (see :mod:`autodl.tabular.objectives`; a trial whose pipeline does not
            export fails). The search then finds a Pareto front (``result.study.best_trials``) with
            a multi-objective searcher (``"tpe"`` means ``"motpe"``), and predicts with one front
            member (``select``), without an ensemble.
        max_latency_ms: a latency limit for the predictor as deployed: every trial gets the
            constraint ``latency - max_latency_ms <= 0`` (feasible trials rank first), the best
            feasible trial wins, and an ensemble is shrunk until its one-graph ONNX file meets it
            (``result.deployment`` says what was done). No feasible trial: a UserError.
        select: with several objectives, how the predicting front member is chosen: a rule such
            as ``"accuracy, latency<=1ms"`` (limits first, then the best value of the named
            objective) or a callable taking the front's trials and returning one (or its id).
            Default: the best metric on the front.
        latency_fn: ``fn(onnx_bytes) -> milliseconds`` measuring latency for another deployment
            machine, instead of the local timing (or ``"module:function"``); it must be picklable
            when trials run in worker processes.

    Example:
        >>> from sklearn.datasets import load_wine
        >>> X, y = load_wine(return_X_y=True, as_frame=True)
        >>> result = autodl.search(X, y, n_trials=20, seed=0)
        >>> result.best_score, result.best_config["model"]
    """
    deadline = Deadline.after(time_budget if time_budget is not None or n_trials is not None else 60.0)
    t0 = time.monotonic()
    if time_budget is None and n_trials is None:
        time_budget = 60.0
    if n_workers is None:  # under a budget the trials run in worker processes either way
        n_workers = default_workers(table_bytes(X)) if time_budget is not None else 1
    metric_fn = direction = None
    if metric is not None and not isinstance(metric, str):
        metric_fn, metric, direction = function_metric(metric)
    spec = SearchSpec(task=task, metric=metric, space=space if not isinstance(space, Space) else space.to_dict(),
                      searcher=searcher, searcher_params=dict(searcher_params or {}), n_trials=n_trials,
                      time_budget=time_budget, seed=seed, cv=cv, test_size=test_size, n_workers=n_workers,
                      features=_features_spec(features), budget_resource=budget_resource,
                      trial_timeout=trial_timeout, column_roles=column_roles, announce_columns=show_progress,
                      portfolio=portfolio, ensemble=ensemble, refit=refit, time_column=time_column,
                      metric_direction=direction, objectives=objectives, max_latency_ms=max_latency_ms)
    from autodl.tabular.objectives import callable_mark

    select_fn = latency_callable = None
    if select is not None and not isinstance(select, str):
        if not callable(select):
            raise UserError(f"select is {select!r}, but must be a rule such as 'accuracy, latency<=1ms' or a "
                            "callable taking the front's trials")
        select_fn, spec.select = select, callable_mark(select)
    else:
        spec.select = select
    if latency_fn is not None and not isinstance(latency_fn, str):
        if not callable(latency_fn):
            raise UserError(f"latency_fn is {latency_fn!r}, but must be a callable onnx_bytes -> milliseconds")
        latency_callable, spec.latency_fn = latency_fn, callable_mark(latency_fn)
    else:
        spec.latency_fn = latency_fn
    obj = features if features is not None and not isinstance(features, (str, dict)) else None
    given = dict(sample_weight=sample_weight, groups=groups, metric_fn=metric_fn, latency_fn=latency_callable,
                 select_fn=select_fn)
    if out is not None:
        prep, run_dir = start_run(spec, out, X, y, features=obj, **given)
    else:
        prep, run_dir = prepare(spec, X, y, features=obj, **given), None
    result = run_search(prep, run_dir, show_progress=show_progress, deadline=deadline)
    result.search_seconds = time.monotonic() - t0
    return result


# ---------------------------------------------------------------------- feature engineering
def _feature_data(spec: SearchSpec, features):
    """``(X, y, feature transformer)`` for specs whose data needs feature engineering to load
    (an entity set, long-form series); ``(None, None, transformer or None)`` otherwise."""
    from autodl.features import make_features

    feature_spec = spec.features
    if isinstance(feature_spec, dict) and feature_spec.get("kind") == "object" and features is None:
        raise UserError("this run's feature transformer was given as a Python object and cannot be "
                        "rebuilt from run.json; start a new search")
    X = y = None
    if spec.entityset:
        from autodl.features.io import load_entityset

        if spec.features not in (None, "featuretools"):
            raise UserError("--entityset works with featuretools features only")
        X, y, feature_spec = load_entityset(spec.entityset, spec.target)
    elif spec.timeseries:
        from autodl.features.io import SEP, load_series

        if not spec.data:
            raise UserError("--task timeseries needs --data FILE with the long-form series")
        given = feature_spec if isinstance(feature_spec, dict) else {"kind": feature_spec or "tsfresh"}
        if given.get("kind") != "tsfresh":
            raise UserError(f"--task timeseries works with tsfresh features, not {given.get('kind')}")
        X, y = load_series(spec.data, spec.target, spec.timeseries.get("id_column"),
                           spec.timeseries.get("sort_column"), spec.timeseries.get("labels"))
        feature_spec = {"form": "wide", "kind_sep": SEP, **given}
    if features is None and feature_spec is not None:
        features = make_features(feature_spec)
    return X, y, features


def make_objective(prep: Prepared, run_dir: Path | None, study: Study, predictions: Path | None = None,
                   models: Path | None = None) -> CVObjective:
    """The CV objective; budgets are fractions of the study's searcher's ``max_budget`` (the
    study keeps the searcher parameters the run started with)."""
    features = prep.features
    if features is not None and run_dir is not None and features.get_params().get("cache_dir", 0) is None:
        features.set_params(cache_dir=str(run_dir / "feature_cache"))  # shared by worker processes
    prep.metric.scorer(prep.y_train)  # a function metric of a run resumed without it: one line, before any trial
    if prep.deployment is not None and run_dir is not None and prep.deployment.cache_path is None:
        from autodl.export.latency import LATENCY_FILE

        prep.deployment.cache_path = str(run_dir / LATENCY_FILE)
    return CVObjective(prep.X_train, prep.y_train, prep.task, prep.metric, prep.spec.cv, prep.spec.seed,
                       features=features, budget_resource=prep.spec.budget_resource,
                       max_budget=study.searcher.max_budget, plan=prep.plan,
                       sample_weight=prep.rows(prep.weights, "train"), groups=prep.rows(prep.groups, "train"),
                       predictions_dir=None if predictions is None else str(predictions),
                       models_dir=None if models is None else str(models), deployment=prep.deployment)


def _features_spec(features: Any) -> Any:
    """The JSON form of ``features`` for run.json: the string/dict as given, a transformer's
    parameters when they are plain data, else a placeholder (such a run cannot be resumed)."""
    if features is None or isinstance(features, (str, dict)):
        return features
    kind = {"FeaturetoolsTransformer": "featuretools", "TsfreshTransformer": "tsfresh"}.get(type(features).__name__)
    if kind is not None:
        params = features.get_params()
        try:
            json.dumps(params)
            return {"kind": kind, **params}
        except (TypeError, ValueError):
            pass
    return {"kind": "object", "repr": repr(features)[:500]}
