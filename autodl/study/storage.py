"""Where trials live: in memory, or in one SQLite file that survives crashes.

The SQLite storage is one file (``study.db`` in a run folder) in WAL mode; every change is a
short transaction, so a process killed at any instant leaves the file consistent, and several
processes may share it (writes wait on a busy timeout instead of failing).

Sharing a study between processes (``autodl worker RUN`` next to ``autodl search``):

* trial ids come from SQLite's AUTOINCREMENT inside the writing transaction, so they are unique;
* a study-wide trial limit is kept by counting finished + running trials inside the same
  ``BEGIN IMMEDIATE`` transaction that creates a trial (``create_trial(..., limit=N)``);
* every running trial records its owner (``host:pid``). On the same host a dead owner is seen
  at once (its pid is gone); for other hosts each driver refreshes a heartbeat on its running
  trials (:class:`Heartbeat`, every 30 s) and an owner silent for ``STALE_AFTER`` seconds
  (10 minutes) is taken for dead: its trials become ABANDONED and are re-run.

Schema versions: the file's ``PRAGMA user_version`` is the version of its tables. Opening a
file brings an older one up to :data:`SCHEMA_VERSION` with the steps in :data:`_MIGRATIONS`
(a file from before versions existed has ``user_version`` 0); a file written by a newer autodl
is refused with a :class:`~autodl.errors.StorageError` rather than misread.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from autodl.errors import StorageError
from autodl.study.trial import FrozenTrial, TrialState

#: version of the tables below (``PRAGMA user_version``); a change of them adds a migration
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL,
    value REAL,
    config TEXT NOT NULL,
    budget REAL,
    info TEXT NOT NULL DEFAULT '{}',
    message TEXT,
    started REAL,
    finished REAL,
    owner TEXT,
    retry_of INTEGER,
    retried_by INTEGER,
    user_attrs TEXT NOT NULL DEFAULT '{}',
    heartbeat REAL,
    objective_values TEXT,
    constraints TEXT
);
CREATE INDEX IF NOT EXISTS trials_by_state ON trials (state);
CREATE TABLE IF NOT EXISTS intermediate (
    trial_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    value REAL NOT NULL,
    objective_values TEXT,
    PRIMARY KEY (trial_id, step)
);
"""


def _to_v1(con: sqlite3.Connection) -> None:
    """Version 1: the tables above. A file from before versions (0) may lack ``heartbeat``."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            con.execute(statement)
    columns = {row[1] for row in con.execute("PRAGMA table_info(trials)")}
    if "heartbeat" not in columns:
        con.execute("ALTER TABLE trials ADD COLUMN heartbeat REAL")


def _to_v2(con: sqlite3.Connection) -> None:
    """Version 2: several objectives and constraints. ``objective_values`` (a JSON list: what the
    objective returned, one value per direction) and ``constraints`` (a JSON object name ->
    value). A version-1 study had one objective: its values become ``[value]``."""
    columns = {row[1] for row in con.execute("PRAGMA table_info(trials)")}
    for name in ("objective_values", "constraints"):
        if name not in columns:
            con.execute(f"ALTER TABLE trials ADD COLUMN {name} TEXT")
    rows = con.execute("SELECT id, value FROM trials WHERE value IS NOT NULL "
                       "AND objective_values IS NULL").fetchall()
    con.executemany("UPDATE trials SET objective_values = ? WHERE id = ?",
                    [(json.dumps([v]), tid) for tid, v in rows])


def _to_v3(con: sqlite3.Connection) -> None:
    """Version 3: a reported tuple (several objectives, ``trial.report((acc, ms), step)``) is
    kept whole in ``intermediate.objective_values`` (a JSON list; ``value`` holds its first
    element). Older rows reported one float and keep NULL there."""
    columns = {row[1] for row in con.execute("PRAGMA table_info(intermediate)")}
    if "objective_values" not in columns:
        con.execute("ALTER TABLE intermediate ADD COLUMN objective_values TEXT")


#: ``_MIGRATIONS[v]`` brings a file from version ``v - 1`` to ``v`` (in one transaction)
_MIGRATIONS = {1: _to_v1, 2: _to_v2, 3: _to_v3}


def _reported(value: Any) -> float | tuple[float, ...]:
    """A reported value as stored: a float, or a tuple of floats (several objectives)."""
    if isinstance(value, (tuple, list)):
        return tuple(float(v) for v in value)
    return float(value)


def _newer_schema(path: Path, version: int) -> StorageError:
    return StorageError(
        f"{path} was written by a newer autodl (study schema version {version}; this autodl "
        f"reads up to {SCHEMA_VERSION}); upgrade autodl (`pip install -U autodl`) to open it")


def owner_id() -> str:
    """Identifies this process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: seconds without a heartbeat after which a running trial of another host is taken for dead
