"""``autodl search``: start a run of any kind (tabular, ``--model``, ``--nas``)."""

from __future__ import annotations

import contextlib
import sys

from autodl.cli.common import err, progress_mode, run_and_print
from autodl.cli.flags import SEARCH_FLAGS, add_flags, check_flags, search_variant

#: which run kind each variant of the flag table belongs to
KIND_OF_VARIANT = {"tabular": "tabular", "nn": "nn", "darts": "nas", "nas": "nas"}


def add_parser(sub) -> None:
    s = sub.add_parser("search", help="search for the best model on a dataset",
                       description="Tune scikit-learn pipelines (default), a PyTorch model's hyperparameters "
                                   "(--model) or network architectures (--nas). A flag that does not apply to "
                                   "the kind of search chosen is an error.")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="built-in data: iris, wine, breast_cancer, digits, diabetes")
    src.add_argument("--data", help="a CSV or Parquet file (use with --target); with --model or --nas also an "
                                    ".npz of images (X, y) or sequences, or a folder of class sub-folders of images")
    src.add_argument("--entityset", metavar="YAML", help="related tables for featuretools (use with --target)")
    add_flags(s, SEARCH_FLAGS)
    g = s.add_mutually_exclusive_group()
    g.add_argument("--quiet", action="store_true", help="print only the final summary")
    g.add_argument("--jsonl", action="store_true",
                   help="print one JSON object per finished trial (for scripts), then the result")


def cmd_search(args, deadline) -> int:
    from autodl.runs import get_kind

    variant = search_variant(args)
    check_flags(args, SEARCH_FLAGS, variant)
    kind = get_kind(KIND_OF_VARIANT[variant])
    if args.export_onnx or args.require_onnx:
        from autodl.cli.export import require_onnx

        require_onnx(kind.name)
    spec = kind.spec_from_args(args)
    run = kind.start(spec, args.out or kind.default_out(spec))
    mode = progress_mode(args)
    if mode == "bar":
        err(kind.headline(spec, run.run_dir))

    def go():
        result = kind.run(run, deadline=deadline, progress=mode)
        if args.export_onnx or args.require_onnx:
            result["onnx"] = export_after_search(kind, run, args.export_onnx, args.require_onnx)
        return result

    return run_and_print(go, kind, run.run_dir, mode)


def export_after_search(kind, run, path: str | None, require: bool) -> str:
    """``--export-onnx`` / ``--require-onnx``: export the run's winner (notes on stderr, so stdout
    stays the result's for ``--jsonl`` readers)."""
    path = path or str(run.run_dir / "model.onnx")
    with contextlib.redirect_stdout(sys.stderr):
        if kind.name == "tabular":
            from autodl.cli.export import export_tabular_winner

            export_tabular_winner(run.result, run.state, run.run_dir, path, require)
        else:
            written, note = kind.export(run.run_dir, path)
            err(f"autodl: wrote {written} (verified with onnxruntime on {note})")
    return path
