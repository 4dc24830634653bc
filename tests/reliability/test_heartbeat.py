"""The heartbeat rule: a running trial whose owner (a driver on another host) stopped
heart-beating is ABANDONED and run again; one that still beats is left alone."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from autodl import Float, Space, Study, TrialState
from autodl.study import storage as storage_mod
from reliability_helpers import read_trials

SPACE = Space({"x": Float(0.0, 1.0)})

# A driver on "another host": it starts a trial, beats every 0.1 s for BEAT_FOR seconds, then
# stops beating (as if its machine went away) and exits without finishing the trial.
FOREIGN_DRIVER = textwrap.dedent('''
    import os, socket, sys, time
    socket.gethostname = lambda: "autodl-test-other-host"
    from autodl.study.storage import Heartbeat, SQLiteStorage

    db, beat_for = sys.argv[1], float(sys.argv[2])
    storage = SQLiteStorage(db, create=False)
    tid = storage.create_trial({"x": 0.25}, None)
    print(tid, flush=True)
    with Heartbeat(storage, every=0.1):
        time.sleep(beat_for)
    print(time.time(), flush=True)  # the last beat was before this instant
    os._exit(0)
''')


def square(trial):
    return trial.config["x"] ** 2


def _foreign_trial(db, heartbeat_age: float) -> int:
    """A RUNNING trial owned by a process on another host, last heard of ``heartbeat_age`` s ago."""
    tid = storage_mod.SQLiteStorage(db).create_trial({"x": 0.5}, None)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE trials SET owner = ?, heartbeat = ? WHERE id = ?",
                    ("autodl-test-other-host:4242", time.time() - heartbeat_age, tid))
    con.close()
    return tid


def test_a_trial_whose_owner_went_silent_is_abandoned_and_retried(tmp_path):
    db = tmp_path / "study.db"
    Study(SPACE, storage=db, seed=0)
    tid = _foreign_trial(db, heartbeat_age=storage_mod.STALE_AFTER + 5)

    study = Study.load(db)  # opening the study applies the rule
    old = study.storage.get_trial(tid)
    assert old.state == TrialState.ABANDONED
    assert old.message == "process ended while the trial was running"

    study.optimize(square, n_trials=3)
    retry = [t for t in study.trials if t.retry_of == tid]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].config == {"x": 0.5} and retry[0].value == pytest.approx(0.25)
    assert study.n_finished == 3


def test_a_trial_whose_owner_still_beats_is_left_alone(tmp_path):
    db = tmp_path / "study.db"
    Study(SPACE, storage=db, seed=0)
    tid = _foreign_trial(db, heartbeat_age=storage_mod.STALE_AFTER - 60)

    study = Study.load(db)
    study.optimize(square, n_trials=3)
    assert study.storage.get_trial(tid).state == TrialState.RUNNING
    assert not [t for t in study.trials if t.retry_of == tid]
    assert study.storage.abandon_orphans() == []


def test_the_heartbeat_thread_refreshes_only_this_process_trials(tmp_path):
    db = tmp_path / "study.db"
    Study(SPACE, storage=db, seed=0)
    storage = storage_mod.SQLiteStorage(db)
    mine = storage.create_trial({"x": 0.1}, None)
    theirs = _foreign_trial(db, heartbeat_age=100.0)

    def beats() -> dict[int, float]:
        con = sqlite3.connect(db)
        try:
            return dict(con.execute("SELECT id, heartbeat FROM trials").fetchall())
        finally:
            con.close()

    before = beats()
    with storage_mod.Heartbeat(storage, every=0.05):
        time.sleep(0.5)
    after = beats()
    assert after[mine] > before[mine] + 0.2
    assert after[theirs] == before[theirs]


@pytest.mark.slow
def test_a_driver_that_stops_beating_mid_trial_loses_it_to_another(tmp_path, monkeypatch):
    monkeypatch.setattr(storage_mod, "STALE_AFTER", 2.0)
    db = tmp_path / "study.db"
    study = Study(SPACE, storage=db, seed=0)
    study.optimize(square, n_trials=2)
    script = tmp_path / "foreign_driver.py"
    script.write_text(FOREIGN_DRIVER)
    beat_for = 5.0  # 2.5 x STALE_AFTER: only the heartbeats keep the trial alive

    proc = subprocess.Popen([sys.executable, str(script), str(db), str(beat_for)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tid = int(proc.stdout.readline())
    started = time.time()
    owner = next(t["owner"] for t in read_trials(db) if t["id"] == tid)
    assert owner.startswith("autodl-test-other-host:") and socket.gethostname() not in owner

    assert study.wait_for_others(deadline=time.monotonic() + 30, poll=0.1)  # abandoned (or 30 s)
    abandoned_at = time.time()
    last_beat = float(proc.stdout.readline())
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    trial = study.storage.get_trial(tid)
    assert trial.state == TrialState.ABANDONED
    # kept while it beat (longer than STALE_AFTER), taken over soon after the beats stopped
    assert abandoned_at - started >= beat_for - 0.5
    assert abandoned_at - last_beat <= storage_mod.STALE_AFTER + 2.0
    print(f"\nforeign trial beat for {last_beat - started:.1f}s (stale after "
          f"{storage_mod.STALE_AFTER:g}s), abandoned {abandoned_at - last_beat:.1f}s after its "
          "last beat")

    study.optimize(square, total_trials=3)  # the retry takes the abandoned trial's place
    retry = [t for t in study.trials if t.retry_of == tid]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE
    assert retry[0].config == {"x": 0.25}
    assert study.n_finished == 3
