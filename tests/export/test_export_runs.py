"""`autodl export RUN` for PyTorch run folders (`--model mlp|cnn`, `--nas darts|random`) and
`autodl predict` on their files; a bare `run_darts` folder is exported in Python; the tolerance
for torch outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from autodl.errors import ExportError  # noqa: E402
from autodl.export import core, read_metadata  # noqa: E402
from autodl.runs import open_run  # noqa: E402


def run_kind(run_dir) -> str:
    return open_run(run_dir).kind.name


def load_run_model(run_dir):
    """The run's network taking raw rows, with its held-out rows (:class:`autodl.export.runs.RunModel`)."""
    return open_run(run_dir).kind.load_model(run_dir)


def _digits_csv(path, rows=40):
    from sklearn.datasets import load_digits

    X, _ = load_digits(return_X_y=True, as_frame=True)  # raw pixels 0..16, columns pixel_0_0 ..
    X.iloc[:rows].to_csv(path, index=False)
    return X.iloc[:rows]


def _python_predictions(run_dir, X: pd.DataFrame):
    run = load_run_model(run_dir)
    with torch.no_grad():
        logits = run.model(torch.as_tensor(X.to_numpy(np.float32))).double()
    proba = torch.softmax(logits, 1).numpy()
    return np.asarray(run.class_labels)[proba.argmax(1)], proba, run


