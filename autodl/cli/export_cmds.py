"""``autodl export``, ``autodl predict`` and the ONNX part of ``autodl search``.

``autodl predict`` imports only pandas, NumPy and onnxruntime (through
:mod:`autodl.export.runtime`): no torch, no scikit-learn.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from autodl.errors import ExportError, UserError


def cmd_export(args) -> int:
    """``autodl export RUN --onnx model.onnx``: export a run's best model, verified on its test rows.

    The kind of run (tabular, ``--model mlp|cnn``, DARTS) is told from its files
    (:func:`autodl.export.runs.run_kind`).
    """
    from autodl.export.runs import run_kind

    run_dir = Path(args.run)
    if run_kind(run_dir) != "tabular":
        return _export_torch_run(run_dir, args.onnx)
    from autodl.tabular.search import load_best_model, load_spec, open_result, prepare

    spec = load_spec(run_dir)
    result = open_result(run_dir)
    if not (run_dir / "model.skops").is_file():
        raise UserError(f"{run_dir} has no model.skops; finish the run with `autodl resume {run_dir}`")
    prep = prepare(spec)
    sample = prep.X_test if prep.X_test is not None else prep.X_all
    path = export_model(load_best_model(run_dir), args.onnx, sample, _result_meta(result))
    print(f"wrote {path} (verified with onnxruntime on {min(len(sample), 512)} held-out rows)")
    return 0


def _export_torch_run(run_dir: Path, path: str) -> int:
    import torch

    from autodl.export import export_onnx
    from autodl.export.runs import load_run_model

    torch.set_num_threads(1)  # small networks; leave the other cores alone
    run = load_run_model(run_dir)
    written = export_onnx(run.model, path, sample=run.sample[:512], feature_names=run.feature_names,
                          class_labels=run.class_labels, metadata=run.metadata)
    print(f"wrote {written} (verified with onnxruntime on {run.rows_note})")
    return 0


def export_model(model, path, sample, meta: dict[str, Any]) -> Path:
    from autodl.export import export_onnx

    return export_onnx(model, path, sample=sample.iloc[:512] if hasattr(sample, "iloc") else sample[:512],
                       metadata=meta)


def _result_meta(result: dict[str, Any]) -> dict[str, Any]:
    return {"config": result.get("best_config"), "score": result.get("best_score"),
            "metric": result.get("metric"), "test_score": result.get("test_score"),
            "trial_id": result.get("best_trial_id")}


def export_after_search(result, prep, run_dir: Path | None, path: str | None, require: bool) -> None:
    """Export the search's winner; with ``require``, walk the leaderboard best first until a
    trial's model exports and verifies, and make it the run's winner (model.skops, result.json)."""
    if path is None:
        path = str((run_dir or Path(".")) / "model.onnx")
    sample = prep.X_test if prep.X_test is not None else prep.X_all
    summary = result.summary()
    try:
        export_model(result.best_model, path, sample, _result_meta(summary))
        _note(f"autodl: wrote {path} (trial {result.best_trial_id}, verified with onnxruntime)")
        return
    except ExportError as exc:
        if not require:
            raise
        skipped = [{"trial_id": result.best_trial_id, "reason": str(exc)}]
        _note(f"autodl: trial {result.best_trial_id} does not export ({exc}); trying the next best")
    from autodl.study import TrialState
    from autodl.tabular.pipeline import build_pipeline, score_model

    study = result.study
    trials = sorted(study.get_trials([TrialState.COMPLETE]),
                    key=lambda t: ((t.value if study.direction == "minimize" else -t.value), t.id))
    for trial in trials:
        if trial.id == result.best_trial_id:
            continue
        seed = prep.spec.seed
        model = build_pipeline(trial.config, prep.X_all, prep.task, seed,
                               features=prep.features).fit(prep.X_all, prep.y_all)
        meta = {"config": trial.config, "score": trial.value, "metric": prep.metric.name, "trial_id": trial.id}
        try:
            export_model(model, path, sample, meta)
        except ExportError as exc:
            skipped.append({"trial_id": trial.id, "reason": str(exc)})
            continue
        test_score = None
        if prep.X_test is not None:
            fitted = build_pipeline(trial.config, prep.X_train, prep.task, seed,
                                    features=prep.features).fit(prep.X_train, prep.y_train)
            test_score = float(score_model(fitted, prep.X_test, prep.y_test, prep.metric))
        result.best_model, result.best_config, result.best_score = model, dict(trial.config), trial.value
        result.best_trial_id, result.test_score = trial.id, test_score
        if run_dir is not None:
            from autodl.tabular.persist import save_model
            from autodl.tabular.search import write_json

            save_model(model, run_dir / "model.skops")
            new = result.summary()
            new.update(model_file="model.skops", model_format="skops (no pickle; see autodl.tabular.persist)",
                       onnx={"path": str(path), "skipped": skipped})
            write_json(run_dir / "result.json", new)
        _note(f"autodl: wrote {path} (trial {trial.id}, the best trial whose model exports)")
        return
    raise ExportError(f"no completed trial's model exports to ONNX; first failure: {skipped[0]['reason']}")


def cmd_predict(args) -> int:
    """``autodl predict model.onnx --data new.csv [--out predictions.csv]`` with onnxruntime alone."""
    from autodl.export.runtime import predict_table
    from autodl.tabular.data import read_table

    frame = read_table(args.data)
    preds = predict_table(args.model, frame)
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".tmp")
        preds.to_csv(tmp, index=False)
        tmp.replace(out)
        _note(f"autodl: wrote {len(preds)} predictions to {out}")
    else:
        preds.to_csv(sys.stdout, index=False)
    return 0


def _note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()

