"""The registry of run kinds: what ``search``, ``resume``, ``worker``, ``show``, ``report``,
``export`` and ``predict`` call for each kind of run folder.

A kind is one module that defines ``KIND``, an instance of a :class:`RunKind` subclass, and is
named in :data:`KINDS` (imported on first use, so ``import autodl`` loads no torch). Adding a
kind is one module and one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from autodl.runs.deadline import Deadline

#: kind name -> module defining ``KIND``
KINDS: dict[str, str] = {
    "tabular": "autodl.tabular.kind",  # scikit-learn pipelines (autodl.search)
    "nn": "autodl.nn.kind",            # PyTorch MLP / CNN hyperparameters (--model)
    "nas": "autodl.nas.kind",          # architectures: DARTS, evolution, random (--nas)
}


def data_name(spec) -> str:
    """A short name of a run's data for folder names and headlines: the built-in set, or the stem
    of the file or folder read (``data`` for data given in memory)."""
    if getattr(spec, "dataset", None):
        return spec.dataset
    source = getattr(spec, "data", None) or getattr(spec, "entityset", None)
    return Path(source).stem if source and source not in ("DataFrame", "array", "Dataset") else "data"


@dataclass
class Run:
    """A run folder opened for work: its kind, spec, folder, and the data the kind prepared
    (so validating a new run and running it load the data once)."""

    kind: "RunKind"
    spec: Any
    run_dir: Path
    state: Any = None


class RunKind:
    """What a kind of run does; subclasses fill in the methods.

    ``spec`` is the kind's own dataclass (stored as ``run.json`` after ``kind`` and ``format``);
    every method that runs a search takes a :class:`~autodl.runs.Deadline` and ends within it,
    finishing work (refit, final training) and writing the run folder included.
    """

    name: str = ""

    def variant(self, spec: Any) -> str:
        """The label the CLI's flag table uses for this spec (a kind may have several, e.g. DARTS
        and evolution within ``nas``)."""
        return self.name

    # -- specs
    def spec_from_dict(self, data: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def spec_from_args(self, args: Any) -> Any:
        """The spec of ``autodl search`` flags (already checked against the flag table)."""
        raise NotImplementedError

    def default_out(self, spec: Any) -> str:
        raise NotImplementedError

    def headline(self, spec: Any, run_dir: Path) -> str:
        """The line ``autodl search`` prints before it starts."""
        return f"autodl: {self.name} search -> {run_dir}"

    # -- running
    def start(self, spec: Any, out: str | Path) -> Run:
        """Validate ``spec`` and its data, then create the run folder (``run.json``, the split)."""
        raise NotImplementedError

    def open(self, spec: Any, run_dir: Path) -> Run:
        """An existing run folder, for ``resume`` and ``worker``."""
        return Run(self, spec, Path(run_dir))

    def run(self, run: Run, *, deadline: Deadline, progress: str = "quiet", resume: bool = False) -> dict[str, Any]:
        """Search (or continue) and finish; return the ``result.json`` envelope."""
        raise NotImplementedError

    def join(self, run: Run, *, deadline: Deadline, progress: str = "quiet") -> tuple[int, int, int | None]:
        """Run trials of a running search from another process (``autodl worker``):
        ``(trials run here, finished in the study, the run's total)``."""
        from autodl.errors import UserError

        raise UserError(f"{run.run_dir} is a {self.variant(run.spec)} run, which has no trials to share; "
                        "`autodl worker` joins tabular, --model and --nas evolution|random runs")

    def apply_overrides(self, spec: Any, *, n_trials: int | None = None, n_workers: int | None = None,
                        executor: Mapping[str, Any] | None = None) -> Any:
        """``resume``/``worker`` flags on a loaded spec."""
        if n_trials is not None:
            spec.n_trials = n_trials
        if n_workers is not None:
            spec.n_workers = n_workers
        for key, value in (executor or {}).items():
            setattr(spec, key, value)
        return spec

    # -- the model
    def load_model(self, run_dir: Path):
        """The run's network taking raw rows, with its held-out rows
        (:class:`autodl.export.runs.RunModel`; kinds whose model is a network)."""
        raise NotImplementedError

    def export(self, run_dir: Path, path: str | Path) -> tuple[Path, str]:
        """Write the run's model to ONNX (verified); ``(path, what it was verified on)``.
        By default the network of :meth:`load_model`."""
        from autodl.export.runs import export_run_model

        return export_run_model(self.load_model(run_dir), path)

    def export_trial(self, run_dir: Path, path: str | Path, trial_id: int, say=print) -> tuple[Path, str]:
        """Write trial ``trial_id``'s model (e.g. a Pareto front member) to ONNX, verified;
        ``say`` reports progress (refitting, retraining). Kinds that cannot rebuild a trial's
        model say so in one line."""
        from autodl.errors import UserError

        raise UserError(f"export --trial is not available for {self.variant_label()} runs; "
                        f"`autodl export {run_dir} --onnx FILE` exports the run's final model")

    def variant_label(self) -> str:
        return {"nn": "--model", "nas": "--nas"}.get(self.name, self.name)

    def describe(self, result: Mapping[str, Any], run_dir: Path) -> list[str]:
        """Lines the CLI prints for a finished run."""
        test = result.get("test_score")
        metric = result.get("metric")
        return [f"best {metric} {result['best_value']:.4f}"
                + (f", test {metric} {test:.4f}" if isinstance(test, (int, float)) else "")
                + (f" — trial {result['best_trial']}" if result.get("best_trial") is not None else ""),
                f"run folder: {run_dir}"]


def complete_trial(run_dir: str | Path, trial_id: int, path: str | Path):
    """Trial ``trial_id`` of a run folder, checked before anything is trained or written: it
    exists and completed, and ``path`` is an ``.onnx`` file in an existing folder (one line each)."""
    from autodl.errors import ExportError, UserError
    from autodl.study import Study, TrialState

    run_dir = Path(run_dir)
    if not (run_dir / "study.db").is_file():
        raise UserError(f"{run_dir} has no study.db, so no trials to export")
    trials = {t.id: t for t in Study.load(run_dir, searcher="random").trials}
    trial = trials.get(trial_id)
    if trial is None:
        ids = f"its trials are {min(trials)}..{max(trials)}" if trials else "it has no trials"
        raise UserError(f"{run_dir} has no trial {trial_id} ({ids}); `autodl show {run_dir}` lists them")
    if trial.state != TrialState.COMPLETE:
        why = f": {trial.message}" if trial.message else ""
        raise UserError(f"trial {trial_id} is {trial.state.value}{why}; only a complete trial can be exported")
    target = Path(path)
    if target.suffix.lower() != ".onnx":
        raise ExportError(f"{target}: the file name must end in .onnx")
    if not target.parent.is_dir():
        raise ExportError(f"{target.parent} does not exist; create the folder first")
    return trial


def trial_metadata(trial, metric) -> dict[str, Any]:
    """ONNX metadata naming the exported trial: its config, score(s) and metric(s)."""
    several = trial.values is not None and len(trial.values) > 1
    return {"config": dict(trial.config), "score": list(trial.values) if several else trial.value,
            "metric": metric, "trial_id": trial.id}


def get_kind(name: str) -> RunKind:
    """The registered :class:`RunKind` called ``name``."""
    from autodl.errors import UserError

    if name not in KINDS:
        raise UserError(f"unknown run kind '{name}'; known: {', '.join(KINDS)}")
    return importlib.import_module(KINDS[name]).KIND


def open_run(run_dir: str | Path) -> Run:
    """A run folder's :class:`Run` (old folders included; see :func:`autodl.runs.read_run`)."""
    from autodl.runs.folder import read_run

    name, data = read_run(run_dir)
    kind = get_kind(name)
    return kind.open(kind.spec_from_dict(data), Path(run_dir))


def join_study(study, objective, spec: Any, deadline: Deadline, progress: str = "quiet") -> tuple[int, int, int | None]:
    """Run ``objective`` on trials of a run's shared ``study`` from another process (``autodl
    worker``) until the run's total (``spec.n_trials``) is finished or running, or the
    ``deadline``: ``(trials run here, trials finished in the study, the total)``.

    The searcher is reseeded for this process, so it does not propose what the others do.
    """
    import os

    from autodl.errors import UserError

    if spec.n_trials is not None and study.n_finished >= spec.n_trials:
        return 0, study.n_finished, spec.n_trials
    if spec.n_trials is None and not deadline.is_set:
        raise UserError("the run has no trial total; give the worker a deadline with --time")
    study.diversify(os.getpid())
    ran: list[int] = []
    callbacks = [lambda s, t: ran.append(t.id)]
    bar = None
    if progress != "quiet":
        from autodl.study.progress import StudyProgress

        bar = StudyProgress(study, n_trials=spec.n_trials, timeout=deadline.remaining(), mode=progress)
        callbacks.append(bar.update)
        bar.start()
    stop = {"stop_at_timeout": True} if deadline.is_set else {}
    try:
        study.optimize(objective, timeout=deadline.remaining(), total_trials=spec.n_trials, callbacks=callbacks,
                       show_progress=False, **stop, **spec.executor_kwargs())
    finally:
        if bar is not None:
            bar.stop()
    return len(ran), study.n_finished, spec.n_trials