def _export_and_predict(autodl_cli, d, run, kind):
    import onnx

    assert run_kind(d / run) == kind
    proc = autodl_cli("export", run, "--onnx", f"{run}.onnx", cwd=d)
    assert proc.returncode == 0, proc.stderr
    assert "verified with onnxruntime on" in proc.stdout and "as recorded" in proc.stdout
    meta = read_metadata(onnx.load(d / f"{run}.onnx"))
    X = _digits_csv(d / "new.csv")
    proc = autodl_cli("predict", f"{run}.onnx", "--data", "new.csv", "--out", "p.csv", cwd=d)
    assert proc.returncode == 0, proc.stderr
    preds = pd.read_csv(d / "p.csv")
    labels, proba, python_run = _python_predictions(d / run, X)
    assert list(preds.columns) == ["prediction"] + [f"proba_{c}" for c in range(10)]
    assert (preds["prediction"].to_numpy() == labels).all()
    np.testing.assert_allclose(preds.iloc[:, 1:].to_numpy(), proba, atol=1e-5)
    assert meta["class_labels"] == list(range(10)) and meta["feature_names"][0] == "pixel_0_0"
    assert meta["version"] and meta["kind"] == "torch" and meta["run_kind"] == kind
    assert meta["inputs"] == [{"name": "input", "type": "float", "shape": [None, 64]}]
    return meta, python_run


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_export_nn_run_and_predict(tmp_path, autodl_cli, model):
    proc = autodl_cli("search", "--dataset", "digits", "--model", model, "--searcher", "random", "--trials", "2",
                      "--min-budget", "1", "--max-budget", "2", "--out", "RUN", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    meta, run = _export_and_predict(autodl_cli, tmp_path, "RUN", "nn")
    result = json.loads((tmp_path / "RUN" / "result.json").read_text())
    assert meta["config"] == result["best_config"] and meta["score"] == result["best_value"]
    assert meta["test_score"] == result["test_score"] and meta["architecture"] == model
    # the file takes raw pixels: the held-out rows are the run's test split, unscaled
    assert run.sample.shape == (360, 64) and run.sample.max() == 16.0


@pytest.fixture(scope="module")
def darts_run(tmp_path_factory):
    """A DARTS run folder as `autodl search --nas darts` writes it (run.json, split.npz, the result
    envelope), made with the Python API on a seeded subset of digits to keep it quick."""
    from autodl.nas.search import search_architecture

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("darts")
    search_architecture(dataset="digits", method="darts", out=d / "DARTS", epochs=1, train_epochs=1, C=4,
                        layers=2, nodes=2, max_rows=600, seed=0)
    return d


@pytest.mark.slow
def test_export_darts_run_and_predict(darts_run, autodl_cli):
    meta, run = _export_and_predict(autodl_cli, darts_run, "DARTS", "nas")
    result = json.loads((darts_run / "DARTS" / "result.json").read_text())
    assert meta["config"]["genotype"] == result["extra"]["genotype"] and meta["dataset"] == "digits"
    assert meta["config"] == result["best_config"] and meta["method"] == "darts"
    assert meta["test_score"] == result["test_score"]
    # the held-out rows are the run's own test rows (split.npz), raw pixels
    from autodl.runs import load_split

    assert run.sample.shape == (len(load_split(darts_run / "DARTS")["test"]), 64) == (result["extra"]["n_test"], 64)
    assert run.sample.max() == 16.0


@pytest.mark.slow
def test_run_whose_model_or_split_changed_is_refused(darts_run, autodl_cli, tmp_path):
    import shutil

    run = tmp_path / "R"
    shutil.copytree(darts_run / "DARTS", run)
    info = json.loads((run / "result.json").read_text())
    info["test_score"] = 1.0 - info["test_score"]  # not what the model scores on the run's test rows
    (run / "result.json").write_text(json.dumps(info))
    proc = autodl_cli("export", "R", "--onnx", "m.onnx", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "result.json records" in lines[0] and "autodl.export_onnx" in lines[0]
    assert "Traceback" not in proc.stderr
    info["test_score"] = 1.0 - info["test_score"]
    (run / "result.json").write_text(json.dumps(info))
    (run / "split.npz").write_bytes(b"not a split")  # the held-out rows can no longer be read
    proc = autodl_cli("export", "R", "--onnx", "m.onnx", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "split.npz" in lines[0] and "damaged" in lines[0]
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_python_darts_folder_is_exported_in_python(tmp_path, autodl_cli):
    """A folder written by `run_darts(run_dir=...)` does not record its data or split: `autodl export`
    refuses it in one line, and it is exported in Python with its own held-out rows."""
    import onnx
    import onnxruntime as ort
    from sklearn.datasets import load_digits

    from autodl.export import export_onnx
    from autodl.nas import load_model
    from autodl.nas.darts import run_darts

    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    run_darts(X, y, C=4, layers=2, nodes=2, epochs=1, train_epochs=1, batch_size=32, seed=0, max_rows=300,
              run_dir=tmp_path / "DARTS")
    proc = autodl_cli("export", "DARTS", "--onnx", "m.onnx", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "not an autodl run folder (no run.json)" in lines[0]
    assert not (tmp_path / "m.onnx").exists()

    model = load_model(tmp_path / "DARTS")
    path = export_onnx(model, tmp_path / "m.onnx", sample=X[-64:], class_labels=list(range(10)))
    assert read_metadata(onnx.load(path))["kind"] == "torch"
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": X[-64:]})[0]
    with torch.no_grad():
        expected = model(torch.as_tensor(X[-64:])).numpy()
    assert (out.argmax(1) == expected.argmax(1)).all()


def test_not_a_run_folder(tmp_path, autodl_cli):
    proc = autodl_cli("export", "nothing", "--onnx", "m.onnx", cwd=tmp_path)
    assert proc.returncode == 2 and "is not a folder" in proc.stderr


def _logits(n=64, scale=30.0, seed=0):
    return np.random.default_rng(seed).normal(0, scale / 3, size=(n, 10))


def test_torch_tolerance_follows_the_row_scale():
    out = {"name": "output", "role": "logits"}
    ref = _logits()
    # float32 rounding of large logits: ~2e-5 absolute, within atol + 1e-5 * row max
    core._compare_torch(ref, (ref + 2e-5 * np.sign(ref)).astype(np.float32), out, 64)
    with pytest.raises(ExportError, match=r"differs from the model by 0.001 .*row's largest"):
        bad = ref.copy()
        bad[3, 2] += 1e-3  # a wrong operator, not rounding
        core._compare_torch(ref, bad, out, 64)
    small = _logits(scale=0.3)  # small outputs: the absolute 1e-5 is what counts
    with pytest.raises(ExportError, match="differs"):
        core._compare_torch(small, small + 3e-5, out, 64)


def test_torch_probabilities_are_checked_too():
    """Logits within their tolerance can still move probabilities by more than 1e-5 when two large
    logits compete; what `autodl predict` reports (softmax) is held to 1e-5 as for scikit-learn."""
    out = {"name": "output", "role": "logits"}
    ref = np.array([[30.0, 29.0, -30.0], [1.0, 2.0, 3.0]])
    moved = ref.copy()
    moved[0, 1] += 2e-4  # < 1e-5 + 1e-5 * 30: fine as a logit, but p changes by ~4e-5
    with pytest.raises(ExportError, match=r"probabilities from ONNX output 'output' differ .* row 0"):
        core._compare_torch(ref, moved, out, 2)
    core._compare_torch(ref, ref + 1e-6, out, 2)
    assert core._tolerances("torch") == {"proba_atol": 1e-5, "value_atol": 1e-5, "torch_rtol_of_row_max": 1e-5}


@pytest.mark.slow
def test_export_nas_mlp_run_with_standardized_inputs(tmp_path, autodl_cli):
    """`autodl search --nas random --nas-space mlp` on iris: the file standardizes raw columns itself."""
    import autodl.nas.search  # noqa: F401  (first party: an import error must fail, not skip)
    proc = autodl_cli("search", "--dataset", "iris", "--nas", "random", "--nas-space", "mlp", "--trials", "2",
                      "--train-epochs", "3", "--out", "NAS", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert run_kind(tmp_path / "NAS") == "nas"
    proc = autodl_cli("export", "NAS", "--onnx", "nas.onnx", cwd=tmp_path)
    assert proc.returncode == 0 and "as recorded" in proc.stdout, proc.stderr
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    X.to_csv(tmp_path / "iris.csv", index=False)
    proc = autodl_cli("predict", "nas.onnx", "--data", "iris.csv", "--out", "p.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    labels, proba, _ = _python_predictions(tmp_path / "NAS", X)
    preds = pd.read_csv(tmp_path / "p.csv")
    assert (preds["prediction"].to_numpy() == labels).all()
    np.testing.assert_allclose(preds.iloc[:, 1:].to_numpy(), proba, atol=1e-5)
