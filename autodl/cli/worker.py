"""``autodl worker RUN``: join a running search from another terminal (or a machine sharing the
folder). It opens ``RUN/study.db`` and runs trials until the run's total is reached or its
``--time`` deadline; the search that created the run writes the result."""

from __future__ import annotations

import sys

from autodl.cli.flags import WORKER_FLAGS, add_flags, check_flags
from autodl.cli.resume import executor_overrides


def add_parser(sub) -> None:
    w = sub.add_parser("worker", help="join a running search: run its trials in this process too",
                       description="Open RUN's study and run trials until the run's total is reached (or "
                                   "--time); `autodl search` (or `resume`) writes the result.")
    w.add_argument("run", help="the run folder of a running (or unfinished) search")
    add_flags(w, WORKER_FLAGS)
    w.add_argument("--quiet", action="store_true", help="print only the final line")


def cmd_worker(args, deadline) -> int:
    from autodl.errors import UserError
    from autodl.runs import open_run

    run = open_run(args.run)
    check_flags(args, WORKER_FLAGS, run.kind.variant(run.spec))
    if run.kind.variant(run.spec) == "darts":
        return run.kind.join(run, deadline=deadline)  # one line: DARTS has no trials to share
    if not (run.run_dir / "study.db").is_file():
        raise UserError(f"{run.run_dir} has no study.db yet; start the search first")
    run.kind.apply_overrides(run.spec, n_workers=args.workers, executor=executor_overrides(args))
    ran, finished, total = run.kind.join(run, deadline=deadline, progress="quiet" if args.quiet else "bar")
    of = f"/{total}" if total else ""
    sys.stderr.write(f"autodl worker: ran {ran} trials; {run.run_dir} has {finished}{of} finished\n")
    return 0
