"""The ``tabular`` run kind: scikit-learn pipelines tuned by k-fold CV (:mod:`autodl.tabular.search`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from autodl.errors import UserError
from autodl.runs import Deadline, Run, RunKind


class TabularKind(RunKind):
    name = "tabular"

    def spec_from_dict(self, data: Mapping[str, Any]):
        from autodl.tabular.search import spec_from_dict

        return spec_from_dict(dict(data))

    def spec_from_args(self, args):
        from autodl.cli.feature_cmds import feature_fields
        from autodl.tabular.search import SearchSpec

        searcher = args.searcher or "tpe"
        if args.data and not args.target:
            raise UserError("--data needs --target COLUMN naming the column to predict")
        if args.target and not (args.data or args.entityset):
            raise UserError("--target only applies with --data FILE or --entityset YAML")
        cv = "auto" if args.cv is None else args.cv
        if cv not in ("auto", "holdout", "time"):
            try:
                cv = int(cv)
            except ValueError:
                raise UserError(f"--cv is {cv!r}, but must be a number of folds, holdout, time or auto") from None
            if cv < 2:
                raise UserError(f"--cv is {cv}, but must be at least 2")
        data = str(Path(args.data).resolve()) if args.data else None
        space = args.space or "tabular"
        if Path(space).suffix in (".yaml", ".yml", ".json"):
            space = str(Path(space).resolve())
        return SearchSpec(dataset=args.dataset, data=data, target=args.target,
                          task=None if args.task in (None, "auto", "timeseries") else args.task, metric=args.metric,
                          space=space, searcher=searcher, searcher_params=_budget_params(args, searcher),
                          budget_resource=args.budget_resource or "auto", n_trials=args.trials,
                          time_budget=args.time, seed=args.seed, cv=cv,
                          test_size=0.2 if args.test_size is None else args.test_size,
                          n_workers=args.workers or _default_workers(args), **_executor_fields(args),
                          **feature_fields(args),
                          column_roles=column_roles(args), weight_column=args.weight, groups_column=args.groups,
                          time_column=args.time_column, ensemble=not args.no_ensemble,
                          refit=False if args.no_refit else None, objectives=args.objectives,
                          max_latency_ms=args.max_latency_ms, select=args.select, latency_fn=args.latency_fn)

    def default_out(self, spec) -> str:
        stem = spec.dataset or Path(spec.data or spec.entityset).stem
        return str(Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")

    def headline(self, spec, run_dir: Path) -> str:
        from autodl.tabular.search import uses_budget

        budget = " and ".join(x for x in (f"{spec.n_trials} trials" if spec.n_trials else "",
                                          f"{spec.time_budget:g}s" if spec.time_budget else "") if x)
        fid = ""
        if uses_budget(spec.searcher):
            p = spec.searcher_params
            fid = (f" (budgets {p['min_budget']:g}..{p['max_budget']:g}, eta {p['eta']:g}, "
                   f"resource {spec.budget_resource})")
        what = spec.dataset or Path(spec.data or spec.entityset).name
        how = {"holdout": "holdout validation", "time": f"time-ordered CV by {spec.time_column}"}.get(
            spec.cv, f"{spec.cv}-fold CV")
        how += "".join(f", {what} {col}" for what, col in (("groups", spec.groups_column),
                                                           ("weights", spec.weight_column)) if col)
        line = (f"autodl: {what} ({spec.task}, {spec.metric}, {how}), searcher {spec.searcher}{fid}, "
                f"{budget} -> {run_dir}")
        if spec.column_plan:  # the column roles, once the run folder exists
            from autodl.tabular.columns import ColumnPlan

            line += "\n" + ColumnPlan.from_dict(spec.column_plan).announcement()
        return line

    def start(self, spec, out, X=None, y=None, features=None) -> Run:
        from autodl.tabular.search import start_run

        prep, run_dir = start_run(spec, out, X, y, features)
        return Run(self, spec, run_dir, prep)

    def open(self, spec, run_dir: Path) -> Run:
        return Run(self, spec, Path(run_dir))  # the data is loaded when it runs

    def _prepared(self, run: Run):
        from autodl.tabular.search import prepare_run

        if run.state is None:
            run.state = prepare_run(run.run_dir, run.spec)
        return run.state

    def run(self, run: Run, *, deadline: Deadline, progress: str = "quiet", resume: bool = False) -> dict[str, Any]:
        from autodl.tabular.search import run_search

        run.spec.time_budget = deadline.budget
        result = run_search(self._prepared(run), run.run_dir, show_progress=progress != "quiet",
                            progress_mode=progress, resume=resume, deadline=deadline)
        run.result = result  # the SearchResult, for --export-onnx after the search
        return result.summary()

    def join(self, run: Run, *, deadline: Deadline, progress: str = "quiet"):
        from autodl.runs.registry import join_study
        from autodl.study import Study
        from autodl.tabular.search import make_objective

        study = Study.load(run.run_dir)
        return join_study(study, make_objective(self._prepared(run), run.run_dir, study), run.spec, deadline,
                          progress)

    def export(self, run_dir: Path, path) -> tuple[Path, str]:
        from autodl.export import export_onnx
        from autodl.runs import read_result
        from autodl.tabular.search import load_best_model, load_spec, prepare_run

        result = read_result(run_dir)
        if not (run_dir / "model.skops").is_file():
            raise UserError(f"{run_dir} has no model.skops; finish the run with `autodl resume {run_dir}`")
        prep = prepare_run(run_dir, load_spec(run_dir))
        sample = (prep.X_test if prep.X_test is not None else prep.X_all).iloc[:512]
        sample, meta = plan_sample(prep.plan, sample)
        written = export_onnx(load_best_model(run_dir), path, sample=sample, metadata={**meta, **onnx_metadata(result)})
        what = "held-out test rows" if prep.X_test is not None else "training rows (the run held out none)"
        return written, f"{min(len(sample), 512)} {what}"

    def export_trial(self, run_dir: Path, path, trial_id: int, say=print) -> tuple[Path, str]:
        """Trial ``trial_id``'s configuration refit on all of the run's rows (as the run's own model
        is), exported and verified on the held-out rows. A trial that is unknown or did not complete
        is one line, before anything is fitted or written."""
        from autodl.export import export_onnx
        from autodl.runs.registry import complete_trial, trial_metadata
        from autodl.tabular.objectives import PYTHON_MARK
        from autodl.tabular.pipeline import quiet_fit
        from autodl.tabular.search import fit_config, load_spec, prepare_run

        run_dir = Path(run_dir)
        trial = complete_trial(run_dir, trial_id, path)
        spec = load_spec(run_dir)
        for name in ("latency_fn", "select"):  # not needed to refit, and not in run.json when callables
            if str(getattr(spec, name) or "").startswith(PYTHON_MARK):
                setattr(spec, name, None)
        prep = prepare_run(run_dir, spec)
        say(f"autodl: refitting trial {trial_id}'s configuration on all training rows ({len(prep.X_all)} rows, "
            "as the run's own model was)")
        with quiet_fit():
            model = fit_config(prep, trial.config, "all")
        sample = (prep.X_test if prep.X_test is not None else prep.X_all).iloc[:512]
        sample, meta = plan_sample(prep.plan, sample)
        several = trial.values is not None and len(trial.values) > 1
        meta.update(trial_metadata(trial, list(spec.objectives) if several and spec.objectives else spec.metric),
                    run_kind="tabular", refit="all rows")
        written = export_onnx(model, path, sample=sample, metadata=meta)
        what = "held-out test rows" if prep.X_test is not None else "training rows (the run held out none)"
        return written, f"{len(sample)} {what}; trial {trial.id} refit on all rows"

    def describe(self, result: Mapping[str, Any], run_dir: Path) -> list[str]:
        if isinstance(result.get("metric"), list):
            return _describe_front(result, run_dir)
        test = result.get("test_score")
        metric = result["metric"]
        model = (result.get("best_config") or {}).get("model", "?")
        ens = (result.get("extra") or {}).get("ensemble")
        if ens:
            mixed = ens.get("refit") is not False  # with refit=False every member is its fold models
            parts = ", ".join(f"{m['model']} (trial {m['trial_id']}"
                              f"{', fold models' if mixed and m.get('fitted') == 'fold models' else ''}) "
                              f"{m['weight']:.2f}" for m in ens["members"])
            lines = [f"ensemble of {len(ens['members'])}: {metric} {ens['ensemble_score']:.4f} (out-of-fold; best "
                     f"trial alone {ens['single_score']:.4f})" + (f", test {metric} {test:.4f}" if test is not None else ""),
                     f"members: {parts}"]
        else:
            lines = [f"best {metric} {result['best_value']:.4f} (cv)"
                     + (f", test {metric} {test:.4f}" if test is not None else "")
                     + f" — trial {result['best_trial']}, model {model}"]
        lines += _deployment_lines(result)
        lines.append(f"run folder: {run_dir}  (result.json, model.skops, study.db)")
        return lines


def _show(name: str, value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g} ms" if name == "latency" else f"{int(value)} bytes" if name == "size" else f"{value:.4f}"


def _deployment_lines(result: Mapping[str, Any]) -> list[str]:
    """What the deployed predictor's ONNX file measured (runs with objectives or a latency limit)."""
    d = (result.get("extra") or {}).get("deployment")
    if not d or d.get("latency_ms") is None:
        return []
    limit = d.get("max_latency_ms")
    line = f"deployed ONNX: {d['latency_ms']:.4g} ms per row (1 thread), {d['size_bytes']} bytes"
    if limit is not None:
        line += f", limit {limit:g} ms {'met' if d.get('meets_limit') else 'NOT met'}"
    return [line] + ([f"  {d['note']}"] if d.get("note") else [])


