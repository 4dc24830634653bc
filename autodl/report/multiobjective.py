"""What the report shows of a study with several objectives.

* the objectives' names: ``result.json``'s ``metric`` list, else ``run.json``'s ``objectives``
  (or ``metric``) list, else the study's metadata, else ``objective 0``, ``objective 1``, ...;
* the Pareto front (:attr:`autodl.Study.best_trials`: complete trials at the largest budget,
  feasible ones only where constraints exist) as a table and a plot of every complete trial;
* the hypervolume of the feasible front after each finished trial, against a fixed reference
  point taken from the data (:func:`reference_point`).

Hypervolume is computed with every objective minimized (a maximized one is negated), by
:func:`autodl.searchers.pareto.hypervolume`; the reference point is reported in the
objectives' own units and directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

#: the reference point lies this share of each objective's range beyond its worst value
REFERENCE_MARGIN = 0.1

#: keys that may name the objectives, in the order they are looked up in each source
_NAME_KEYS = ("objectives", "metric", "metrics", "objective_names", "metric_names")


def _names(v: Any) -> list[str] | None:
    if isinstance(v, str) and "," in v:
        v = [s.strip() for s in v.split(",")]
    if not isinstance(v, (list, tuple)) or not v:
        return None
    out = []
    for x in v:
        if isinstance(x, Mapping):
            x = x.get("name") or x.get("metric")
        if not isinstance(x, str) or not x:
            return None
        out.append(x)
    return out


def objective_names(n: int, *sources: Mapping[str, Any] | None) -> list[str]:
    """Names of the ``n`` objectives: the first list of ``n`` names found in ``sources`` (e.g.
    ``result.json``, ``run.json``, the study's metadata), else ``objective 0``, ``objective 1``, ...

    Example:
        >>> objective_names(2, {"metric": ["accuracy", "latency_ms"]})
        ['accuracy', 'latency_ms']
        >>> objective_names(2, None, {"metric": "accuracy"})
        ['objective 0', 'objective 1']
    """
    for source in sources:
        if not isinstance(source, Mapping):
            continue
        for key in _NAME_KEYS:
            names = _names(source.get(key))
            if names is not None and len(names) == n:
                return names
    return [f"objective {i}" for i in range(n)]


def _signs(directions: Sequence[str]) -> np.ndarray:
    return np.array([1.0 if d == "minimize" else -1.0 for d in directions])


def reference_point(points: np.ndarray | Sequence[Sequence[float]], margin: float = REFERENCE_MARGIN) -> np.ndarray:
    """The hypervolume reference of ``points`` (n x m, minimized): each objective's worst value
    plus ``margin`` times its range (``margin`` times its magnitude, at least ``margin``, when
    every point has the same value), so the extreme points of the front still add volume.

    Example:
        >>> reference_point([[0.0, 4.0], [1.0, 2.0]]).tolist()
        [1.1, 4.2]
    """
    y = np.asarray(points, dtype=float)
    worst, best = y.max(axis=0), y.min(axis=0)
    span = worst - best
    pad = np.where(span > 0, margin * span, margin * np.maximum(np.abs(worst), 1.0))
    return worst + pad


def _at_top_budget(trials: list) -> list:
    budgets = [t.budget for t in trials if t.budget is not None]
    if not budgets:
        return trials
    return [t for t in trials if t.budget is None or t.budget >= max(budgets)]


@dataclass(frozen=True)
class HypervolumeHistory:
    """The hypervolume of the feasible front after each finished trial.

    ``finished[k]`` trials (complete, pruned or failed, in the order they finished) had finished
    when trial ``trial_ids[k]`` did, ``seconds[k]`` after the first trial started (None when the
    storage has no times), and the front of the complete ones covered ``hypervolume[k]``.
    ``reference`` is in the objectives' own units and directions; ``reference_min`` is the same
    point with maximized objectives negated, as the hypervolume is computed.
    """

    directions: tuple[str, ...]
    reference: tuple[float, ...]
    reference_min: tuple[float, ...]
    trial_ids: tuple[int, ...]
    finished: tuple[int, ...]
    seconds: tuple[float, ...] | None
    hypervolume: tuple[float, ...]
    top_budget: float | None = None
    #: per objective: every complete trial has the same value (the margin is then 10% of it)
    flat: tuple[bool, ...] = ()


def hypervolume_history(study) -> HypervolumeHistory | None:
    """:class:`HypervolumeHistory` of a study with several objectives (None before any trial
    completes). With budgets, only the trials at the largest budget count (as the front)."""
    from autodl.searchers.pareto import hypervolume
    from autodl.study import TrialState

    trials = study.trials
    complete = _at_top_budget([t for t in trials if t.state == TrialState.COMPLETE and t.values is not None])
    if not complete:
        return None
    sign = _signs(study.directions)
    points = np.array([sign * np.asarray(t.values, dtype=float) for t in complete])
    ref_min = reference_point(points)
    counted = {t.id for t in complete if t.feasible}
    done = [t for t in trials if t.state.finished]
    timed = all(t.finished is not None for t in done) and any(t.started is not None for t in done)
    done.sort(key=(lambda t: (t.finished, t.id)) if timed else (lambda t: t.id))
    start = min(t.started for t in done if t.started is not None) if timed else None
    front: list[np.ndarray] = []
    hv, ids, seconds, values = 0.0, [], [], []
    for t in done:
        if t.id in counted:
            y = sign * np.asarray(t.values, dtype=float)
            if not any(np.all(f <= y) for f in front):  # only a point not weakly dominated adds volume
                front = [f for f in front if not np.all(y <= f)] + [y]
                hv = hypervolume(np.array(front), ref_min)
        ids.append(t.id)
        values.append(hv)
        if timed:
            seconds.append(float(t.finished - start))
    budgets = [t.budget for t in complete if t.budget is not None]
    return HypervolumeHistory(
        directions=tuple(study.directions), reference=tuple(float(v) for v in sign * ref_min),
        reference_min=tuple(float(v) for v in ref_min), trial_ids=tuple(ids),
        finished=tuple(range(1, len(ids) + 1)), seconds=tuple(seconds) if timed else None,
        hypervolume=tuple(values), top_budget=max(budgets) if budgets else None,
        flat=tuple(bool(f) for f in np.ptp(points, axis=0) == 0))


def reference_text(history: HypervolumeHistory, names: Sequence[str]) -> str:
    """How the reference point was chosen, and its value per objective (plain text)."""
    from autodl.report.format import number

    parts = []
    flat = history.flat or (False,) * len(names)
    for name, d, r, same in zip(names, history.directions, history.reference, flat):
        side = "the largest value plus" if d == "minimize" else "the smallest value minus"
        of = "10% of its value, at least 0.1: every trial has the same value" if same else "10% of its range"
        parts.append(f"{name} {number(r)} ({side} {of})")
    return ("Reference point, fixed from the data: for each objective the worst value over all complete "
            "trials" + (f" at budget {history.top_budget:g}" if history.top_budget is not None else "")
            + " moved 10% of that objective's range further out: " + "; ".join(parts) + ".")


__all__ = ["HypervolumeHistory", "REFERENCE_MARGIN", "hypervolume_history", "objective_names", "reference_point",
           "reference_text"]


# ------------------------------------------------------------------------------ report sections
def _feasible_note(study, complete: list) -> str:
    infeasible = sum(not t.feasible for t in complete)
    return (f" Constraints: a trial is feasible when every constraint value is ≤ 0; {infeasible} of "
            f"{len(complete)} complete trials are not, and only feasible trials can be on the front."
            if any(t.constraints for t in complete) else "")


def front_section(study, names: Sequence[str]) -> str:
    """The Pareto front plot and table (HTML)."""
    import html

    from autodl.report import format as fmt
    from autodl.report.figures import pareto_front_figure
    from autodl.study import TrialState

    complete = _at_top_budget([t for t in study.get_trials([TrialState.COMPLETE]) if t.values is not None])
    if not complete:
        return "<p class='muted'>No trial completed.</p>"
    front = study.best_trials
    ids = {t.id for t in front}
    first = 1.0 if study.directions[0] == "minimize" else -1.0
    front = sorted(front, key=lambda t: (first * t.values[0], t.id))
    goal = ", ".join(f"{html.escape(n)} ({'lower' if d == 'minimize' else 'higher'} is better)"
                     for n, d in zip(names, study.directions))
    budgets = [t.budget for t in complete if t.budget is not None]
    head = (f"{len(front)} of {len(complete)} complete trials are on the Pareto front: no other complete trial is "
            f"at least as good in every objective and better in one. Objectives: {goal}."
            + (f" Only trials at the largest budget ({max(budgets):g}) count; values at smaller budgets do not "
               "compare." if budgets else "") + _feasible_note(study, complete))
    parts = [f"<p class='muted'>{head}</p>"]
    fig = pareto_front_figure(np.array([t.values for t in complete], dtype=float),
                              np.array([t.id in ids for t in complete]), names, study.directions,
                              feasible=np.array([t.feasible for t in complete]), ids=[t.id for t in complete])
    if fig:
        what = ("the orange line joins the front along the edge of what it dominates; the numbers are trial ids"
                if study.n_objectives == 2 else
                "one panel per pair of objectives; a front member can look dominated in one pair, as it is "
                "optimal over all of them")
        parts.append(f"<figure><img alt=\"Pareto front\" src=\"data:image/png;base64,{fig}\">"
                     f"<figcaption class='muted'>Every complete trial; the front in orange ({what}).</figcaption>"
                     "</figure>")
    if not front:
        parts.append("<p class='warning'>No feasible trial yet, so the front is empty.</p>")
        return "".join(parts)
    constrained = any(t.constraints for t in complete)
    cons = sorted({k for t in front for k in (t.constraints or {})})
    rows = []
    for t in front:
        row: dict[str, Any] = {"trial": t.id, **dict(zip(names, t.values))}
        if constrained:
            row.update({f"constraint {k}": (t.constraints or {}).get(k) for k in cons})
            row["feasible"] = t.feasible
        if budgets:
            row["budget"] = t.budget
        row["config"] = fmt.value(dict(t.config))
        rows.append(row)
    parts.append(f"<p class='muted'>The front, by {html.escape(names[0])} "
                 f"({'lowest' if first > 0 else 'highest'} first):</p>")
    parts.append(fmt.table(rows, css="leaderboard front"))
    return "".join(parts)


def _milestones(n: int) -> list[int]:
    return sorted({k for k in (n // 4, n // 2, (3 * n) // 4, n) if k >= 1})


def hypervolume_section(history: HypervolumeHistory, names: Sequence[str]) -> str:
    """Hypervolume over time: the plot, the reference point and the values at a few points (HTML)."""
    import html

    from autodl.report import format as fmt
    from autodl.report.figures import hypervolume_figure

    parts = [f"<p class='muted'>The hypervolume of the feasible Pareto front after each finished trial: the "
             f"volume of objective space the front dominates, up to the reference point (larger is better; it "
             f"grows only when a trial improves the front). {html.escape(reference_text(history, names))}</p>"]
    fig = hypervolume_figure(history.finished, history.hypervolume, history.seconds)
    if fig:
        parts.append(f"<img alt=\"hypervolume\" src=\"data:image/png;base64,{fig}\">")
    rows = []
    for k in _milestones(len(history.finished)):
        row = {"trials finished": k, "hypervolume": history.hypervolume[k - 1]}
        if history.seconds is not None:
            row["wall time"] = fmt.duration(history.seconds[k - 1])
        rows.append(row)
    parts.append(fmt.table(rows, css="leaderboard"))
    return "".join(parts)


def summary_rows(study, names: Sequence[str], history: HypervolumeHistory | None) -> list[tuple[str, str]]:
    """``(label, text)`` rows of the report's summary for several objectives."""
    from autodl.report.format import number

    rows = [("objectives", ", ".join(f"{n} ({'lower' if d == 'minimize' else 'higher'} is better)"
                                     for n, d in zip(names, study.directions)))]
    front = study.best_trials
    rows.append(("Pareto front", f"{len(front)} trial{'s' * (len(front) != 1)}"
                 + (f" (ids {', '.join(str(t.id) for t in front[:12])}{', …' if len(front) > 12 else ''})"
                    if front else "")))
    if history is not None:
        rows.append(("hypervolume", f"{number(history.hypervolume[-1])} (reference point "
                     + ", ".join(f"{n} {number(r)}" for n, r in zip(names, history.reference)) + ")"))
    return rows


__all__ += ["front_section", "hypervolume_section", "summary_rows"]
