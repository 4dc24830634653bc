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


def print_leaderboard(study: Study, top: int = 10) -> None:
    """The best ``top`` completed trials, with their config, and counts per state."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    trials = study.trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    complete.sort(key=lambda t: t.value, reverse=study.direction == "maximize")
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    table = Table(title=f"Leaderboard ({study.direction} value)", title_justify="left")
    for col, kw in (("rank", {"justify": "right"}), ("id", {"justify": "right"}),
                    ("value", {"justify": "right"}), ("seconds", {"justify": "right"}),
                    ("config", {"overflow": "fold"})):
        table.add_column(col, **kw)
    for rank, t in enumerate(complete[:top], 1):
        config = compact_config(t.config)
        budget = f" @ budget {_fmt(t.budget)}" if t.budget is not None else ""
        table.add_row(str(rank), str(t.id), f"{t.value:.5g}",
                      f"{t.duration:.2f}" if t.duration is not None else "-", config + budget)
    console.print(table)
    states = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    console.print(f"trials: {states or 'none'}")
    failed = [t for t in trials if t.state == TrialState.FAILED]
    if failed:
        console.print(f"first failure (trial {failed[0].id}): {failed[0].message}", markup=False)
