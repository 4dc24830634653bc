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
    pr.add_argument("--data", required=True,
                    help="a CSV or Parquet file with the model's input columns; for a network on images or "
                         "sequences an .npz (X; y ignored) or a folder of images (flat or in class sub-folders)")
    pr.add_argument("--out", help="write predictions to this CSV (default: stdout)")


def cmd_predict(args, deadline) -> int:
    from autodl.export.runtime import predict_table
    from autodl.runs import atomic_write
    from autodl.tabular.data import read_table

    model = Path(args.model)
    if args.out and Path(args.out).is_dir():
        from autodl.errors import UserError

        raise UserError(f"--out {args.out} is a folder; give a .csv file path")
    data = Path(args.data)
    if not data.exists():
        from autodl.errors import DataError

        raise DataError(f"--data {data} does not exist")
    tensor_data = data.is_dir() or data.suffix.lower() == ".npz"
    frame = None if tensor_data else read_table(data)  # a bad table is said before any export
    if model.is_dir():
        model = onnx_of_run(model)
    preds = predict_tensors(model, data) if tensor_data else predict_table(str(model), frame)
    if args.out:
        out = Path(args.out)
        atomic_write(out, lambda p: preds.to_csv(p, index=False))
        _note(f"autodl: wrote {len(preds)} predictions to {out}")
    else:
        preds.to_csv(sys.stdout, index=False)
    return 0


def predict_tensors(model: Path, data: Path):
    """Predictions of a network on images or sequences for an ``.npz`` or an image folder, read
    and shaped as the search read its data (:func:`autodl.nn.userdata.read_inputs`); a folder's
    rows are named by a ``file`` column."""
    from autodl.errors import DataError
    from autodl.export.runtime import array_to_feeds, make_session, predictions_frame, read_metadata, run
    from autodl.nn.userdata import read_inputs

    if not model.is_file():
        raise DataError(f"model file {model} does not exist")
    session = make_session(model)
    meta = read_metadata(session)
    if meta.get("input_scheme") != "tensor" or "inputs" not in meta:
        raise DataError(f"{model} takes table columns; give --data a CSV or Parquet file")
    shape = meta["inputs"][0]["shape"]
    kind = "image" if len(shape) == 4 else "sequence" if len(shape) == 3 else "table"
    if kind == "table":
        raise DataError(f"{model} takes rows of {shape[1]} values; give --data a CSV or Parquet file")
    X, ids = read_inputs(data, kind=kind, image_shape=tuple(shape[1:]) if kind == "image" else None)
    if kind == "sequence" and tuple(X.shape[1:]) != tuple(shape[1:]):
        raise DataError(f"{data}: sequences of shape {tuple(X.shape[1:])}, but the model takes {tuple(shape[1:])}")
    preds = predictions_frame(run(session, array_to_feeds(X, meta)), meta)
    if ids is not None:
        preds.insert(0, "file", ids)
    return preds


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
