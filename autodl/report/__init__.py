"""``autodl report RUN``: one self-contained HTML page about a run (images embedded, no network).

Sections, each present when the run has what it needs:

* summary: kind, data set, metric, best and test score, best configuration, trial counts, when
  the run started and finished;
* settings: what was asked (``run.json``) and what the run recorded (``result.json``), each
  setting once (nested and repeated keys merged), unset ones listed in one line; the search space;
* best-so-far history (every trial's value, failures marked, the best-so-far line);
* parameter importances -- a random forest fitted on the unit-cube encoding of the configs
  (inactive conditional parameters encoded as -1) predicting the value; the importance of a
  parameter is the mean drop in that forest's R² when the parameter's column is permuted
  (permutation importance, averaged over repeats), normalised to sum to one. The section says
  how many complete trials they rest on, and warns below :data:`FEW_TRIALS`;
* parallel coordinates of the completed trials over the :data:`PARALLEL_PARAMETERS` most
  important parameters, coloured by value;
* learning curves of trials that reported intermediate values;
* a rung chart for multi-fidelity runs (value against budget, one line per configuration);
* for NAS runs (``autodl search --nas``): the search curve and the final network's training
  loss (``curves.json``), the architecture weights over epochs (DARTS) and the derived cell
  drawn as a graph. The formats:
  ``alphas.json`` = ``{"ops": [op names], "history": {"normal": [[[w per op] per edge] per
  epoch], "reduce": ...}}`` (softmax weights); ``genotype.json`` = ``{"normal": [[op, src,
  dst], ...], "reduce": [...], ...}`` where ``src`` 0 and 1 are the cell inputs c_{k-2},
  c_{k-1}, ``src`` k+2 is intermediate node k, and ``dst`` is an intermediate node index;
* the leaderboard (columns no listed trial uses are left out);
* for several objectives (:mod:`autodl.report.multiobjective`): the objectives by name, the
  Pareto front as a plot of every complete trial (one panel per pair of objectives for three or
  more) and as a table, the hypervolume of the feasible front over finished trials and wall
  time against a reference point stated on the page, importances per objective, and the
  leaderboard by non-dominated front.

``result.json`` is read through :func:`autodl.report.result.result_fields`, which accepts the
envelope every kind writes and the older per-kind shapes. matplotlib is needed
(``pip install 'autodl[report]'``).
"""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import Any, Mapping

from autodl.errors import UserError
from autodl.report import format as fmt
from autodl.report.figures import (alphas_figure, genotype_figure, history_figure, hypervolume_figure, importance_figure,
                                   learning_curves_figure, nas_curves_figure, parallel_coordinates_figure,
                                   parameter_importances, pareto_front_figure, rung_figure)
from autodl.report.multiobjective import (HypervolumeHistory, front_section, hypervolume_history, hypervolume_section,
                                          objective_names, summary_rows)
from autodl.report.result import RunResult, result_fields

#: below this many complete trials the importances carry a warning
FEW_TRIALS = 20
#: the parallel-coordinates plot shows at most this many parameters (the most important)
PARALLEL_PARAMETERS = 6
#: rows of the leaderboard
LEADERBOARD_ROWS = 20

#: settings of ``run.json`` that a NAS method does not use (the spec holds every method's)
_UNUSED_BY = {
    ("nas", "darts"): {"n_trials", "candidate_epochs", "min_epochs", "population", "sample_size", "n_workers",
                       "executor", "dask_scheduler", "trial_timeout", "max_retries"},
    ("nas", "evolution"): {"epochs", "order", "guard", "arch_lr"},
    ("nas", "random"): {"epochs", "order", "guard", "arch_lr", "population", "sample_size"},
}
#: mappings shown as one value, not merged into the settings key by key
_VALUE_MAPPINGS = {"searcher_params", "best_config", "config", "genotype"}


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _p(text: str, css: str = "muted") -> str:
    return f"<p class='{css}'>{text}</p>"