def _describe_front(result: Mapping[str, Any], run_dir: Path) -> list[str]:
    """A multi-objective run: the front's size, the chosen member and how it was chosen."""
    extra = result.get("extra") or {}
    names, values = result["metric"], result.get("best_value") or []
    test = result.get("test_score")
    chosen = ", ".join(f"{n} {_show(n, v)}" for n, v in zip(names, values))
    model = (result.get("best_config") or {}).get("model", "?")
    n_front = len(extra.get("front") or [])
    lines = [f"Pareto front: {n_front} trial{'s' * (n_front != 1)} ("
             + ", ".join(f"{o['direction']} {o['name']}" for o in extra.get("objectives") or []) + ")",
             f"predicting: trial {result['best_trial']} ({model}), {chosen} (cv); chosen by {extra.get('selected_by')}"
             + (f"; test {names[0]} {test[0]:.4f}" if isinstance(test, list) and test and test[0] is not None else "")]
    lines += _deployment_lines(result)
    lines.append(f"export any front member: autodl export {run_dir} --trial N --onnx FILE")
    lines.append(f"run folder: {run_dir}  (result.json, model.skops, study.db, latency.json)")
    return lines


def onnx_metadata(result: Mapping[str, Any]) -> dict[str, Any]:
    """What an exported file records of the run (``result.json`` envelope)."""
    return {"config": result.get("best_config"), "score": result.get("best_value"), "metric": result.get("metric"),
            "test_score": result.get("test_score"), "trial_id": result.get("best_trial"),
            "run_kind": result.get("kind"), "ensemble": _ensemble_meta((result.get("extra") or {}).get("ensemble"))}


