"""Multi-fidelity search over PyTorch MLPs / CNNs (``autodl search --model mlp|cnn``).

Budget = epochs. Each trial trains its config to ``round(budget)`` epochs in total; with a run
folder, a promoted trial resumes from ``RUN/checkpoints/<config_key>/`` (the checkpoint of its
lower rung) and trains only the extra epochs. The study maximizes validation accuracy.

A run folder holds:

* ``study.db``     every trial (SQLite; ``autodl resume RUN`` continues it),
* ``run.json``     what was asked (``kind: "nn"``, data set, model, searcher, budgets, seed),
* ``split.npz``    the row indices of the train / validation / test split,
* ``checkpoints/`` one checkpoint per config (safe format, see :mod:`autodl.nn.checkpoint`),
* ``model.pt``     the best model's weights (tensors only; ``torch.load(weights_only=True)``)
  and ``model.json`` (its config, architecture kind, shapes),
* ``result.json``  the envelope of every kind (:func:`autodl.runs.result_envelope`): best
  validation accuracy (``best_value``), test accuracy (``test_score``); ``extra`` has the epochs
  trained and the epochs checkpoints saved (``epochs_resumed``: what restarting each trial from
  scratch would have trained on top of ``epochs_trained``).

A time budget is a deadline for the whole call (see :mod:`autodl.runs.deadline`): trials run in
a worker process and the one running at the deadline is stopped (PRUNED), leaving time to
score and save the best model.

The best trial is the most accurate one at the **largest budget** that has a complete trial
(lower-budget accuracies are not comparable).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autodl.errors import UserError
from autodl.runs import Deadline, create_run, load_split, read_run, result_envelope, save_split, study_counts, write_result
from autodl.runs.trials import TrialSettings
from autodl.searchers import make_searcher
from autodl.searchers.brackets import check_fidelity_flags
from autodl.space import Space
from autodl.study import Study, TrialState

MODELS = ("mlp", "cnn")


@dataclass
class NNSearchSpec(TrialSettings):
    """Everything needed to run (and resume) a PyTorch search; stored as ``run.json``."""

    dataset: str | None = "digits"  # a built-in set; None: the user's data, saved in RUN/data/
    model: str = "mlp"
    data: str | None = None  # what the user's data was read from (a path, "DataFrame", ...)
    target: str | None = None  # a table's label column
    space: str | None = None  # default: the built-in space named like the model
    searcher: str = "hyperband"
    min_budget: float = 1.0
    max_budget: float = 27.0
    eta: float = 3.0
    n_trials: int | None = None
    time_budget: float | None = None
    seed: int = 0
    val_size: float = 0.2
    test_size: float = 0.2
    patience: int | None = None
    # n_workers, executor, trial_timeout, objectives, ...: declared by TrialSettings

    def validate(self) -> None:
        if self.model not in MODELS:
            raise UserError(f"--model is {self.model!r}, but must be one of {', '.join(MODELS)}")
        check_fidelity_flags(self.min_budget, self.max_budget, self.eta)
        self.check_objectives()
        if self.multi_objective:
            check_multi_objective_searcher(self.searcher)
        if not self.dataset and not self.data:
            raise UserError("give a built-in --dataset or --data FILE (CSV, Parquet, .npz, or a folder of images)")
        if self.n_trials is None and self.time_budget is None:
            raise UserError("give --trials N, --time 10m, or both")
        if self.n_trials is not None and (not isinstance(self.n_trials, int) or self.n_trials < 1):
            raise UserError(f"trials is {self.n_trials}, but must be a positive integer")
        if self.patience is not None and self.patience < 1:
            raise UserError(f"patience is {self.patience}, but must be >= 1")
        self.check_executor()

    def searcher_params(self, space: Space) -> dict[str, Any]:
        """Budget arguments when the searcher is multi-fidelity, else none."""
        probe = make_searcher(self.searcher, space, seed=self.seed)
        if not probe.uses_budget:
            return {}
        return {"min_budget": float(self.min_budget), "max_budget": float(self.max_budget), "eta": float(self.eta)}


class NNObjective:
    """``objective(trial)``: train ``trial.config`` for ``trial.budget`` epochs, return the
    validation accuracy. Resumes from the config's checkpoint under ``trial.run_dir``.

    With a define-by-run searcher (``mode="prune"``) pass ``report_every_epoch=True``: every
    epoch is reported and ``trial.should_prune()`` may stop the trial. Otherwise nothing is
    written per epoch (the result and epoch counts are stored once, as user attributes).

    ``targets`` (:class:`~autodl.nn.objectives.NetObjectives`): the network is measured before
    it trains (parameters; ONNX latency and size, cached per config), and the trial returns (and
    reports per epoch) ``(accuracy, latency, ...)`` and gets the latency constraint.
    """

    def __init__(self, data, kind: str, *, seed: int = 0, max_epochs: int = 27, patience: int | None = None,
                 report_every_epoch: bool = False, checkpoints: bool = True, background_save: bool = False,
                 skip_dead_checkpoints: bool = True, targets=None):
        self.targets = targets
        self.data = data
        self.kind = kind
        self.seed = seed
        self.max_epochs = int(max_epochs)
        self.patience = patience
        self.report_every_epoch = report_every_epoch
        self.checkpoints = checkpoints
        #: write checkpoints from a background thread while the next trial trains. Off by
        #: default: on 2 cores the thread's hand-offs cost the training thread more than the
        #: write itself (``benchmarks/multifidelity.py --overhead-only``), and a synchronous
        #: write is on disk when the trial is recorded
        self.background_save = background_save
        #: skip the checkpoint of a trial the searcher can no longer continue (see
        #: :meth:`autodl.study.RunningTrial.worth_keeping`); results are the same either way
        self.skip_dead_checkpoints = skip_dead_checkpoints

    def __call__(self, trial) -> float:
        from autodl.errors import TrialPruned
        from autodl.nn.trainer import budget_to_epochs, train_config

        if trial.should_stop():  # the deadline came while the trial waited
            raise TrialPruned("stopped at the deadline before it began")
        epochs = budget_to_epochs(trial.budget, self.max_epochs)
        pruned = []
        measured: dict[str, float] = {}
        targets = self.targets if self.targets is not None and self.targets.active else None
        if targets is not None:  # before training: its graph, not its weights, decides these
            from autodl.nn.trainer import build_model

            net = build_model(trial.config, self.kind, self.data.n_features, self.data.n_classes,
                              self.data.image_shape, seed=self.seed)
            measured = targets.measure(net, trial.config)
            targets.record(trial, measured)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            value = metrics["val_accuracy"]
            trial.report(value if targets is None else targets.values(value, measured), epoch)
            if trial.should_prune():
                pruned.append(epoch)
                raise TrialPruned()

        root = trial.run_dir if self.checkpoints else None
        out = train_config(trial.config, self.data, self.kind, epochs, seed=self.seed, max_epochs=self.max_epochs,
                           checkpoint_root=root, patience=self.patience,
                           on_epoch=on_epoch if self.report_every_epoch else None,
                           background_save=self.background_save,
                           keep_checkpoint=trial.worth_keeping if self.skip_dead_checkpoints else None,
                           should_stop=trial.should_stop if getattr(trial, "stop_at", None) is not None else None)
        trial.set_user_attr("epochs", out.epochs)
        trial.set_user_attr("epochs_trained", out.epochs_trained)
        trial.set_user_attr("epochs_resumed", out.epochs_resumed)
        trial.set_user_attr("val_loss", out.val_loss)
        return out.val_accuracy if targets is None else targets.values(out.val_accuracy, measured)


def check_multi_objective_searcher(name: str) -> None:
    """A UserError unless the searcher ``name`` takes several objectives."""
    from autodl.searchers import SEARCHERS
    from autodl.searchers.base import multi_objective_names

    cls = SEARCHERS.get(str(name).lower())
    if cls is not None and not getattr(cls, "multi_objective", False) and cls.name != "auto":
        raise UserError(f"searcher '{name}' optimizes one objective; for several objectives use one of: "
                        f"{', '.join(multi_objective_names())} (moasha prunes)")


def net_targets(spec, data, run_dir, image_shape=None, kind: str | None = None):
    """The :class:`~autodl.nn.objectives.NetObjectives` of a run (None without objectives or a
    latency limit): timed on the validation rows, cached in ``RUN/latency.json``."""
    from autodl.nn.objectives import NetObjectives, cache_path, net_context

    if not (spec.multi_objective or spec.max_latency_ms is not None):
        return None
    shape = image_shape if image_shape is not None else getattr(data, "image_shape", None)
    n_classes = getattr(data, "n_classes", 0)
    return NetObjectives(list(spec.objectives or ["accuracy"]), spec.max_latency_ms, rows=data.X_val,
                         cache_path=cache_path(run_dir),
                         context=net_context(kind or getattr(spec, "model", "nas"), data.n_features,
                                             n_classes, shape, getattr(spec, "latency_fn", None)),
                         latency_fn=getattr(spec, "latency_fn", None))


def objective_names(spec, data) -> list[str]:
    """The names of a multi-objective run's values: the metric's, then the others."""
    return [metric_name(data), *(spec.objectives or [])[1:]]


def study_directions(spec) -> dict[str, Any]:
    """``direction=`` or ``directions=`` of a network run's study."""
    if spec.multi_objective:
        return {"directions": ["maximize"] + ["minimize"] * (len(spec.objectives) - 1)}
    return {"direction": "maximize"}


