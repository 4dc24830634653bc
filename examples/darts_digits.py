"""DARTS on digits: search a cell, derive its genotype, train the derived network from scratch,
export it to ONNX (verified with onnxruntime).

    python examples/darts_digits.py            # 20 search epochs on all digits
    python examples/darts_digits.py --quick    # 2 epochs on 400 rows (used by the tests)

``run_darts(run_dir=...)`` writes the search's files but not a run folder of ``autodl`` (no
``run.json`` or ``split.npz``), so the network is exported here in Python. For a run folder that
``autodl show``, ``report``, ``export`` and ``predict`` open, search from the shell:

    autodl search --dataset digits --nas darts --epochs 20 --out runs/darts
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import autodl
from autodl.nas.darts import run_darts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    out = Path(args.out or tempfile.mkdtemp(prefix="autodl-darts-"))
    quick = dict(epochs=2, train_epochs=2, max_rows=400) if args.quick else dict(epochs=20, train_epochs=20)
    result = run_darts(X, y, order=1, seed=0, run_dir=out, **quick)
    print("normal cell:", result.genotype["normal"])
    print("reduction cell:", result.genotype["reduce"])
    print(f"test accuracy {result.test_accuracy:.4f}, {result.n_params} parameters, "
          f"search {result.search_seconds:.1f}s, parameter-free share {result.parameter_free_share:.2f}")

    sample = X[:64].reshape(-1, 1, 8, 8) if _wants_images(result.model) else X[:64]
    autodl.export_onnx(result.model.eval(), out / "darts.onnx", sample=sample)
    print(f"run folder {out}: genotype.json, alphas.json, result.json, model.pt, darts.onnx")


def _wants_images(model) -> bool:
    return getattr(model, "image_shape", None) is None


if __name__ == "__main__":
    main()
