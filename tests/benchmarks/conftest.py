"""Fixtures for the benchmark smoke tests: load a script from ``benchmarks/`` and check the run
metadata its JSON records against what the test finds itself (``git``, the modules' own
``__version__``, ``os``)."""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"

#: distribution name -> module whose ``__version__`` is that distribution's version
MODULES = {"autodl": "autodl", "numpy": "numpy", "scipy": "scipy", "scikit-learn": "sklearn", "optuna": "optuna",
           "torch": "torch", "coco-experiment": "cocoex", "cmaes": "cmaes", "onnxruntime": "onnxruntime",
           "onnx": "onnx", "skl2onnx": "skl2onnx", "dask": "dask", "distributed": "distributed",
           "sqlalchemy": "sqlalchemy", "threadpoolctl": "threadpoolctl", "pandas": "pandas",
           "cloudpickle": "cloudpickle"}


def load_script(name: str):
    """``benchmarks/<name>.py`` as a module (not run). It is left out of ``sys.modules``, so
    that objectives defined in it are pickled by value for worker processes."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench():
    """``bench(name)``: the benchmark script ``benchmarks/<name>.py`` as a module."""
    return load_script


def _load_ok(values) -> bool:
    return isinstance(values, list) and len(values) == 3 and all(isinstance(v, float) and v >= 0 for v in values)


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def check_meta(meta: dict, script: str, packages: tuple[str, ...], head: str) -> None:
    """Assert ``meta`` describes this checkout (at commit ``head`` when the run started), this
    interpreter, this machine and the installed versions of ``packages`` (and of autodl, NumPy,
    SciPy, scikit-learn)."""
    assert meta["git"]["commit"] == head
    assert isinstance(meta["git"]["dirty"], bool)
    assert meta["git"]["dirty"] == bool(meta["git"]["changed"])
    assert isinstance(meta["git"]["same_at_end"], bool)
    assert meta["script"] == f"benchmarks/{script}.py"
    for dist in ("autodl", "numpy", "scipy", "scikit-learn", *packages):
        assert meta["versions"][dist] == importlib.import_module(MODULES[dist]).__version__, dist
    assert meta["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert meta["nproc"] == len(os.sched_getaffinity(0)) and meta["cpu_count"] == os.cpu_count()
    assert _load_ok(meta["load_average"]["start"]) and _load_ok(meta["load_average"]["end"])
    started, finished = dt.datetime.fromisoformat(meta["started"]), dt.datetime.fromisoformat(meta["finished"])
    assert started <= finished and meta["wall_seconds"] > 0
    now = dt.datetime.now(dt.timezone.utc)
    assert now - dt.timedelta(hours=2) < started <= now


@pytest.fixture
def meta_ok():
    """``meta_ok(meta, script, packages)``: see :func:`check_meta`; the commit is the one checked
    out when the test started (a commit made while a benchmark runs does not change its record)."""
    head = _head()
    return lambda meta, script, packages: check_meta(meta, script, packages, head)


def _hgb_default_score(name: str) -> float:
    """HistGradientBoosting with defaults on the benchmark's split (75/25, seed 0, stratified for
    classification), computed with scikit-learn alone (the oracle of the tabular and automl smoke tests):
    accuracy for iris, R^2 otherwise."""
    from sklearn import datasets
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.model_selection import train_test_split

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True, as_frame=True)
    classification = name == "iris"
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0,
                                              stratify=y if classification else None)
    model = (HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor)(random_state=0)
    return float(model.fit(X_tr, y_tr).score(X_te, y_te))


@pytest.fixture
def hgb_default_score():
    """:func:`_hgb_default_score`: default HGB's test score on a benchmark split, by scikit-learn alone."""
    return _hgb_default_score
