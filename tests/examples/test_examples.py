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
