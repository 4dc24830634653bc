"""The run folder every kind of search writes, and the one way files get into it.

A run folder holds, for every kind (tabular, nn, nas):

* ``run.json``    what was asked: ``{"kind": ..., "format": FORMAT, **the kind's spec}``,
* ``result.json`` one envelope for every kind (:func:`result_envelope`),
* ``split.npz``   the rows held out: integer row indices ``train``, ``val`` and ``test`` of the
  data as loaded (never rebuilt from a seed at export time),
* ``study.db``    the trials (SQLite), for kinds that search through a :class:`~autodl.Study`,
* the kind's model file(s) (``model.skops``, ``model.pt`` + ``model.json``, ...).

Every file is written under a temporary name in the same folder and renamed (:func:`atomic_write`),
so a killed process leaves the old file or the new one, never half of one, and a failed write
leaves no ``*.tmp`` behind.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from autodl.errors import StorageError, UserError

#: version of the run-folder layout written by this autodl. 1: the folders of autodl before the
#: run model (tabular ``run.json`` without ``kind``; per-kind ``result.json`` shapes; no
#: ``split.npz``); they are read, and a missing split is rebuilt from the seed as they were.
FORMAT = 2
RUN_FILE = "run.json"
RESULT_FILE = "result.json"
SPLIT_FILE = "split.npz"


# ------------------------------------------------------------------------------ atomic writes
def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it to ``path``.

    The temporary file is removed if ``write`` fails (whatever the exception), so nothing
    half-written is left; operating-system errors propagate (the CLI turns them into one line).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename == str(tmp):  # name the file the user asked for
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def write_json(path: str | Path, data: Any) -> Path:
    """``data`` as indented JSON (NumPy scalars and arrays become numbers and lists)."""
    return write_text(path, json.dumps(data, indent=2, default=json_default))


def json_default(o: Any):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; one line naming the file when it is damaged."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StorageError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); the run folder is "
                           "damaged") from None


# -------------------------------------------------------------------------------- the folder
def new_run_dir(out: str | Path) -> Path:
    """Check that ``out`` can hold a new run (absent or empty, and creatable); does not create it."""
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise UserError(f"--out {out} is a file; give a folder for the run")
        if (out / RUN_FILE).exists() or (out / "study.db").exists():
            raise UserError(f"{out} already holds a run; continue it with `autodl resume {out}` "
                            "or choose another --out")
        if any(out.iterdir()):
            raise UserError(f"{out} is not empty; choose a new or empty folder for --out")
        if not os.access(out, os.W_OK | os.X_OK):
            raise UserError(f"cannot write to {out} (permission denied); choose another --out")
        return out
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot create {out}: {parent} is a file; choose another --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot create {out}: no permission to write in {parent.resolve()}; choose another --out")
    return out


def create_run(out: str | Path, kind: str, spec: Mapping[str, Any],
               fill: Callable[[Path], None] | None = None) -> Path:
    """Create the run folder ``out`` with ``run.json`` (``kind``, ``format`` and ``spec``), then
    ``fill(run_dir)`` (data in memory, the split, ...). If anything fails, nothing is left."""
    run_dir = new_run_dir(out)
    existed = run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / RUN_FILE, {"kind": kind, "format": FORMAT, **dict(spec)})
        if fill is not None:
            fill(run_dir)
    except BaseException:
        remove_run(run_dir, keep_folder=existed)
        raise
    return run_dir


def remove_run(run_dir: Path, keep_folder: bool = False) -> None:
    """Remove what a failed start wrote (the folder too unless it existed before)."""
    if keep_folder:
        for p in run_dir.iterdir():
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)


def read_run(run_dir: str | Path) -> tuple[str, dict[str, Any]]:
    """``(kind, spec fields)`` of a run folder, reading old (format 1) folders too.

    A folder without ``run.json``, a kind this autodl does not know, or a format newer than
    :data:`FORMAT` is one line naming the problem.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder; give a run folder made by `autodl search`")
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise UserError(f"{run_dir} is not an autodl run folder (no {RUN_FILE})")
    data = read_json(path)
    if not isinstance(data, dict):
        raise StorageError(f"{path} does not hold a JSON object; the run folder is damaged")
    data = dict(data)
    fmt = data.pop("format", 1)
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise StorageError(f"{run_dir} was written by a newer autodl (run-folder format {fmt}, this one reads up "
                           f"to {FORMAT}); upgrade autodl to open it")
    kind = data.pop("kind", None) or "tabular"  # format 1 tabular folders name no kind
    from autodl.runs.registry import KINDS

    if kind not in KINDS:
        raise StorageError(f"{run_dir} is a '{kind}' run, which this autodl does not know (known: "
                           f"{', '.join(KINDS)})")
    data["__format__"] = fmt
    return kind, data


def update_run(run_dir: str | Path, **fields: Any) -> None:
    """Change fields of ``run.json`` (e.g. the total number of trials after ``resume --trials``)."""
    path = Path(run_dir) / RUN_FILE
    data = read_json(path)
    data.update(fields)
    write_json(path, data)


