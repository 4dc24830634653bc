"""The report's figures: each returns a base64 PNG (or None when the run lacks what it needs).

matplotlib is imported here, on first use, never by ``import autodl``.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Mapping, Sequence

import numpy as np

from autodl._deps import require
from autodl.report.format import number

_BLUE, _ORANGE, _RED, _GREEN = "#4c72b0", "#dd8452", "#c44e52", "#55a868"


def _plt():
    require("matplotlib", "report", "the HTML report")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _integer_ticks(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _complete(study) -> list:
    return [t for t in study.trials if t.state.value == "complete" and t.value is not None]


# ----------------------------------------------------------------------------- study figures
def history_figure(study, metric: str = "value") -> str | None:
    """Every complete trial's value and the best so far; failures marked. With several budgets
    the points are coloured by budget and the best-so-far line follows the largest budget only
    (values at different budgets do not compare)."""
    plt = _plt()
    done = _complete(study)
    if not done:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    budgets = sorted({t.budget for t in done if t.budget is not None})
    if len(budgets) > 1:
        colors = plt.get_cmap("tab10")
        for i, b in enumerate(budgets):
            ts = [t for t in done if t.budget == b]
            ax.scatter([t.id for t in ts], [t.value for t in ts], s=16, color=colors(i % 10), label=f"budget {b:g}")
        line_trials = [t for t in done if t.budget == budgets[-1]]
        line_label = f"best so far at budget {budgets[-1]:g}"
    else:
        ax.scatter([t.id for t in done], [t.value for t in done], s=16, color=_BLUE, label="trial value")
        line_trials, line_label = done, "best so far"
    best, line = None, []
    for t in line_trials:
        if best is None or study._better(t.value, best):
            best = t.value
        line.append(best)
    if line_trials:
        xs = [t.id for t in line_trials] + [max(t.id for t in done)]
        ax.step(xs, line + line[-1:], where="post", color=_ORANGE, lw=2, label=line_label)
    failed = [t.id for t in study.trials if t.state.value == "failed"]
    if failed:
        lo = min(t.value for t in done)
        ax.scatter(failed, [lo] * len(failed), marker="x", color=_RED, label="failed")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    _integer_ticks(ax.xaxis)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def parallel_coordinates_figure(study, names: Sequence[str], trials: Sequence, metric: str = "value") -> str | None:
    """One vertical axis per parameter in ``names`` (labelled in the parameter's own units: its
    choices, or its low / middle / high value), one line per trial coloured by its value, the
    best drawn on top. An inactive conditional parameter breaks the line."""
    plt = _plt()
    from matplotlib.colors import Normalize

    if len(trials) < 2 or not names:
        return None
    space = study.space
    X = np.array([[space.params[n].to_unit(t.config[n]) if n in t.config else np.nan for n in names]
                  for t in trials], dtype=float)
    v = np.array([t.value for t in trials], dtype=float)
    maximize = study.direction == "maximize"
    order = np.argsort(v if maximize else -v)  # best drawn last, on top
    cmap = plt.get_cmap("viridis" if maximize else "viridis_r")  # yellow is better either way
    norm = Normalize(v.min(), v.max() if np.ptp(v) else v.min() + 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.9 * len(names) + 1.5), 4.2))
    xs = np.arange(len(names))
    for i in order:
        ax.plot(xs, X[i], color=cmap(norm(v[i])), alpha=0.75, lw=1.3, marker="o", ms=3)
    for j, n in enumerate(names):
        ax.axvline(j, color="#888", lw=0.8, zorder=0)
        p = space.params[n]
        if hasattr(p, "choices"):
            step = max(1, len(p.choices) // 10)
            ticks = [(p.to_unit(c), str(c)) for c in p.choices[::step]]
        else:
            ticks = [(u, number(p.from_unit(u))) for u in (0.0, 0.5, 1.0)]
        for u, label in ticks:
            ax.text(j + 0.04, u, label, fontsize=7, va="center", ha="left", color="#333",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=20 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center",
                       fontsize=9)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(names) - 0.3)
    ax.set_ylim(-0.06, 1.06)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=norm)
    fig.colorbar(sm, ax=ax, label=f"{metric} ({'higher' if maximize else 'lower'} is better)")
    return _png(fig)


def parameter_importances(study, seed: int = 0, repeats: int = 5, objective: int | None = None
                          ) -> dict[str, float] | None:
    """Permutation importance of each parameter for a random forest fitted on the trials.

    ``objective`` picks one value of a study with several objectives (its trials have ``values``
    but no single ``value``: without it, None). None with fewer than 5 complete trials or when
    they all have the same value.
    """
    if objective is None:
        done = _complete(study)
    else:
        done = [t for t in study.trials if t.state.value == "complete" and t.values is not None]
    if len(done) < 5:
        return None
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    X = np.array([study.space.encode(t.config) for t in done], dtype=float)
    X = np.where(np.isnan(X), -1.0, X)
    y = np.array([t.value if objective is None else t.values[objective] for t in done], dtype=float)
    if np.ptp(y) == 0:
        return None
    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=seed).fit(X, y)
    imp = permutation_importance(forest, X, y, n_repeats=repeats, random_state=seed).importances_mean
    imp = np.clip(imp, 0, None)
    total = imp.sum() or 1.0
    return dict(sorted(zip(study.space.names, (imp / total).tolist()), key=lambda kv: -kv[1]))


def importance_figure(importances: Mapping[str, float], top: int = 15) -> str | None:
    """Bars of the ``top`` parameters with a share above zero, each labelled with its percentage."""
    plt = _plt()
    shown = [(n, s) for n, s in importances.items() if s > 0][:top][::-1]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(shown) + 1))
    ax.barh([n for n, _ in shown], [s for _, s in shown], color=_GREEN)
    for i, (_, s) in enumerate(shown):
        ax.text(s, i, f" {100 * s:.0f}%" if s >= 0.01 else " <1%", va="center", fontsize=8)
    ax.set_xlim(0, max(s for _, s in shown) * 1.15)
    ax.set_xlabel("share of permutation importance")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def learning_curves_figure(study, top: int = 30) -> str | None:
    plt = _plt()
    curves = [t for t in study.trials if t.intermediate]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for t in curves[-top * 4:]:
        steps = sorted(t.intermediate)
        color = {"complete": _BLUE, "pruned": _RED}.get(t.state.value, "#999999")
        ax.plot(steps, [t.intermediate[s] for s in steps], color=color, alpha=0.5, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("reported value")
    _integer_ticks(ax.xaxis)
    ax.plot([], [], color=_BLUE, label="complete")
    ax.plot([], [], color=_RED, label="pruned")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def rung_figure(study, metric: str = "value") -> str | None:
    """Value against budget, one line per configuration (multi-fidelity runs)."""
    plt = _plt()
    done = [t for t in study.trials if t.budget is not None and t.value is not None]
    budgets = sorted({t.budget for t in done})
    if len(budgets) < 2:
        return None
    from autodl.space import config_key

    by_config: dict[str, list] = {}
    for t in done:
        by_config.setdefault(config_key(t.config), []).append(t)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    for ts in by_config.values():
        ts.sort(key=lambda t: t.budget)
        ax.plot([t.budget for t in ts], [t.value for t in ts], marker="o", ms=3, lw=0.8, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xticks(budgets)
    ax.set_xticklabels([f"{b:g}" for b in budgets])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("budget (rung)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    counts = {b: sum(t.budget == b for t in done) for b in budgets}
    ax.set_title("trials per rung: " + ", ".join(f"budget {b:g}: {n}" for b, n in counts.items()), fontsize=9)
    return _png(fig)


# ------------------------------------------------------------------------------- NAS figures
def nas_curves_figure(curves: Mapping[str, Any]) -> str | None:
    """``curves.json`` of a NAS run: the search curve and the final network's training loss."""
    plt = _plt()
    panels = [(k, v) for k, v in curves.items() if isinstance(v, Mapping) and v.get("values")]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.4), squeeze=False)
    for ax, (name, c) in zip(axes[0], panels):
        ys = [np.nan if v is None else v for v in c["values"]]
        start = 0 if c.get("x") == "epoch" and name == "search" else 1
        ax.plot(range(start, start + len(ys)), ys, marker="o", ms=3, lw=1.2, color=_BLUE)
        ax.set_title(name.replace("_", " "), fontsize=10)
        _integer_ticks(ax.xaxis)
        ax.set_xlabel(c.get("x", "step"))
        ax.set_ylabel(c.get("metric", "value"))
        ax.grid(alpha=0.3)
    return _png(fig)


