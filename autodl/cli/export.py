"""``autodl export RUN --onnx FILE [--trial N]``: a run's best model (or trial N's) as ONNX,
verified with onnxruntime on the run's held-out rows, for every kind of run; and the ONNX step of
``autodl search``."""

from __future__ import annotations

import sys
from pathlib import Path

from autodl.errors import ExportError


def add_parser(sub) -> None:
    ex = sub.add_parser("export", help="export a run's best model to ONNX (verified with onnxruntime)")
    ex.add_argument("run", help="the run folder")
    ex.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    ex.add_argument("--trial", type=int, metavar="N",
                    help="export trial N (e.g. a Pareto front member; `autodl show RUN` lists them) instead of the "
                         "run's final model; a tabular trial's configuration is refit on all of the run's rows")


#: what exporting needs, by kind (torch networks need no skl2onnx)
ONNX_MODULES = {"tabular": ("onnx", "onnxruntime", "skl2onnx")}


def require_onnx(kind_name: str) -> None:
    """One line naming the extra before any work, when the ONNX packages are missing."""
    from autodl._deps import require

    require(ONNX_MODULES.get(kind_name, ("onnx", "onnxruntime")), "onnx", "ONNX export")


def cmd_export(args, deadline) -> int:
    from autodl.runs import open_run

    run = open_run(args.run)
    require_onnx(run.kind.name)
    if args.trial is not None:
        written, note = run.kind.export_trial(run.run_dir, args.onnx, args.trial, say=_note)
    else:
        written, note = run.kind.export(run.run_dir, args.onnx)
    print(f"wrote {written} (verified with onnxruntime on {note})")
    return 0


def export_tabular_winner(result, prep, run_dir: Path | None, path: str, require: bool) -> None:
    """Export a tabular search's winner; with ``require``, walk the leaderboard best first until
    a trial's model exports and verifies, and make it the run's winner (model.skops, result.json)."""
    from autodl.export import export_onnx
    from autodl.tabular.kind import onnx_metadata, plan_sample

    sample, plan_meta = plan_sample(prep.plan, (prep.X_test if prep.X_test is not None else prep.X_all).iloc[:512])
    try:
        export_onnx(result.best_model, path, sample=sample, metadata={**plan_meta, **onnx_metadata(result.summary())})
        ens = getattr(result, "ensemble", None)
        what = (f"an ensemble of {len(ens['members'])} trials in one graph" if ens else f"trial {result.best_trial_id}")
        _note(f"autodl: wrote {path} ({what}, verified with onnxruntime)")
        return
    except ExportError as exc:
        if not require:
            raise
        skipped = [{"trial_id": result.best_trial_id, "reason": str(exc)}]
        what = "the ensemble" if getattr(result, "ensemble", None) else f"trial {result.best_trial_id}"
        _note(f"autodl: {what} does not export ({exc}); trying the best trials one by one")
    from autodl.study import TrialState
    from autodl.tabular.pipeline import score_model
    from autodl.tabular.search import fit_config

    study = result.study
    trials = sorted(study.get_trials([TrialState.COMPLETE]),
                    key=lambda t: ((t.value if study.direction == "minimize" else -t.value), t.id))
    for trial in trials:
        if trial.id == result.best_trial_id and not getattr(result, "ensemble", None):
            continue
        model = fit_config(prep, trial.config, "all")
        meta = {**plan_meta, "config": trial.config, "score": trial.value, "metric": prep.metric.name,
                "trial_id": trial.id}
        try:
            export_onnx(model, path, sample=sample, metadata=meta)
        except ExportError as exc:
            skipped.append({"trial_id": trial.id, "reason": str(exc)})
            continue
        test_score = None
        if prep.X_test is not None:
            fitted = fit_config(prep, trial.config, "train")
            test_score = float(score_model(fitted, prep.X_test, prep.y_test, prep.metric,
                                           prep.rows(prep.weights, "test")))
        result.best_model, result.best_config, result.best_score = model, dict(trial.config), trial.value
        result.best_trial_id, result.test_score, result.ensemble = trial.id, test_score, None
        if run_dir is not None:
            from autodl.runs import write_result
            from autodl.tabular.persist import save_model

            save_model(model, run_dir / "model.skops")
            new = result.summary()
            new["extra"]["onnx"] = {"path": str(path), "skipped": skipped}
            write_result(run_dir, new)
        _note(f"autodl: wrote {path} (trial {trial.id}, the best trial whose model exports)")
        return
    raise ExportError(f"no completed trial's model exports to ONNX; first failure: {skipped[0]['reason']}")


def _note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
