"""Tables printed by the CLI (rich)."""

from __future__ import annotations

from typing import Any

from autodl.study import Study, TrialState


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def compact_config(config: dict[str, Any]) -> str:
    """``model`` first, then its own parameters without the ``model.`` prefix, then the rest."""
    model = config.get("model")
    prefix = f"{model}." if model is not None else None
    own = [f"{k[len(prefix):]}={_fmt(v)}" for k, v in config.items() if prefix and k.startswith(prefix)]
    rest = [f"{k}={_fmt(v)}" for k, v in config.items()
            if k != "model" and not (prefix and k.startswith(prefix))]
    head = f"{model}: " if model is not None else ""
    return head + " ".join(own) + (" | " if own and rest else "") + " ".join(rest)


#: the units of the measured objectives, shown in column headings
UNITS = {"latency": "ms", "size": "bytes"}


def describe_run(kind, result, run_dir, table_shown: bool) -> list[str]:
    """The kind's lines about a finished run; below a printed table of the Pareto front, without
    the kind's own line about the front (the table's heading says it)."""
    lines = kind.describe(result, run_dir)
    if table_shown and isinstance(result.get("metric"), list):
        lines = [line for line in lines if not line.startswith("Pareto front:")]
    return lines


def print_front(study: Study, top: int = 10, names: list[str] | None = None) -> None:
    """A study with several objectives: its Pareto front (``study.best_trials``; feasible
    trials only where constraints exist), at most ``top`` rows by the first objective; the
    columns are headed by ``names`` (default ``value 0``, ``value 1``, ...)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    front = sorted(study.best_trials, key=lambda t: (t.values[0] if study.directions[0] == "minimize"
                                                     else -t.values[0], t.id))
    names = list(names) if names is not None else [f"value {i}" for i in range(study.n_objectives)]
    goal = ", ".join(f"{d} {n.removeprefix('value ')}" for n, d in zip(names, study.directions))
    # the heading on its own line: as the table's title it would wrap at the table's width
    console.print(f"Pareto front: {len(front)} trial{'s' * (len(front) != 1)} ({goal})", soft_wrap=True,
                  highlight=False)
    table = Table()
    table.add_column("id", justify="right")
    for name in names:
        table.add_column(f"{name} ({UNITS[name]})" if name in UNITS else name, justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("config", overflow="fold")
    for t in front[:top]:
        budget = f" @ budget {_fmt(t.budget)}" if t.budget is not None else ""
        table.add_row(str(t.id), *(f"{v:.5g}" for v in t.values),
                      f"{t.duration:.2f}" if t.duration is not None else "-",
                      compact_config(t.config) + budget)
    console.print(table)
    if len(front) > top:
        console.print(f"{len(front) - top} more on the front (--top {len(front)} shows all)")


def print_leaderboard(study: Study, top: int = 10, names: list[str] | None = None,
                      metric: str | None = None) -> None:
    """The best ``top`` completed trials, with their config, and counts per state (with
    several objectives, the Pareto front, its columns headed by ``names``). The value column is
    headed by ``metric`` when given; trials that recorded a spread over CV folds (``cv_std``)
    get a ``± std`` column."""
    from rich.console import Console
    from rich.table import Table

    if study.n_objectives > 1:
        print_front(study, top, names)
        _print_counts(Console(), study.trials)
        return
    console = Console()
    trials = study.trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    sign = -1.0 if study.direction == "maximize" else 1.0
    complete.sort(key=lambda t: (t.violation, sign * t.value))  # feasible first, as best_trial
    shown = complete[:top]
    spread = any(isinstance(t.user_attrs.get("cv_std"), (int, float)) for t in shown)
    what = metric or "value"
    table = Table(title=f"Leaderboard ({study.direction} {what})", title_justify="left")
    columns = [("rank", {"justify": "right"}), ("id", {"justify": "right"}), (what, {"justify": "right"})]
    if spread:
        columns.append(("± std", {"justify": "right"}))
    for col, kw in columns + [("seconds", {"justify": "right"}), ("config", {"overflow": "fold"})]:
        table.add_column(col, **kw)
    for rank, t in enumerate(shown, 1):
        config = compact_config(t.config)
        budget = f" @ budget {_fmt(t.budget)}" if t.budget is not None else ""
        row = [str(rank), str(t.id), f"{t.value:.5g}"]
        if spread:
            std = t.user_attrs.get("cv_std")
            row.append(f"{std:.3g}" if isinstance(std, (int, float)) else "-")
        table.add_row(*row, f"{t.duration:.2f}" if t.duration is not None else "-", config + budget)
    console.print(table)
    _print_counts(console, trials)


def _print_counts(console, trials) -> None:
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    states = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    console.print(f"trials: {states or 'none'}")
    failed = [t for t in trials if t.state == TrialState.FAILED]
    if failed:
        console.print(f"first failure (trial {failed[0].id}): {failed[0].message}", markup=False)
