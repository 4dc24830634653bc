"""Checkpoints in a safe format, keyed by the config, written atomically.

Layout inside a run folder::

    RUN/checkpoints/<config_key>/checkpoint.safetensors

One file per config in the `safetensors <https://huggingface.co/docs/safetensors>`_ layout: an
8-byte little-endian header length, a JSON header naming every tensor's dtype, shape and byte
range, then the raw tensor bytes. The header's ``__metadata__`` holds, as JSON text,

* ``meta``      what wrote it: config, seed, kind, horizon, epoch, training history;
* ``skeleton``  the nested state (model, optimizer and schedule state, RNG state, epoch, early
  stopping) with each tensor replaced by ``{"__tensor__": name}``.

Nothing is pickled, so reading runs no code; :func:`read_meta` parses the header only, and any
safetensors reader opens the tensors. A file is written under a temporary name and renamed
(``os.replace``), so a killed process leaves the old or the new checkpoint, never a torn one.
The state is serialized synchronously (that is the snapshot: training may go on right after);
with ``background=True`` only the file write is left to a writer thread.

The process keeps the bytes of the checkpoints it wrote last (at most :data:`CACHE_BYTES`): a
promoted trial in the same process resumes from them instead of reading the file, and without
waiting for a background write. The copy is used only while the file on disk is the one this
process wrote (or its write is still pending); otherwise the file is read.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from autodl.runs.folder import atomic_write
from autodl.searchers.brackets import config_hash

STATE_FILE = "checkpoint.safetensors"
FORMAT = "autodl-checkpoint/1"
#: memory for the in-process copies of recently written checkpoints (oldest dropped first)
CACHE_BYTES = 256 * 2**20


class CheckpointError(ValueError):
    """A checkpoint file that is not a readable autodl checkpoint."""


def checkpoint_dir(run_dir: str | Path, config: Mapping[str, Any]) -> Path:
    """``RUN/checkpoints/<config_key>`` (the key is :func:`~autodl.searchers.brackets.config_hash`,
    the same as ``trial.info["config_key"]`` of multi-fidelity searchers)."""
    return Path(run_dir) / "checkpoints" / config_hash(config)


# ------------------------------------------------------------------ the file format
# safetensors dtype names; bfloat16 has no NumPy type and travels as its int16 bit pattern
_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
           torch.uint8: "U8", torch.bool: "BOOL"}
_NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.int16, "I64": np.int64,
          "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_TENSOR, _DICT, _TUPLE = "__tensor__", "__dict__", "__tuple__"


def _flatten(obj: Any, arrays: list) -> Any:
    """``obj`` as JSON-able data, its tensors appended to ``arrays`` as (dtype name, array)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        name = _DTYPES.get(t.dtype)
        if name is None:
            raise TypeError(f"cannot checkpoint a tensor of dtype {t.dtype}")
        t = t.cpu()
        if t.dtype == torch.bfloat16:
            t = t.view(torch.int16)
        arrays.append((name, t.contiguous().numpy()))
        return {_TENSOR: str(len(arrays) - 1)}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _flatten(v, arrays) for k, v in obj.items()}
        bad = [k for k in obj if not isinstance(k, (str, int)) or isinstance(k, bool)]
        if bad:
            raise TypeError(f"cannot checkpoint a dict key {bad[0]!r} (str and int keys only)")
        return {_DICT: [[k, _flatten(v, arrays)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUPLE: [_flatten(v, arrays) for v in obj]}
    if isinstance(obj, list):
        return [_flatten(v, arrays) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} (tensors and plain values only)")


def serialize(state: Mapping[str, Any], meta: Mapping[str, Any]) -> bytes:
    """The checkpoint file's bytes for ``state`` (tensors and plain values) and ``meta`` (JSON)."""
    arrays: list = []
    skeleton = _flatten(dict(state), arrays)
    header: dict[str, Any] = {"__metadata__": {"format": FORMAT, "meta": json.dumps(dict(meta), sort_keys=True),
                                               "skeleton": json.dumps(skeleton)}}
    offset = 0
    for i, (name, a) in enumerate(arrays):
        header[str(i)] = {"dtype": name, "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned
    return b"".join([len(head).to_bytes(8, "little"), head, *(a.reshape(-1) for _, a in arrays)])


def _header(data: bytes | memoryview, what: str) -> tuple[dict, int]:
    if len(data) < 8:
        raise CheckpointError(f"{what}: too short for a checkpoint")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8:
        raise CheckpointError(f"{what}: header longer than the file")
    try:
        header = json.loads(bytes(data[8:8 + n]))
        meta = header["__metadata__"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise CheckpointError(f"{what}: not a safetensors header") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{what}: not an autodl checkpoint ({FORMAT})")
    return header, 8 + n


def _json_dict(text: Any, what: str, part: str) -> dict:
    try:
        value = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise CheckpointError(f"{what}: unreadable {part}")
    return value


def parse_meta(data: bytes | memoryview, what: str = "checkpoint") -> dict[str, Any]:
    """The ``meta`` stored in a checkpoint's bytes (only the header is parsed)."""
    header, _ = _header(data, what)
    return _json_dict(header["__metadata__"].get("meta"), what, "metadata")


def deserialize(data: bytes | memoryview, device: torch.device | str = "cpu",
                what: str = "checkpoint") -> dict[str, Any]:
    """The state stored in a checkpoint's bytes, its tensors fresh copies on ``device``."""
    return decode(data, device, what)[0]


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _tensor_table(header: dict, size: int, what: str) -> dict[str, tuple[str, list[int], int, int]]:
    """``{name: (dtype, shape, start, end)}``, checked as the safetensors format demands: known
    dtypes, shapes of non-negative ints, byte ranges that match the shape and tile the data
    part exactly (in order, no gaps, no overlaps), so nothing is read twice or from outside."""
    table = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
            ok = (dtype in _NUMPY and isinstance(shape, list) and all(_is_count(d) for d in shape)
                  and isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets))
        except (KeyError, TypeError):
            ok = False
        if not ok or offsets[1] - offsets[0] != math.prod(shape) * np.dtype(_NUMPY[dtype]).itemsize:
            raise CheckpointError(f"{what}: tensor {name!r} is malformed")
        table[name] = (dtype, shape, offsets[0], offsets[1])
    at = 0
    for _, _, lo, hi in sorted(table.values(), key=lambda e: (e[2], e[3])):
        if lo != at:
            raise CheckpointError(f"{what}: tensor data overlaps or leaves gaps")
        at = hi
    if at != size:
        raise CheckpointError(f"{what}: tensor data does not fill the file")
    return table


def decode(data: bytes | memoryview, device: torch.device | str = "cpu",
           what: str = "checkpoint") -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, meta)`` from a checkpoint's bytes (one pass over the header)."""
    header, start = _header(data, what)
    table = _tensor_table(header, len(data) - start, what)
    meta = _json_dict(header["__metadata__"].get("meta"), what, "metadata")
    skeleton = _json_dict(header["__metadata__"].get("skeleton"), what, "state layout")

    def tensor(name: Any) -> torch.Tensor:
        dtype, shape, lo, hi = table[name]
        a = np.frombuffer(data, dtype=_NUMPY[dtype], count=math.prod(shape), offset=start + lo).reshape(shape)
        if dtype == "BOOL" and a.size and a.view(np.uint8).max() > 1:
            raise ValueError("bool bytes other than 0 and 1")
        t = torch.from_numpy(a.copy())
        if dtype == "BF16":
            t = t.view(torch.bfloat16)
        return t.to(device) if str(device) != "cpu" else t

    def build(obj: Any) -> Any:
        if isinstance(obj, dict):
            if _TENSOR in obj:
                return tensor(obj[_TENSOR])
            if _DICT in obj:
                return {k: build(v) for k, v in obj[_DICT]}
            if _TUPLE in obj:
                return tuple(build(v) for v in obj[_TUPLE])
            return {k: build(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [build(v) for v in obj]
        return obj

    try:
        state = build(skeleton)  # only the tensors the state refers to are copied
    except (ValueError, KeyError, TypeError, RecursionError):
        raise CheckpointError(f"{what}: unreadable state layout") from None
    return state, meta


# ------------------------------------------------------------------ writing, the in-memory copies
# Checkpoints may be written by one background thread while the next trial trains; reading a
# checkpoint first waits for a pending write to the same folder, unless the in-memory copy
# serves it. Call :func:`flush` before the process ends (an atexit hook does it too).
_LOCK = threading.Lock()
_WRITER: ThreadPoolExecutor | None = None
_PENDING: dict[str, Future] = {}
_RECENT: "OrderedDict[str, _Copy]" = OrderedDict()  # folder -> its last checkpoint written here
_RECENT_BYTES = 0


@dataclass
class _Copy:
    """A checkpoint this process wrote: its bytes, its meta and, once written, the file's identity."""

    data: bytes
    meta: dict
    file: tuple | None = None  # (inode, mtime_ns, size) of the file

    @property
    def nbytes(self) -> int:
        return len(self.data)


def _identity(folder: Path) -> tuple | None:
    try:
        st = os.stat(folder / STATE_FILE)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _write_file(folder: Path, copy: _Copy) -> None:
    folder.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        tmp.write_bytes(copy.data)
        st = os.stat(tmp)  # (a rename keeps these; taken before it, another writer cannot slip in)
        copy.file = st.st_ino, st.st_mtime_ns, st.st_size

    atomic_write(folder / STATE_FILE, write)


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
    """This process's copy of ``folder``'s checkpoint if the file is still the one it wrote
    (or will be, once its pending write lands)."""
    key = str(Path(folder))
    with _LOCK:
        copy = _RECENT.get(key)
        fut = _PENDING.get(key)
    if copy is None:
        return None
    if fut is not None and not fut.done():
        return copy
    if copy.file is not None and _identity(Path(folder)) == copy.file:
        return copy
    with _LOCK:  # replaced by someone else (or the write failed): read the file
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

    The state is serialized before this returns, so training may go on at once; with
    ``background=True`` the file is written by a writer thread (see :func:`flush`).
    """
    global _WRITER
    folder = Path(folder)
    meta = json.loads(json.dumps(dict(meta)))  # what a reader of the file gets back
    copy = _Copy(serialize(state, meta), meta)
    if not background:
        wait(folder)
        _write_file(folder, copy)
        with _LOCK:
            _remember(str(folder), copy)
        return
    with _LOCK:
        if _WRITER is None:
            _WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autodl-checkpoint")
            atexit.register(flush)
        _PENDING[str(folder)] = _WRITER.submit(_write_file, folder, copy)
        _remember(str(folder), copy)


def wait(folder: str | Path) -> None:
    """Wait until a background write to ``folder`` (if any) is on disk."""
    key = str(Path(folder))
    with _LOCK:
        fut = _PENDING.get(key)
    if fut is not None:
        fut.result()
        with _LOCK:
            if _PENDING.get(key) is fut:
                del _PENDING[key]


def flush() -> None:
    """Wait for every background checkpoint write of this process."""
    with _LOCK:
        folders = list(_PENDING)
    for f in folders:
        wait(f)


def _read_file(path: Path) -> bytes:
    return path.read_bytes()


def read_meta(folder: str | Path) -> dict[str, Any] | None:
    """The checkpoint's metadata (only the file's header is read), or None when there is no
    readable checkpoint (a damaged or foreign file counts as none: the trial trains from
    scratch and replaces it)."""
    copy = _recent(folder)
    if copy is not None:
        return json.loads(json.dumps(copy.meta))
    wait(folder)
    path = Path(folder) / STATE_FILE
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            if n > os.fstat(f.fileno()).st_size - 8:
                return None  # (not read: a foreign file's first bytes may claim any length)
            return parse_meta(head + f.read(n), str(path))
    except (OSError, CheckpointError):
        return None


def load_checkpoint(folder: str | Path, device: torch.device | str = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, meta)`` of one checkpoint, both from the same bytes: this process's in-memory
    copy or the file. Raises FileNotFoundError without one, :class:`CheckpointError` for a
    damaged or foreign file."""
    path = Path(folder) / STATE_FILE
    copy = _recent(folder)
    if copy is None:
        wait(folder)
    return decode(copy.data if copy is not None else _read_file(path), device, str(path))


def load_state(folder: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The checkpoint's state (fresh tensors on ``device``); see :func:`load_checkpoint`."""
    return load_checkpoint(folder, device)[0]


def save_weights(path: str | Path, model: torch.nn.Module, meta: Mapping[str, Any]) -> None:
    """Save a model's weights (state dict only) and a JSON description next to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda p: torch.save(weights, p))
    text = json.dumps(dict(meta), indent=1, sort_keys=True, default=str)
    atomic_write(path.with_suffix(".json"), lambda p: p.write_text(text))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    return torch.load(Path(path), map_location="cpu", weights_only=True)


__all__ = ["checkpoint_dir", "save_checkpoint", "wait", "flush", "read_meta", "load_state", "load_checkpoint",
           "clear_cache", "serialize", "deserialize", "decode", "parse_meta", "CheckpointError", "save_weights",
           "load_weights", "CACHE_BYTES", "STATE_FILE"]
