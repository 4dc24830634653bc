"""`autodl search --export-onnx`, `autodl export` and `autodl predict` (onnxruntime only)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory, autodl_cli):
    d = tmp_path_factory.mktemp("cli")
    proc = autodl_cli("search", "--dataset", "iris", "--trials", "3", "--cv", "3", "--out", "RUN",
                      "--export-onnx", "m.onnx", "--quiet", cwd=d)
    assert proc.returncode == 0, proc.stderr
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    X.to_csv(d / "new.csv", index=False)
    return d, X


@pytest.mark.slow
def test_predict_cli_equals_python(iris_run, autodl_cli):
    from autodl.tabular.search import load_best_model

    d, X = iris_run
    assert (d / "m.onnx").is_file()
    proc = autodl_cli("predict", "m.onnx", "--data", "new.csv", "--out", "p.csv", cwd=d)
    assert proc.returncode == 0, proc.stderr
    preds = pd.read_csv(d / "p.csv")
    model = load_best_model(d / "RUN")
    assert list(preds.columns) == ["prediction", "proba_0", "proba_1", "proba_2"]
    assert (preds["prediction"].to_numpy() == model.predict(X)).all()
    np.testing.assert_allclose(preds[["proba_0", "proba_1", "proba_2"]], model.predict_proba(X), atol=1e-5)


@pytest.mark.slow
def test_export_cli_from_run(iris_run, autodl_cli):
    import onnx

    from autodl.export import read_metadata

    d, _ = iris_run
    proc = autodl_cli("export", "RUN", "--onnx", "again.onnx", cwd=d)
    assert proc.returncode == 0, proc.stderr
    meta = read_metadata(onnx.load(d / "again.onnx"))
    result = json.loads((d / "RUN" / "result.json").read_text())
    assert meta["config"] == result["best_config"] and meta["score"] == result["best_value"]
    assert meta["class_labels"] == [0, 1, 2]


@pytest.mark.slow
def test_predict_imports_only_onnxruntime(iris_run):
    d, _ = iris_run
    code = ("import sys, json; from autodl.cli.main import main; rc = main(['predict', 'm.onnx', '--data', "
            "'new.csv', '--out', 'q.csv']); heavy = ('torch', 'sklearn', 'skl2onnx', 'onnx'); "
            "print(json.dumps([rc, sorted({m.split('.')[0] for m in sys.modules} & set(heavy))]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True, text=True, timeout=120)
    rc, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rc == 0 and loaded == [], proc.stderr


@pytest.mark.slow
def test_predict_missing_column_one_line_exit_2(iris_run, autodl_cli):
    d, X = iris_run
    X.drop(columns=["petal width (cm)"]).to_csv(d / "bad.csv", index=False)
    proc = autodl_cli("predict", "m.onnx", "--data", "bad.csv", cwd=d)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "petal width (cm)" in lines[0] and lines[0].startswith("autodl predict: error:")


@pytest.mark.slow
def test_require_onnx_search(tmp_path, autodl_cli):
    proc = autodl_cli("search", "--dataset", "wine", "--trials", "2", "--cv", "2", "--out", "R",
                      "--require-onnx", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "R" / "model.onnx").is_file()
