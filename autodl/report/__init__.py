"""``autodl report RUN``: one self-contained HTML page about a run (images embedded, no network).

Sections, each present when the run has what it needs:

* summary and settings (searcher, direction, seed, space, trial counts, best trial);
* best-so-far history (every trial's value, failures marked, the best-so-far line);
* parallel coordinates of the completed trials, coloured by value;
* parameter importances — a random forest fitted on the unit-cube encoding of the configs
  (inactive conditional parameters encoded as -1) predicting the value; the importance of a
  parameter is the mean drop in that forest's R² when the parameter's column is permuted
  (permutation importance, averaged over repeats), normalised to sum to one;
* learning curves of trials that reported intermediate values;
* a rung chart for multi-fidelity runs (value against budget, one line per configuration);
* for NAS runs (``autodl search --nas``): the search curve and the final network's training
  loss (``curves.json``), the architecture weights over epochs (DARTS) and the derived cell
  drawn as a graph. The formats:
  ``alphas.json`` = ``{"ops": [op names], "history": {"normal": [[[w per op] per edge] per
  epoch], "reduce": ...}}`` (softmax weights); ``genotype.json`` = ``{"normal": [[op, src,
  dst], ...], "reduce": [...], ...}`` where ``src`` 0 and 1 are the cell inputs c_{k-2},
  c_{k-1}, ``src`` k+2 is intermediate node k, and ``dst`` is an intermediate node index;
* the leaderboard.

matplotlib is needed (``pip install 'autodl[report]'``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from autodl.errors import UserError


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise UserError("autodl report needs matplotlib; `pip install 'autodl[report]'`") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


# ---------------------------------------------------------------------- figures
def history_figure(study) -> str | None:
    plt = _plt()
    trials = [t for t in study.trials if t.state.finished]
    done = [t for t in trials if t.value is not None and t.state.value == "complete"]
    if not done:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    xs = [t.id for t in done]
    ys = [t.value for t in done]
    ax.scatter(xs, ys, s=14, color="#4c72b0", label="trial value")
    best, line = None, []
    for t in done:
        if best is None or study._better(t.value, best):
            best = t.value
        line.append(best)
    ax.step(xs, line, where="post", color="#dd8452", lw=2, label="best so far")
    failed = [t.id for t in trials if t.state.value == "failed"]
    if failed:
        lo = min(ys)
        ax.scatter(failed, [lo] * len(failed), marker="x", color="#c44e52", label="failed")
    ax.set_xlabel("trial id")
    ax.set_ylabel("value")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def _encoded(study, trials) -> np.ndarray:
    X = np.array([study.space.encode(t.config) for t in trials], dtype=float)
    return np.where(np.isnan(X), -1.0, X)


def parallel_coordinates_figure(study) -> str | None:
    plt = _plt()
    done = [t for t in study.trials if t.state.value == "complete"]
    if len(done) < 2:
        return None
    names = study.space.names
    X = np.array([study.space.encode(t.config) for t in done], dtype=float)
    v = np.array([t.value for t in done])
    order = np.argsort(v if study.direction == "maximize" else -v)  # best drawn last (on top)
    norm = (v - v.min()) / (np.ptp(v) or 1.0)
    if study.direction == "minimize":
        norm = 1 - norm
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names)), 4))
    xs = np.arange(len(names))
    for i in order:
        # NaN (an inactive conditional parameter) breaks the line instead of bridging the gap
        ax.plot(xs, X[i], color=cmap(norm[i]), alpha=0.7, lw=1.2, marker="o", ms=2.5)
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("position in range (unit cube)")
    ax.set_ylim(-0.05, 1.05)
    sm = plt.cm.ScalarMappable(cmap=cmap)
    fig.colorbar(sm, ax=ax, label="better →")
    ax.grid(alpha=0.3)
    return _png(fig)


def parameter_importances(study, seed: int = 0, repeats: int = 5) -> dict[str, float] | None:
    """Permutation importance of each parameter for a random forest fitted on the trials."""
    done = [t for t in study.trials if t.state.value == "complete"]
    if len(done) < 5:
        return None
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    X = _encoded(study, done)
    y = np.array([t.value for t in done])
    if np.ptp(y) == 0:
        return None
    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=seed).fit(X, y)
    imp = permutation_importance(forest, X, y, n_repeats=repeats, random_state=seed).importances_mean
    imp = np.clip(imp, 0, None)
    total = imp.sum() or 1.0
    return dict(sorted(zip(study.space.names, (imp / total).tolist()), key=lambda kv: -kv[1]))


def importance_figure(importances: dict[str, float]) -> str:
    plt = _plt()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(names) + 1))
    ax.barh(names, [importances[n] for n in names], color="#55a868")
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
        color = {"complete": "#4c72b0", "pruned": "#c44e52"}.get(t.state.value, "#999999")
        ax.plot(steps, [t.intermediate[s] for s in steps], color=color, alpha=0.5, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("reported value")
    ax.plot([], [], color="#4c72b0", label="complete")
    ax.plot([], [], color="#c44e52", label="pruned")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def rung_figure(study) -> str | None:
    plt = _plt()
    done = [t for t in study.trials if t.budget is not None and t.value is not None]
    if not done or len({t.budget for t in done}) < 2:
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
    ax.set_xlabel("budget (rung)")
    ax.set_ylabel("value")
    ax.grid(alpha=0.3)
    counts = {}
    for t in done:
        counts[t.budget] = counts.get(t.budget, 0) + 1
    ax.set_title("trials per rung: " + ", ".join(f"{b:g}: {n}" for b, n in sorted(counts.items())), fontsize=9)
    return _png(fig)


def alphas_figure(alphas: dict[str, Any]) -> str | None:
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
            ax.plot(range(1, len(mean) + 1), mean[:, j], label=op)
        ax.set_title(f"{cell} cell")
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean softmax weight")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return _png(fig)


def genotype_figure(genotype: dict[str, Any]) -> str | None:
    """The derived cell(s) as a graph: inputs c_{k-2}, c_{k-1}, intermediate nodes, edges labelled
    with their operation."""
    plt = _plt()
    cells = {k: v for k, v in genotype.items() if isinstance(v, list) and v and isinstance(v[0], (list, tuple))}
    if not cells:
        return None
    fig, axes = plt.subplots(1, len(cells), figsize=(6 * len(cells), 4.2), squeeze=False)
    for ax, (cell, edges) in zip(axes[0], cells.items()):
        n_nodes = max(int(e[2]) for e in edges) + 1 if len(edges[0]) > 2 else len(edges) // 2
        pos = {0: (0, 1), 1: (0, -1)}
        for k in range(n_nodes):
            pos[k + 2] = (1 + k, 0.6 * (-1) ** k)
        out = (n_nodes + 1.5, 0)
        for node, p in pos.items():
            label = ["c_{k-2}", "c_{k-1}"][node] if node < 2 else str(node - 2)
            ax.annotate(label, p, ha="center", va="center", fontsize=9,
                        bbox=dict(boxstyle="round", fc="#e8eef7" if node < 2 else "#f7f1e3"))
        ax.annotate("c_k", out, ha="center", va="center", fontsize=9, bbox=dict(boxstyle="round", fc="#e3f7e6"))
        for e in edges:
            op, src = e[0], int(e[1])
            dst = int(e[2]) + 2 if len(e) > 2 else None
            if dst is None:
                continue
            (x0, y0), (x1, y1) = pos[src], pos[dst]
            ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color="#555", lw=1))
            ax.text((x0 + x1) / 2, (y0 + y1) / 2, op, fontsize=7, ha="center", color="#8a3b12")
        for k in range(n_nodes):
            ax.annotate("", out, pos[k + 2], arrowprops=dict(arrowstyle="->", color="#aaa", lw=0.8, ls="--"))
        ax.set_xlim(-0.7, out[0] + 0.7)
        ax.set_ylim(-1.6, 1.6)
        ax.axis("off")
        ax.set_title(f"{cell} cell")
    return _png(fig)


# ---------------------------------------------------------------------- page
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4} img{max-width:100%} code{background:#f4f4f4;padding:1px 4px}
.muted{color:#777} nav a{margin-right:1em}
"""


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p class='muted'>none</p>"
    cols = list(dict.fromkeys(c for r in rows for c in r))  # every column any row has
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.5g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return "" if v is None else str(v)