def _space_for(spec: NNSearchSpec) -> Space:
    """The search space of ``spec`` (its YAML file, or the built-in space of its model); a
    parameter the trainer does not read is a :class:`UserError` (it would be searched for
    nothing), unless other parameters are conditioned on it."""
    from autodl.nn.trainer import DEFAULTS

    space = Space.load(spec.space or spec.model)
    parents = {parent for name in space.names for parent in space.params[name].condition}
    unknown = [name for name in space.names if name not in DEFAULTS and name not in parents]
    if unknown:
        where = f"the space {spec.space}" if spec.space else f"the built-in {spec.model} space"
        raise UserError(f"{where} has parameters the {spec.model} trainer does not read: "
                        f"{', '.join(unknown)}; use {', '.join(sorted(DEFAULTS))}")
    return space


def best_trial(study: Study):
    """The most accurate complete trial at the largest budget with a complete trial
    (:attr:`Study.best_trial`); a :class:`UserError` naming the first failure if none completed.

    With several objectives, the member of the Pareto front (:attr:`Study.best_trials`) with the
    best metric (the first objective); with constraints (a latency limit), feasible trials only.
    """
    if not study.get_trials([TrialState.COMPLETE]):
        failed = study.get_trials([TrialState.FAILED])
        why = f"; first failure: {failed[0].message}" if failed else ""
        raise UserError(f"no trial completed, so there is no best model{why}")
    if study.n_objectives > 1:
        front = study.best_trials
        if not front:
            raise UserError("no complete trial meets the latency limit (max_latency_ms), so there is no "
                            "model to keep; raise the limit or search smaller networks")
        sign = 1.0 if study.directions[0] == "maximize" else -1.0
        return max(front, key=lambda t: (sign * t.values[0], -t.id))
    try:
        return study.best_trial
    except ValueError as exc:  # every complete trial violates the latency limit
        raise UserError(f"{exc}; raise the latency limit (max_latency_ms) or search smaller networks") from None


