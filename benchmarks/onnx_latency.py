"""onnxruntime latency vs the original model (scikit-learn ``predict`` / torch eager).

For a tabular pipeline (the best of a short ``autodl.search`` on breast_cancer) and RF, HGB and
logistic pipelines, an MLP and a CNN trained briefly on digits, and an LSTM on generated
sequences: the median latency of many calls at batch 1 and 64, for the original model and for
its verified ONNX export, and the largest output difference (probabilities for sklearn
classifiers, raw outputs for torch).

Threads: both sides get ONE thread (``torch.set_num_threads(1)``, onnxruntime
``intra_op_num_threads=1, inter_op_num_threads=1``, scikit-learn models use ``n_jobs=1``), which
is fair on a 2-core machine and is how a request-serving process is usually pinned.

    python benchmarks/onnx_latency.py [--quick] [--out benchmarks/results/onnx_latency.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


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

    class LSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(2, 32, batch_first=True)
            self.head = nn.Linear(32, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    g = torch.Generator().manual_seed(0)
    seq = torch.randn(1500, 20, 2, generator=g)
    y = (seq[:, :, 0].cumsum(1)[:, -1] > 0).long()
    yield "LSTM (sequences)", fit(LSTM(), seq), seq[1200:]


def run(quick: bool = False) -> dict:
    import torch

    from autodl.export import export_onnx, read_metadata, runtime

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
                diffs = []
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
                    got = out[1] if kind == "sklearn" and len(out) > 1 else out[0]
                    diffs.append(float(np.max(np.abs(np.asarray(got, dtype=np.float64) - ref))))
                    row[f"orig_ms_b{b}"] = _median_ms(orig, repeats)
                    row[f"onnx_ms_b{b}"] = _median_ms(onnx_run, repeats)
                row["max_abs_diff"] = max(diffs)
                rows.append(row)
    return {"quick": quick, "threads": 1, "repeats": repeats, "rows": rows}


def table(result: dict) -> str:
    lines = ["| model | original b=1 (ms) | onnxruntime b=1 (ms) | original b=64 (ms) | onnxruntime b=64 (ms) "
             "| max abs diff |", "|---|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        orig = "sklearn predict" if r["kind"] == "sklearn" else "torch eager"
        lines.append(f"| {r['model']} ({orig}) | {r['orig_ms_b1']:.3f} | {r['onnx_ms_b1']:.3f} | "
                     f"{r['orig_ms_b64']:.3f} | {r['onnx_ms_b64']:.3f} | {r['max_abs_diff']:.2e} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials, steps and repeats")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_latency.json"))
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
