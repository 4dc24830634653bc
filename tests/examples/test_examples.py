"""Every example runs as written (in its quick mode)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args, cwd):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.slow
def test_custom_objective_runs_and_resumes(tmp_path):
    script = str(ROOT / "examples" / "custom_objective.py")
    out = _run([script, "--quick", "--out", str(tmp_path / "run")], tmp_path)
    assert "15 trials" in out
    # second invocation resumes: still 15 trials, same best
    out2 = _run([script, "--quick", "--out", str(tmp_path / "run")], tmp_path)
    assert out.splitlines()[0] == out2.splitlines()[0]


@pytest.mark.slow
def test_tabular_quickstart(tmp_path):
    out = _run([str(ROOT / "examples" / "tabular_quickstart.py"), "--quick"], tmp_path)
    assert "held-out test" in out
    acc = float(out.split("held-out test: ")[1].split()[0])
    assert acc > 0.9


@pytest.mark.slow
def test_export_and_predict(tmp_path):
    pytest.importorskip("onnxruntime")
    out = _run([str(ROOT / "examples" / "export_and_predict.py"), "--quick", "--out", str(tmp_path / "m.onnx")],
               tmp_path)
    assert "ONNX predictions equal the pipeline's: True" in out
    assert (tmp_path / "m.onnx").is_file()


@pytest.mark.slow
def test_multifidelity_pytorch(tmp_path):
    pytest.importorskip("torch")
    out = _run([str(ROOT / "examples" / "multifidelity_pytorch.py"), "--quick", "--out", str(tmp_path / "run")],
               tmp_path)
    assert "budgets [1.0, 3.0, 9.0]" in out
    reused = int(out.split("epochs reused from checkpoints ")[1].split()[0])
    assert reused > 0  # promoted trials continued from their checkpoints
    acc = float(out.split("at the full budget: ")[1].split()[0])
    assert acc > 0.8


@pytest.mark.slow
def test_darts_digits(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    run = tmp_path / "darts"
    out = _run([str(ROOT / "examples" / "darts_digits.py"), "--quick", "--out", str(run)], tmp_path)
    assert "normal cell:" in out
    for name in ("genotype.json", "alphas.json", "result.json", "model.pt", "darts.onnx"):
        assert (run / name).is_file(), name


@pytest.mark.slow
def test_network_own_data(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    out = _run([str(ROOT / "examples" / "network_own_data.py"), "--quick", "--out", str(tmp_path / "runs")],
               tmp_path)
    assert "classes ['bars', 'cross', 'disc', 'square']" in out
    assert "ONNX input tensor(uint8); ONNX labels equal Python's: True" in out
    assert "folder pngs/: 4 classes" in out
