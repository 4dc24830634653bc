"""Search, export the winner to ONNX (verified with onnxruntime), and predict from the file.

    python examples/export_and_predict.py           # 20 trials on wine
    python examples/export_and_predict.py --quick   # 4 trials (used by the tests)

The same from the shell:

    autodl search --dataset wine --trials 20 --out runs/wine --export-onnx wine.onnx
    autodl predict wine.onnx --data new_rows.csv --out predictions.csv
    autodl predict runs/wine --data new_rows.csv   # straight from the run folder (exports model.onnx once)
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine

import autodl
from autodl.export import predict_table, read_metadata


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="where to write the .onnx file")
    args = parser.parse_args()

    X, y = load_wine(return_X_y=True, as_frame=True)
    result = autodl.search(X, y, n_trials=4 if args.quick else 20, cv=3, seed=0)
    print(result)

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / "wine.onnx"
    result.export_onnx(out)  # checked at batch sizes 1, 7 and 64 before the file is written
    meta = read_metadata(str(out))
    print(f"wrote {out} ({out.stat().st_size} bytes); inputs: {len(meta['inputs'])} columns, "
          f"classes: {meta.get('class_labels')}")

    # onnxruntime alone (no scikit-learn needed at this point) gives the same predictions
    onnx_pred = predict_table(out, X.head(20))
    same = np.array_equal(onnx_pred["prediction"].to_numpy(), result.predict(X.head(20)))
    print("ONNX predictions equal the pipeline's:", same)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
