"""What every benchmark result records about the run that produced it, and how it is written.

Each script calls :func:`start` before measuring and :func:`write_result` to write its JSON;
the JSON then holds a ``meta`` record (``benchmarks/multifidelity.py`` pools several runs of
the script, its *measurements*, and keeps one record per measurement)::

    {"schema": 1,
     "script": "benchmarks/bbob.py", "argv": ["--seeds", "0", "1", "2"],
     "started": "2025-01-31T12:00:00+00:00", "finished": "...", "wall_seconds": 1837.9,
     "git": {"commit": "<40 hex digits>", "dirty": false, "changed": [], "same_at_end": true},
     "versions": {"autodl": "0.1.0", "numpy": "...", "optuna": "4.2.0", ...},
     "python": "3.11.7", "platform": "Linux-...", "cpu": "AMD EPYC ...",
     "nproc": 2, "cpu_count": 2, "threads_env": {"OMP_NUM_THREADS": "1", ...},
     "load_average": {"start": [0.8, 0.9, 1.0], "end": [1.1, 1.0, 1.0]}}

``git`` is taken when the run starts: ``dirty`` is true when tracked files differ from
``commit`` or untracked files exist (``changed`` lists them), ignoring ``benchmarks/results/``,
which the scripts themselves write; all None outside a git checkout. ``same_at_end`` is false
when the commit or the list of changed files was different when the run ended (the code
changed under the measurement). A version is None when the package is not installed.
``load_average`` is ``os.getloadavg()`` (1, 5 and 15 minutes) when the run started and ended:
on a shared machine it says how much other work competed with the measurement.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

SCHEMA = 1
ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
#: recorded for every script: the tool under test and the numerical stack under everything
BASE_PACKAGES = ("autodl", "numpy", "scipy", "scikit-learn")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_out(stem: str, quick: bool) -> Path:
    """``benchmarks/results/<stem>.json``, or ``<stem>_quick.json`` (git-ignored) for a quick run."""
    return RESULTS_DIR / (f"{stem}_quick.json" if quick else f"{stem}.json")


def load_average() -> list[float] | None:
    """``os.getloadavg()`` rounded to 0.01, or None where the platform has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def git_state(root: str | Path | None = None) -> dict[str, Any]:
    """``{"commit", "dirty", "changed"}`` of the checkout at ``root`` (default: this one; all
    None without git)."""
    root = ROOT if root is None else root

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True,
                              timeout=30).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--untracked-files=all", "--", ".",
                     ":(exclude)benchmarks/results")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "changed": None}
    changed = sorted(line[3:] for line in status.splitlines() if line.strip())
    return {"commit": commit, "dirty": bool(changed), "changed": changed}


def versions(packages: Iterable[str]) -> dict[str, str | None]:
    """Installed version of each distribution (``"scikit-learn"``, ``"coco-experiment"``)."""
    out: dict[str, str | None] = {}
    for name in dict.fromkeys([*BASE_PACKAGES, *packages]):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nproc() -> int | None:
    """CPUs this process may run on (what ``nproc`` prints)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def start(script: str, argv: list[str] | None = None, packages: Iterable[str] = ()) -> dict[str, Any]:
    """The run's record, taken before measuring: commit, versions, machine, load average.

    Args:
        script: the script's ``__file__``.
        argv: its arguments (default ``sys.argv[1:]``).
        packages: distributions the script compares or uses besides :data:`BASE_PACKAGES`.
    """
    path = Path(script).resolve()
    try:
        script = str(path.relative_to(ROOT))
    except ValueError:
        script = str(path)
    return {
        "schema": SCHEMA,
        "script": script,
        "argv": list(sys.argv[1:] if argv is None else argv),
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "finished": None,
        "wall_seconds": None,
        "git": git_state(),
        "versions": versions(packages),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "nproc": _nproc(),
        "cpu_count": os.cpu_count(),
        "threads_env": {k: os.environ.get(k) for k in _THREAD_VARS},
        "load_average": {"start": load_average(), "end": None},
        "_t0": time.perf_counter(),
    }


def finish(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` completed with the end time, wall seconds and end load average (a copy)."""
    done = {k: v for k, v in meta.items() if k != "_t0"}
    done["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if "_t0" in meta:
        done["wall_seconds"] = round(time.perf_counter() - meta["_t0"], 3)
    done["load_average"] = {"start": meta["load_average"]["start"], "end": load_average()}
    start_git = {k: v for k, v in meta["git"].items() if k != "same_at_end"}
    done["git"] = {**start_git, "same_at_end": git_state() == start_git}
    return done


def jsonable(o: Any) -> Any:
    """``o`` with NumPy scalars as Python numbers, tuples as lists and non-finite floats as None."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if hasattr(o, "item") and callable(o.item) and type(o).__module__ == "numpy":
        return jsonable(o.item())
    if isinstance(o, Path):
        return str(o)
    return o


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` (parents created; written to a temporary file, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jsonable(obj), indent=1, allow_nan=False, default=str))
    os.replace(tmp, path)
    return path


def write_result(path: str | Path, result: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Finish ``meta``, put it first in ``result`` and write ``result`` to ``path``; returns the
    written result (as JSON gives it back: non-finite floats are None)."""
    out = {"meta": finish(meta), **{k: v for k, v in result.items() if k != "meta"}}
    write_json(path, out)
    print(f"wrote {path}")
    return jsonable(out)


def metas(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The run records of a result file: its ``meta``, or one per pooled measurement."""
    if "measurements" in result:
        return [m["meta"] for m in result["measurements"]]
    return [result["meta"]] if "meta" in result else []
