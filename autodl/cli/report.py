"""``autodl report RUN``: one self-contained HTML page for a run of any kind."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    rp = sub.add_parser("report", help="write RUN/report.html: history (or Pareto front and hypervolume), "
                                             "importances, curves, leaderboard")
    rp.add_argument("run", help="a run folder or a study .db file")
    rp.add_argument("--out", help="where to write the HTML (default: RUN/report.html)")


def cmd_report(args, deadline) -> int:
    from autodl.report import build_report

    run = Path(args.run)
    if not (run.is_file() and run.suffix == ".db") and not ((run / "study.db").is_file() and not (run / "run.json").is_file()):
        from autodl.runs import open_run

        open_run(run)  # one line for a folder that is not a run
        if not (run / "study.db").is_file() and not (run / "result.json").is_file():
            from autodl.errors import UserError

            raise UserError(f"{run} has no trials or result yet; nothing to report")
    path = build_report(run, args.out)
    print(f"report written to {path}")
    return 0
