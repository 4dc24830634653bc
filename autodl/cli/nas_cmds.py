"""``autodl search --nas darts|evolution|random`` and ``autodl resume`` of such runs.

Kept apart from :mod:`autodl.cli.main` so that the tabular commands never import torch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

from autodl.cli.nn_cmds import _err
from autodl.errors import UserError

#: flags that only apply with --nas (dest -> flag)
NAS_ONLY = {"nas_space": "--nas-space", "epochs": "--epochs", "train_epochs": "--train-epochs",
            "order": "--order", "guard": "--guard"}


def add_nas_flags(p: argparse.ArgumentParser, positive_int) -> None:
    g = p.add_argument_group("neural architecture search (PyTorch)")
    g.add_argument("--nas", choices=["darts", "evolution", "random"],
                   help="search network architectures: DARTS (gradient), regularized evolution or random")
    g.add_argument("--nas-space", choices=["cell", "mlp"],
                   help="cell: DARTS-style CNN cells (digits; default); mlp: depth/width/activation/... "
                        "(evolution and random)")
    g.add_argument("--epochs", type=positive_int, help="DARTS search epochs (default 20)")
    g.add_argument("--train-epochs", type=positive_int,
                   help="epochs to train the winning architecture from scratch (default 20)")
    g.add_argument("--order", type=int, choices=[1, 2], help="DARTS gradient order (default 1)")
    g.add_argument("--guard", choices=["none", "pf-stop", "darts-"],
                   help="DARTS collapse guard (default pf-stop: stop the search when parameter-free "
                        "operations dominate the cell)")


def check_not_nas(args) -> None:
    """NAS flags without --nas: say so in one line."""
    given = [flag for dest, flag in NAS_ONLY.items() if getattr(args, dest, None) is not None]
    if given:
        raise UserError(f"{', '.join(given)} only apply with --nas darts|evolution|random")


def spec_from_args(args):
    from autodl.nas.search import NasSpec

    if args.model:
        raise UserError("--nas and --model are alternatives: --model tunes a fixed network family's "
                        "hyperparameters, --nas searches architectures; give one")
    if args.data or args.entityset:
        raise UserError("--nas needs a built-in --dataset (digits; iris, wine, breast_cancer with --nas-space mlp)")
    if args.eta is not None:
        raise UserError("--eta does not apply with --nas (successive halving uses eta 3)")
    if args.searcher is not None:
        raise UserError("--searcher does not apply with --nas; the method is --nas darts|evolution|random")
    if args.nas == "darts" and (args.min_budget is not None or args.max_budget is not None):
        raise UserError("--min-budget/--max-budget apply to --nas evolution|random (candidate epochs); "
                        "DARTS uses --epochs")
    if args.nas != "darts":
        for flag, value in (("--epochs", args.epochs), ("--order", args.order), ("--guard", args.guard)):
            if value is not None:
                raise UserError(f"{flag} applies to --nas darts only")
    for flag, value in (("--min-budget", args.min_budget), ("--max-budget", args.max_budget)):
        if value is not None and (not float(value).is_integer() or value < 1):
            raise UserError(f"{flag} is {value}, but must be a whole number of epochs >= 1")
    fields = {}
    for dest, name in (("epochs", "epochs"), ("train_epochs", "train_epochs"), ("order", "order"),
                       ("guard", "guard"), ("nas_space", "space")):
        if getattr(args, dest) is not None:
            fields[name] = getattr(args, dest)
    if args.max_budget is not None:
        fields["candidate_epochs"] = int(args.max_budget)
    if args.min_budget is not None:
        fields["min_epochs"] = int(args.min_budget)
    spec = NasSpec(dataset=args.dataset, method=args.nas, n_trials=args.trials, time_budget=args.time,
                   seed=args.seed, test_size=args.test_size, n_workers=args.workers, **fields)
    spec.validate()
    return spec


def cmd_search_nas(args) -> int:
    from autodl.nas.search import run_nas, start_nas_run

    spec = spec_from_args(args)
    out = args.out or str(Path("runs") / f"{spec.dataset}-nas-{spec.method}-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir = start_nas_run(spec, out)
    mode = "jsonl" if args.jsonl else ("quiet" if args.quiet else "bar")
    if mode == "bar":
        what = (f"{spec.epochs} search epochs, order {spec.order}, guard {spec.guard}" if spec.method == "darts"
                else f"space {spec.space}, candidates trained {spec.candidate_epochs} epochs"
                + (f" (from {spec.min_epochs} by successive halving)" if spec.min_epochs else ""))
        budget = f", time budget {spec.time_budget:g}s" if spec.time_budget else ""
        _err(f"autodl: NAS on {spec.dataset} with {spec.method} ({what}{budget}) -> {run_dir}")

    def run():
        summary = run_nas(spec, run_dir, progress=mode)
        if args.export_onnx or args.require_onnx:
            summary["onnx"] = export_torch_winner(run_dir, args.export_onnx)
        return summary

    return _report(run, run_dir, mode)


def export_torch_winner(run_dir: Path, path: str | None) -> str:
    """``--export-onnx`` / ``--require-onnx`` of a PyTorch run: export the run's final network
    (there is one winner; a failed check is an error, and no file is written)."""
    from autodl.cli.export_cmds import _export_torch_run

    path = path or str(run_dir / "model.onnx")
    with contextlib.redirect_stdout(sys.stderr):  # stdout stays the result's (--jsonl parsers read it)
        _export_torch_run(run_dir, path)
    return path


def is_nas_run(run_dir: str | Path) -> bool:
    from autodl.cli.output import run_kind

    return run_kind(run_dir) == "nas"


def cmd_resume_nas(args) -> int:
    from autodl.nas.search import load_nas_spec, run_nas

    run_dir = Path(args.run)
    spec = load_nas_spec(run_dir)
    if args.workers is not None:
        spec.n_workers = args.workers
    mode = "jsonl" if args.jsonl else ("quiet" if args.quiet else "bar")
    return _report(lambda: run_nas(spec, run_dir, resume=True, progress=mode, n_trials=args.trials,
                                   time_budget=args.time), run_dir, mode)


def _report(run, run_dir: Path, mode: str) -> int:
    try:
        summary = run()
    except KeyboardInterrupt:
        _err(f"\nautodl: interrupted. Evolution/random runs continue with: autodl resume {run_dir}")
        return 130
    if mode == "jsonl":
        print(json.dumps({"result": {**summary, "run_dir": str(run_dir)}}, default=str))
        return 0
    print(describe_result(summary, run_dir))
    return 0


def describe_result(summary: dict, run_dir: Path) -> str:
    test = summary.get("test_accuracy")
    pf = summary.get("parameter_free_share")
    lines = [f"{summary['method']} on {summary['dataset']} ({summary['space']} space): "
             + (f"test accuracy {test:.4f}, " if test is not None else "")
             + f"{summary['n_params']} parameters"
             + (f", parameter-free share of the normal cell {pf:.2f}" if pf is not None else ""),
             f"search {summary['search_seconds']:.1f}s (CPU {summary['search_cpu_seconds']:.1f}s), "
             f"final training {summary['train_seconds']:.1f}s"
             + (f"; {summary['n_trials']} architectures tried" if "n_trials" in summary else "")
             + (f"; stopped: {summary['stopped_by']}" if summary.get("stopped_by") else ""),
             f"run folder: {run_dir}  (result.json, model.pt, genotype/architecture.json, curves.json)"]
    if summary.get("onnx"):
        lines.append(f"ONNX: {summary['onnx']} (verified with onnxruntime)")
    return "\n".join(lines)

