"""``autodl show RUN``: the leaderboard (or every trial as JSON) of a run of any kind."""

from __future__ import annotations

import json
from pathlib import Path

from autodl.cli.common import positive_int


def add_parser(sub) -> None:
    sh = sub.add_parser("show", help="print a run's leaderboard and result")
    sh.add_argument("run", help="a run folder or a study .db file")
    sh.add_argument("--json", action="store_true", help="print the result and every trial as JSON")
    sh.add_argument("--top", type=positive_int, default=10, help="rows in the leaderboard (default 10)")


def cmd_show(args, deadline) -> int:
    from autodl.study import Study

    path = Path(args.run)
    if (path.is_file() and path.suffix == ".db") or (
            (path / "study.db").is_file() and not (path / "run.json").is_file()):  # a study made in Python
        study = Study.load(path, searcher="random")
        return _print(args, study, None, None, path)
    from autodl.runs import open_run, read_json, read_result

    run = open_run(path)
    result = read_result(path) if (path / "result.json").is_file() else None
    study = Study.load(path, searcher="random") if (path / "study.db").is_file() else None
    return _print(args, study, result, run.kind, path, read_json(path / "run.json"))


def _print(args, study, result, kind, path: Path, settings: dict | None = None) -> int:
    trials = [_trial_json(t) for t in study.trials] if study is not None else []
    names = None
    if study is not None and study.n_objectives > 1:  # several objectives: mark the front
        from autodl.report.multiobjective import objective_names

        names = objective_names(study.n_objectives, result, settings, study.storage.get_meta())
        front = study.best_trials
        on_front = {t.id for t in front}
        for t in trials:
            t["pareto_optimal"] = t["id"] in on_front
    if args.json:
        if result is None and kind is None:
            print(json.dumps(trials, indent=2, default=str))  # a bare study: its trials
        else:
            out = {"result": result, "trials": trials}
            if names is not None:
                out["objectives"] = [{"name": n, "direction": d} for n, d in zip(names, study.directions)]
                out["pareto_front"] = [{"id": t.id, "values": list(t.values), "constraints": t.constraints,
                                        "budget": t.budget, "config": dict(t.config)} for t in front]
            print(json.dumps(out, indent=2, default=str))
        return 0
    if study is not None:
        from autodl.cli.output import print_leaderboard

        metric = (result or {}).get("metric")
        print_leaderboard(study, top=args.top, names=names, metric=metric if isinstance(metric, str) else None)
    if result is not None and kind is not None:
        from autodl.cli.output import describe_run

        for line in describe_run(kind, result, path, table_shown=study is not None):
            print(line)
    elif kind is not None:
        print(f"{path} has no result yet (the search did not finish); `autodl resume {path}` finishes it")
    return 0


def _trial_json(t) -> dict:
    d = t.to_dict()
    return {k: d[k] for k in ("id", "state", "value", "values", "constraints", "config", "budget",
                              "message", "duration", "intermediate", "user_attrs", "retry_of")}
