"""Helpers shared by the reliability tests: reading a study database without opening a Study."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def read_trials(db: Path) -> list[dict]:
    """Every trial row of ``db`` (read-only); [] while the file or table does not exist yet."""
    if not Path(db).is_file():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            rows = con.execute(
                "SELECT id, state, value, config, retry_of, retried_by, owner, message, started "
                "FROM trials ORDER BY id").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet, or briefly locked
        return []
    keys = ("id", "state", "value", "config", "retry_of", "retried_by", "owner", "message", "started")
    out = [dict(zip(keys, r)) for r in rows]
    for t in out:
        t["config"] = json.loads(t["config"])
    return out


def config_key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)