def start_nn_run(spec: NNSearchSpec, out: str | Path, netdata=None) -> Path:
    """Validate ``spec`` and create the run folder with ``run.json`` and ``split.npz`` (and, for
    the user's data, ``data/``: ``netdata`` as read by :func:`autodl.nn.userdata.read_net_data`,
    else read from ``spec.data``)."""
    from autodl.nn.data import load_dataset, raw_dataset, split_indices

    spec.validate()
    space = _space_for(spec)
    make_searcher(spec.searcher, space, seed=spec.seed, **spec.searcher_params(space))
    if spec.dataset:
        y = raw_dataset(spec.dataset)[1]
        split = split_indices(y, seed=spec.seed, val_size=spec.val_size, test_size=spec.test_size)
        load_dataset(spec.dataset, split=split)
        return create_run(out, "nn", asdict(spec), lambda run_dir: save_split(run_dir, **split))
    netdata = read_user_data(spec, netdata)
    check_model_fits(spec.model, netdata)
    split = split_indices(netdata.y, seed=spec.seed, val_size=spec.val_size, test_size=spec.test_size,
                          stratify=netdata.task != "regression")
    return create_run(out, "nn", asdict(spec), lambda run_dir: save_user_data(run_dir, netdata, split))


def read_user_data(spec, netdata=None):
    """``netdata``, or the data ``spec.data`` names read (:func:`autodl.nn.userdata.read_net_data`)."""
    from autodl.nn.userdata import read_net_data

    if netdata is None:
        if not spec.data:
            raise UserError("give a built-in --dataset or --data FILE (CSV, Parquet, .npz, or a folder of images)")
        netdata = read_net_data(spec.data, target=spec.target)
    return netdata


