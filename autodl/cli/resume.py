"""``autodl resume RUN``: continue a run of any kind after a crash, Ctrl-C, or with more trials."""

from __future__ import annotations

from pathlib import Path

from autodl.cli.common import progress_mode, run_and_print
from autodl.cli.flags import RESUME_FLAGS, add_flags, check_flags


def add_parser(sub) -> None:
    r = sub.add_parser("resume", help="continue a run after a crash, Ctrl-C or with more trials")
    r.add_argument("run", help="the run folder")
    add_flags(r, RESUME_FLAGS)
    g = r.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true", help="print only the final summary")
    g.add_argument("--jsonl", action="store_true", help="print one JSON object per finished trial, then the result")


def cmd_resume(args, deadline) -> int:
    from autodl.errors import UserError
    from autodl.runs import open_run, update_run

    run = open_run(args.run)
    kind, variant = run.kind, run.kind.variant(run.spec)
    check_flags(args, RESUME_FLAGS, variant)
    if variant != "darts" and not (Path(args.run) / "study.db").is_file():
        raise UserError(f"{args.run} has no study.db; it was not started by `autodl search`")
    kind.apply_overrides(run.spec, n_trials=args.trials, n_workers=args.workers,
                         executor=executor_overrides(args))
    if args.trials is not None:
        update_run(run.run_dir, n_trials=args.trials)  # the new total, for `autodl worker`
    return run_and_print(lambda: kind.run(run, deadline=deadline, progress=progress_mode(args), resume=True),
                         kind, run.run_dir, progress_mode(args))


def executor_overrides(args) -> dict:
    fields = {"executor": args.executor, "dask_scheduler": args.dask_scheduler, "trial_timeout": args.trial_timeout,
              "trial_memory": args.trial_memory}
    return {k: v for k, v in fields.items() if v is not None}
