"""Content-hash keyed caches for feature engineering, shared by every trial of a search.

A search clones the pipeline for each configuration and each fold, so a cache kept on the
transformer instance would be lost; these caches are module-level (one per process) and keyed
by the *content* of the input (:func:`frame_key`, built on ``pandas.util.hash_pandas_object``)
plus the settings that produced the features. With ``cache_dir`` the tables are also written as
Parquet files (no pickle), so worker processes and resumed runs reuse them.

* :class:`FrameCache` maps a key to a whole feature table (featuretools: the folds of a seeded
  search are the same in every trial, so each fold's table is computed once).
* :class:`RowCache` maps row hashes to feature rows (tsfresh: features of one series do not
  depend on other series, so a row extracted for one fold is reused by every other fold).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

_LOCK = threading.Lock()
MAX_TABLES = 64


def _digest(*parts: Any) -> str:
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, bytes):
            h.update(part)
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:24]


def row_hashes(frame) -> np.ndarray:
    """One uint64 per row, from the row's values (not its index)."""
    import pandas as pd

    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def frame_key(frame, *settings: Any) -> str:
    """A key for a DataFrame's content (values, column names, dtypes, row order) and settings."""
    cols = [str(c) for c in frame.columns]
    dtypes = [str(t) for t in frame.dtypes]
    return _digest(row_hashes(frame).tobytes(), cols, dtypes, *settings)


def settings_key(*settings: Any) -> str:
    return _digest(*settings)


class FrameCache:
    """Whole tables by key: in memory (least recently used, at most ``MAX_TABLES``), and in
    ``cache_dir`` as Parquet when given."""

    def __init__(self) -> None:
        self._tables: OrderedDict[str, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str, cache_dir: str | None = None):
        with _LOCK:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
                self.hits += 1
                return table.copy()
        if cache_dir:
            path = Path(cache_dir) / f"{key}.parquet"
            if path.is_file():
                import pandas as pd

                try:
                    table = pd.read_parquet(path)
                except (OSError, ValueError):
                    table = None
                if table is not None:
                    self._remember(key, table)
                    self.hits += 1
                    return table.copy()
        self.misses += 1
        return None

    def put(self, key: str, table, cache_dir: str | None = None) -> None:
        self._remember(key, table.copy())
        if cache_dir:
            write_parquet(table, Path(cache_dir) / f"{key}.parquet")

    def _remember(self, key: str, table) -> None:
        with _LOCK:
            self._tables[key] = table
            self._tables.move_to_end(key)
            while len(self._tables) > MAX_TABLES:
                self._tables.popitem(last=False)

    def clear(self) -> None:
        with _LOCK:
            self._tables.clear()
            self.hits = self.misses = 0


class RowCache:
    """Feature rows by (settings key, row hash). ``lookup`` returns the known rows and the
    positions still to compute; ``add`` stores newly computed rows."""

    def __init__(self) -> None:
        self._tables: dict[str, Any] = {}
        self.rows_hit = 0
        self.rows_computed = 0

    def _table(self, skey: str, cache_dir: str | None):
        table = self._tables.get(skey)
        if table is None and cache_dir:
            path = Path(cache_dir) / f"rows-{skey}.parquet"
            if path.is_file():
                import pandas as pd

                try:
                    table = pd.read_parquet(path)
                    table.index = table.index.astype(np.uint64)
                except (OSError, ValueError):
                    table = None
                if table is not None:
                    self._tables[skey] = table
        return table

    def lookup(self, skey: str, hashes: np.ndarray, cache_dir: str | None = None):
        """``(table of known rows indexed by hash or None, boolean mask of rows to compute)``."""
        with _LOCK:
            table = self._table(skey, cache_dir)
        if table is None:
            return None, np.ones(len(hashes), dtype=bool)
        known = np.isin(hashes, table.index.to_numpy())
        self.rows_hit += int(known.sum())
        return table, ~known

    def add(self, skey: str, hashes: np.ndarray, rows, cache_dir: str | None = None):
        """Store ``rows`` (one per hash, same order); returns the updated table."""
        import pandas as pd

        rows = rows.copy()
        rows.index = pd.Index(hashes, dtype=np.uint64)
        rows = rows[~rows.index.duplicated()]
        self.rows_computed += len(rows)
        with _LOCK:
            table = self._tables.get(skey)
            if table is not None:
                rows = rows.reindex(columns=table.columns) if set(rows.columns) == set(table.columns) else rows
                table = pd.concat([table, rows[~rows.index.isin(table.index)]])
            else:
                table = rows
            self._tables[skey] = table
        if cache_dir:
            write_parquet(table, Path(cache_dir) / f"rows-{skey}.parquet")
        return table

    def clear(self) -> None:
        with _LOCK:
            self._tables.clear()
            self.rows_hit = self.rows_computed = 0


def write_parquet(table, path: Path) -> None:
    """Write atomically (another worker may read the same file)."""
    from autodl.runs import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: table.to_parquet(tmp))
    except (OSError, ValueError, TypeError):
        pass  # a cache that cannot be written is only slower (atomic_write left no temporary file)


class Memo:
    """Small results (e.g. the features tsfresh selected for a fold) by key, in memory."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self.size = size
        self.hits = 0

    def get(self, key: str):
        with _LOCK:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        return None

    def put(self, key: str, value: Any) -> None:
        with _LOCK:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with _LOCK:
            self._items.clear()
            self.hits = 0


FRAMES = FrameCache()
ROWS = RowCache()
SELECTIONS = Memo()


def clear_caches() -> None:
    """Forget every cached feature table of this process (files in cache dirs are kept)."""
    FRAMES.clear()
    ROWS.clear()
    SELECTIONS.clear()
