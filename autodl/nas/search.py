"""NAS runs: ``autodl search --nas darts|evolution|random`` and :func:`search_architecture`.

One data split serves every method, so their numbers compare: ``test_size`` of the rows are held
out (stratified, seeded) for the final test accuracy; the rest is halved into a *train* split
and a *validation* split (DARTS: weight steps / architecture steps; evolution and random:
candidates train on the first and are scored on the second).

* ``darts``     -- :func:`autodl.nas.darts.run_darts` on the cell space (first or second order,
  optional collapse guard); ``--time`` stops the search early, after the epoch that crosses it.
* ``evolution`` -- regularized evolution over the flat decisions of a space (``cell``: the
  DARTS cell space of :mod:`autodl.nas.cell_space`, the same architectures DARTS derives;
  ``mlp``: :func:`autodl.nas.spaces.mlp_space`), through a :class:`~autodl.Study` with
  ``study.db`` in the run folder, so it runs on the study's executors (``n_workers``) and
  ``autodl resume`` continues it. With ``min_epochs`` early candidates train briefly and only
  the best are trained further (successive halving over epochs, regularized evolution
  proposing the new candidates).
* ``random``    -- the same with uniformly random architectures (the baseline).

Each method ends the same way: the best architecture is trained from scratch on train +
validation for ``train_epochs`` (SGD, momentum 0.9, cosine schedule) and scored on the test split.
``--time`` is a deadline for the whole call (:mod:`autodl.runs.deadline`): the search leaves time
for the final training, which is shortened to the epochs that still fit (``result.json`` says
how many ran).

The run folder holds ``run.json`` (the spec), ``split.npz`` (the row indices of the split),
``genotype.json`` (cell space) or
``architecture.json`` (mlp space), ``model.pt`` (weights only; :func:`load_nas_model`),
``curves.json`` (search curve and the final training's loss per epoch), ``result.json`` (test
accuracy, parameters, search cost) and ``alphas.json`` (DARTS) or ``study.db`` (evolution and
random).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from autodl.errors import UserError
from autodl.nn.data import NN_DATASETS
from autodl.nn.search import data_facts, metric_name
from autodl.runs import Deadline, create_run, load_split, read_result, read_run, result_envelope, save_split, study_counts, write_json, write_result
from autodl.runs.trials import TrialSettings

NAS_METHODS = ("darts", "evolution", "random")
NAS_SPACES = ("cell", "mlp", "rnn")
GUARD_CHOICES = ("none", "pf-stop", "darts-")


@dataclass
class NasSpec(TrialSettings):
    """Everything needed to run (and resume) an architecture search; stored as ``run.json``."""

    dataset: str | None = "digits"  # a built-in set; None: the user's data, saved in RUN/data/
    method: str = "darts"
    data: str | None = None  # what the user's data was read from (a path, "DataFrame", ...)
    target: str | None = None  # a table's label column
    shape: list | None = None  # the user's images [C, H, W] or sequences [T, F] (filled when the run starts)
    space: str = "cell"
    n_trials: int | None = None
    time_budget: float | None = None
    seed: int = 0
    test_size: float = 0.2
    # network size (cell space)
    C: int = 8
    layers: int = 3
    nodes: int = 2
    # DARTS
    epochs: int = 20
    order: int = 1
    guard: str = "pf-stop"
    arch_lr: float = 0.02
    # evolution / random
    candidate_epochs: int = 10
    min_epochs: int | None = None
    population: int = 10
    sample_size: int = 3
    # the final network
    train_epochs: int = 20
    max_rows: int | None = None
    # where candidates train and what they measure (evolution / random; several objectives and a
    # latency limit are not for DARTS): declared by TrialSettings

    def validate(self) -> None:
        self.check_objectives()
        if self.method == "darts" and (self.multi_objective or self.max_latency_ms is not None):
            raise UserError("--nas darts optimizes one supernet by gradient; several objectives and a latency "
                            "limit work with --nas evolution or random")
        if self.method not in NAS_METHODS:
            raise UserError(f"--nas is {self.method!r}, but must be one of {', '.join(NAS_METHODS)}")
        if self.space not in NAS_SPACES:
            raise UserError(f"--nas-space is {self.space!r}, but must be one of {', '.join(NAS_SPACES)}")
        if self.dataset is None and not self.data:
            raise UserError("give a built-in --dataset or --data FILE (CSV, Parquet, .npz, or a folder of images)")
        if self.dataset is not None and self.dataset not in NN_DATASETS:
            raise UserError(f"dataset {self.dataset!r} cannot be used with --nas; choose one of: "
                            f"{', '.join(NN_DATASETS)}")
        if self.method == "darts" and self.space != "cell":
            raise UserError("--nas darts searches the cell space; use --nas-space cell (or evolution/random "
                            "for the mlp space)")
        if self.space == "rnn" and self.dataset is not None:
            raise UserError(f"the rnn space needs sequences (--data an .npz of N x T x F); {self.dataset} has none")
        if self.space == "cell" and self.dataset is not None and NN_DATASETS[self.dataset] is None:
            raise UserError(f"the cell space needs images; {self.dataset} is tabular: use --nas-space mlp")
        if self.guard not in GUARD_CHOICES:
            raise UserError(f"--guard is {self.guard!r}, but must be one of {', '.join(GUARD_CHOICES)}")
        if self.order not in (1, 2):
            raise UserError(f"--order is {self.order!r}, but must be 1 or 2")
        if self.method != "darts" and self.n_trials is None and self.time_budget is None:
            raise UserError("give --trials N, --time 10m, or both")
        for name in ("n_trials", "epochs", "candidate_epochs", "train_epochs", "C", "layers", "nodes",
                     "min_epochs", "max_rows"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise UserError(f"{name} is {v!r}, but must be a positive integer")
        if self.min_epochs is not None and self.min_epochs >= self.candidate_epochs:
            raise UserError(f"--min-budget {self.min_epochs} must be below the candidates' "
                            f"--max-budget {self.candidate_epochs}")
        if not 0 <= self.test_size < 1:
            raise UserError(f"--test-size is {self.test_size}, but must be in [0, 1)")
        if self.method != "darts":
            self.check_executor()

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        if self.dataset is None:
            return tuple(self.shape) if self.shape and len(self.shape) == 3 else None
        return NN_DATASETS[self.dataset]

    def searcher_name(self) -> str:
        return "random" if self.method == "random" else "evolution"


# ----------------------------------------------------------------------------------- data


def make_split(spec: NasSpec) -> dict[str, np.ndarray]:
    """Row indices of the split every method uses: ``test_size`` held out, the rest halved into
    train and validation (stratified, seeded; ``max_rows``: a seeded subset first)."""
    from autodl.nn.data import raw_dataset, split_indices

    y = raw_dataset(spec.dataset)[1]
    rows = None
    if spec.max_rows is not None and spec.max_rows < len(y):
        rows = np.random.default_rng(spec.seed).permutation(len(y))[:spec.max_rows]
    return split_indices(y, seed=spec.seed, val_size=0.5, test_size=spec.test_size, rows=rows)


def load_nas_data(spec: NasSpec, split: dict[str, np.ndarray] | None = None, run_dir: str | Path | None = None):
    """The split data (:class:`autodl.nn.data.ArrayData`; ``split``: saved row indices; the
    user's data is read from ``run_dir``)."""
    from autodl.nn.data import load_dataset, run_data

    if spec.dataset is None:
        data = run_data(None, run_dir, split)
    else:
        data = load_dataset(spec.dataset, split=split if split is not None else make_split(spec))
    if data.X_test is None:  # no test rows: empty arrays, as the methods expect
        data.X_test = np.zeros((0, data.n_features), np.float32)
        data.y_test = np.zeros(0, np.int64)
    return data


def space_factory(spec: NasSpec, n_features: int, n_classes: int) -> Callable:
    """The model-space factory of ``spec`` (built where it is used, so nothing unpicklable travels)."""
    if spec.space == "cell":
        from autodl.nas.cell_space import cell_space

        return cell_space(n_classes, C=spec.C, layers=spec.layers, nodes=spec.nodes,
                          image_shape=spec.image_shape)
    if spec.space == "rnn":
        from torch import nn

        from autodl.nas.spaces import rnn_space

        steps, width = spec.shape
        encoder = rnn_space(width, n_classes)

        def sequences() -> nn.Module:  # the rows arrive flat: [batch, T * F] -> [batch, T, F]
            return nn.Sequential(AsSequences(steps, width), encoder())
        return sequences
    from autodl.nas.spaces import mlp_space

    return mlp_space(n_features, n_classes)


def _as_sequences_class():  # built lazily: importing this module loads no torch
    from torch import nn

    class AsSequences(nn.Module):
        """Flat rows ``[batch, T * F]`` as sequences ``[batch, T, F]``; ``reshape(-1, T, F)`` keeps
        the batch axis dynamic when exported (``nn.Unflatten`` traces it as a constant, and the
        RNN's initial state then takes the batch size of the export sample)."""

        def __init__(self, steps: int, width: int):
            super().__init__()
            self.steps, self.width = int(steps), int(width)

        def forward(self, x):
            return x.reshape(-1, self.steps, self.width)

    return AsSequences


def AsSequences(steps: int, width: int):
    return _as_sequences_class()(steps, width)


# ------------------------------------------------------------------------------- the run


def start_nas_run(spec: NasSpec, out: str | Path, netdata=None) -> Path:
    """Validate ``spec`` and create the run folder with ``run.json`` and ``split.npz`` (and, for
    the user's data, ``data/``: ``netdata``, else what ``spec.data`` names, read once)."""
    spec.validate()
    if spec.dataset is not None:
        split = make_split(spec)
        return create_run(out, "nas", asdict(spec), lambda run_dir: save_split(run_dir, **split))
    from autodl.nn.data import split_indices
    from autodl.nn.search import read_user_data, save_user_data

    netdata = read_user_data(spec, netdata)
    if spec.space == "cell" and netdata.kind != "image":
        raise UserError(f"--nas {spec.method} searches cells of convolutions, which need images, but "
                        f"{netdata.source} is a {netdata.kind}: use --nas evolution --nas-space mlp")
    if spec.space == "rnn" and netdata.kind != "sequence":
        raise UserError(f"the rnn space needs sequences (an .npz of N x T x F), but {netdata.source} is a "
                        f"{netdata.kind}: use --nas-space {'cell' if netdata.kind == 'image' else 'mlp'}")
    if netdata.kind != "table":
        spec.shape = [int(s) for s in netdata.X.shape[1:]]
    rows = None
    if spec.max_rows is not None and spec.max_rows < len(netdata.y):
        rows = np.random.default_rng(spec.seed).permutation(len(netdata.y))[:spec.max_rows]
    split = split_indices(netdata.y, seed=spec.seed, val_size=0.5, test_size=spec.test_size, rows=rows,
                          stratify=netdata.task != "regression")
    if netdata.task == "regression" and spec.method == "darts":
        raise UserError("--nas darts searches image classifiers; for a regression table use --nas evolution "
                        "--nas-space mlp or --model mlp")
    return create_run(out, "nas", asdict(spec), lambda run_dir: save_user_data(run_dir, netdata, split))


def spec_from_dict(data: dict[str, Any]) -> NasSpec:
    return NasSpec(**{k: v for k, v in data.items() if k in NasSpec.__dataclass_fields__})


def load_nas_spec(run_dir: str | Path) -> NasSpec | None:
    """The spec of a NAS run folder, or None when ``run_dir`` holds another kind of run."""
    try:
        kind, data = read_run(run_dir)
    except UserError:
        return None
    return spec_from_dict(data) if kind == "nas" else None


def run_nas(spec: NasSpec, run_dir: str | Path, *, resume: bool = False, progress: str = "bar",
            n_trials: int | None = None, time_budget: float | None = None,
            deadline: Deadline | None = None) -> dict[str, Any]:
    """Run (or, for evolution/random, continue) the search in ``run_dir``; returns the
    ``result.json`` envelope. ``deadline`` (default ``time_budget`` or ``spec.time_budget`` from
    now) is when the whole call, final training included, must end."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))
    run_dir = Path(run_dir)
    if deadline is None:
        deadline = Deadline.after(time_budget if time_budget is not None else spec.time_budget)
    data = load_nas_data(spec, load_split(run_dir), run_dir)
    if spec.method == "darts":
        return _run_darts(spec, data, run_dir, progress, deadline, resume)
    return _run_sampled(spec, data, run_dir, progress, resume, n_trials, deadline)


def _emit(progress: str, text: str, record: dict[str, Any]) -> None:
    if progress == "jsonl":
        print(json.dumps(record, default=str), flush=True)
    elif progress != "quiet":
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _run_darts(spec: NasSpec, data, run_dir: Path, progress: str, deadline: Deadline,
               resume: bool = False) -> dict[str, Any]:
    """DARTS in ``run_dir``; the search state is saved after every epoch (``darts_state/``), so
    ``resume`` goes on with the epochs a deadline or Ctrl-C cut off, then trains the final
    network again (a finished search only retrains a final network the deadline had shortened)."""
    from autodl.nas.darts import STATE_DIR, load_search_state, run_darts

    if resume:
        state = load_search_state(run_dir / STATE_DIR)["meta"]
        trained = read_result(run_dir)["extra"]["settings"].get("train_epochs_run") if (
            run_dir / "result.json").is_file() else None
        if state["done"] and trained is not None and trained >= spec.train_epochs:
            ended = state["stopped_by"] or f"all {spec.epochs} epochs"
            raise UserError(f"{run_dir} is finished: the DARTS search ended ({ended}) and the final network "
                            f"trained all {spec.train_epochs} epochs; nothing to resume (start a new run with "
                            "more --epochs)")
        _emit(progress, f"  resuming after search epoch {state['epochs_run']}/{spec.epochs}"
                        + (" (search done: training the final network again)" if state["done"] else ""),
              {"resumed_after_epoch": state["epochs_run"], "search_done": state["done"]})

    def on_epoch(epoch: int, info: dict[str, Any]) -> None:
        _emit(progress, f"  epoch {epoch}/{spec.epochs}: supernet val accuracy {info['val_accuracy']:.4f}, "
                        f"parameter-free share {info['parameter_free_share']:.2f}, {info['seconds']:.0f}s",
              {"epoch": epoch, **info})

    splits = (data.X_train, data.y_train, data.X_val, data.y_val, data.X_test, data.y_test)
    X = np.concatenate([data.X_train, data.X_val, data.X_test])
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    result = run_darts(X, y, image_shape=spec.image_shape, C=spec.C, layers=spec.layers, nodes=spec.nodes,
                       epochs=spec.epochs, order=spec.order, guard=None if spec.guard == "none" else spec.guard,
                       arch_lr=spec.arch_lr, train_epochs=spec.train_epochs, seed=spec.seed,
                       deadline=deadline.minus(_FINISH_SECONDS), on_epoch=on_epoch, splits=splits,
                       state_dir=run_dir / STATE_DIR, resume=resume)
    curves = {"search": {"metric": "supernet validation accuracy", "x": "epoch",
                         "values": result.val_history},
              "final_training": {"metric": "training loss", "x": "epoch", "values": result.train_losses}}
    write_json(run_dir / "alphas.json", result.alphas)
    return _finish(spec, run_dir, data, result.model, result.test_accuracy, result.genotype, curves, {
        "search_seconds": round(result.search_seconds, 3),
        "search_cpu_seconds": result.settings["search_cpu_seconds"],
        "train_seconds": round(result.train_seconds, 3), "search_epochs": result.settings["epochs_run"],
        "stopped_by": result.settings.get("stopped_by"),
        "parameter_free_share": result.parameter_free_share,
        "supernet_val_accuracy": result.val_history[-1] if result.val_history else None,
        "settings": result.settings}, best_value=result.val_history[-1] if result.val_history else None,
        best_config={"genotype": result.genotype})


#: seconds kept after the final training for scoring and writing the run folder
_FINISH_SECONDS = 1.0


def _run_sampled(spec: NasSpec, data, run_dir: Path, progress: str, resume: bool,
                 n_trials: int | None, deadline: Deadline) -> dict[str, Any]:
    from autodl.nas.evolution import evolutionary_nas, make_study
    from autodl.nas.genotypes import parameter_free_share
    from autodl.study import Study, TrialState

    factory = space_factory(spec, data.n_features, data.n_classes)
    targets = nas_targets(spec, data, run_dir)
    if resume:
        study = Study.load(run_dir)
    else:
        study = make_study(factory, searcher=spec.searcher_name(), population=spec.population,
                           sample_size=spec.sample_size, epochs=spec.candidate_epochs,
                           min_epochs=spec.min_epochs, seed=spec.seed, storage=run_dir / "study.db",
                           n_objectives=len(spec.objectives) if spec.multi_objective else 1)
    total = n_trials if n_trials is not None else spec.n_trials
    remaining = None if total is None else max(total - study.n_finished, 0)
    callbacks = []
    if progress != "quiet":
        best: list[float] = []  # the best value shown so far (this invocation)

        def show(st, t) -> None:
            if t.state == TrialState.COMPLETE and t.value is not None:
                best[:] = [max(best + [t.value])]
            _emit(progress, f"  trial {t.id}: {t.state.name.lower()}"
                            + (f", val accuracy {t.value:.4f}" if t.value is not None else "")
                            + (f" at {t.budget:g} epochs" if t.budget is not None else "")
                            + (f" (best {best[0]:.4f})" if best else ""),
                  {"trial": t.id, "state": t.state.value, "value": t.value, "budget": t.budget,
                   "best": best[0] if best else None})
        callbacks.append(show)
    res = evolutionary_nas(factory, data, n_trials=remaining, deadline=deadline.minus(_FINISH_SECONDS),
                           epochs=spec.candidate_epochs, train_epochs=spec.train_epochs, seed=spec.seed,
                           study=study, callbacks=callbacks, targets=targets, **spec.executor_kwargs())
    history, best_so_far = [], None
    for h in res.history:
        if h["state"] == TrialState.COMPLETE.value and h["val_accuracy"] is not None:
            best_so_far = h["val_accuracy"] if best_so_far is None else max(best_so_far, h["val_accuracy"])
        history.append(best_so_far)
    curves = {"search": {"metric": "best validation accuracy so far", "x": "trial", "values": history},
              "final_training": {"metric": "training loss", "x": "epoch", "values": res.train_losses}}
    genotype = None
    if spec.space == "cell":
        from autodl.nas.cell_space import sample_to_genotype

        genotype = sample_to_genotype(res.best_config, spec.nodes)
    from autodl.nn.search import best_trial, deployment_facts

    best = best_trial(study)
    several = {}
    if study.n_objectives > 1:  # the kept network's other objectives are its trial's (same graph)
        several = {"metric": [metric_name(data), *spec.objectives[1:]], "direction": list(study.directions),
                   "best_value": list(best.values), "test_score": [res.test_accuracy, *best.values[1:]]}
    return _finish(spec, run_dir, data, res.model, res.test_accuracy, genotype, curves, {
        **deployment_facts(spec, study, best),
        "search_seconds": round(res.seconds, 3), "search_cpu_seconds": round(res.cpu_seconds, 3),
        "train_seconds": round(res.train_seconds, 3),
        "epochs_trained": int(sum(int(h["epochs"] or 0) for h in res.history)),
        "n_trials": len(res.history),
        "parameter_free_share": None if genotype is None else parameter_free_share(genotype)},
        best_value=res.best_val_accuracy, best_config=res.best_config, best_trial=best.id,
        best_budget=best.budget, counts=study_counts(study), several=several)


def nas_targets(spec: NasSpec, data, run_dir: Path):
    """What the candidates of an evolution/random search measure (None: nothing)."""
    from autodl.nn.search import net_targets

    return net_targets(spec, data, run_dir, image_shape=spec.image_shape, kind=f"nas-{spec.space}")


def _finish(spec: NasSpec, run_dir: Path, data, model, test_acc, genotype, curves, extra: dict[str, Any], *,
            best_value, best_config, best_trial=None, best_budget=None, counts=None,
            several: dict[str, Any] | None = None) -> dict[str, Any]:
    from autodl.nn.checkpoint import save_weights

    n_params = int(sum(p.numel() for p in model.parameters()))
    if genotype is not None:
        write_json(run_dir / "genotype.json", genotype)
    else:
        write_json(run_dir / "architecture.json", best_config)
    write_json(run_dir / "curves.json", curves)
    settings = dict(extra.pop("settings", {}) or {})
    settings.update({"train_C": spec.C, "layers": spec.layers, "nodes": spec.nodes,
                     "image_shape": list(spec.image_shape) if spec.image_shape else None,
                     "n_features": data.n_features, "n_outputs": data.n_classes, "space": spec.space, "seed": spec.seed,
                     "train_epochs": spec.train_epochs, "train_epochs_run": len(curves["final_training"]["values"])})
    save_weights(run_dir / "model.pt", model, {"method": spec.method, "space": spec.space, "settings": settings})
    goal = {"metric": metric_name(data), "direction": "maximize", "best_value": best_value,
            "test_score": test_acc, **(several or {})}
    envelope = result_envelope(
        "nas", **goal, best_config=best_config,
        best_trial=best_trial, best_budget=best_budget, counts=counts,  # DARTS: no trials
        extra={"method": spec.method, "space": spec.space, "dataset": spec.dataset, "n_params": n_params,
               "genotype": genotype, "classes": data.classes, "n_train": len(data.X_train),
               "n_val": len(data.X_val), "n_test": len(data.X_test), **extra, "settings": settings,
               **data_facts(data, extra.get("search_seconds")),
               "model_file": "model.pt"})
    write_result(run_dir, envelope)
    return envelope


def load_nas_model(run_dir: str | Path):
    """The final network of a NAS run folder (weights loaded with ``weights_only=True``)."""
    import torch

    from autodl.nas.choices import freeze


    run_dir = Path(run_dir)
    spec = load_nas_spec(run_dir)
    info = read_result(run_dir)["extra"]
    if spec is None or spec.space == "cell":
        from autodl.nas.darts import load_model

        return load_model(run_dir)
    factory = space_factory(spec, info["settings"]["n_features"],
                            info["settings"].get("n_outputs") or len(info["classes"]))
    model = freeze(factory, json.loads((run_dir / "architecture.json").read_text()))
    model.load_state_dict(torch.load(run_dir / "model.pt", weights_only=True, map_location="cpu"))
    return model.eval()


def search_architecture(X=None, y=None, *, dataset: str | None = "digits", method: str = "darts",
                        out: str | Path | None = None, progress: str = "quiet", **settings) -> dict[str, Any]:
    """Python equivalent of ``autodl search --dataset digits --nas METHOD``: run the search in
    ``out`` (default ``runs/nas-<method>-<time>``) and return ``result.json`` as a dict; the
    model is :func:`load_nas_model` ``(out)``.

    Args:
        dataset: a built-in data set (digits, iris, wine, breast_cancer).
        method: ``"darts"``, ``"evolution"`` or ``"random"``.
        settings: any :class:`NasSpec` field (``n_trials``, ``time_budget``, ``epochs``, ``guard``,
            ``space``, ``train_epochs``, ...).
    """
    if X is not None or y is not None:
        raise UserError("search_architecture runs on built-in data sets for now; pass dataset=...")
    unknown = set(settings) - set(NasSpec.__dataclass_fields__)
    if unknown:
        raise UserError(f"unknown NAS settings {sorted(unknown)}; see autodl.nas.search.NasSpec")
    spec = NasSpec(dataset=dataset, method=method, **settings)
    deadline = Deadline.after(spec.time_budget)  # the whole call, final training included
    out = out or Path("runs") / f"nas-{method}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = start_nas_run(spec, out)
    return run_nas(spec, run_dir, progress=progress, deadline=deadline)
