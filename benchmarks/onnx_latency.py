"""onnxruntime latency vs the original model (scikit-learn ``predict`` / torch eager).

For a tabular pipeline (the best of a short ``autodl.search`` on breast_cancer) and RF, HGB and
logistic pipelines, an MLP, a CNN and a DARTS network (a fixed genotype) trained briefly on
digits, and an LSTM and a GRU from ``autodl.nas.spaces.rnn_space`` on generated sequences: the
median latency of many calls at batch 1 and 64, for the original model and for its verified ONNX
export, and the largest output difference (probabilities for sklearn classifiers, raw outputs
for torch). For torch it also gives that difference divided by the row's largest |logit|, the
largest difference of the softmax probabilities (what ``autodl predict`` reports), and torch's
own float32 error (against the same network in float64) -- the floor below which no float32
runtime can be expected to agree with torch (see :mod:`autodl.export.core`).

Threads: both sides get ONE thread (``torch.set_num_threads(1)``, onnxruntime
``intra_op_num_threads=1, inter_op_num_threads=1``, scikit-learn models use ``n_jobs=1``), which
is fair on a 2-core machine and is how a request-serving process is usually pinned.

The JSON also records the run's commit, versions and load average (``benchmarks/_meta.py``).

    python benchmarks/onnx_latency.py [--quick] [--out benchmarks/results/onnx_latency.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _meta  # noqa: E402

#: distributions whose versions the result records
PACKAGES = ("torch", "onnx", "onnxruntime", "skl2onnx")


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _sklearn_cases(quick: bool):
    import autodl
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    from autodl.tabular.pipeline import build_pipeline

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_tr, X_te, y_tr, _ = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    result = autodl.search(X_tr, y_tr, n_trials=3 if quick else 10, cv=3, seed=0, test_size=0)
    yield f"search best ({result.best_config['model']})", result.best_model, X_te
    for name, cfg in [("random_forest", {"model": "random_forest", "random_forest.n_estimators": 100}),
                      ("hist_gb", {"model": "hist_gb", "hist_gb.max_iter": 100}),
                      ("logistic", {"model": "linear"})]:
        yield name, build_pipeline(cfg, X_tr, "classification").fit(X_tr, y_tr), X_te


def _torch_cases(quick: bool):
    import torch
    from sklearn.datasets import load_digits

    nn = torch.nn
    torch.manual_seed(0)
    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    steps = 30 if quick else 200

    def fit(model, x):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[:1200]), y[:1200]).backward()
            opt.step()
        return model.eval()

    mlp = fit(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)), X)
    yield "MLP (digits)", mlp, X[1200:]
    cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16), nn.Conv2d(16, 32, 1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    Xi = X.reshape(-1, 1, 8, 8)
    yield "CNN (digits)", fit(cnn, Xi), Xi[1200:]

    from autodl.nas.choices import freeze
    from autodl.nas.genotypes import NetworkFromGenotype
    from autodl.nas.spaces import rnn_space

    genotype = {"normal": [["sep_conv_3x3", 0, 0], ["skip_connect", 1, 0], ["dil_conv_3x3", 0, 1],
                           ["max_pool_3x3", 2, 1]],
                "reduce": [["max_pool_3x3", 0, 0], ["sep_conv_3x3", 1, 0], ["avg_pool_3x3", 0, 1],
                           ["sep_conv_5x5", 2, 1]], "nodes": 2}
    darts = NetworkFromGenotype(genotype, C=8, num_classes=10, layers=3, image_shape=(1, 8, 8))
    yield "DARTS network (digits)", fit(darts, X), X[1200:]

    g = torch.Generator().manual_seed(0)
    seq = torch.randn(1500, 20, 2, generator=g)
    y = (seq[:, :, 0].cumsum(1)[:, -1] > 0).long()
    for cell in ("lstm", "gru"):  # the RNN space (autodl.nas.spaces.rnn_space)
        rnn = freeze(rnn_space(2, 2), {"cell": cell, "layers": 1, "hidden_size": 32, "bidirectional": False,
                                       "dropout": 0.0})
        yield f"{cell.upper()} (sequences)", fit(rnn, seq), seq[1200:]


def _float64_error(model, X) -> float:
    """Largest |torch float32 - the same network in float64| on ``X``: torch's own rounding, the
    floor for any float32 runtime's agreement with torch."""
    import copy

    import torch

    with torch.no_grad():
        ref32 = model(X).double()
        ref64 = copy.deepcopy(model).double()(X.double())
    return float((ref32 - ref64).abs().max())


