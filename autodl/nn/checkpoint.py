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

The process also keeps a copy of the checkpoints it wrote last (at most :data:`CACHE_BYTES`):
a promoted trial in the same process resumes from that copy instead of reading and
unpickling ``state.pt`` again, and without waiting for a background write of it. The copy is
used only while ``meta.json`` on disk is the one this process wrote (or its write is still
pending); otherwise the files are read.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from autodl.searchers.brackets import config_hash

STATE_FILE = "state.pt"
META_FILE = "meta.json"
#: memory for the in-process copies of recently written checkpoints (oldest dropped first)
CACHE_BYTES = 256 * 2**20


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
# hands over a snapshot (tensors copied, so later training cannot change it) and the thread
# serializes and writes it. Reading a checkpoint first waits for a pending write to the same
# folder, unless the in-memory copy serves it; call :func:`flush` before the process ends (an
# atexit hook does it too).
_LOCK = threading.Lock()
_WRITER: ThreadPoolExecutor | None = None
_PENDING: dict[str, Future] = {}
_RECENT: "OrderedDict[str, _Copy]" = OrderedDict()  # folder -> its last checkpoint written here
_RECENT_BYTES = 0


@dataclass
class _Copy:
    """A checkpoint this process wrote: its contents and, once written, the files' identity."""

    meta: dict
    state: dict
    nbytes: int
    files: tuple | None = None  # (inode, mtime_ns, size) of state.pt and meta.json


def _identity(folder: Path) -> tuple | None:
    try:
        return tuple((st.st_ino, st.st_mtime_ns, st.st_size)
                     for st in (os.stat(folder / STATE_FILE), os.stat(folder / META_FILE)))
    except OSError:
        return None


def _write_files(folder: Path, copy: _Copy) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # serialized in memory, then written at once: torch.save to a path writes every record
    # through the file (about twice the time for a small model's state)
    buf = io.BytesIO()
    torch.save(copy.state, buf)
    data = buf.getbuffer()
    _atomic_write_bytes(folder / STATE_FILE, lambda p: p.write_bytes(data))
    text = json.dumps(copy.meta, indent=1, sort_keys=True)
    _atomic_write_bytes(folder / META_FILE, lambda p: p.write_text(text))
    copy.files = _identity(folder)


def _snapshot(obj: Any, device: torch.device | str | None = None) -> Any:
    """A copy of nested dicts/lists/tuples whose tensors are copied (training may go on), to
    ``device`` if given."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone() if device is None else obj.detach().to(device, copy=True)
    if isinstance(obj, dict):
        return type(obj)((k, _snapshot(v, device)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_snapshot(v, device) for v in obj)
    return obj


def _nbytes(obj: Any) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(v) for v in obj)
    return 0


def _forget(key: str) -> None:
    global _RECENT_BYTES
    old = _RECENT.pop(key, None)
    if old is not None:
        _RECENT_BYTES -= old.nbytes


def _remember(key: str, copy: _Copy) -> None:
    """Keep ``copy`` as the in-memory checkpoint of folder ``key``; call holding _LOCK."""
    global _RECENT_BYTES
    _forget(key)
    if copy.nbytes > CACHE_BYTES:
        return
    _RECENT[key] = copy
    _RECENT_BYTES += copy.nbytes
    while _RECENT_BYTES > CACHE_BYTES:
        _RECENT_BYTES -= _RECENT.popitem(last=False)[1].nbytes


def _recent(folder: str | Path) -> _Copy | None:
    """This process's copy of ``folder``'s checkpoint if the files are still the ones it wrote
    (or will be, once its pending write lands)."""
    key = str(Path(folder))
    with _LOCK:
        copy = _RECENT.get(key)
        fut = _PENDING.get(key)
    if copy is None:
        return None
    if fut is not None and not fut.done():
        return copy
    if copy.files is not None and _identity(Path(folder)) == copy.files and _read_meta_file(folder) == copy.meta:
        return copy  # (meta.json too: a file rewritten in place may keep inode, size and mtime)
    with _LOCK:  # replaced by someone else (or the write failed): read the files
        if _RECENT.get(key) is copy:
            _forget(key)
    return None


def clear_cache() -> None:
    """Forget the in-memory copies of checkpoints (the files stay)."""
    global _RECENT_BYTES
    with _LOCK:
        _RECENT.clear()
        _RECENT_BYTES = 0


def save_checkpoint(folder: str | Path, state: Mapping[str, Any], meta: Mapping[str, Any], *,
                    background: bool = False) -> None:
    """Write ``state`` (tensors and plain values) and ``meta`` (JSON) atomically to ``folder``.

    With ``background=True`` the files are written by a writer thread (see :func:`flush`).
    """
    global _WRITER
    folder = Path(folder)
    state = _snapshot(dict(state), "cpu")
    copy = _Copy(json.loads(json.dumps(dict(meta))), state, _nbytes(state))
    if not background:
        wait(folder)
        _write_files(folder, copy)
        with _LOCK:
            _remember(str(folder), copy)
        return
    with _LOCK:
        if _WRITER is None:
            _WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autodl-checkpoint")
            atexit.register(flush)
        _PENDING[str(folder)] = _WRITER.submit(_write_files, folder, copy)
        _remember(str(folder), copy)


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


def _read_meta_file(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / META_FILE
    if not path.is_file() or not (Path(folder) / STATE_FILE).is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_meta(folder: str | Path) -> dict[str, Any] | None:
    """The checkpoint's metadata, or None when there is no (complete) checkpoint."""
    copy = _recent(folder)
    if copy is not None:
        return json.loads(json.dumps(copy.meta))
    wait(folder)
    return _read_meta_file(folder)


def load_state(folder: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read ``state.pt`` with ``weights_only=True`` (no arbitrary code runs), or copy this
    process's in-memory copy of it."""
    copy = _recent(folder)
    if copy is not None:
        return _snapshot(copy.state, device)
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


__all__ = ["checkpoint_dir", "save_checkpoint", "wait", "flush", "read_meta", "load_state", "clear_cache",
           "save_weights", "load_weights", "CACHE_BYTES"]