def alphas_figure(alphas: Mapping[str, Any]) -> str | None:
    """Architecture weights over epochs: one panel per cell type, one line per operation
    (softmax weight averaged over the cell's edges)."""
    plt = _plt()
    cells = {k: v for k, v in alphas.get("history", {}).items() if v}
    ops = alphas.get("ops")
    if not cells or not ops:
        return None
    fig, axes = plt.subplots(1, len(cells), figsize=(6 * len(cells), 3.6), squeeze=False)
    for ax, (cell, history) in zip(axes[0], cells.items()):
        arr = np.asarray(history, dtype=float)  # epochs x edges x ops
        mean = arr.mean(axis=1)
        for j, op in enumerate(ops):
            ax.plot(range(1, len(mean) + 1), mean[:, j], label=op, marker="o", ms=2.5)
        ax.set_title(f"{cell} cell")
        ax.set_xlabel("epoch")
        _integer_ticks(ax.xaxis)
        ax.set_ylabel("mean softmax weight")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return _png(fig)


def _edge(ax, src, dst, rad: float, style: dict, label: str | None = None, t: float = 0.5) -> None:
    """An arrow from ``src`` to ``dst`` bent by ``rad``, its label at fraction ``t`` of the way."""
    ax.annotate("", dst, src, arrowprops=dict(style, connectionstyle=f"arc3,rad={rad}"))
    if label is None:
        return
    # matplotlib's arc3 is a quadratic Bezier in display space with control point mid + rad * (dy, -dx)
    (x0, y0), (x1, y1) = ax.transData.transform(src), ax.transData.transform(dst)
    cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
    px = (1 - t) ** 2 * x0 + 2 * t * (1 - t) * cx + t ** 2 * x1
    py = (1 - t) ** 2 * y0 + 2 * t * (1 - t) * cy + t ** 2 * y1
    ax.text(*ax.transData.inverted().transform((px, py)), label, fontsize=7.5, ha="center", va="center",
            color="#8a3b12", zorder=4, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))


