"""``autodl predict MODEL --data FILE``: predictions from an exported ``.onnx`` file or straight
from a run folder, with onnxruntime alone (pandas, NumPy and onnxruntime: no torch, no
scikit-learn for a file).

A run folder is exported once to ``RUN/model.onnx`` (verified like ``autodl export``), then that
file predicts.
"""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    pr = sub.add_parser("predict", help="predict with an exported .onnx file or a run folder (onnxruntime)")
    pr.add_argument("model", help="a .onnx file written by autodl, or a run folder")
    pr.add_argument("--data", required=True, help="a CSV or Parquet file with the model's input columns")
    pr.add_argument("--out", help="write predictions to this CSV (default: stdout)")


def cmd_predict(args, deadline) -> int:
    from autodl.export.runtime import predict_table
    from autodl.runs import atomic_write
    from autodl.tabular.data import read_table

    model = Path(args.model)
    frame = read_table(args.data)
    if args.out and Path(args.out).is_dir():
        from autodl.errors import UserError

        raise UserError(f"--out {args.out} is a folder; give a .csv file path")
    if model.is_dir():
        model = onnx_of_run(model)
    preds = predict_table(str(model), frame)
    if args.out:
        out = Path(args.out)
        atomic_write(out, lambda p: preds.to_csv(p, index=False))
        _note(f"autodl: wrote {len(preds)} predictions to {out}")
    else:
        preds.to_csv(sys.stdout, index=False)
    return 0


def onnx_of_run(run_dir: Path) -> Path:
    """``RUN/model.onnx``, exported (and verified) the first time it is asked for."""
    from autodl.runs import open_run

    run = open_run(run_dir)
    path = run_dir / "model.onnx"
    result = run_dir / "result.json"
    if not path.is_file() or (result.is_file() and path.stat().st_mtime < result.stat().st_mtime):
        written, note = run.kind.export(run_dir, path)
        _note(f"autodl: exported the run's model to {written} (verified with onnxruntime on {note})")
    return path


def _note(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