def save_user_data(run_dir: Path, netdata, split: dict) -> None:
    from autodl.nn.data import DATA_DIR
    from autodl.nn.userdata import save_net_data

    save_split(run_dir, **split)
    save_net_data(netdata, run_dir / DATA_DIR)


def check_model_fits(model: str, netdata) -> None:
    """One line when the network kind cannot take the data (a CNN needs images)."""
    if model == "cnn" and netdata.kind != "image":
        raise UserError(f"--model cnn needs images, but {netdata.source} is a {netdata.kind}; use --model mlp")


#: seconds the finish (restore the best checkpoint, score, save) is given at least under a deadline
FINISH_SECONDS = 1.5


def run_nn_search(spec: NNSearchSpec, run_dir: str | Path, *, resume: bool = False,
                  show_progress: bool = False, progress_mode: str = "bar",
                  deadline: Deadline | None = None) -> dict[str, Any]:
    """Run (or continue) the search in ``run_dir``; returns the ``result.json`` envelope.

    ``deadline`` (default: ``spec.time_budget`` from now) is when the whole call must end.
    """
    import torch

    from autodl.nn.data import run_data
    from autodl.runs.deadline import EXIT_MARGIN

    # small models train fastest on one thread (and leave the other cores to other workers);
    # OMP_NUM_THREADS overrides
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))
    run_dir = Path(run_dir)
    deadline = Deadline.after(spec.time_budget) if deadline is None else deadline
    space = _space_for(spec)
    data = run_data(spec.dataset, run_dir, load_split(run_dir), seed=spec.seed, val_size=spec.val_size,
                    test_size=spec.test_size)
    if resume:
        study = Study.load(run_dir)
    else:
        study = Study(space, searcher=spec.searcher, storage=run_dir / "study.db",
                      seed=spec.seed, searcher_params=spec.searcher_params(space), **study_directions(spec))
    objective = nn_objective(spec, data, run_dir, study)
    remaining = None if spec.n_trials is None else spec.n_trials - study.n_finished
    search_end = deadline.minus(FINISH_SECONDS + EXIT_MARGIN)
    left = search_end.remaining()
    searched = time.perf_counter()
    if (remaining is None or remaining > 0) and (left is None or left > 0):
        progress, callbacks = None, []
        if show_progress:
            from autodl.study.progress import StudyProgress

            progress = StudyProgress(study, n_trials=remaining, timeout=left, mode=progress_mode)
            callbacks.append(progress.update)
            progress.start()
        # with a deadline a trial still running then is stopped; the finish is about as long as
        # scoring one trial, so the reserve is a fraction of the best trial's time
        stop = {"stop_at_timeout": True, "reserve_ratio": 0.1} if left is not None else {}
        where = spec.executor_kwargs()
        if left is not None:
            where["executor"] = in_process_if_one(spec.executor, spec.n_workers, spec.trial_timeout,
                                                  spec.trial_memory)
        try:
            study.optimize(objective, n_trials=remaining, timeout=left, callbacks=callbacks,
                           total_trials=spec.n_trials, show_progress=False, **stop, **where)
        finally:
            if progress is not None:
                progress.stop()
    return finalize_nn(study, spec, data, run_dir, search_seconds=time.perf_counter() - searched)


