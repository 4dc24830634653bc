"""The ``nn`` run kind: hyperparameters of a PyTorch MLP or CNN (``autodl search --model mlp|cnn``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from autodl.errors import ExportError, UserError
from autodl.runs import Deadline, Run, RunKind
from autodl.runs.registry import data_name, join_study


class NNKind(RunKind):
    name = "nn"

    def spec_from_dict(self, data: Mapping[str, Any]):
        from autodl.nn.search import spec_from_dict

        return spec_from_dict(dict(data))

    def spec_from_args(self, args):
        from autodl.nn.search import NNSearchSpec

        if getattr(args, "entityset", None):
            raise UserError("--model takes --dataset or --data (a table, an .npz or a folder of images), not --entityset")
        from autodl.nn.objectives import check_objectives

        space = args.space
        if space is not None and Path(space).suffix in (".yaml", ".yml", ".json"):
            space = str(Path(space).resolve())
        objectives = check_objectives(getattr(args, "objectives", None))
        several = objectives is not None and len(objectives) > 1
        spec = NNSearchSpec(
            dataset=args.dataset, data=str(Path(args.data).resolve()) if args.data else None, target=args.target,
            model=args.model, space=space, searcher=args.searcher or ("moasha" if several else "hyperband"),
            objectives=objectives, max_latency_ms=getattr(args, "max_latency_ms", None),
            latency_fn=getattr(args, "latency_fn", None),
            min_budget=1 if args.min_budget is None else args.min_budget,
            max_budget=27 if args.max_budget is None else args.max_budget,
            eta=3 if args.eta is None else args.eta, n_trials=args.trials, time_budget=args.time,
            seed=args.seed, test_size=0.2 if args.test_size is None else args.test_size, n_workers=args.workers or 1,
            executor=args.executor, dask_scheduler=args.dask_scheduler, trial_timeout=args.trial_timeout,
            trial_memory=args.trial_memory)
        spec.validate()
        return spec

    def default_out(self, spec) -> str:
        return str(Path("runs") / f"{data_name(spec)}-{spec.model}-{time.strftime('%Y%m%d-%H%M%S')}")

    def headline(self, spec, run_dir: Path) -> str:
        budget = f", time budget {spec.time_budget:g}s" if spec.time_budget else ""
        if spec.multi_objective:
            budget += f", objectives {', '.join(spec.objectives)}"
        if spec.max_latency_ms is not None:
            budget += f", latency <= {spec.max_latency_ms:g} ms"
        return (f"autodl: {data_name(spec)} ({spec.model}, val accuracy), searcher {spec.searcher}, budgets "
                f"{spec.min_budget:g}..{spec.max_budget:g} epochs, eta {spec.eta:g}{budget} -> {run_dir}")

    def start(self, spec, out) -> Run:
        from autodl.nn.search import start_nn_run

        return Run(self, spec, start_nn_run(spec, out))

    def run(self, run: Run, *, deadline: Deadline, progress: str = "quiet", resume: bool = False) -> dict[str, Any]:
        from autodl.nn.search import run_nn_search

        run.spec.time_budget = deadline.budget
        return run_nn_search(run.spec, run.run_dir, resume=resume, show_progress=progress != "quiet",
                             progress_mode=progress, deadline=deadline)

    def join(self, run: Run, *, deadline: Deadline, progress: str = "quiet"):
        from autodl.nn.data import run_data
        from autodl.nn.search import nn_objective
        from autodl.runs import load_split
        from autodl.study import Study

        spec = run.spec
        _one_torch_thread()
        data = run_data(spec.dataset, run.run_dir, load_split(run.run_dir), seed=spec.seed,
                        val_size=spec.val_size, test_size=spec.test_size)
        study = Study.load(run.run_dir)
        return join_study(study, nn_objective(spec, data, run.run_dir, study), spec, deadline, progress)

    def load_model(self, run_dir: Path):
        """``(RunModel)`` of the best network, taking raw rows."""
        from autodl.nn.checkpoint import load_weights
        from autodl.nn.search import load_nn_spec
        from autodl.nn.trainer import build_model
        from autodl.runs import read_json, read_result

        spec = load_nn_spec(run_dir)
        result = read_result(run_dir)
        if not (run_dir / "model.json").is_file():
            raise UserError(f"{run_dir} has no model.json; finish the run with `autodl resume {run_dir}`")
        info = read_json(run_dir / "model.json")
        image_shape = tuple(info["image_shape"]) if info.get("image_shape") else None
        net = build_model(info["config"], info["model"], int(info["n_features"]), int(info["n_classes"]),
                          image_shape, seed=spec.seed)
        try:
            net.load_state_dict(load_weights(run_dir / "model.pt"))
        except (RuntimeError, KeyError) as exc:
            raise ExportError(f"{run_dir}/model.pt does not fit the model in model.json: "
                              f"{str(exc).splitlines()[0]}") from None
        from autodl.nn.objectives import metric_meta

        meta = {"config": result.get("best_config"), **metric_meta(result),
                "trial_id": result.get("best_trial"), "run_kind": "nn", "architecture": info["model"]}
        return _raw_rows_model(net, run_dir, spec, _split(run_dir, spec), result, meta)

    def export_trial(self, run_dir: Path, path, trial_id: int, say=print) -> tuple[Path, str]:
        """Trial ``trial_id``'s network (e.g. a Pareto front member) at the trial's budget: from its
        checkpoint when the run kept one, else trained again with the trial's seed and epochs;
        exported and verified on the held-out rows (its test accuracy is measured there)."""
        from autodl.export.runs import export_run_model
        from autodl.nn.data import run_data
        from autodl.nn.objectives import trial_meta
        from autodl.nn.search import load_nn_spec, trial_trainer
        from autodl.runs import read_result
        from autodl.runs.registry import complete_trial

        run_dir = Path(run_dir)
        trial = complete_trial(run_dir, trial_id, path)
        spec = load_nn_spec(run_dir)
        result = read_result(run_dir)
        _one_torch_thread()
        split = _split(run_dir, spec)
        data = run_data(spec.dataset, run_dir, split, seed=spec.seed, val_size=spec.val_size,
                        test_size=spec.test_size)
        trainer = trial_trainer(spec, data, run_dir, trial, say=say)
        meta = {**trial_meta(result, trial), "run_kind": "nn", "architecture": spec.model, "epochs": trainer.epoch}
        return export_run_model(_raw_rows_model(trainer.model.cpu(), run_dir, spec, split, {}, meta), path)

    def describe(self, result: Mapping[str, Any], run_dir: Path) -> list[str]:
        x = result["extra"]
        test = result.get("test_score")
        metric = result.get("metric") or "accuracy"
        if isinstance(metric, list):  # several objectives: the kept front member
            return describe_objectives(result, run_dir)
        return [f"best val {metric} {result['best_value']:.4f}"
                + (f", test {metric} {test:.4f}" if test is not None else "")
                + f" — trial {result['best_trial']} at {x.get('best_epochs')} epochs",
                f"epochs trained {x.get('epochs_trained')}, saved by checkpoints {x.get('epochs_resumed')}; "
                f"{x.get('n_trials')} trials ({result['n_pruned']} pruned, {result['n_failed']} failed)",
                f"run folder: {run_dir}  (result.json, model.pt, study.db, checkpoints/)"]


def describe_objectives(result: Mapping[str, Any], run_dir: Path) -> list[str]:
    """The lines of a multi-objective network run: the kept member of the Pareto front."""
    x = result.get("extra", {})
    names, best, test = result["metric"], result["best_value"], result.get("test_score")
    shown = ", ".join(f"{n} {v:.4g}" for n, v in zip(names, best))
    lines = [f"kept the front member with the best {names[0]}: trial {result['best_trial']} ({shown}; "
             f"test {names[0]} {test[0]:.4f})" if isinstance(test, list) and test and test[0] is not None
             else f"kept trial {result['best_trial']} ({shown})",
             f"Pareto front: {_trials(len(x.get('pareto_front') or []))}; {_trials(x.get('n_trials'))} "
             f"({result['n_pruned']} pruned, {result['n_failed']} failed), epochs trained {x.get('epochs_trained')}",
             f"export any front member: autodl export {run_dir} --trial N --onnx FILE",
             f"run folder: {run_dir}  (result.json, model.pt, study.db, latency.json)"]
    return lines


def _trials(n) -> str:
    return f"{n} trial{'s' * (n != 1)}"


def _split(run_dir: Path, spec):
    """The run's saved split (a format-1 folder: the split its version made from the seed)."""
    from autodl.runs import load_split

    split = load_split(run_dir)
    if split is None:
        from autodl.nn.data import raw_dataset, split_indices

        split = split_indices(raw_dataset(spec.dataset)[1], seed=spec.seed, val_size=spec.val_size,
                              test_size=spec.test_size)
    return split


def _raw_rows_model(net, run_dir: Path, spec, split, result, meta):
    """``net`` taking the raw rows of the run's data (a built-in set or the user's), with its
    held-out rows; a recorded ``test_score`` in ``result`` is confirmed on them."""
    from autodl.export.runs import run_model, user_run_model

    if not spec.dataset:
        return user_run_model(net, run_dir, split, result, meta)
    return run_model(net, run_dir, spec.dataset, split, result, meta)


def _one_torch_thread() -> None:
    """Small models train fastest on one thread each (OMP_NUM_THREADS overrides)."""
    import os

    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))


KIND = NNKind()