def _codes(names) -> str:
    return ", ".join(f"<code>{html.escape(str(n))}</code>" for n in names)


# ------------------------------------------------------------------------------- summary
def _searcher_text(meta: Mapping[str, Any], settings: Mapping[str, Any]) -> str | None:
    name = meta.get("searcher") or settings.get("searcher")
    if name is None:
        return None
    params = meta.get("searcher_params") or settings.get("searcher_params") or {}
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            params = {}
    shown = fmt.value({k: v for k, v in params.items() if v is not None}) if isinstance(params, Mapping) else ""
    return f"{name} ({shown})" if shown else str(name)


def _summary(result: RunResult, settings: Mapping[str, Any], study, run_dir: Path,
             names: list[str] | None = None, history: HypervolumeHistory | None = None) -> str:
    """The summary table; ``names`` (and ``history``) for a study with several objectives."""
    rows: list[dict[str, str]] = []

    def row(label: str, text: str | None, raw: bool = False) -> None:
        if text not in (None, ""):
            rows.append({"": label, "value": text if raw else html.escape(text)})

    kind = result.kind or settings.get("kind") or "tabular"
    detail = [str(x) for x in (settings.get("task") or result.extra.get("task"),
                               settings.get("method") or result.extra.get("method"),
                               f"{settings['space']} space" if kind == "nas" and settings.get("space") else None,
                               settings.get("model") if kind == "nn" else None) if x]
    row("kind", kind + (f" ({', '.join(detail)})" if detail else ""))
    row("data set", fmt.value(settings.get("dataset") or settings.get("data") or result.extra.get("dataset")))
    several = names is not None or isinstance(result.direction, (list, tuple))
    direction = result.direction or (study.direction if study is not None else None)
    metric = result.metric or settings.get("metric")
    if several and study is not None and names is not None:
        for label, text in summary_rows(study, names, history):
            row(label, text)
    elif several:
        row("objectives", fmt.value(metric))
    elif metric:
        better = {"maximize": "higher is better", "minimize": "lower is better"}.get(direction, direction)
        row("metric", f"{fmt.value(metric)} ({better})" if better else fmt.value(metric))
    best, where = result.best_value, []
    if best is None and study is not None:
        try:
            best = study.best_trial.value
        except ValueError:
            pass
    if result.best_trial is not None:
        where.append(f"trial {result.best_trial}")
    if result.best_budget is not None:
        where.append(f"budget {fmt.value(result.best_budget)}")
    method = settings.get("method") or result.extra.get("method")
    if best is not None and not several:
        source = "cross-validation" if settings.get("cv") else "validation split"
        if kind == "nas" and method == "darts":
            epochs = result.extra.get("search_epochs") or settings.get("epochs")
            source = "the supernet on the validation split" + (f" after {epochs} search epochs" if epochs else "")
        elif kind == "nas" and settings.get("candidate_epochs"):
            where.append(f"candidates trained {settings['candidate_epochs']} epochs")
        row("best value (search)", f"{fmt.value(best)} — {source}" + (f", {', '.join(where)}" if where else ""))
    if result.test_score is not None:
        share = settings.get("test_size")
        held = f"held-out test split ({fmt.value(100 * share)}% of rows)" if isinstance(share, float) else "held-out test split"
        if kind == "nas" and settings.get("train_epochs"):
            held = f"final network trained {settings['train_epochs']} epochs, {held}"
        test = result.test_score
        if isinstance(test, (list, tuple)) and names is not None and len(test) == len(names):
            test = {n: v for n, v in zip(names, test)}
        row("test score (final model)", f"{fmt.value(test)} — {held}")
    config = result.best_config
    if config is None and study is not None and not several:
        try:
            config = study.best_trial.config
        except ValueError:
            config = None
    if config:
        if set(config) == {"genotype"}:
            row("best configuration", "the derived cell (see <a href='#genotype'>Derived cell</a>)", raw=True)
        else:
            row("best configuration", fmt.config_html(config), raw=True)
    if study is not None:
        counts: dict[str, int] = {}
        for t in study.trials:
            counts[t.state.value] = counts.get(t.state.value, 0) + 1
        row("trials", ", ".join(f"{n} {s}" for s, n in counts.items()) or "none")
        meta = study.storage.get_meta()
        row("searcher", _searcher_text(meta, settings))
        row("seed", fmt.value(meta.get("seed", settings.get("seed"))))
        started = [t.started for t in study.trials if t.started is not None]
        finished = [t.finished for t in study.trials if t.finished is not None]
        if started:
            row("started", fmt.date_time(min(started)))
        if finished:
            row("finished", fmt.date_time(max(finished)))
            if started:
                row("wall time of the trials", fmt.duration(max(finished) - min(started)))
    else:
        row("searcher", _searcher_text({}, settings))
        row("seed", fmt.value(settings.get("seed")))
        seconds = {k: result.extra.get(k) for k in ("search_seconds", "train_seconds")}
        if any(v is not None for v in seconds.values()):
            row("time", ", ".join(f"{k.split('_')[0].replace('train', 'final training')} {fmt.duration(v)}"
                                  for k, v in seconds.items() if v is not None))
        when = result.extra.get("finished")
        if not isinstance(when, (int, float)) and (run_dir / "result.json").is_file():
            when = (run_dir / "result.json").stat().st_mtime
        if isinstance(when, (int, float)):
            row("finished", fmt.date_time(when))
    return fmt.table(rows, cols=["", "value"], raw=["value"], css="summary", header=False)


