"""Executor flags (``--executor``, ``--dask-scheduler``, ``--trial-timeout``) and ``autodl worker``.

``autodl worker RUN`` joins a running search from another terminal (or machine sharing the
folder): it reads ``RUN/run.json``, opens ``RUN/study.db`` and runs trials until the run's total
is reached. The search that created the run writes the result when every trial is done.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable


def add_executor_flags(p: argparse.ArgumentParser, parse_duration: Callable[[str], float]) -> None:
    """Add ``--executor``, ``--dask-scheduler`` and ``--trial-timeout`` to a subcommand."""
    p.add_argument("--executor", choices=["local", "dask"],
                   help="where trials run: local worker processes or a Dask cluster "
                        "(default: in this process for --workers 1, else local)")
    p.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="join a running Dask cluster, e.g. tcp://host:8786 (implies --executor dask)")
    p.add_argument("--trial-timeout", type=parse_duration, metavar="DURATION",
                   help="stop a trial after this long (e.g. 90s, 5m); it is recorded as failed")


def executor_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The SearchSpec fields the executor flags set (only those given)."""
    fields = {"executor": args.executor, "dask_scheduler": args.dask_scheduler,
              "trial_timeout": args.trial_timeout}
    return {k: v for k, v in fields.items() if v is not None}


def add_worker_parser(sub, positive_int: Callable[[str], int],
                      parse_duration: Callable[[str], float]) -> None:
    w = sub.add_parser("worker", help="join a running search: run its trials in this process too",
                       description="Open RUN's study and run trials until the run's total is "
                                   "reached; `autodl search` (or `resume`) writes the result.")
    w.add_argument("run", help="the run folder of a running (or unfinished) search")
    w.add_argument("--workers", type=positive_int, help="trials run in parallel by this worker")
    add_executor_flags(w, parse_duration)
    w.add_argument("--quiet", action="store_true", help="print only the final line")


def cmd_worker(args: argparse.Namespace) -> int:
    from autodl.errors import UserError
    from autodl.tabular.search import join_run

    run_dir = Path(args.run)
    if not (run_dir / "study.db").is_file():
        raise UserError(f"{run_dir} is not an autodl run folder (no study.db)")
    ran, finished, total = join_run(run_dir, n_workers=args.workers, show_progress=not args.quiet,
                                    **executor_fields(args))
    of = f"/{total}" if total else ""
    sys.stderr.write(f"autodl worker: ran {ran} trials; {run_dir} has {finished}{of} finished\n")
    return 0
