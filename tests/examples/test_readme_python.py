"""The README's Python examples run, in order, as one plain script: no ``__main__`` guard,
worker processes included (``n_workers=2``), with smaller budgets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
#: budgets made small enough for the test suite (the code is otherwise as printed)
SMALLER = {"n_trials=30": "n_trials=4", "n_trials=100": "n_trials=6", "timeout=600": "timeout=120", "cv=5": "cv=2"}


def python_section() -> str:
    text = README.read_text()
    section = text[text.index("\n## Python\n"):text.index("\n## Command line\n")]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 4
    script = "\n".join(blocks)
    for old, new in SMALLER.items():
        script = script.replace(old, new)
    return script


@pytest.mark.slow
def test_readme_python_examples_run_as_a_plain_script(tmp_path):
    script = python_section()
    assert "__main__" not in script and "n_workers=2" in script
    (tmp_path / "readme_example.py").write_text(script + '\nprint("REACHED THE END")\n')
    proc = subprocess.run([sys.executable, "readme_example.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "REACHED THE END" in proc.stdout
    for bad in ("RuntimeError", "freeze_support", "Traceback", "failed"):
        assert bad not in proc.stderr, proc.stderr[-3000:]
    assert (tmp_path / "runs" / "mine").exists()  # the study's storage