# -------------------------------------------------------------------------------- the split
def save_split(run_dir: str | Path, **parts: Any) -> None:
    """Write ``split.npz``: integer row indices per part (``train``, ``val``, ``test``; a part
    that is None is stored empty). No pickle: load with ``allow_pickle=False``."""
    arrays = {k: np.asarray([] if v is None else v, dtype=np.int64) for k, v in parts.items()}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    atomic_write(Path(run_dir) / SPLIT_FILE, write)


def load_split(run_dir: str | Path) -> dict[str, np.ndarray] | None:
    """The row indices saved by :func:`save_split`, or None for a folder without them."""
    path = Path(run_dir) / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k], dtype=np.int64) for k in z.files}
    except (ValueError, OSError) as exc:
        raise StorageError(f"{path} is not a readable split file ({exc}); the run folder is damaged") from None


# ------------------------------------------------------------------------------- the result
#: fields every result.json has, whatever the kind
ENVELOPE = ("kind", "format", "metric", "direction", "best_value", "best_config", "best_trial", "best_budget",
            "test_score", "n_complete", "n_failed", "n_pruned", "extra")


def result_envelope(kind: str, *, metric: str | list[str], direction: str | list[str], best_value: Any,
                    best_config: Mapping[str, Any] | None, best_trial: int | None = None,
                    best_budget: float | None = None, test_score: Any = None, counts: Mapping[str, int] | None = None,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The one ``result.json`` shape: see :data:`ENVELOPE`.

    ``metric`` and ``direction`` are a string each for one objective, lists of the same length
    for several (then ``best_value`` and ``test_score`` are lists too, or None); ``extra`` holds
    what only this kind has (nn: epochs trained; nas: parameters, search seconds, ...).
    """
    counts = dict(counts or {})
    if isinstance(metric, (list, tuple)) != isinstance(direction, (list, tuple)):
        raise ValueError("metric and direction must both be strings or both be lists")
    return {"kind": kind, "format": FORMAT, "metric": metric, "direction": direction,
            "best_value": best_value, "best_config": dict(best_config) if best_config is not None else None,
            "best_trial": best_trial, "best_budget": best_budget, "test_score": test_score,
            "n_complete": int(counts.get("complete", 0)), "n_failed": int(counts.get("failed", 0)),
            "n_pruned": int(counts.get("pruned", 0)), "extra": dict(extra or {})}


def study_counts(study) -> dict[str, int]:
    """Trials per finished state of ``study`` (``complete``, ``failed``, ``pruned``)."""
    from autodl.study import TrialState

    trials = study.trials
    return {s.value: sum(t.state == s for t in trials)
            for s in (TrialState.COMPLETE, TrialState.FAILED, TrialState.PRUNED)}


def write_result(run_dir: str | Path, envelope: Mapping[str, Any]) -> Path:
    missing = [k for k in ENVELOPE if k not in envelope]
    if missing:
        raise ValueError(f"result envelope lacks {missing}")
    return write_json(Path(run_dir) / RESULT_FILE, dict(envelope))


def read_result(run_dir: str | Path) -> dict[str, Any]:
    """``result.json`` as the envelope; old (format 1) shapes are converted. One line if the run
    has no result yet."""
    run_dir = Path(run_dir)
    path = run_dir / RESULT_FILE
    if not path.is_file():
        raise UserError(f"{run_dir} has no result.json yet (the search did not finish); finish it with "
                        f"`autodl resume {run_dir}`")
    data = read_json(path)
    if not isinstance(data, dict):
        raise StorageError(f"{path} does not hold a JSON object; the run folder is damaged")
    return upgrade_result(data)


def upgrade_result(old: Mapping[str, Any]) -> dict[str, Any]:
    """A ``result.json`` as the envelope: returned as is when it is one, converted from the
    format-1 shapes (tabular, nn or nas) otherwise."""
    if "best_value" in old and "extra" in old:
        return dict(old)
    if "best_score" in old:  # tabular
        kind, best, test = "tabular", old.get("best_score"), old.get("test_score")
        trial, metric = old.get("best_trial_id"), old.get("metric")
    elif "best_val_accuracy" in old and old.get("kind") != "nas":  # nn
        kind, best, test = "nn", old.get("best_val_accuracy"), old.get("test_accuracy")
        trial, metric = old.get("best_trial_id"), "accuracy"
    else:  # nas (darts, evolution, random)
        kind, best, test = "nas", old.get("best_val_accuracy"), old.get("test_accuracy")
        trial, metric = old.get("best_trial_id"), "accuracy"
    skip = {"best_score", "test_score", "best_val_accuracy", "test_accuracy", "best_trial_id", "best_config",
            "best_budget", "metric", "direction", "kind", "n_complete", "n_failed", "n_pruned"}
    counts = {"complete": old.get("n_complete", 0), "failed": old.get("n_failed", 0),
              "pruned": old.get("n_pruned", 0)}
    return result_envelope(kind, metric=metric or "accuracy", direction=old.get("direction", "maximize"),
                           best_value=best, best_config=old.get("best_config"), best_trial=trial,
                           best_budget=old.get("best_budget"), test_score=test, counts=counts,
                           extra={k: v for k, v in old.items() if k not in skip})
