"""A command that needs an optional package which is not installed prints one line naming the
package and the extra to install, exits 2, and leaves nothing behind.

A missing package is simulated with ``sys.modules[name] = None`` (``import name`` then raises
ImportError, as when it is not installed): in a subprocess for the CLI, with ``monkeypatch`` in
this process for the Python API.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autodl import Categorical, Float, Space, Study, UserError
from autodl._deps import MissingDependency, require

#: runs ``autodl ARGS`` with the comma-separated modules in argv[1] made unimportable
_BLOCKED_CLI = ("import sys; sys.modules.update(dict.fromkeys(sys.argv[1].split(','))); "
                "from autodl.cli.main import main; sys.exit(main(sys.argv[2:]))")


def run_blocked(blocked: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-c", _BLOCKED_CLI, blocked, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip("\n").splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ---------------------------------------------------------------------- require itself
def test_require_names_the_missing_modules_and_the_extra(monkeypatch):
    require(("numpy", "scipy"), "onnx", "anything")  # installed: no error
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    with pytest.raises(MissingDependency) as info:
        require(("onnx", "numpy", "skl2onnx"), "onnx", "ONNX export")
    assert str(info.value) == "ONNX export needs onnx and skl2onnx, which are not installed: pip install 'autodl[onnx]'"
    assert isinstance(info.value, UserError)  # so the CLI prints one line and exits 2
    with pytest.raises(MissingDependency, match=r"^x needs autodl_no_such_module\.sub, which is not installed"):
        require("autodl_no_such_module.sub", "report", "x")
    with pytest.raises(ValueError, match="unknown extra"):
        require("numpy", "gpu", "x")


def test_require_does_not_import_the_module():
    code = "import sys; from autodl._deps import require; require('torch', 'torch', 'x'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------------- Python API
def test_export_onnx_without_onnx(monkeypatch, tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import autodl

    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    for name in ("onnx", "onnxruntime", "skl2onnx"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependency, match=r"^ONNX export needs onnx, onnxruntime and skl2onnx, which are "
                                                r"not installed: pip install 'autodl\[onnx\]'$"):
        autodl.export_onnx(model, tmp_path / "m.onnx", sample=X[:10])
    assert list(tmp_path.iterdir()) == []


def test_features_without_their_package(monkeypatch):
    from autodl.features import make_features

    monkeypatch.setitem(sys.modules, "tsfresh", None)
    monkeypatch.setitem(sys.modules, "featuretools", None)
    with pytest.raises(MissingDependency, match=r"^tsfresh features needs tsfresh, .* 'autodl\[features\]'$"):
        make_features("tsfresh")
    with pytest.raises(MissingDependency, match=r"^featuretools feature synthesis needs featuretools, .* "
                                                r"'autodl\[features\]'$"):
        make_features({"kind": "featuretools"})


def test_dask_executor_without_dask_runs_no_trial(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    study = Study(Space({"x": Float(0.0, 1.0)}), seed=0)
    with pytest.raises(MissingDependency, match=r"^executor='dask' needs distributed, .* 'autodl\[dask\]'$"):
        study.optimize(lambda t: t.config["x"], n_trials=2, executor="dask")
    assert study.trials == []


# ---------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """A finished tabular run (one linear trial), its exported model, and rows to predict."""
    from sklearn.datasets import load_iris

    import autodl

    root = tmp_path_factory.mktemp("extras")
    X, y = load_iris(return_X_y=True, as_frame=True)
    result = autodl.search(X, y, n_trials=1, cv=3, out=root / "run", space=Space({"model": Categorical(["linear"])}))
    autodl.export_onnx(result.best_model, root / "model.onnx", sample=X.iloc[:20])
    X.to_csv(root / "new.csv", index=False)
    return root


@pytest.mark.slow
def test_export_without_onnx(iris_run):
    proc = run_blocked("onnx,onnxruntime,skl2onnx", "export", "run", "--onnx", "out.onnx", cwd=iris_run)
    assert one_error_line(proc) == ("autodl export: error: ONNX export needs onnx, onnxruntime and skl2onnx, "
                                    "which are not installed: pip install 'autodl[onnx]'")
    assert not (iris_run / "out.onnx").exists()


@pytest.mark.slow
def test_predict_without_onnxruntime(iris_run):
    proc = run_blocked("onnxruntime", "predict", "model.onnx", "--data", "new.csv", "--out", "p.csv", cwd=iris_run)
    assert one_error_line(proc) == ("autodl predict: error: running ONNX files needs onnxruntime, which is not "
                                    "installed: pip install 'autodl[onnx]'")
    assert not (iris_run / "p.csv").exists()
    # the same command with onnxruntime importable works: the missing module was the only problem
    proc = run_blocked("", "predict", "model.onnx", "--data", "new.csv", "--out", "p.csv", cwd=iris_run)
    assert proc.returncode == 0, proc.stderr
    assert len((iris_run / "p.csv").read_text().splitlines()) == 1 + 150


@pytest.mark.slow
def test_report_without_matplotlib(iris_run):
    proc = run_blocked("matplotlib", "report", "run", cwd=iris_run)
    assert one_error_line(proc) == ("autodl report: error: the HTML report needs matplotlib, which is not "
                                    "installed: pip install 'autodl[report]'")
    assert not (iris_run / "run" / "report.html").exists()
    proc = run_blocked("", "report", "run", cwd=iris_run)
    assert proc.returncode == 0, proc.stderr
    assert (iris_run / "run" / "report.html").is_file()


SEARCHES = {
    "mlp": ("torch", ["--dataset", "digits", "--model", "mlp", "--trials", "2"],
            "PyTorch models (autodl.nn, --model) needs torch, which is not installed: pip install 'autodl[torch]'"),
    "nas": ("torch", ["--dataset", "digits", "--nas", "darts"],
            "neural architecture search (autodl.nas, --nas) needs torch, which is not installed: "
            "pip install 'autodl[torch]'"),
    "featuretools": ("featuretools", ["--dataset", "iris", "--features", "featuretools", "--trials", "2"],
                     "featuretools feature synthesis needs featuretools, which is not installed: "
                     "pip install 'autodl[features]'"),
    "dask": ("dask,distributed", ["--dataset", "iris", "--executor", "dask", "--trials", "2"],
             "executor='dask' needs dask and distributed, which are not installed: pip install 'autodl[dask]'"),
}


@pytest.mark.parametrize("blocked, args, message", SEARCHES.values(), ids=SEARCHES.keys())
def test_search_without_an_extra_is_refused_before_the_run_folder(tmp_path, blocked, args, message):
    proc = run_blocked(blocked, "search", *args, "--out", "run", cwd=tmp_path)
    assert one_error_line(proc) == f"autodl search: error: {message}"
    assert list(tmp_path.iterdir()) == []