def genotype_figure(genotype: Mapping[str, Any]) -> str | None:
    """The derived cell(s) as a graph: inputs c_{k-2}, c_{k-1}, intermediate nodes, edges labelled
    with their operation; the output c_k concatenates the intermediate nodes."""
    plt = _plt()
    cells = {k: v for k, v in genotype.items()
             if isinstance(v, list) and v and isinstance(v[0], (list, tuple)) and len(v[0]) > 2}
    if not cells:
        return None
    most = max(max(int(e[2]) for e in edges) + 1 for edges in cells.values())
    width = max(6.5, 0.75 * (3.0 * most + 2.6))  # about 2.2 inches between intermediate nodes
    side_by_side = width <= 8  # larger cells one above the other, so the page does not shrink them
    rows, cols = (1, len(cells)) if side_by_side else (len(cells), 1)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 4.6 * rows), squeeze=False)
    box = dict(boxstyle="round,pad=0.35", lw=1)
    for ax, (cell, edges) in zip(axes.ravel(), cells.items()):
        n_nodes = max(int(e[2]) for e in edges) + 1
        # inputs above and below the left end, intermediate nodes on one line: a straight edge from
        # an input never crosses another node; edges that skip a node bend around it
        pos = {0: (0.0, 1.3), 1: (0.0, -1.3), **{k + 2: (2.0 + 3.0 * k, 0.0) for k in range(n_nodes)}}
        out = (3.0 * n_nodes + 1.0, 0.0)
        ax.set_xlim(-0.8, out[0] + 0.8)
        ax.set_ylim(-1.8, 1.8)
        ax.axis("off")
        ax.set_title(f"{cell} cell")
        labels = {0: "$c_{k-2}$", 1: "$c_{k-1}$", **{k + 2: f"node {k}" for k in range(n_nodes)}}
        for node, p in pos.items():
            ax.text(*p, labels[node], ha="center", va="center", fontsize=10, zorder=3,
                    bbox=dict(box, fc="#e8eef7" if node < 2 else "#f7f1e3"))
        ax.text(*out, "$c_k$", ha="center", va="center", fontsize=10, zorder=3, bbox=dict(box, fc="#e3f7e6"))
        arrow = dict(arrowstyle="-|>", color="#555", lw=1.1, shrinkA=18, shrinkB=18, mutation_scale=12)
        for op, src, dst in ((e[0], int(e[1]), int(e[2]) + 2) for e in edges):
            skips = src >= 2 and dst - src > 1
            # labels of edges from one input to different nodes sit at different x
            _edge(ax, pos[src], pos[dst], 0.3 if skips else 0.0, arrow, op, t=0.5 if src >= 2 else 0.35 + 0.15 * (dst - 2))
        for k in range(n_nodes):
            _edge(ax, pos[k + 2], out, 0.12 * (n_nodes - 1 - k), dict(arrow, color="#aaa", ls="--", lw=0.9))
    return _png(fig)


