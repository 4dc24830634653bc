"""``autodl search --model mlp|cnn`` and ``autodl resume`` of such runs (PyTorch, multi-fidelity).

Kept apart from :mod:`autodl.cli.main` so that the tabular commands never import torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from autodl.errors import UserError



def _number(text: str) -> float | int:
    """A number flag; integral values stay ints so messages read ``--eta is 1``."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    return int(v) if v.is_integer() else v


def add_nn_flags(p: argparse.ArgumentParser) -> None:
    """The search flags of PyTorch runs (``--model`` routes the search to :mod:`autodl.nn`)."""
    g = p.add_argument_group("PyTorch models and budgets (sh, hyperband, asha, bohb)")
    g.add_argument("--model", choices=["mlp", "cnn"],
                   help="search a PyTorch MLP or CNN instead of scikit-learn pipelines")
    g.add_argument("--min-budget", type=_number,
                   help="smallest budget: epochs with --model (default 1), else a share of the fit (default 1)")
    g.add_argument("--max-budget", type=_number,
                   help="largest budget: epochs with --model (default 27), else the full fit (default 9)")
    g.add_argument("--eta", type=_number, help="halving rate, > 1 (default 3)")


def cmd_search_nn(args) -> int:
    from autodl.nn.search import NNSearchSpec

    if args.data:
        raise UserError("--model needs a built-in --dataset (digits, iris, wine, breast_cancer)")
    space = None if args.space in (None, "tabular") else args.space
    if space is not None and Path(space).suffix in (".yaml", ".yml", ".json"):
        space = str(Path(space).resolve())
    spec = NNSearchSpec(
        dataset=args.dataset, model=args.model, space=space, searcher=args.searcher or "hyperband",
        min_budget=1 if args.min_budget is None else args.min_budget,
        max_budget=27 if args.max_budget is None else args.max_budget,
        eta=3 if args.eta is None else args.eta, n_trials=args.trials, time_budget=args.time,
        seed=args.seed, test_size=args.test_size, n_workers=args.workers)
    spec.validate()
    if spec.test_size <= 0:
        spec.test_size = 0.0
    out = args.out or str(Path("runs") / f"{args.dataset}-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}")
    from autodl.nn.search import run_nn_search, start_nn_run

    run_dir = start_nn_run(spec, out)
    mode = "jsonl" if args.jsonl else ("quiet" if args.quiet else "bar")
    if mode == "bar":
        _err(f"autodl: {spec.dataset} ({spec.model}, val accuracy), searcher {spec.searcher}, budgets "
             f"{spec.min_budget:g}..{spec.max_budget:g} epochs, eta {spec.eta:g} -> {run_dir}")

    def run():
        summary = run_nn_search(spec, run_dir, show_progress=mode != "quiet", progress_mode=mode)
        if args.export_onnx or args.require_onnx:
            from autodl.cli.nas_cmds import export_torch_winner

            summary["onnx"] = export_torch_winner(run_dir, args.export_onnx)
        return summary

    return _report(run, run_dir, mode)


def is_nn_run(run_dir: str | Path) -> bool:
    from autodl.cli.output import run_kind

    return run_kind(run_dir) == "nn"


def cmd_resume_nn(args) -> int:
    from autodl.nn.search import resume_nn_run

    mode = "jsonl" if args.jsonl else ("quiet" if args.quiet else "bar")
    return _report(lambda: resume_nn_run(args.run, n_trials=args.trials, time_budget=args.time,
                                         n_workers=args.workers, show_progress=mode != "quiet",
                                         progress_mode=mode), Path(args.run), mode)


def _report(run, run_dir: Path, mode: str) -> int:
    try:
        summary = run()
    except KeyboardInterrupt:
        _err(f"\nautodl: interrupted; finished trials and checkpoints are kept. "
             f"Continue with: autodl resume {run_dir}")
        return 130
    if mode == "jsonl":
        print(json.dumps({"result": {**summary, "run_dir": str(run_dir)}}, default=str))
        return 0
    test = summary["test_accuracy"]
    print(f"best val accuracy {summary['best_val_accuracy']:.4f}"
          + (f", test accuracy {test:.4f}" if test is not None else "")
          + f" — trial {summary['best_trial_id']} at {summary['best_epochs']} epochs")
    print(f"epochs trained {summary['epochs_trained']}, saved by checkpoints {summary['epochs_resumed']}; "
          f"{summary['n_trials']} trials ({summary['n_pruned']} pruned, {summary['n_failed']} failed)")
    print(f"run folder: {run_dir}  (result.json, model.pt, study.db, checkpoints/)")
    if summary.get("onnx"):
        print(f"ONNX: {summary['onnx']} (verified with onnxruntime)")
    return 0


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