def nas_curves_figure(curves: dict[str, Any]) -> str | None:
    """``curves.json`` of a NAS run: the search curve and the final network's training loss."""
    plt = _plt()
    panels = [(k, v) for k, v in curves.items() if isinstance(v, dict) and v.get("values")]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.4), squeeze=False)
    for ax, (name, c) in zip(axes[0], panels):
        ys = [np.nan if v is None else v for v in c["values"]]
        ax.plot(range(len(ys)) if c.get("x") == "epoch" and name == "search" else range(1, len(ys) + 1),
                ys, marker="o", ms=3, lw=1.2, color="#4c72b0")
        ax.set_title(name.replace("_", " "), fontsize=10)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel(c.get("x", "step"))
        ax.set_ylabel(c.get("metric", "value"))
        ax.grid(alpha=0.3)
    return _png(fig)


def _study_sections(study) -> tuple[list, list, list]:
    from autodl.study import TrialState

    trials = study.trials
    counts = {s.value: sum(t.state == s for t in trials) for s in TrialState}
    sections: list[tuple[str, str, str]] = []
    meta = study.storage.get_meta()
    summary_rows = [
        {"setting": "searcher", "value": f"{meta.get('searcher')} {meta.get('searcher_params') or ''}"},
        {"setting": "direction", "value": study.direction},
        {"setting": "seed", "value": meta.get("seed")},
        {"setting": "trials", "value": ", ".join(f"{n} {s}" for s, n in counts.items() if n)},
    ]
    try:
        best = study.best_trial
        summary_rows += [{"setting": "best value", "value": best.value},
                         {"setting": "best trial", "value": best.id},
                         {"setting": "best config", "value": best.config}]
    except ValueError:
        pass
    space_rows = [{"parameter": n, **p.to_dict()} for n, p in study.space.params.items()]

    fig = history_figure(study)
    if fig:
        sections.append(("Best-so-far history", _img(fig, "best so far"), "history"))
    fig = parallel_coordinates_figure(study)
    if fig:
        sections.append(("Parallel coordinates", _img(fig, "parallel coordinates"), "parallel"))
    imp = parameter_importances(study)
    if imp:
        note = ("<p class='muted'>Permutation importance of a random forest fitted on the trials "
                "(unit-cube encoding, inactive parameters as -1), normalised to sum to one.</p>")
        sections.append(("Parameter importances", note + _img(importance_figure(imp), "importances")
                         + _table([{"parameter": k, "importance": v} for k, v in imp.items()]), "importance"))
    fig = learning_curves_figure(study)
    if fig:
        sections.append(("Learning curves", _img(fig, "learning curves"), "curves"))
    fig = rung_figure(study)
    if fig:
        sections.append(("Rungs (multi-fidelity)", _img(fig, "rungs"), "rungs"))
    return summary_rows, sections, space_rows


