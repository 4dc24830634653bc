"""PyTorch and NAS searches on data a user brings: a CSV, an ``.npz`` of images, uint8 arrays
grey and colour (channel-last), and a folder of PNGs — each searched from the shell with
``--time T``, exported, and predicted through ``autodl predict``.

For each case, ``autodl search --data FILE ... --time T`` runs as a new process; this script
times it from start to exit (imports, reading and decoding the data, search, final training,
saving). Then ``autodl predict RUN --data FILE`` exports the run's network to ONNX (verified with
onnxruntime) and predicts every row; those labels are compared with the Python model's
(``autodl.NetworkResult(RUN).predict``), and the held-out accuracy of the exported file with
the majority-class baseline on the same rows. ``result.json`` gives the seconds spent reading
and preparing the data against the seconds spent searching.

Data (generated or bundled; nothing downloads):

* ``digits-csv-mlp``   scikit-learn's digits as a CSV (64 pixel columns + ``target``), ``--model mlp``;
* ``digits-npz-cnn``   the same as an ``.npz`` of 8×8 integer images, ``--model cnn``;
* ``digits-npz-darts`` the same ``.npz``, ``--nas darts``;
* ``shapes28-cnn``     3,000 generated 28×28 grey uint8 images of four shapes (N×H×W), ``--model cnn``;
* ``shapes32rgb-cnn``  3,000 generated 32×32 RGB uint8 images (N×H×W×C), ``--model cnn``;
* ``png-folder-cnn``   1,200 generated 24×24 RGB images written as PNGs in class sub-folders, ``--model cnn``.

    python benchmarks/user_data.py              # T = 60 s per case: ~8 min
    python benchmarks/user_data.py --quick      # T = 12 s, smaller sets, two cases (for the tests)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

#: the finishing margin the goal allows over the deadline
MARGIN = 5.0
CASES = {
    "digits-csv-mlp": ("csv", ["--target", "target", "--model", "mlp"]),
    "digits-npz-cnn": ("npz", ["--model", "cnn"]),
    "digits-npz-darts": ("npz", ["--nas", "darts"]),
    "shapes28-cnn": ("shapes28", ["--model", "cnn"]),
    "shapes32rgb-cnn": ("shapes32", ["--model", "cnn"]),
    "png-folder-cnn": ("pngs", ["--model", "cnn"]),
}
QUICK_CASES = ("digits-csv-mlp", "png-folder-cnn")


def _autodl(*args: str, cwd: Path, timeout: float = 900) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "autodl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, time.perf_counter() - t0, (proc.stderr.strip().splitlines() or [""])[-1]


def _make(kind: str, folder: Path, n: int) -> tuple[Path, np.ndarray]:
    """The data file of a case and its labels in the order the search reads the rows."""
    from autodl.nn.userdata import read_net_data
    from autodl.testing.images import digits_csv, digits_npz, shapes, write_image_folder

    if kind == "csv":
        path = digits_csv(folder / "digits.csv")
    elif kind == "npz":
        path = digits_npz(folder / "digits8x8.npz")
    elif kind in ("shapes28", "shapes32"):
        X, y = shapes(n, 28, channels=1, seed=1) if kind == "shapes28" else shapes(n, 32, channels=3, seed=2)
        path = folder / f"{kind}.npz"
        np.savez(path, X=X, y=y)
    else:
        X, y = shapes(n * 2 // 5, 24, channels=3, seed=3)
        path = write_image_folder(X, y, folder / "pngs")
    nd = read_net_data(path, target="target" if kind == "csv" else None)
    return path, np.asarray(nd.classes, dtype=object)[nd.y]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--time", type=float, default=60.0, help="the deadline of each search (seconds)")
    p.add_argument("--rows", type=int, default=3000, help="images generated for the shapes sets")
    p.add_argument("--quick", action="store_true", help="12 s, 600 images, two cases (for the tests)")
    p.add_argument("--out", help="JSON path (default benchmarks/results/user_data.json)")
    args = p.parse_args(argv)
    if args.quick:
        args.time, args.rows = 12.0, 600
        args.cases = [c for c in args.cases if c in QUICK_CASES]
    meta = _meta.start(__file__, argv, packages=("torch", "onnxruntime", "pillow"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for case in args.cases:
            kind, flags = CASES[case]
            data, labels = _make(kind, cwd, args.rows)
            run = cwd / case
            code, wall, last = _autodl("search", "--data", str(data), *flags, "--time", f"{args.time:g}s",
                                       "--out", str(run), "--quiet", cwd=cwd)
            row = {"case": case, "time": args.time, "wall": round(wall, 2), "exit": code, "last_line": last,
                   "within": wall <= args.time + MARGIN}
            print(f"{case}: exit {code}, {wall:.1f}s for --time {args.time:g}s ({last})", flush=True)
            if code == 0:
                row.update(_check(run, data, labels, cwd))
            rows.append(row)
    print(f"\n| case | --time | wall | within T + {MARGIN:g} s | test acc | majority | read + prepare s | "
          "search s | predict = Python |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["exit"]:
            print(f"| {r['case']} | {r['time']:g} s | {r['wall']:.1f} s | exit {r['exit']} | | | | | |")
            continue
        print(f"| {r['case']} | {r['time']:g} s | {r['wall']:.1f} s | {'yes' if r['within'] else 'NO'} | "
              f"{r['test_accuracy']:.3f} | {r['majority']:.3f} | {r['data_seconds']:.2f} | "
              f"{r['search_seconds']:.1f} | {'yes' if r['predict_equals_python'] else 'NO'} |")
    out = Path(args.out) if args.out else _meta.default_out("user_data", args.quick)
    return _meta.write_result(out, {"quick": args.quick, "margin": MARGIN, "rows": rows}, meta)


def _check(run: Path, data: Path, labels: np.ndarray, cwd: Path) -> dict:
    """Export + predict through the CLI, compared with the Python model and the baseline."""
    import pandas as pd

    from autodl import NetworkResult

    result = json.loads((run / "result.json").read_text())
    code, wall, last = _autodl("predict", str(run), "--data", str(data), "--out", str(run / "pred.csv"), cwd=cwd)
    if code:
        return {"predict_exit": code, "predict_last_line": last, "predict_equals_python": False,
                "test_accuracy": float("nan"), "majority": float("nan"), "data_seconds": float("nan"),
                "search_seconds": float("nan")}
    pred = pd.read_csv(run / "pred.csv")["prediction"].astype(str).to_numpy()
    source = pd.read_csv(data).drop(columns="target") if data.suffix == ".csv" else data
    python = np.asarray([str(v) for v in NetworkResult(run).predict(source)])
    test = np.load(run / "split.npz")["test"]
    truth = np.asarray([str(v) for v in labels])
    majority = pd.Series(truth[test]).value_counts(normalize=True).iloc[0]
    facts = result["extra"].get("data") or {}
    return {"test_accuracy": float((pred[test] == truth[test]).mean()), "recorded_test_score": result["test_score"],
            "majority": float(majority), "predict_equals_python": bool((pred == python).all()),
            "predict_seconds": round(wall, 2), "rows": int(len(truth)), "n_test": int(len(test)),
            "data_seconds": round(facts.get("read_seconds", 0) + facts.get("prepare_seconds", 0), 3),
            "read_seconds": facts.get("read_seconds"), "prepare_seconds": facts.get("prepare_seconds"),
            "search_seconds": result["extra"].get("search_seconds"), "image_shape": facts.get("image_shape"),
            "raw_dtype": facts.get("raw_dtype"), "notes": facts.get("notes"),
            "n_complete": result.get("n_complete"), "best_config": result.get("best_config")}


if __name__ == "__main__":
    main()