# ------------------------------------------------------------------- several objectives
def _axis_label(name: str, direction: str) -> str:
    return f"{name} ({'lower' if direction == 'minimize' else 'higher'} is better)"


def _staircase(front: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """The boundary of what the 2-D ``front`` dominates, as a polyline through its points: built
    with both objectives minimized (sorted by the first, the second falls), then mapped back."""
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    y = front * sign
    y = y[np.lexsort((y[:, 1], y[:, 0]))]
    corners = [y[0]]
    for a, b in zip(y[:-1], y[1:]):
        corners += [np.array([b[0], a[1]]), b]
    return np.array(corners) * sign


def pareto_front_figure(values: np.ndarray, on_front: np.ndarray, names: Sequence[str], directions: Sequence[str],
                        feasible: np.ndarray | None = None, ids: Sequence[int] | None = None) -> str | None:
    """Every complete trial's objective values, the Pareto front highlighted (and, with two
    objectives, joined by the boundary of what it dominates); infeasible trials as grey crosses.
    With three or more objectives, one panel per pair of objectives (the front is the front in
    all of them, so a front point can look dominated in one pair)."""
    plt = _plt()
    values = np.asarray(values, dtype=float)
    on_front = np.asarray(on_front, dtype=bool)
    feasible = np.ones(len(values), dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    m = values.shape[1] if values.ndim == 2 else 0
    if len(values) == 0 or m < 2:
        return None
    pairs = [(i, j) for j in range(1, m) for i in range(j)]  # (x objective, y objective)
    n = m - 1
    size = 5.0 if m == 2 else 3.2
    fig, axes = plt.subplots(n, n, figsize=(size * n + (2.5 if m == 2 else 0), size * n * (0.75 if m == 2 else 1)),
                             squeeze=False)
    for r in range(n):
        for c in range(n):
            if c > r:
                axes[r][c].axis("off")
    rest = ~on_front
    for i, j in pairs:
        ax = axes[j - 1][i]
        ax.scatter(values[rest & feasible, i], values[rest & feasible, j], s=14, color=_BLUE, alpha=0.55,
                   label="trial")
        if (~feasible).any():
            ax.scatter(values[~feasible, i], values[~feasible, j], s=18, marker="x", color="#999999",
                       label="infeasible")
        ax.scatter(values[on_front, i], values[on_front, j], s=34, color=_ORANGE, edgecolor="#7a3a10", zorder=3,
                   label="Pareto front")
        if m == 2 and on_front.any():
            line = _staircase(values[on_front][:, [i, j]], [directions[i], directions[j]])
            ax.plot(line[:, 0], line[:, 1], color=_ORANGE, lw=1.5, zorder=2)
            if ids is not None and on_front.sum() <= 15:
                for k in np.flatnonzero(on_front):
                    ax.annotate(str(ids[k]), (values[k, i], values[k, j]), textcoords="offset points",
                                xytext=(4, 4), fontsize=7, color="#7a3a10")
        if j == m - 1:  # one column per x objective, one row per y objective: label the outer panels
            ax.set_xlabel(_axis_label(names[i], directions[i]), fontsize=9)
        if i == 0:
            ax.set_ylabel(_axis_label(names[j], directions[j]), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _png(fig)


def hypervolume_figure(finished: Sequence[int], hypervolume: Sequence[float],
                       seconds: Sequence[float] | None = None) -> str | None:
    """The hypervolume of the feasible front against the number of finished trials and, when the
    trials' times are stored, against the wall time since the first trial started."""
    plt = _plt()
    if not len(finished):
        return None
    panels = [("trials finished", finished)] + ([("seconds since the first trial started", seconds)]
                                                 if seconds is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.4), squeeze=False)
    for ax, (label, xs) in zip(axes[0], panels):
        ax.step(xs, hypervolume, where="post", color=_GREEN, lw=2)
        ax.scatter(xs, hypervolume, s=8, color=_GREEN)
        ax.set_xlabel(label)
        ax.set_ylabel("hypervolume")
        if label == "trials finished":
            _integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
    return _png(fig)
