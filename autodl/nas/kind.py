"""The ``nas`` run kind: network architectures by DARTS, regularized evolution or random search
(``autodl search --nas darts|evolution|random``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from autodl.errors import ExportError, UserError
from autodl.runs import Deadline, Run, RunKind
from autodl.runs.registry import data_name


class NasKind(RunKind):
    name = "nas"

    def variant(self, spec) -> str:
        return "darts" if spec.method == "darts" else "nas"

    def spec_from_dict(self, data: Mapping[str, Any]):
        from autodl.nas.search import spec_from_dict

        return spec_from_dict(dict(data))

    def spec_from_args(self, args):
        from autodl.nas.search import NasSpec

        if args.entityset:
            raise UserError("--nas takes --dataset or --data (an .npz or a folder of images; a table with "
                            "--nas-space mlp), not --entityset")
        for flag, value in (("--min-budget", args.min_budget), ("--max-budget", args.max_budget)):
            if value is not None and (not float(value).is_integer() or value < 1):
                raise UserError(f"{flag} is {value}, but must be a whole number of epochs >= 1")
        fields: dict[str, Any] = {}
        for dest, name in (("epochs", "epochs"), ("train_epochs", "train_epochs"), ("order", "order"),
                           ("guard", "guard"), ("nas_space", "space"), ("executor", "executor"),
                           ("dask_scheduler", "dask_scheduler"), ("trial_timeout", "trial_timeout"),
                           ("trial_memory", "trial_memory")):
            if getattr(args, dest, None) is not None:
                fields[name] = getattr(args, dest)
        if args.max_budget is not None:
            fields["candidate_epochs"] = int(args.max_budget)
        if args.min_budget is not None:
            fields["min_epochs"] = int(args.min_budget)
        from autodl.nn.objectives import check_objectives

        fields["objectives"] = check_objectives(getattr(args, "objectives", None))
        fields["max_latency_ms"] = getattr(args, "max_latency_ms", None)
        fields["latency_fn"] = getattr(args, "latency_fn", None)
        spec = NasSpec(dataset=args.dataset, data=str(Path(args.data).resolve()) if args.data else None,
                       target=args.target, method=args.nas, n_trials=args.trials, time_budget=args.time,
                       seed=args.seed, test_size=0.2 if args.test_size is None else args.test_size,
                       n_workers=args.workers or 1, **fields)
        spec.validate()
        return spec

    def default_out(self, spec) -> str:
        return str(Path("runs") / f"{data_name(spec)}-nas-{spec.method}-{time.strftime('%Y%m%d-%H%M%S')}")

    def headline(self, spec, run_dir: Path) -> str:
        what = (f"{spec.epochs} search epochs, order {spec.order}, guard {spec.guard}" if spec.method == "darts"
                else f"space {spec.space}, candidates trained {spec.candidate_epochs} epochs"
                + (f" (from {spec.min_epochs} by successive halving)" if spec.min_epochs else ""))
        budget = f", time budget {spec.time_budget:g}s" if spec.time_budget else ""
        return f"autodl: NAS on {data_name(spec)} with {spec.method} ({what}{budget}) -> {run_dir}"

    def start(self, spec, out) -> Run:
        from autodl.nas.search import start_nas_run

        return Run(self, spec, start_nas_run(spec, out))

    def run(self, run: Run, *, deadline: Deadline, progress: str = "quiet", resume: bool = False) -> dict[str, Any]:
        from autodl.nas.search import run_nas

        run.spec.time_budget = deadline.budget
        return run_nas(run.spec, run.run_dir, resume=resume, progress=progress, deadline=deadline)

    def join(self, run: Run, *, deadline: Deadline, progress: str = "quiet"):
        if run.spec.method == "darts":
            return super().join(run, deadline=deadline, progress=progress)
        from autodl.nas.evolution import ArchObjective
        from autodl.nas.search import load_nas_data, nas_targets, space_factory
        from autodl.runs.registry import join_study
        from autodl.runs import load_split
        from autodl.study import Study

        from autodl.nn.kind import _one_torch_thread

        spec = run.spec
        _one_torch_thread()
        data = load_nas_data(spec, load_split(run.run_dir), run.run_dir)
        factory = space_factory(spec, data.n_features, data.n_classes)
        objective = ArchObjective(factory, data, epochs=spec.candidate_epochs, seed=spec.seed,
                                  targets=nas_targets(spec, data, run.run_dir))
        return join_study(Study.load(run.run_dir), objective, spec, deadline, progress)

    def load_model(self, run_dir: Path):
        from autodl.export.runs import run_model
        from autodl.nas.search import load_nas_model, load_nas_spec, make_split
        from autodl.runs import load_split, read_result

        spec = load_nas_spec(run_dir)
        result = read_result(run_dir)
        if not (run_dir / "model.pt").is_file():
            raise UserError(f"{run_dir} has no model.pt; the search did not finish")
        try:
            net = load_nas_model(run_dir)
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ExportError(f"cannot load the network of {run_dir}: {str(exc).splitlines()[0]}") from None
        split = load_split(run_dir)
        if split is None:  # a format-1 folder: the split its version made from the seed
            split = make_split(spec)
        x = result["extra"]
        from autodl.nn.objectives import metric_meta

        meta = {"config": result.get("best_config"), **metric_meta(result),
                "run_kind": "nas", "method": spec.method,
                "architecture": "darts cell" if spec.space == "cell" else x.get("space", "mlp")}
        if spec.dataset is None:
            from autodl.export.runs import user_run_model

            return user_run_model(net, run_dir, split, result, meta)
        return run_model(net, run_dir, spec.dataset, split, result, meta)

    def export_trial(self, run_dir: Path, path, trial_id: int, say=print) -> tuple[Path, str]:
        """Trial ``trial_id``'s architecture (e.g. a Pareto front member) trained as the run's
        final network was (training and validation rows, the final epochs, the run's seed), exported
        and verified on the held-out rows. DARTS runs have no trials: one line."""
        from autodl.export.runs import export_run_model
        from autodl.nas.evolution import final_network
        from autodl.nas.search import load_nas_data, load_nas_spec, make_split, space_factory
        from autodl.nn.kind import _one_torch_thread
        from autodl.nn.objectives import trial_meta
        from autodl.runs import load_split, read_result
        from autodl.runs.registry import complete_trial

        run_dir = Path(run_dir)
        spec = load_nas_spec(run_dir)
        if spec is None or spec.method == "darts":
            raise UserError(f"{run_dir} is a DARTS run: it has one architecture and no trials; "
                            f"`autodl export {run_dir} --onnx FILE` exports it")
        trial = complete_trial(run_dir, trial_id, path)
        _one_torch_thread()
        split = load_split(run_dir)
        if split is None:
            split = make_split(spec)
        data = load_nas_data(spec, split, run_dir)
        epochs = spec.train_epochs or spec.candidate_epochs
        say(f"autodl: training trial {trial_id}'s architecture as the run's final network was "
            f"({epochs} epochs on training and validation rows)")
        net = final_network(space_factory(spec, data.n_features, data.n_classes), data, trial.config,
                            epochs=epochs, seed=spec.seed)
        meta = {**trial_meta(read_result(run_dir), trial), "run_kind": "nas", "method": spec.method,
                "architecture": spec.space, "epochs": epochs}
        if spec.dataset is None:
            from autodl.export.runs import user_run_model

            model = user_run_model(net.eval(), run_dir, split, {}, meta)
        else:
            from autodl.export.runs import run_model

            model = run_model(net.eval(), run_dir, spec.dataset, split, {}, meta)
        return export_run_model(model, path)

    def describe(self, result: Mapping[str, Any], run_dir: Path) -> list[str]:
        x = result["extra"]
        test = result.get("test_score")
        if isinstance(result.get("metric"), list):  # several objectives: the kept front member
            from autodl.nn.kind import describe_objectives

            return describe_objectives(result, run_dir)
        pf = x.get("parameter_free_share")
        return [f"{x['method']} on {x['dataset']} ({x['space']} space): "
                + (f"test accuracy {test:.4f}, " if test is not None else "")
                + f"{x['n_params']} parameters"
                + (f", parameter-free share of the normal cell {pf:.2f}" if pf is not None else ""),
                f"search {x['search_seconds']:.1f}s (CPU {x['search_cpu_seconds']:.1f}s), "
                f"final training {x['train_seconds']:.1f}s ({x['settings'].get('train_epochs_run')} epochs)"
                + (f"; {x['n_trials']} architectures tried" if "n_trials" in x else "")
                + (f"; stopped: {x['stopped_by']}" if x.get("stopped_by") else ""),
                f"run folder: {run_dir}  (result.json, model.pt, genotype/architecture.json, curves.json)"]


KIND = NasKind()
