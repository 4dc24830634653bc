"""The ``autodl`` command: search, resume, show, export, predict.

Every subcommand is a thin layer over the Python API. A user mistake prints one line,
``autodl: error: <what is wrong and how to fix it>``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Sequence

from autodl.cli.worker_cmds import add_executor_flags, add_worker_parser, cmd_worker, executor_fields
from autodl.cli.nn_cmds import add_nn_flags, is_nn_run
from autodl.cli.feature_cmds import add_feature_flags, feature_fields
from autodl.cli.nas_cmds import add_nas_flags, check_not_nas, is_nas_run
from autodl.errors import UserError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(EXIT_USAGE)


def parse_duration(text: str) -> float:
    """``"90"``, ``"30s"``, ``"10m"``, ``"1h30m"``, ``"1.5h"`` -> seconds."""
    t = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        seconds = float(t)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", t)
        if not parts or "".join(n + u for n, u in parts) != t.replace(" ", ""):
            raise argparse.ArgumentTypeError(
                f"invalid duration '{text}'; use e.g. 90, 30s, 10m or 1h30m")
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration '{text}' must be positive")
    return seconds


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be at least 1")
    return v


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be in [0, 1)")
    return v


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true", help="print only the final summary")
    g.add_argument("--jsonl", action="store_true",
                   help="print one JSON object per finished trial (for scripts), then the result")


def build_parser() -> argparse.ArgumentParser:
    from autodl._version import __version__

    parser = _Parser(prog="autodl", description="AutoML and hyperparameter optimization.")
    parser.add_argument("--version", action="version", version=f"autodl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("search", help="search for the best pipeline on a dataset",
                       description="Tune a scikit-learn pipeline by k-fold cross-validation.")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="built-in data: iris, wine, breast_cancer, digits, diabetes")
    src.add_argument("--data", help="a CSV or Parquet file (use with --target)")
    src.add_argument("--entityset", metavar="YAML", help="related tables for featuretools (use with --target)")
    s.add_argument("--target", help="the column to predict in --data")
    s.add_argument("--task", choices=["auto", "classification", "regression", "timeseries"], default="auto")
    s.add_argument("--metric", help="accuracy, balanced_accuracy, f1, roc_auc, log_loss, r2, rmse, mae")
    s.add_argument("--space", default="tabular", help="a built-in space name or a YAML file (default: tabular)")
    s.add_argument("--searcher", default=None,
                   help="random, grid, tpe, sh, hyperband, asha, bohb, ... (default: tpe; hyperband with --model)")
    s.add_argument("--trials", type=_positive_int, help="number of trials")
    s.add_argument("--time", type=parse_duration, help="search time budget, e.g. 90s, 10m, 1h")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--cv", type=int, default=5, help="cross-validation folds (default 5)")
    s.add_argument("--test-size", type=_fraction, default=0.2,
                   help="fraction held out for a final test score (default 0.2; 0 for none)")
    s.add_argument("--workers", type=_positive_int, default=1, help="trials run in parallel processes")
    add_executor_flags(s, parse_duration)
    s.add_argument("--out", help="run folder (default: runs/<data>-<time>)")
    s.add_argument("--export-onnx", metavar="FILE", help="export the winner to this .onnx file (verified)")
    s.add_argument("--require-onnx", action="store_true",
                   help="the winner is the best trial whose model exports to ONNX and passes the check")
    s.add_argument("--budget-resource", choices=["auto", "iterations", "rows"],
                   help="with --searcher sh|hyperband|asha|bohb: what a trial's budget cuts, the model's "
                        "iterations (hist_gb, forests, mlp) or each fold's training rows (default auto: "
                        "iterations where the model has them, else rows); budgets default to "
                        "--min-budget 1 --max-budget 9 --eta 3, a trial fitting budget/max-budget of the work")
    add_nn_flags(s)
    add_nas_flags(s, _positive_int)
    add_feature_flags(s)
    _add_output_flags(s)

    r = sub.add_parser("resume", help="continue a run after a crash, Ctrl-C or with more trials")
    r.add_argument("run", help="the run folder")
    r.add_argument("--trials", type=_positive_int, help="new total number of trials")
    r.add_argument("--time", type=parse_duration, help="time budget for this invocation")
    r.add_argument("--workers", type=_positive_int)
    add_executor_flags(r, parse_duration)
    _add_output_flags(r)
    add_worker_parser(sub, _positive_int, parse_duration)

    sh = sub.add_parser("show", help="print a run's leaderboard")
    sh.add_argument("run", help="a run folder or a study .db file")
    sh.add_argument("--json", action="store_true", help="print every trial as JSON")
    sh.add_argument("--top", type=_positive_int, default=10, help="rows in the leaderboard (default 10)")

    rp = sub.add_parser("report", help="write RUN/report.html: history, importances, curves, leaderboard")
    rp.add_argument("run", help="the run folder")
    rp.add_argument("--out", help="where to write the HTML (default: RUN/report.html)")

    ex = sub.add_parser("export", help="export a run's best model to ONNX (verified with onnxruntime)")
    ex.add_argument("run", help="the run folder")
    ex.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")

    pr = sub.add_parser("predict", help="predict with an exported .onnx file (onnxruntime only)")
    pr.add_argument("model", help="a .onnx file written by autodl")
    pr.add_argument("--data", required=True, help="a CSV or Parquet file with the model's input columns")
    pr.add_argument("--out", help="write predictions to this CSV (default: stdout)")
    return parser


def _progress_mode(args) -> str:
    return "jsonl" if args.jsonl else ("quiet" if args.quiet else "bar")


def cmd_search(args) -> int:
    if args.budget_resource is not None and (args.nas or args.model):
        raise UserError("--budget-resource applies to scikit-learn searches only; with --model or --nas "
                        "the budget is epochs")
    if args.nas:
        from autodl.cli.nas_cmds import cmd_search_nas

        return cmd_search_nas(args)
    check_not_nas(args)
    if args.model:
        from autodl.cli.nn_cmds import cmd_search_nn

        return cmd_search_nn(args)
    from autodl.tabular.search import SearchSpec, run_search, start_run

    searcher = args.searcher or "tpe"
    searcher_params = _tabular_budget_args(args, searcher)

    if args.data and not args.target:
        raise UserError("--data needs --target COLUMN naming the column to predict")
    if args.target and not (args.data or args.entityset):
        raise UserError("--target only applies with --data FILE or --entityset YAML")
    if args.trials is None and args.time is None:
        raise UserError("give --trials N, --time 10m, or both")
    if args.cv < 2:
        raise UserError(f"--cv is {args.cv}, but must be at least 2")
    data = str(Path(args.data).resolve()) if args.data else None
    spec = SearchSpec(dataset=args.dataset, data=data, target=args.target,
                      task=None if args.task in ("auto", "timeseries") else args.task, metric=args.metric,
                      space=_space_arg(args.space), searcher=searcher, searcher_params=searcher_params,
                      budget_resource=args.budget_resource or "auto", n_trials=args.trials,
                      time_budget=args.time, seed=args.seed, cv=args.cv, test_size=args.test_size,
                      n_workers=args.workers, **executor_fields(args), **feature_fields(args))
    out = args.out or _default_out(args)
    prep, run_dir = start_run(spec, out)
    mode = _progress_mode(args)
    if mode == "bar":
        budget = " and ".join(x for x in (f"{args.trials} trials" if args.trials else "",
                                          f"{args.time:g}s" if args.time else "") if x)
        _err(f"autodl: {prep.spec.dataset or Path(data or args.entityset).name} ({prep.task}, {prep.metric.name}, "
             f"{spec.cv}-fold CV), searcher {spec.searcher}{_budget_text(spec)}, {budget} -> {run_dir}")

    def run():
        result = run_search(prep, run_dir, show_progress=mode != "quiet", progress_mode=mode)
        if args.export_onnx or args.require_onnx:
            from autodl.cli.export_cmds import export_after_search

            export_after_search(result, prep, run_dir, args.export_onnx, args.require_onnx)
        return result

    return _run_and_report(run, run_dir, mode)


def _tabular_budget_args(args, searcher: str) -> dict:
    """``--min-budget/--max-budget/--eta`` as searcher parameters; with a full-budget searcher
    they (and ``--budget-resource``) mean nothing, which is said in one line."""
    from autodl.searchers import SEARCHERS
    from autodl.searchers.brackets import FIDELITY_FLAGS
    from autodl.tabular.search import uses_budget

    params = {dest: getattr(args, dest) for dest in FIDELITY_FLAGS if getattr(args, dest, None) is not None}
    if str(searcher).lower() not in SEARCHERS or uses_budget(searcher):
        return params  # an unknown name is reported when the spec is prepared
    if params:
        raise UserError(f"{', '.join(FIDELITY_FLAGS[d] for d in params)} only apply with --model mlp|cnn or a "
                        f"multi-fidelity --searcher (sh, hyperband, asha, bohb), not '{searcher}'")
    if args.budget_resource:
        raise UserError(f"--budget-resource only applies with a multi-fidelity --searcher (sh, hyperband, asha, "
                        f"bohb), not '{searcher}'")
    return params


def _budget_text(spec) -> str:
    from autodl.tabular.search import uses_budget

    if not uses_budget(spec.searcher):
        return ""
    p = spec.searcher_params
    return (f" (budgets {p['min_budget']:g}..{p['max_budget']:g}, eta {p['eta']:g}, "
            f"resource {spec.budget_resource})")


def _space_arg(space: str) -> str:
    p = Path(space)
    return str(p.resolve()) if p.suffix in (".yaml", ".yml", ".json") else space


def _default_out(args) -> str:
    stem = args.dataset or Path(args.data or args.entityset).stem
    return str(Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")


def cmd_resume(args) -> int:
    from autodl.tabular.search import resume_run

    run_dir = Path(args.run)
    if is_nas_run(run_dir):
        from autodl.cli.nas_cmds import cmd_resume_nas

        if not (run_dir / "study.db").is_file():
            raise UserError(f"{run_dir} is a DARTS run; DARTS searches cannot be resumed, start a new one")
        return cmd_resume_nas(args)
    if not (run_dir / "study.db").is_file():
        raise UserError(f"{run_dir} is not an autodl run folder (no study.db)")
    if is_nn_run(run_dir):
        from autodl.cli.nn_cmds import cmd_resume_nn

        return cmd_resume_nn(args)
    mode = _progress_mode(args)
    return _run_and_report(lambda: resume_run(run_dir, n_trials=args.trials, time_budget=args.time,
                                              n_workers=args.workers, show_progress=mode != "quiet",
                                              progress_mode=mode, **executor_fields(args)),
                           run_dir, mode)


def _run_and_report(run, run_dir: Path, mode: str) -> int:
    try:
        result = run()
    except KeyboardInterrupt:
        _err(f"\nautodl: interrupted; finished trials are kept. Continue with: autodl resume {run_dir}")
        return EXIT_INTERRUPTED
    if mode == "jsonl":
        summary = result.summary()
        summary["run_dir"] = str(run_dir)
        print(json.dumps({"result": summary}, default=str))
        return 0
    from autodl.cli.output import print_leaderboard, print_result

    if mode == "bar":
        print_leaderboard(result.study, top=10)
    print_result(result, run_dir)
    return 0


def cmd_show(args) -> int:
    from autodl.study import Study

    run = Path(args.run)
    if is_nas_run(run) and not (run / "study.db").is_file():  # a DARTS run: no trials, one result
        result_path = run / "result.json"
        if not result_path.is_file():
            raise UserError(f"{run} has no result.json yet (the DARTS search did not finish)")
        result = json.loads(result_path.read_text())
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        else:
            from autodl.cli.nas_cmds import describe_result

            print(describe_result(result, run))
        return 0
    study = Study.load(args.run, searcher="random")  # a read-only view needs no searcher state
    if args.json:
        print(json.dumps([_trial_json(t) for t in study.trials], indent=2, default=str))
        return 0
    from autodl.cli.output import print_leaderboard

    print_leaderboard(study, top=args.top)
    return 0


def _trial_json(t) -> dict:
    d = t.to_dict()
    return {k: d[k] for k in ("id", "state", "value", "config", "budget", "message", "duration",
                              "intermediate", "user_attrs", "retry_of")}


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def cmd_report(args) -> int:
    from autodl.report import build_report

    run = Path(args.run)
    if (not (run / "study.db").is_file() and not (run.is_file() and run.suffix == ".db")
            and not (is_nas_run(run) and (run / "result.json").is_file())):
        raise UserError(f"{run} is not an autodl run folder (no study.db)")
    path = build_report(run, args.out)
    print(f"report written to {path}")
    return 0


def cmd_export(args) -> int:
    from autodl.cli.export_cmds import cmd_export as run

    return run(args)


def cmd_predict(args) -> int:
    from autodl.cli.export_cmds import cmd_predict as run

    return run(args)


COMMANDS = {"search": cmd_search, "resume": cmd_resume, "show": cmd_show, "report": cmd_report, "export": cmd_export,
            "predict": cmd_predict, "worker": cmd_worker}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        _err(f"autodl {args.command}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("\nautodl: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