# ------------------------------------------------------------------------------- settings
def _flatten(data: Mapping[str, Any]):
    """``(key, value)`` of ``data`` with nested mappings merged in by their own keys."""
    for k, v in data.items():
        if isinstance(v, Mapping) and k not in _VALUE_MAPPINGS:
            yield from _flatten(v)
        else:
            yield k, v


def _with_plan_summary(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with a tabular column plan (run.json's ``column_plan``, result.json's ``columns``:
    :meth:`~autodl.tabular.columns.ColumnPlan.to_dict`) as one ``columns`` row of its own summary
    lines ("numeric (13): alcohol, ...; ignored (1): id (ID-like)") instead of its raw lists."""
    keys = [k for k in ("column_plan", "columns") if isinstance(data.get(k), Mapping) and "columns" in data[k]]
    if not keys:
        return data
    from autodl.tabular.columns import ColumnPlan

    out = {k: v for k, v in data.items() if k not in keys}
    out["columns"] = "; ".join(ColumnPlan.from_dict(data[keys[0]]).summary_lines(width=fmt._LIST_ITEMS))
    return out


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == [] or v == {} or (isinstance(v, float) and math.isnan(v))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


#: keys the summary shows (or that say nothing to a reader)
_IN_SUMMARY = {"kind", "format", "__format__", "dataset", "method", "task", "metric", "direction", "seed",
               "searcher", "searcher_params", "best_config", "finished"}


def _settings(settings: Mapping[str, Any], result: RunResult, skip: set[str]) -> str:
    """Two tables, what was asked and what was recorded, each key once across both."""
    kind = result.kind or settings.get("kind") or "tabular"
    unused = _UNUSED_BY.get((kind, settings.get("method") or result.extra.get("method")), set())
    rows: dict[str, dict[str, Any]] = {}  # key -> {"value", "source", "others"}
    for source, data in (("run.json", settings), ("result.json", result.extra)):
        for key, v in _flatten(_with_plan_summary(data)):
            if key in skip or key in _IN_SUMMARY:
                continue
            r = rows.get(key)
            if r is None:
                rows[key] = {"value": v, "source": source, "others": []}
            elif _empty(r["value"]) and not _empty(v):
                r.update(value=v, source=source)
            elif not _empty(v) and not _same(r["value"], v) and not any(_same(o, v) for _, o in r["others"]):
                r["others"].append((source, v))
    tables, unset, not_used = [], [], []
    for source, title in (("run.json", "What was asked (run.json)"), ("result.json", "What the run recorded (result.json)")):
        shown = []
        for key, r in rows.items():
            if r["source"] != source:
                continue
            if key in unused:
                not_used.append(key)
            elif _empty(r["value"]):
                unset.append(key)
            else:
                text = fmt.value(r["value"], key)
                text += "".join(f" (also {fmt.value(o, key)} in {s})" for s, o in r["others"])
                shown.append({"setting": key, "value": text})
        if shown:
            tables.append(f"<h3>{html.escape(title)}</h3>" + fmt.table(shown, css="settings"))
    notes = []
    if unset:
        notes.append(_p("Not set: " + _codes(unset) + "."))
    if not_used:
        method = settings.get("method") or result.extra.get("method")
        notes.append(_p(f"Not used by {html.escape(str(method))}: " + _codes(not_used) + "."))
    return "".join(tables) + "".join(notes)


def _space_table(space) -> str:
    rows = []
    for name, p in space.params.items():
        d = p.to_dict()
        if d["type"] == "categorical":
            what = ", ".join(fmt.value(c) if c is not None else "none" for c in d["choices"])
        else:
            what = f"{fmt.value(d['low'])} … {fmt.value(d['high'])}"
            what += " (log scale)" if d.get("log") else ""
            what += f", step {fmt.value(d['step'])}" if d.get("step") is not None else ""
        when = " and ".join(f"{parent} is " + " or ".join(fmt.value(v) for v in values)
                            for parent, values in d.get("condition", {}).items())
        rows.append({"parameter": name, "type": d["type"], "range or choices": what, "used when": when or "always"})
    return "<h3>Search space</h3>" + fmt.table(rows, css="space")


# ------------------------------------------------------------------------------- study sections
def _importance_section(study, importances: Mapping[str, float] | None, n_complete: int,
                        label: str = "importances") -> str:
    parts = []
    budgets = sorted({t.budget for t in study.trials if t.state.value == "complete" and t.budget is not None})
    if importances is None:
        why = (f"only {n_complete} complete trial{'s' * (n_complete != 1)}; at least 5 are needed"
               if n_complete < 5 else f"all {n_complete} complete trials have the same value")
        return _p(f"<strong>Not computed:</strong> {why}.", "warning")
    parts.append(_p(f"These importances rest on <strong>{n_complete} complete trials</strong>: a random forest "
                    "fitted on them predicts the value, and a parameter's importance is how much worse it predicts "
                    "when that parameter's column is shuffled (normalised to sum to one)."))
    if n_complete < FEW_TRIALS:
        parts.append(_p(f"<strong>Only {n_complete} complete trials</strong> (fewer than {FEW_TRIALS}): too few for "
                        "the forest to separate the parameters' effects from chance. Treat the ranking as a rough "
                        "hint; it can change completely with more trials.", "warning"))
    if len(budgets) > 1:
        parts.append(_p("The trials ran at different budgets (" + ", ".join(f"{b:g}" for b in budgets) + "); "
                        "their values are mixed here, so part of what the forest explains is the budget."))
    fig = importance_figure(importances)
    if fig:
        parts.append(_img(fig, label))
    zero = [n for n, s in importances.items() if s <= 0]
    if zero:
        parts.append(_p(f"No measurable importance ({len(zero)}): " + _codes(zero) + "."))
    return "".join(parts)


def parallel_parameters(space, importances: Mapping[str, float] | None, trials, k: int = PARALLEL_PARAMETERS
                        ) -> tuple[list[str], str]:
    """The parameters the parallel-coordinates plot shows (at most ``k``) and why those."""
    names = list(space.names)
    if importances:
        ranked = [n for n, s in importances.items() if s > 0] or list(importances)
        chosen = ranked[:k]
        if len(names) <= k:
            return chosen + [n for n in names if n not in chosen], f"all {len(names)} parameters, most important first"
        return chosen, f"the {len(chosen)} most important of {len(names)} parameters (see the importances)"
    if len(names) <= k:
        return names, f"all {len(names)} parameters"
    used = sorted(names, key=lambda n: -sum(n in t.config for t in trials))  # stable: space order on ties
    return used[:k], (f"{k} of {len(names)} parameters, those set in the most trials "
                      "(importances could not be computed)")


def _parallel_section(study, importances, metric: str) -> str:
    done = [t for t in study.trials if t.state.value == "complete" and t.value is not None]
    budgets = sorted({t.budget for t in done if t.budget is not None})
    note = ""
    if len(budgets) > 1:
        top = [t for t in done if t.budget == budgets[-1]]
        if len(top) >= 3:
            note = f" Trials at the largest budget ({budgets[-1]:g}) only: {len(top)} of {len(done)} complete trials."
            done = top
    names, why = parallel_parameters(study.space, importances, done)
    fig = parallel_coordinates_figure(study, names, done, metric)
    if not fig:
        return ""
    caption = (f"Showing {why}: {_codes(names)}.{note} Each axis is labelled in the parameter's own units; "
               "a line that stops at an axis: that parameter is not used by the configuration.")
    return f"<figure>{_img(fig, 'parallel coordinates')}<figcaption class='muted'>{caption}</figcaption></figure>"


def _leaderboard(study, metric: str, names: list[str] | None = None) -> str:
    board = study.leaderboard(top=LEADERBOARD_ROWS)
    if board.empty:
        return _p("No trial completed.")
    n_complete = sum(t.state.value == "complete" for t in study.trials)
    dropped = [c for c in board.columns if board[c].isna().all()]
    board = board.drop(columns=dropped)
    params = [n for n in study.space.names if n in board.columns]  # the space's order, not pandas'
    board = board[[c for c in board.columns if c not in params] + params]
    spread = {t.id: t.user_attrs["cv_std"] for t in study.trials
              if isinstance(t.user_attrs.get("cv_std"), (int, float))}  # over the CV folds
    if names is None and any(i in spread for i in board["id"]):
        board.insert(list(board.columns).index("value") + 1, "± std", [spread.get(i) for i in board["id"]])
    rows = board.to_dict(orient="records")
    renamed = {"id": "trial", "value": metric, **{f"value_{k}": n for k, n in enumerate(names or [])}}
    rows = [{renamed.get(k, k): fmt.duration(v) if k == "duration" and v is not None and v == v else v
             for k, v in r.items()} for r in rows]
    head = f"The {len(rows)} best of {n_complete} complete trials" if len(rows) < n_complete else \
        f"All {n_complete} complete trials, best first"
    if names is not None:
        head = (f"{'The first ' + str(len(rows)) + ' of' if len(rows) < n_complete else 'All'} {n_complete} complete "
                "trials by non-dominated front (front 0 is the Pareto front, front 1 the front of the rest, ...; "
                "infeasible trials last, by violation), then by id")
    if "budget" in board.columns:
        head += ", largest budget first (values at different budgets do not compare)"
    head += "." + (" A blank cell: the parameter is not used by that configuration." if study.space.is_conditional else "")
    if "± std" in board.columns:
        head += " ± std: the standard deviation of the score over the cross-validation folds."
    if dropped:
        head += f" Left out, not used by any of these trials: {_codes(dropped)}."
    return _p(head) + fmt.table(rows, css="leaderboard")


def _ensemble_section(raw_result: Mapping[str, Any] | None, metric: str) -> str | None:
    """The members of a tabular run's ensemble, or None when one trial predicts."""
    ens = ((raw_result or {}).get("extra") or {}).get("ensemble")
    if not ens:
        return None
    head = (f"The run predicts with a weighted ensemble of {len(ens['members'])} trials (greedy ensemble selection "
            f"on their out-of-fold predictions): {metric} {fmt.value(ens['ensemble_score'])} out-of-fold, against "
            f"{fmt.value(ens['single_score'])} for the best trial alone, over {ens.get('rows')} training rows.")
    if ens.get("single_test_score") is not None and raw_result.get("test_score") is not None:
        head += (f" On the test rows: {fmt.value(raw_result['test_score'])} (the best trial alone "
                 f"{fmt.value(ens['single_test_score'])}).")
    folds = ens.get("refit") is False  # the members predict with their fold models
    folded = [m["trial_id"] for m in ens["members"] if m.get("fitted") == "fold models"]
    if folds:
        head += " Each member averages the models its cross-validation fitted; nothing was fitted after the search."
    elif folded:
        head += (" The first members were fitted again on all rows after the search; the refits of trial"
                 f"{'s' if len(folded) > 1 else ''} {', '.join(map(str, folded))} did not fit in the time left, so "
                 f"{'each' if len(folded) > 1 else 'it'} averages the models its cross-validation fitted.")
    else:
        head += " The members were fitted again on all rows after the search."
    if ens.get("dropped_for_time"):
        head += (f" {ens['dropped_for_time']} chosen members were left out: "
                 f"{'loading and saving them' if folds else 'their refits'} did not fit in the time left.")
    seconds = "fit seconds (its trial)" if folds else "refit seconds"
    rows = [{"trial": m["trial_id"], "model": m["model"], "weight": m["weight"], f"cv {metric}": m["cv_score"],
             seconds: m["fit_seconds"], "predict ms per row": m["predict_ms_per_row"]} for m in ens["members"]]
    if folded:
        for row, m in zip(rows, ens["members"]):
            row["fitted"] = m.get("fitted", "refit on all rows")
    return _p(head) + fmt.table(rows, css="leaderboard")


def _feature_importance_section(run_dir: Path) -> str | None:
    """Permutation importance of the input columns for a tabular run's final predictor, on its
    held-out test rows (computed here, from the run folder)."""
    try:
        from autodl.tabular.importance import permutation_importance
        from autodl.tabular.search import load_best_model, load_spec, prepare_run

        prep = prepare_run(run_dir, load_spec(run_dir))
        if prep.X_test is None:
            return _p("No feature importance: the run held out no test rows (test size 0).")
        imp = permutation_importance(load_best_model(run_dir), prep.X_test, prep.y_test, prep.metric,
                                     task=prep.task, sample_weight=prep.rows(prep.weights, "test"))
    except Exception as exc:  # a report is still useful without this section
        from autodl.errors import first_line

        return _p(f"Feature importance could not be computed: {first_line(exc)}")
    top = max(float(imp["importance"].max()), 1e-12)
    rows = [{"column": r.column, "importance": fmt.value(r.importance), "spread": fmt.value(r.importance_std),
             "": f'<div style="background:#4c78a8;height:10px;width:{max(0.0, r.importance) / top * 200:.0f}px"></div>'}
            for r in imp.itertuples()]
    head = (f"How much {prep.metric.name} the final predictor loses when one input column is shuffled among the "
            f"{min(len(prep.X_test), 2000)} held-out test rows (mean and spread over 5 shuffles; 0: not used).")
    return _p(head) + fmt.table(rows, css="leaderboard", raw={""})


# ------------------------------------------------------------------------------- the page
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{margin-bottom:.4em}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top} th{background:#f4f4f4} img{max-width:100%} code{background:#f4f4f4;padding:1px 4px}
table.summary td:first-child{font-weight:600;white-space:nowrap;background:#fafafa}
table.leaderboard td{white-space:nowrap} .scroll{overflow-x:auto;max-width:100%}
.config div{line-height:1.6} .muted{color:#666} nav a{margin-right:1em} figure{margin:0} figcaption{margin-top:.3em}
.warning{background:#fff4e0;border-left:4px solid #e69500;padding:.5em .8em}
"""


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
    raw_result = json.loads((run_dir / "result.json").read_text()) if (run_dir / "result.json").is_file() else None
    result = result_fields(raw_result)
    metric = fmt.value(result.metric or settings.get("metric")) or "value"

    study = None
    sections: list[tuple[str, str, str]] = []
    if has_study:
        from autodl.study import Study

        study = Study.load(run, searcher="random")  # a read-only view needs no searcher state
    names = history = None
    if study is not None and study.n_objectives > 1:
        names = objective_names(study.n_objectives, raw_result, settings, study.storage.get_meta())
        history = hypervolume_history(study)
    sections.append(("Summary", _summary(result, settings, study, run_dir, names, history), "summary"))
    skip = {"genotype"} if (run_dir / "genotype.json").is_file() else set()
    body = _settings(settings, result, skip) + (_space_table(study.space) if study is not None else "")
    sections.append(("Settings", body, "settings"))

    if names is not None:
        sections.append(("Pareto front", front_section(study, names), "front"))
        if history is not None:
            sections.append(("Hypervolume over time", hypervolume_section(history, names), "hypervolume"))
    if study is not None:
        fig = history_figure(study, metric)
        if fig:
            sections.append(("Best-so-far history", _img(fig, "best so far"), "history"))
        n_complete = sum(t.state.value == "complete" for t in study.trials)
        if names is None:
            importances = parameter_importances(study)
            body = _importance_section(study, importances, n_complete)
        else:  # one forest per objective
            importances = None
            body = "".join(f"<h3>{html.escape(n)}</h3>" + _importance_section(
                study, parameter_importances(study, objective=k), n_complete, f"importances: {n}")
                for k, n in enumerate(names))
        if body:
            sections.append(("Parameter importances", body, "importance"))
        body = _parallel_section(study, importances, metric)
        if body:
            sections.append(("Parallel coordinates", body, "parallel"))
        fig = learning_curves_figure(study)
        if fig:
            sections.append(("Learning curves", _img(fig, "learning curves"), "curves"))
        fig = rung_figure(study, metric)
        if fig:
            sections.append(("Rungs (multi-fidelity)", _img(fig, "rungs"), "rungs"))

    for name, builder, title in (("curves.json", nas_curves_figure, "NAS curves"),
                                 ("alphas.json", alphas_figure, "Architecture weights over epochs"),
                                 ("genotype.json", genotype_figure, "Derived cell")):
        path = run_dir / name
        if path.is_file():
            fig = builder(json.loads(path.read_text()))
            if fig:
                sections.append((title, _img(fig, title), name.split(".")[0]))

    if (raw_result or {}).get("kind") == "tabular" or settings.get("kind") == "tabular":
        body = _ensemble_section(raw_result, metric)
        if body:
            sections.append(("Ensemble", body, "ensemble"))
        body = _feature_importance_section(run_dir)
        if body:
            sections.append(("Feature importance", body, "features"))
    if study is not None:
        sections.append(("Leaderboard", _leaderboard(study, metric, names), "leaderboard"))

    nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for t, _, a in sections)
    body = "".join(_section(t, b, a) for t, b, a in sections)
    name = html.escape(run_dir.name)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>autodl report: {name}</title>"
            f"<style>{_CSS}</style></head><body><h1>autodl report: {name}</h1>"
            f"<p class='muted'>generated {fmt.date_time(time.time())}</p><nav>{nav}</nav>{body}</body></html>")
    from autodl.runs import atomic_write

    return atomic_write(out, lambda p: p.write_text(page, encoding="utf-8"))


__all__ = ["FEW_TRIALS", "HypervolumeHistory", "LEADERBOARD_ROWS", "PARALLEL_PARAMETERS", "RunResult", "alphas_figure",
           "build_report", "genotype_figure", "history_figure", "hypervolume_figure", "hypervolume_history",
           "importance_figure", "learning_curves_figure", "nas_curves_figure", "objective_names",
           "parallel_coordinates_figure", "parallel_parameters", "parameter_importances", "pareto_front_figure",
           "result_fields", "rung_figure"]
