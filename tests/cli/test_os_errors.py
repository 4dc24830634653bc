"""Operating-system errors are one line and exit 2, with nothing half-written left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autodl.cli.main import main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _temp_files(root) -> list:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_out_inside_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code = main(["search", "--dataset", "iris", "--trials", "2", "--out", str(tmp_path / "afile" / "run")])
    assert code == 2
    assert "afile is a file" in _one_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_out_where_nothing_can_be_created(capsys):
    code = main(["search", "--dataset", "iris", "--trials", "2", "--out", "/proc/autodl-test/run"])
    assert code == 2
    assert "/proc/autodl-test" in _one_line(capsys)


def test_default_out_in_a_working_directory_that_cannot_hold_it():
    # /proc takes no new folders, even for root: the default runs/<name>-<time> cannot be made
    proc = subprocess.run([sys.executable, "-m", "autodl", "search", "--dataset", "iris", "--trials", "2"],
                          cwd="/proc", capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autodl search: error:") and "runs" in lines[0]


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("os") / "run"
    assert main(["search", "--dataset", "iris", "--trials", "2", "--cv", "2", "--out", str(out), "--quiet"]) == 0
    return out


def test_export_to_a_folder_or_an_unwritable_place(iris_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    (tmp_path / "dir.onnx").mkdir()
    assert main(["export", str(iris_run), "--onnx", str(tmp_path / "dir.onnx")]) == 2
    _one_line(capsys)
    assert main(["export", str(iris_run), "--onnx", "/proc/autodl-test.onnx"]) == 2
    line = _one_line(capsys)
    assert "/proc/autodl-test.onnx" in line and ".tmp" not in line
    assert _temp_files(tmp_path) == [] and _temp_files(iris_run) == []


def test_predict_out_is_a_folder(iris_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_iris

    data = tmp_path / "rows.csv"
    load_iris(as_frame=True).data.head(3).to_csv(data, index=False)
    (tmp_path / "preds").mkdir()
    assert main(["predict", str(iris_run), "--data", str(data), "--out", str(tmp_path / "preds")]) == 2
    assert "is a folder" in _one_line(capsys)
    assert list((tmp_path / "preds").iterdir()) == []
