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
        space = args.space
        if space is not None and Path(space).suffix in (".yaml", ".yml", ".json"):
            space = str(Path(space).resolve())
        spec = NNSearchSpec(
            dataset=args.dataset, data=str(Path(args.data).resolve()) if args.data else None, target=args.target,
            model=args.model, space=space, searcher=args.searcher or "hyperband",
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
        from autodl.nn.search import NNObjective
        from autodl.runs import load_split
        from autodl.study import Study

        spec = run.spec
        _one_torch_thread()
        data = run_data(spec.dataset, run.run_dir, load_split(run.run_dir), seed=spec.seed,
                        val_size=spec.val_size, test_size=spec.test_size)
        study = Study.load(run.run_dir)
        objective = NNObjective(data, spec.model, seed=spec.seed, max_epochs=int(round(spec.max_budget)),
                                patience=spec.patience, report_every_epoch=getattr(study.searcher, "mode", None) == "prune")
        return join_study(study, objective, spec, deadline, progress)

    def load_model(self, run_dir: Path):
        """``(RunModel)`` of the best network, taking raw rows."""
        from autodl.export.runs import run_model
        from autodl.nn.checkpoint import load_weights
        from autodl.nn.search import load_nn_spec
        from autodl.nn.trainer import build_model
        from autodl.runs import load_split, read_json, read_result

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
        split = load_split(run_dir)
        if split is None:  # a format-1 folder: the split its version made from the seed
            from autodl.nn.data import raw_dataset, split_indices

            split = split_indices(raw_dataset(spec.dataset)[1], seed=spec.seed, val_size=spec.val_size,
                                  test_size=spec.test_size)
        meta = {"config": result.get("best_config"), "score": result.get("best_value"),
                "metric": f"{result.get('metric', 'accuracy')} (validation split)", "test_score": result.get("test_score"),
                "trial_id": result.get("best_trial"), "run_kind": "nn", "architecture": info["model"]}
        if not spec.dataset:
            from autodl.export.runs import user_run_model

            return user_run_model(net, run_dir, split, result, meta)
        return run_model(net, run_dir, spec.dataset, split, result, meta)

    def describe(self, result: Mapping[str, Any], run_dir: Path) -> list[str]:
        x = result["extra"]
        test = result.get("test_score")
        metric = result.get("metric") or "accuracy"
        return [f"best val {metric} {result['best_value']:.4f}"
                + (f", test {metric} {test:.4f}" if test is not None else "")
                + f" — trial {result['best_trial']} at {x.get('best_epochs')} epochs",
                f"epochs trained {x.get('epochs_trained')}, saved by checkpoints {x.get('epochs_resumed')}; "
                f"{x.get('n_trials')} trials ({result['n_pruned']} pruned, {result['n_failed']} failed)",
                f"run folder: {run_dir}  (result.json, model.pt, study.db, checkpoints/)"]


def _one_torch_thread() -> None:
    """Small models train fastest on one thread each (OMP_NUM_THREADS overrides)."""
    import os

    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))


KIND = NNKind()