def nn_objective(spec: NNSearchSpec, data, run_dir: Path, study: Study) -> NNObjective:
    """The objective of a run's trials (in the search and in ``autodl worker``)."""
    searcher = getattr(study.searcher, "chosen", study.searcher)
    prune = getattr(searcher, "mode", None) == "prune"
    return NNObjective(data, spec.model, seed=spec.seed, max_epochs=int(round(spec.max_budget)),
                       patience=spec.patience, report_every_epoch=prune,
                       targets=net_targets(spec, data, run_dir, kind=spec.model))


def in_process_if_one(executor: str | None, n_workers: int, trial_timeout: float | None = None,
                      trial_memory: float | None = None) -> str | None:
    """The executor of a torch search under a deadline: one worker trains in this process (the
    trainers check the deadline before every batch, so no worker process has to be started and
    killed), several in worker processes; an executor the user chose, or settings that need a
    worker process (a trial timeout or memory cap), are kept."""
    if executor is None and n_workers == 1 and trial_timeout is None and trial_memory is None:
        return "inline"
    return executor


def finalize_nn(study: Study, spec: NNSearchSpec, data, run_dir: Path, *,
                search_seconds: float | None = None) -> dict[str, Any]:
    """Score the best trial's model on the test split; write ``model.pt`` and ``result.json``."""
    from autodl.nn import checkpoint as ckpt

    ckpt.flush()
    best = best_trial(study)
    trainer = trial_trainer(spec, data, run_dir, best)
    test_acc = None
    if data.X_test is not None:
        test_acc = trainer.evaluate(data.X_test, data.y_test)[1]
    ckpt.save_weights(run_dir / "model.pt", trainer.model, {
        "config": best.config, "model": spec.model, "n_features": data.n_features,
        "n_classes": data.n_classes, "image_shape": data.image_shape, "epochs": trainer.epoch,
        "classes": data.classes,
        "format": "torch state dict of tensors; load with torch.load(path, weights_only=True)"})
    finished = [t for t in study.trials if t.state.finished]
    trained = sum(int(t.user_attrs.get("epochs_trained", 0)) for t in finished)
    resumed = sum(int(t.user_attrs.get("epochs_resumed", 0)) for t in finished)
    metric, direction, best_value, test_score = metric_name(data), "maximize", best.value, test_acc
    deployment = deployment_facts(spec, study, best)
    if study.n_objectives > 1:  # the kept network's other objectives are the trial's (same graph)
        metric, direction = objective_names(spec, data), list(study.directions)
        best_value, test_score = list(best.values), [test_acc, *best.values[1:]]
    envelope = result_envelope(
        "nn", metric=metric, direction=direction, best_value=best_value, best_config=best.config,
        best_trial=best.id, best_budget=best.budget, test_score=test_score, counts=study_counts(study),
        extra={"dataset": spec.dataset, "model": spec.model, "searcher": spec.searcher, "best_epochs": trainer.epoch,
               "epochs_trained": trained, "epochs_resumed": resumed, "epochs_from_scratch": trained + resumed,
               "n_trials": len(finished), "model_file": "model.pt", **deployment,
               **data_facts(data, search_seconds)})
    write_result(run_dir, envelope)
    return envelope


def trial_trainer(spec: NNSearchSpec, data, run_dir: Path, trial, say=None):
    """A trainer holding ``trial``'s network trained to the trial's budget: from its checkpoint
    (or one from a lower budget, then trained on: the same model, as training is seeded), else
    trained from scratch. ``say`` hears how it came about."""
    from autodl.nn import checkpoint as ckpt
    from autodl.nn.trainer import Trainer, budget_to_epochs

    max_epochs = int(round(spec.max_budget))
    epochs = budget_to_epochs(trial.budget, max_epochs)

    def fresh():
        return Trainer(trial.config, data, spec.model, seed=spec.seed, max_epochs=max_epochs, patience=spec.patience)

    trainer = fresh()
    try:
        trainer.restore(ckpt.checkpoint_dir(run_dir, trial.config), max_epoch=epochs)
    except ckpt.CheckpointError:
        trainer = fresh()
    if say is not None:
        done = f"restored from its checkpoint at epoch {trainer.epoch}" if trainer.epoch else "no checkpoint"
        more = f"; training {epochs - trainer.epoch} epochs" if trainer.epoch < epochs else ""
        say(f"autodl: trial {trial.id} ({epochs} epochs): {done}{more}")
    trainer.train_epochs(epochs - trainer.epoch)
    return trainer


