"""``import autodl`` must not pull in heavy optional dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["torch", "featuretools", "tsfresh", "onnx", "onnxruntime", "skl2onnx", "dask",
         "distributed", "optuna"]


def test_import_autodl_does_not_import_heavy_modules():
    code = (
        "import sys, json, autodl, autodl.space, autodl.searchers, autodl.study, autodl.tabular; "
        f"heavy = {HEAVY!r}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"import autodl loaded {loaded}"