def _ensemble_meta(ensemble: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """The members an exported ensemble holds (trial, model, weight), or None for one model."""
    if not ensemble:
        return None
    return [{k: m[k] for k in ("trial_id", "model", "weight")} for m in ensemble["members"]]


def plan_sample(plan, sample) -> tuple[Any, dict[str, Any]]:
    """The export rows and metadata of a column plan (:func:`autodl.tabular.columns.export_sample`);
    as they are without one."""
    if plan is None:
        return sample, {}
    from autodl.tabular.columns import export_sample

    return export_sample(plan, sample)


def _default_workers(args) -> int:
    """No ``--workers``: as ``autodl.search(n_workers=None)``: under ``--time``, one worker per core
    the available memory holds (the data file's size standing for the table's), else one."""
    from autodl.tabular.search import default_workers

    if args.time is None:
        return 1
    try:
        size = Path(args.data).stat().st_size if args.data else 0
    except OSError:
        size = 0  # a missing file gets its own error when it is read
    return default_workers(size)


#: ``autodl search`` flags that give columns a role (tabular), and the role
ROLE_FLAGS = {"ignore": "ignore", "categorical": "categorical", "datetime": "datetime"}


def column_roles(args) -> dict[str, str] | None:
    """``--ignore a,b --categorical zip --datetime when`` as ``{column: role}``; a column named
    by two of them is a one-line error."""
    roles: dict[str, str] = {}
    for dest, role in ROLE_FLAGS.items():
        for col in filter(None, (c.strip() for c in (getattr(args, dest, None) or "").split(","))):
            if roles.get(col, role) != role:
                raise UserError(f"column '{col}' is given two roles: --{roles[col]} and --{role}")
            roles[col] = role
    return roles or None


def _budget_params(args, searcher: str) -> dict:
    """``--min-budget/--max-budget/--eta`` as searcher parameters; with a full-budget searcher
    they (and ``--budget-resource``) mean nothing, which is said in one line."""
    from autodl.searchers import SEARCHERS
    from autodl.searchers.brackets import FIDELITY_FLAGS
    from autodl.tabular.search import uses_budget

    params = {dest: getattr(args, dest) for dest in FIDELITY_FLAGS if getattr(args, dest, None) is not None}
    if str(searcher).lower() not in SEARCHERS or uses_budget(searcher):
        return params  # an unknown name is reported when the spec is prepared
    if params:
        raise UserError(f"{', '.join(FIDELITY_FLAGS[d] for d in params)} only apply with a multi-fidelity "
                        f"--searcher (sh, hyperband, asha, bohb), not '{searcher}'")
    if args.budget_resource:
        raise UserError(f"--budget-resource only applies with a multi-fidelity --searcher (sh, hyperband, asha, "
                        f"bohb), not '{searcher}'")
    return params


def _executor_fields(args) -> dict[str, Any]:
    fields = {"executor": args.executor, "dask_scheduler": args.dask_scheduler, "trial_timeout": args.trial_timeout,
              "trial_memory": args.trial_memory}
    return {k: v for k, v in fields.items() if v is not None}


KIND = TabularKind()
