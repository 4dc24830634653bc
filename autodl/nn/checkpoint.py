"""Checkpoints in a safe format, keyed by the config, written atomically.

Layout inside a run folder::

    RUN/checkpoints/<config_key>/state.pt    model, optimizer, schedule, RNG state, epoch
    RUN/checkpoints/<config_key>/meta.json   config, seed, kind, epoch, history (readable)

``state.pt`` holds only tensors and plain containers/numbers (``torch.save`` of state dicts);
it is read with ``torch.load(..., weights_only=True)``, which refuses arbitrary pickled
objects. Both files are written to a temporary name and renamed (``os.replace``), so a killed
process leaves either the old or the new checkpoint, never a torn one; ``meta.json`` is
written last and names the epoch of the ``state.pt`` it belongs to. Writes may be deferred to
a background thread (``background=True``) so the next trial trains meanwhile.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

import torch

from autodl.searchers.brackets import config_hash

STATE_FILE = "state.pt"
META_FILE = "meta.json"


def checkpoint_dir(run_dir: str | Path, config: Mapping[str, Any]) -> Path:
    """``RUN/checkpoints/<config_key>`` (the key is :func:`~autodl.searchers.brackets.config_hash`,
    the same as ``trial.info["config_key"]`` of multi-fidelity searchers)."""
    return Path(run_dir) / "checkpoints" / config_hash(config)


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# Checkpoints may be written by one background thread while the next trial trains: the caller
# hands over a snapshot (tensors cloned, so later training cannot change it) and the thread
# serializes and writes it. Reading a checkpoint first waits for a pending write to the same folder; call
# :func:`flush` before the process ends (an atexit hook does it too).
_LOCK = threading.Lock()
_WRITER: ThreadPoolExecutor | None = None
_PENDING: dict[str, Future] = {}


def _write_files(folder: Path, state: dict, meta: Mapping[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(folder / STATE_FILE, lambda p: torch.save(state, p))
    text = json.dumps(dict(meta), indent=1, sort_keys=True)
    _atomic_write_bytes(folder / META_FILE, lambda p: p.write_text(text))


def _snapshot(obj: Any) -> Any:
    """A copy of nested dicts/lists/tuples whose tensors are cloned (training may go on)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return type(obj)((k, _snapshot(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_snapshot(v) for v in obj)
    return obj


def save_checkpoint(folder: str | Path, state: Mapping[str, Any], meta: Mapping[str, Any], *,
                    background: bool = False) -> None:
    """Write ``state`` (tensors and plain values) and ``meta`` (JSON) atomically to ``folder``.

    With ``background=True`` the files are written by a writer thread (see :func:`flush`).
    """
    global _WRITER
    folder = Path(folder)
    if not background:
        wait(folder)
        _write_files(folder, dict(state), meta)
        return
    state, meta = _snapshot(dict(state)), json.loads(json.dumps(dict(meta)))
    with _LOCK:
        if _WRITER is None:
            _WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autodl-checkpoint")
            atexit.register(flush)
        _PENDING[str(folder)] = _WRITER.submit(_write_files, folder, state, meta)


def wait(folder: str | Path) -> None:
    """Wait until a background write to ``folder`` (if any) is on disk."""
    with _LOCK:
        fut = _PENDING.get(str(Path(folder)))
    if fut is not None:
        fut.result()
        with _LOCK:
            if _PENDING.get(str(Path(folder))) is fut:
                del _PENDING[str(Path(folder))]


def flush() -> None:
    """Wait for every background checkpoint write of this process."""
    with _LOCK:
        folders = list(_PENDING)
    for f in folders:
        wait(f)


def read_meta(folder: str | Path) -> dict[str, Any] | None:
    """The checkpoint's metadata, or None when there is no (complete) checkpoint."""
    wait(folder)
    path = Path(folder) / META_FILE
    if not path.is_file() or not (Path(folder) / STATE_FILE).is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def load_state(folder: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read ``state.pt`` with ``weights_only=True`` (no arbitrary code runs)."""
    wait(folder)
    return torch.load(Path(folder) / STATE_FILE, map_location=device, weights_only=True)


def save_weights(path: str | Path, model: torch.nn.Module, meta: Mapping[str, Any]) -> None:
    """Save a model's weights (state dict only) and a JSON description next to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _atomic_write_bytes(path, lambda p: torch.save(weights, p))
    text = json.dumps(dict(meta), indent=1, sort_keys=True, default=str)
    _atomic_write_bytes(path.with_suffix(".json"), lambda p: p.write_text(text))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    return torch.load(Path(path), map_location="cpu", weights_only=True)


__all__ = ["checkpoint_dir", "save_checkpoint", "wait", "flush", "read_meta", "load_state", "save_weights", "load_weights"]