STALE_AFTER = 600.0
#: seconds between heartbeats of a driver's running trials
HEARTBEAT_EVERY = 30.0

_FINISHED_STATES = ("complete", "pruned", "failed")


def owner_alive(owner: str | None, last_seen: float | None = None) -> bool:
    """Whether the process that owns a running trial still exists.

    On this host the pid is checked; for another host the owner counts as alive while
    ``last_seen`` (its last heartbeat, or the trial's start) is less than STALE_AFTER old.
    """
    if not owner or ":" not in owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return last_seen is None or time.time() - last_seen < STALE_AFTER
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _values(value: float | None, values: Sequence[float] | None) -> tuple[float, ...] | None:
    """What a trial's ``values`` are stored as: the given ones, else ``(value,)``."""
    if values is not None:
        return tuple(float(v) for v in values)
    return None if value is None else (float(value),)



class ConfigTaken(Exception):
    """Raised by ``create_trial(..., unique=True)``: another process runs or ran that config."""

class Storage:
    """Interface shared by :class:`InMemoryStorage` and :class:`SQLiteStorage`."""

    path: Path | None = None

    def get_meta(self) -> dict[str, Any]:
        raise NotImplementedError

    def set_meta(self, items: dict[str, Any]) -> None:
        raise NotImplementedError

    def create_trial(self, config: dict, budget: float | None, info: dict | None = None,
                     retry_of: int | None = None, limit: int | None = None,
                     unique: bool = False) -> int | None:
        """Insert a RUNNING trial and return its id; None if ``limit`` trials are already
        finished or running (checked atomically with the insert). With ``unique``, raise
        :class:`ConfigTaken` instead of inserting when another process already runs or ran the
        same config at the same budget (checked atomically too; only a storage shared by
        processes can see that)."""
        raise NotImplementedError

    def retry_lost(self, trial_id: int, message: str) -> int:
        """Mark a running trial ABANDONED (its worker died) and create its retry, atomically."""
        raise NotImplementedError

    def abandoned_to_retry(self) -> list[FrozenTrial]:
        """ABANDONED trials that no process has retried yet, oldest first."""
        raise NotImplementedError

    def finished_ids(self) -> set[int]:
        """Ids of the complete, pruned and failed trials."""
        return {t.id for t in self.get_trials([TrialState(s) for s in _FINISHED_STATES])}

    def heartbeat(self) -> None:
        """Refresh the heartbeat of this process's running trials."""

    def finish_trial(self, trial_id: int, state: TrialState, value: float | None,
                     message: str | None = None, user_attrs: dict | None = None, *,
                     values: Sequence[float] | None = None,
                     constraints: dict[str, float] | None = None) -> None:
        """Record a trial's end. ``values``: one per direction (None: ``(value,)`` when
        ``value`` is set); ``constraints`` by name."""
        raise NotImplementedError

    def report(self, trial_id: int, step: int, value: float) -> None:
        raise NotImplementedError

    def report_many(self, trial_id: int, values: dict[int, float]) -> None:
        for step, value in values.items():
            self.report(trial_id, step, value)

    def get_trials(self, states: Iterable[TrialState] | None = None) -> list[FrozenTrial]:
        raise NotImplementedError

    def get_trial(self, trial_id: int) -> FrozenTrial:
        for t in self.get_trials():
            if t.id == trial_id:
                return t
        raise KeyError(trial_id)

    def count(self, states: Iterable[TrialState]) -> int:
        return len(self.get_trials(states))

    def abandon_orphans(self, *, all_running: bool = False) -> list[FrozenTrial]:
        """Mark running trials whose process is gone (or all of them) as ABANDONED."""
        raise NotImplementedError

    def claim_retry(self, old_id: int, new_config: dict, budget: float | None, info: dict,
                    limit: int | None = None) -> int | None:
        """Create the retry of an abandoned trial, unless another process already did (or
        ``limit`` trials are finished or running)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class InMemoryStorage(Storage):
    """Trials in a Python list; lost when the process ends. The default without a path."""

    def __init__(self) -> None:
        self._meta: dict[str, Any] = {}
        self._trials: dict[int, dict[str, Any]] = {}
        self._abandoned: set[int] = set()  # ids of ABANDONED trials
        self._next = 1
        self._lock = threading.Lock()

    def get_meta(self) -> dict[str, Any]:
        return dict(self._meta)

    def set_meta(self, items: dict[str, Any]) -> None:
        self._meta.update(items)

    def _active(self) -> int:
        return sum(t["state"] == TrialState.RUNNING or t["state"].finished
                   for t in self._trials.values())

    def create_trial(self, config, budget, info=None, retry_of=None, limit=None, unique=False) -> int | None:
        with self._lock:
            if limit is not None and self._active() >= limit:
                return None
            tid = self._next
            self._next += 1
            self._trials[tid] = {
                "id": tid, "state": TrialState.RUNNING, "value": None, "config": dict(config),
                "budget": budget, "info": dict(info or {}), "message": None,
                "started": time.time(), "finished": None, "intermediate": {},
                "user_attrs": {}, "retry_of": retry_of, "owner": owner_id(), "retried_by": None,
            }
            return tid

    def finish_trial(self, trial_id, state, value, message=None, user_attrs=None, *,
                     values=None, constraints=None) -> None:
        with self._lock:
            t = self._trials[trial_id]
            t.update(state=TrialState(state), value=value, message=message, finished=time.time(),
                     values=_values(value, values),
                     constraints=None if constraints is None else dict(constraints))
            if t["state"] == TrialState.ABANDONED:
                self._abandoned.add(trial_id)
            if user_attrs:
                t["user_attrs"].update(user_attrs)

    def report(self, trial_id, step, value) -> None:
        self._trials[trial_id]["intermediate"][int(step)] = _reported(value)

    def get_trials(self, states=None) -> list[FrozenTrial]:
        wanted = set(states) if states is not None else None
        return [self.get_trial(tid) for tid, t in list(self._trials.items())
                if wanted is None or t["state"] in wanted]

    def get_trial(self, trial_id: int) -> FrozenTrial:
        t = self._trials[trial_id]
        return FrozenTrial(
            id=t["id"], state=t["state"], config=dict(t["config"]), value=t["value"],
            budget=t["budget"], message=t["message"], started=t["started"],
            finished=t["finished"], intermediate=dict(t["intermediate"]),
            user_attrs=dict(t["user_attrs"]), info=dict(t["info"]), retry_of=t["retry_of"],
            values=t.get("values"), constraints=t.get("constraints"),
        )

    def abandon_orphans(self, *, all_running: bool = False) -> list[FrozenTrial]:
        out = []
        for t in self._trials.values():
            if t["state"] == TrialState.RUNNING and (all_running or not owner_alive(t["owner"])):
                t.update(state=TrialState.ABANDONED, finished=time.time(),
                         message=t["message"] or "process ended while the trial was running")
                self._abandoned.add(t["id"])
                out.append(t["id"])
        return [self.get_trial(i) for i in out]

    def claim_retry(self, old_id, new_config, budget, info, limit=None) -> int | None:
        old = self._trials[old_id]
        if old["retried_by"] is not None:
            return None
        new = self.create_trial(new_config, budget, info, retry_of=old_id, limit=limit)
        old["retried_by"] = new
        return new

    def abandoned_to_retry(self) -> list[FrozenTrial]:
        # called before every ask: look only at abandoned trials, not the whole history
        return [self.get_trial(tid) for tid in sorted(self._abandoned)
                if self._trials[tid]["retried_by"] is None]

    def retry_lost(self, trial_id, message) -> int:
        self.finish_trial(trial_id, TrialState.ABANDONED, None, message)
        old = self._trials[trial_id]
        new = self.create_trial(old["config"], old["budget"], old["info"], retry_of=trial_id)
        old["retried_by"] = new
        return new  # type: ignore[return-value]

    def mark_abandoned(self, trial_id: int, message: str) -> None:
        self.finish_trial(trial_id, TrialState.ABANDONED, None, message)


class SQLiteStorage(Storage):
    """Trials in one SQLite file (WAL mode, short transactions, busy timeout).

    Several processes may open the same file. Each process (and each thread) uses its own
    connection; writes use ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing.
    """

    def __init__(self, path: str | Path, *, create: bool = True, timeout: float = 60.0):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise StorageError(f"no study at {self.path}")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self._local = threading.local()
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} is not an autodl study database ({exc})") from None

    @property
    def schema_version(self) -> int:
        """The file's ``PRAGMA user_version`` (:data:`SCHEMA_VERSION` once opened)."""
        return int(self._con().execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Create the tables of a new file, or bring an older file to :data:`SCHEMA_VERSION`.

        The version is read again inside the write transaction, so processes opening one file
        at once migrate it once.
        """
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise _newer_schema(self.path, version)
        if version == SCHEMA_VERSION:
            return
        with self._write() as con:
            version = int(con.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise _newer_schema(self.path, version)
            for step in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[step](con)
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------------ connections
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        pid = getattr(self._local, "pid", None)
        if con is None or pid != os.getpid():
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                  check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._local.con = con
            self._local.pid = os.getpid()
        return con

    class _Tx:
        def __init__(self, con: sqlite3.Connection):
            self.con = con

        def __enter__(self) -> sqlite3.Connection:
            for attempt in range(50):
                try:
                    self.con.execute("BEGIN IMMEDIATE")
                    return self.con
                except sqlite3.OperationalError as exc:  # "database is locked" past the timeout
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise
                    time.sleep(min(0.05 * (attempt + 1), 1.0))
            raise StorageError("the study database stayed locked; is another process stuck?")

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                self.con.execute("COMMIT")
            else:
                self.con.execute("ROLLBACK")

    def _write(self, con: sqlite3.Connection | None = None) -> "SQLiteStorage._Tx":
        return SQLiteStorage._Tx(con or self._con())

    # ------------------------------------------------------------------ meta
    def get_meta(self) -> dict[str, Any]:
        rows = self._con().execute("SELECT key, value FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def set_meta(self, items: dict[str, Any]) -> None:
        with self._write() as con:
            con.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v)) for k, v in items.items()],
            )

    # ------------------------------------------------------------------ trials
    _ACTIVE = "SELECT COUNT(*) FROM trials WHERE state IN ('running', 'complete', 'pruned', 'failed')"

    @staticmethod
    def _insert(con: sqlite3.Connection, config, budget, info, retry_of) -> int:
        now = time.time()
        cur = con.execute(
            "INSERT INTO trials(state, config, budget, info, started, owner, retry_of, heartbeat) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (TrialState.RUNNING.value, json.dumps(config), budget, json.dumps(info or {}),
             now, owner_id(), retry_of, now),
        )
        return int(cur.lastrowid)

    def create_trial(self, config, budget, info=None, retry_of=None, limit=None, unique=False) -> int | None:
        with self._write() as con:
            if limit is not None and con.execute(self._ACTIVE).fetchone()[0] >= limit:
                return None
            if unique and con.execute(
                    "SELECT 1 FROM trials WHERE config = ? AND budget IS ? AND owner != ? "
                    "AND state != ? LIMIT 1",
                    (json.dumps(config), budget, owner_id(), TrialState.ABANDONED.value)).fetchone():
                raise ConfigTaken(config)
            return self._insert(con, config, budget, info, retry_of)

    def retry_lost(self, trial_id, message) -> int:
        with self._write() as con:
            row = con.execute("SELECT config, budget, info FROM trials WHERE id = ?",
                              (trial_id,)).fetchone()
            con.execute("UPDATE trials SET state = ?, message = ?, finished = ? WHERE id = ?",
                        (TrialState.ABANDONED.value, message, time.time(), trial_id))
            new_id = self._insert(con, json.loads(row[0]), row[1], json.loads(row[2]), trial_id)
            con.execute("UPDATE trials SET retried_by = ? WHERE id = ?", (new_id, trial_id))
            return new_id

    def abandoned_to_retry(self) -> list[FrozenTrial]:
        con = self._con()
        ids = [r[0] for r in con.execute("SELECT id FROM trials WHERE state = ? AND retried_by IS NULL "
                                         "ORDER BY id", (TrialState.ABANDONED.value,))]
        return [self.get_trial(i) for i in ids]

    def finished_ids(self) -> set[int]:
        rows = self._con().execute(
            "SELECT id FROM trials WHERE state IN ('complete', 'pruned', 'failed')").fetchall()
        return {r[0] for r in rows}

    def running_ids(self) -> set[int]:
        """Ids of the trials running now (in any process)."""
        rows = self._con().execute("SELECT id FROM trials WHERE state = ?",
                                   (TrialState.RUNNING.value,)).fetchall()
        return {r[0] for r in rows}

    def heartbeat(self) -> None:
        with self._write() as con:
            con.execute("UPDATE trials SET heartbeat = ? WHERE state = ? AND owner = ?",
                        (time.time(), TrialState.RUNNING.value, owner_id()))

    def finish_trial(self, trial_id, state, value, message=None, user_attrs=None, *,
                     values=None, constraints=None) -> None:
        vals = _values(value, values)
        with self._write() as con:
            con.execute(
                "UPDATE trials SET state = ?, value = ?, message = ?, finished = ?, "
                "user_attrs = ?, objective_values = ?, constraints = ? WHERE id = ?",
                (TrialState(state).value, value, message, time.time(),
                 json.dumps(user_attrs or {}, default=str),
                 None if vals is None else json.dumps(list(vals)),
                 None if constraints is None else json.dumps(dict(constraints)), trial_id),
            )

    def report(self, trial_id, step, value) -> None:
        self.report_many(trial_id, {step: value})

    def report_many(self, trial_id, values) -> None:
        if not values:
            return
        rows = []
        for s, v in values.items():
            v = _reported(v)
            if isinstance(v, tuple):
                rows.append((trial_id, int(s), v[0], json.dumps(list(v))))
            else:
                rows.append((trial_id, int(s), v, None))
        with self._write() as con:
            con.executemany(
                "INSERT OR REPLACE INTO intermediate(trial_id, step, value, objective_values) "
                "VALUES (?, ?, ?, ?)", rows)

    _COLUMNS = ("SELECT id, state, value, config, budget, info, message, started, finished, "
                "retry_of, user_attrs, objective_values, constraints FROM trials")

    def get_trials(self, states=None) -> list[FrozenTrial]:
        con = self._con()
        sql = self._COLUMNS
        args: tuple = ()
        if states is not None:
            states = [TrialState(s).value for s in states]
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args = tuple(states)
        sql += " ORDER BY id"
        rows = con.execute(sql, args).fetchall()
        inter: dict[int, dict[int, Any]] = {}
        for tid, step, value, many in con.execute(
                "SELECT trial_id, step, value, objective_values FROM intermediate"):
            inter.setdefault(tid, {})[step] = value if many is None else tuple(json.loads(many))
        return self._frozen(rows, inter)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        con = self._con()
        rows = con.execute(self._COLUMNS + " WHERE id = ?", (trial_id,)).fetchall()
        if not rows:
            raise KeyError(trial_id)
        inter = {trial_id: {step: value if many is None else tuple(json.loads(many))
                            for step, value, many in con.execute(
                                "SELECT step, value, objective_values FROM intermediate "
                                "WHERE trial_id = ?", (trial_id,))}}
        return self._frozen(rows, inter)[0]

    @staticmethod
    def _frozen(rows, inter) -> list[FrozenTrial]:
        return [
            FrozenTrial(
                id=r[0], state=TrialState(r[1]), value=r[2], config=json.loads(r[3]), budget=r[4],
                info=json.loads(r[5]), message=r[6], started=r[7], finished=r[8],
                intermediate=inter.get(r[0], {}), retry_of=r[9], user_attrs=json.loads(r[10]),
                values=None if r[11] is None else tuple(json.loads(r[11])),
                constraints=None if r[12] is None else json.loads(r[12]),
            )
            for r in rows
        ]

    def count(self, states) -> int:
        states = [TrialState(s).value for s in states]
        row = self._con().execute(
            f"SELECT COUNT(*) FROM trials WHERE state IN ({','.join('?' * len(states))})",
            tuple(states),
        ).fetchone()
        return int(row[0])

    def abandon_orphans(self, *, all_running: bool = False) -> list[FrozenTrial]:
        with self._write() as con:
            rows = con.execute("SELECT id, owner, COALESCE(heartbeat, started) FROM trials "
                               "WHERE state = ?", (TrialState.RUNNING.value,)).fetchall()
            ids = [tid for tid, owner, seen in rows if all_running or not owner_alive(owner, seen)]
            for tid in ids:
                con.execute(
                    "UPDATE trials SET state = ?, finished = ?, "
                    "message = COALESCE(message, 'process ended while the trial was running') "
                    "WHERE id = ?",
                    (TrialState.ABANDONED.value, time.time(), tid),
                )
        return [self.get_trial(i) for i in ids]

    def claim_retry(self, old_id, new_config, budget, info, limit=None) -> int | None:
        with self._write() as con:
            row = con.execute("SELECT retried_by FROM trials WHERE id = ?", (old_id,)).fetchone()
            if row is None or row[0] is not None:
                return None
            if limit is not None and con.execute(self._ACTIVE).fetchone()[0] >= limit:
                return None
            new_id = self._insert(con, new_config, budget, info, old_id)
            con.execute("UPDATE trials SET retried_by = ? WHERE id = ?", (new_id, old_id))
            return new_id

    def mark_abandoned(self, trial_id: int, message: str) -> None:
        self.finish_trial(trial_id, TrialState.ABANDONED, None, message)

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


class Heartbeat:
    """A daemon thread refreshing this process's running trials' heartbeat (SQLite only), so
    processes on other hosts can tell a live driver from a dead one (see STALE_AFTER)."""

    def __init__(self, storage: Storage, every: float = HEARTBEAT_EVERY):
        self.storage = storage
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Heartbeat":
        if isinstance(self.storage, SQLiteStorage):
            self._thread = threading.Thread(target=self._run, daemon=True, name="autodl-heartbeat")
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.storage.heartbeat()
            except (sqlite3.Error, StorageError):
                pass  # a missed beat is harmless; the next one may succeed

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def open_storage(storage: "str | Path | Storage | None") -> Storage:
    """``None`` -> in memory; a path (``.db`` file or a run folder) -> SQLite; a Storage as is."""
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, Storage):
        return storage
    text = str(storage)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):]
    path = Path(text)
    if path.is_dir() or (not path.suffix and not path.exists()):
        path = path / "study.db"
    return SQLiteStorage(path)