def run(quick: bool = False) -> dict:
    import torch

    from autodl.export import core, export_onnx, read_metadata, runtime

    torch.set_num_threads(1)
    repeats = 30 if quick else 300
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, cases in (("sklearn", _sklearn_cases(quick)), ("torch", _torch_cases(quick))):
            for name, model, X in cases:
                path = Path(tmp) / "m.onnx"
                labels = list(range(10 if "digits" in name else 2)) if kind == "torch" else None
                export_onnx(model, path, sample=X, class_labels=labels)
                sess = runtime.make_session(path, threads=1)
                meta = read_metadata(sess)
                row = {"model": name, "kind": kind}
                diffs, rel, pdiffs, ok = [], [], [], []
                for b in (1, 64):
                    xb = X.iloc[:b] if hasattr(X, "iloc") else X[:b]
                    if kind == "torch":
                        feeds = runtime.array_to_feeds(xb, meta)

                        def orig(xb=xb):
                            with torch.no_grad():
                                return model(xb)
                        ref = orig().numpy()
                    else:
                        feeds = runtime.table_to_feeds(xb, meta)

                        def orig(xb=xb):
                            return model.predict_proba(xb) if hasattr(model, "predict_proba") else model.predict(xb)
                        ref = orig()

                    def onnx_run(feeds=feeds):
                        return sess.run(None, feeds)
                    out = onnx_run()
                    got = np.asarray(out[1] if kind == "sklearn" and len(out) > 1 else out[0], dtype=np.float64)
                    diffs.append(float(np.max(np.abs(got - ref))))
                    if kind == "torch":  # relative to the row's largest logit; probabilities as predict gives them
                        rel.append(float(np.max(np.abs(got - ref) / np.abs(ref).max(axis=1, keepdims=True))))
                        ok.append(bool(np.all(np.abs(got - ref) <= core.VALUE_ATOL + core.TORCH_RTOL
                                              * np.abs(ref).max(axis=1, keepdims=True))))
                        pdiffs.append(float(np.max(np.abs(runtime.softmax(got) - runtime.softmax(ref.astype(np.float64))))))
                    row[f"orig_ms_b{b}"] = _median_ms(orig, repeats)
                    row[f"onnx_ms_b{b}"] = _median_ms(onnx_run, repeats)
                row["max_abs_diff"] = max(diffs)
                if kind == "torch":
                    row["max_diff_over_row_max"] = max(rel)
                    row["max_proba_diff"] = max(pdiffs)
                    row["within_export_tolerance"] = all(ok)
                    row["logit_scale"] = float(np.abs(ref).max())
                    row["torch_vs_float64"] = _float64_error(model, X)
                rows.append(row)
    return {"quick": quick, "threads": 1, "repeats": repeats, "rows": rows}


def table(result: dict) -> str:
    lines = ["| model | original b=1 (ms) | onnxruntime b=1 (ms) | original b=64 (ms) | onnxruntime b=64 (ms) "
             "| max abs diff | diff / row max | proba diff | torch f32 vs f64 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        orig = "sklearn predict" if r["kind"] == "sklearn" else "torch eager"
        extra = (f"{r['max_diff_over_row_max']:.1e} | {r['max_proba_diff']:.1e} | {r['torch_vs_float64']:.1e}"
                 if r["kind"] == "torch" else "- | - | -")
        lines.append(f"| {r['model']} ({orig}) | {r['orig_ms_b1']:.3f} | {r['onnx_ms_b1']:.3f} | "
                     f"{r['orig_ms_b64']:.3f} | {r['onnx_ms_b64']:.3f} | {r['max_abs_diff']:.2e} | {extra} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials, steps and repeats")
    parser.add_argument("--out", help="JSON path (default: results/onnx_latency[_quick].json)")
    args = parser.parse_args(argv)
    meta = _meta.start(__file__, argv, PACKAGES)
    result = run(args.quick)
    print(table(result))
    return _meta.write_result(args.out or _meta.default_out("onnx_latency", args.quick), result, meta)


if __name__ == "__main__":
    main()