def deployment_facts(spec, study: Study, best) -> dict[str, Any]:
    """What ``result.json`` says about the objectives besides the metric: the kept network's
    measurement, the latency limit, and the Pareto front (several objectives)."""
    from autodl.nn.objectives import ATTRS

    if not (getattr(spec, "multi_objective", False) or getattr(spec, "max_latency_ms", None) is not None):
        return {}
    out: dict[str, Any] = {
        "objectives": list(spec.objectives or []) or None, "max_latency_ms": spec.max_latency_ms,
        "deployment": {k: best.user_attrs[k] for k in (*ATTRS, "params") if k in best.user_attrs}}
    if study.n_objectives > 1:
        out["pareto_front"] = [{"trial": t.id, "values": list(t.values), "budget": t.budget}
                               for t in study.best_trials]
    return out


def metric_name(data) -> str:
    """What a network search maximizes: ``accuracy``, or ``r2`` for a regression table."""
    from autodl.nn.data import task_of

    return "r2" if task_of(data) == "regression" else "accuracy"


def data_facts(data, search_seconds: float | None) -> dict[str, Any]:
    """What ``result.json`` says about the data: where it came from, its shape, and the seconds
    spent reading and preparing it against the seconds spent searching (training)."""
    x = data.extra
    if not x:
        return {"search_seconds": None if search_seconds is None else round(search_seconds, 3)}
    return {"data": {"source": x.get("source"), "kind": x["kind"], "task": x.get("task", "classification"), "rows": len(data.y_train) + len(data.y_val)
                     + (0 if data.y_test is None else len(data.y_test)), "n_classes": data.n_classes,
                     "image_shape": list(data.image_shape) if data.image_shape else None,
                     "raw_dtype": x.get("raw_dtype"), "notes": x.get("notes", []),
                     "read_seconds": round(x.get("load_seconds", 0.0), 3),
                     "prepare_seconds": round(x.get("prepare_seconds", 0.0), 3)},
            "search_seconds": None if search_seconds is None else round(search_seconds, 3)}


def spec_from_dict(data: dict[str, Any]) -> NNSearchSpec:
    known = set(NNSearchSpec.__dataclass_fields__)
    return NNSearchSpec(**{k: v for k, v in data.items() if k in known})


def load_nn_spec(run_dir: str | Path) -> NNSearchSpec | None:
    """The spec of an nn run folder, or None when ``run_dir`` holds another kind of run."""
    try:
        kind, data = read_run(run_dir)
    except UserError:
        return None
    return spec_from_dict(data) if kind == "nn" else None


def resume_nn_run(run_dir: str | Path, *, n_trials: int | None = None, time_budget: float | None = None,
                  n_workers: int | None = None, show_progress: bool = False,
                  progress_mode: str = "bar", deadline: Deadline | None = None) -> dict[str, Any]:
    """Continue an nn run folder: finished trials and checkpoints are kept."""
    spec = load_nn_spec(run_dir)
    if spec is None:
        raise UserError(f"{run_dir} is not an autodl --model run folder")
    if n_trials is not None:
        spec.n_trials = n_trials
    if n_workers is not None:
        spec.n_workers = n_workers
    deadline = Deadline.after(time_budget) if deadline is None else deadline
    spec.time_budget = deadline.budget
    return run_nn_search(spec, run_dir, resume=True, show_progress=show_progress, progress_mode=progress_mode,
                         deadline=deadline)


__all__ = ["NNSearchSpec", "NNObjective", "nn_objective", "net_targets", "start_nn_run", "run_nn_search", "resume_nn_run", "finalize_nn",
           "best_trial", "load_nn_spec", "spec_from_dict", "MODELS"]