def build_report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` for the run folder (or study .db) ``run``; returns its path.

    A DARTS run folder has no ``study.db`` (one supernet, no trials): its report has the summary,
    the NAS curves, the architecture weights and the derived cell.
    """
    run = Path(run)
    run_dir = run if run.is_dir() else run.parent
    has_study = (run / "study.db").is_file() if run.is_dir() else run.is_file()
    if not has_study and not (run_dir / "result.json").is_file():
        raise UserError(f"{run} is not an autodl run folder (no study.db)")
    out = Path(out) if out is not None else run_dir / "report.html"
    settings: dict[str, Any] = {}
    if (run_dir / "run.json").is_file():
        settings = json.loads((run_dir / "run.json").read_text())

    study = None
    summary_rows: list[dict[str, Any]] = []
    sections: list[tuple[str, str, str]] = []
    space_rows: list[dict[str, Any]] = []
    if has_study:
        from autodl.study import Study

        study = Study.load(run, searcher="random")  # a read-only view needs no searcher state
        summary_rows, sections, space_rows = _study_sections(study)
    summary_rows += [{"setting": k, "value": v} for k, v in settings.items()]
    if (run_dir / "result.json").is_file():
        result = json.loads((run_dir / "result.json").read_text())
        summary_rows += [{"setting": f"result: {k}", "value": v} for k, v in result.items()
                         if k not in ("best_config",)]
    summary = _table(summary_rows) + ("<h3>Search space</h3>" + _table(space_rows) if space_rows else "")
    sections.insert(0, ("Summary and settings", summary, "summary"))

    for name, builder, title in (("curves.json", nas_curves_figure, "NAS curves"),
                                 ("alphas.json", alphas_figure, "Architecture weights over epochs"),
                                 ("genotype.json", genotype_figure, "Derived cell")):
        path = run_dir / name
        if path.is_file():
            fig = builder(json.loads(path.read_text()))
            if fig:
                sections.append((title, _img(fig, title), name.split(".")[0]))

    if study is not None:
        board = study.leaderboard(top=20)
        rows = board.to_dict(orient="records") if not board.empty else []
        sections.append(("Leaderboard", _table(rows), "leaderboard"))

    nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for t, _, a in sections)
    body = "".join(_section(t, b, a) for t, b, a in sections)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>autodl report: {html.escape(run_dir.name)}"
            f"</title><style>{_CSS}</style></head><body><h1>autodl report: {html.escape(run_dir.name)}</h1>"
            f"<p class='muted'>generated {time.strftime('%Y-%m-%d %H:%M:%S')}</p><nav>{nav}</nav>{body}"
            "</body></html>")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


__all__ = ["build_report", "nas_curves_figure", "parameter_importances"]
