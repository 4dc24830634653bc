"""SQLite storage: resume, searcher rebuilt from stored trials, abandoned trials, mismatches."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from autodl import Categorical, Float, Int, Space, Study, StorageError, TrialState
from autodl.study import InMemoryStorage, SQLiteStorage, open_storage


def space() -> Space:
    return Space({
        "x": Float(-3.0, 3.0),
        "k": Int(1, 5),
        "c": Categorical(["a", "b"]),
    })


def grid_space() -> Space:
    return Space({"c": Categorical(["a", "b", "c"]), "k": Int(1, 3)})


def objective(trial) -> float:
    return (trial.config["x"] - 1.0) ** 2 + trial.config["k"]


def snapshot(study):
    return {t.id: (t.state, t.value, t.config) for t in study.trials}


def key(config) -> str:
    return json.dumps(config, sort_keys=True)


# ---------------------------------------------------------------------------- reopen / resume
def test_run_folder_storage_writes_study_db(tmp_path):
    run = tmp_path / "run"
    study = Study(space(), storage=run, seed=0)
    study.optimize(objective, n_trials=2)
    assert (run / "study.db").is_file()
    assert study.run_dir == str(run)


def test_study_load_resumes_without_redoing_or_losing_trials(tmp_path):
    run = tmp_path / "run"
    first = Study(space(), storage=run, seed=0, direction="maximize")
    first.optimize(objective, n_trials=4)
    before = snapshot(first)

    again = Study.load(run)
    assert again.direction == "maximize" and again.seed == 0
    assert again.space == space()
    assert snapshot(again) == before
    assert again.best_trial.id == first.best_trial.id
    # the searcher was rebuilt from the stored results (sign-flipped: searchers minimize)
    assert len(again.searcher.observations) == 4
    assert again.searcher.best().value == -again.best_value

    calls = []

    def counting(trial):
        calls.append(trial.id)
        return objective(trial)

    again.optimize(counting, n_trials=3)
    after = snapshot(again)
    assert len(calls) == 3 and set(calls).isdisjoint(before)
    assert len(after) == 7
    for tid, rec in before.items():
        assert after[tid] == rec
    ids = [t.id for t in again.trials]
    assert len(set(ids)) == len(ids)


def test_study_with_same_storage_path_resumes(tmp_path):
    db = tmp_path / "s.db"
    Study(space(), storage=db, seed=0).optimize(objective, n_trials=3)
    study = Study(space(), storage=db, seed=0)
    assert len(study.trials) == 3
    study.optimize(objective, n_trials=2)
    assert len(study.trials) == 5
    assert len(Study.load(db).trials) == 5
    assert len(Study.load(f"sqlite:///{db}").trials) == 5


def test_random_search_after_resume_does_not_repeat_first_configs(tmp_path):
    run = tmp_path / "run"
    Study(space(), storage=run, seed=0).optimize(objective, n_trials=5)
    first = [key(t.config) for t in Study.load(run).trials]
    study = Study.load(run)
    study.optimize(objective, n_trials=5)
    new = [key(t.config) for t in study.trials[5:]]
    assert len(new) == 5
    assert set(new).isdisjoint(first)


def test_grid_search_after_resume_skips_completed_points_and_finishes_the_grid(tmp_path):
    run = tmp_path / "run"
    grid = {key(c) for c in grid_space().grid()}
    assert len(grid) == 9
    Study(grid_space(), searcher="grid", storage=run, seed=0).optimize(lambda t: 1.0, n_trials=4)
    study = Study.load(run)
    assert study.searcher.name == "grid"
    study.optimize(lambda t: 1.0, n_trials=100)
    configs = [key(t.config) for t in study.trials]
    assert len(configs) == 9
    assert set(configs) == grid
    # and once more: nothing left to do
    again = Study.load(run)
    again.optimize(lambda t: 1.0, n_trials=5)
    assert len(again.trials) == 9


def test_grid_search_params_are_restored(tmp_path):
    run = tmp_path / "run"
    Study(Space({"x": Float(0, 1)}), searcher="grid", searcher_params={"points": 3},
          storage=run, seed=0).optimize(lambda t: 1.0, n_trials=1)
    study = Study.load(run)
    assert study.searcher.points == 3
    study.optimize(lambda t: 1.0, n_trials=10)
    assert sorted(t.config["x"] for t in study.trials) == [0.0, 0.5, 1.0]


def test_failed_and_pruned_trials_survive_reopening(tmp_path):
    from autodl import TrialPruned

    def objective(trial):
        if trial.id == 1:
            raise ValueError("bad")
        if trial.id == 2:
            trial.report(4.0, 0)
            raise TrialPruned()
        trial.set_user_attr("note", "ok")
        return 1.0

    run = tmp_path / "run"
    Study(space(), storage=run).optimize(objective, n_trials=3)
    trials = Study.load(run).trials
    assert [t.state for t in trials] == [TrialState.FAILED, TrialState.PRUNED, TrialState.COMPLETE]
    assert "ValueError: bad" in trials[0].message
    assert trials[1].value == 4.0 and dict(trials[1].intermediate) == {0: 4.0}
    assert trials[2].user_attrs == {"note": "ok"}


# ---------------------------------------------------------------------------- mismatches
def test_reopening_with_a_different_space_is_a_storage_error(tmp_path):
    run = tmp_path / "run"
    Study(space(), storage=run).optimize(objective, n_trials=1)
    other = Space({"x": Float(-3.0, 4.0), "k": Int(1, 5), "c": Categorical(["a", "b"])})
    with pytest.raises(StorageError, match="space"):
        Study(other, storage=run)


def test_reopening_with_a_different_direction_is_a_storage_error(tmp_path):
    run = tmp_path / "run"
    Study(space(), storage=run).optimize(objective, n_trials=1)
    with pytest.raises(StorageError, match="maximize"):
        Study(space(), storage=run, direction="maximize")
    # the failed attempt changed nothing
    assert Study.load(run).direction == "minimize"
    assert len(Study.load(run).trials) == 1


def test_load_of_a_missing_study_is_a_storage_error(tmp_path):
    with pytest.raises(StorageError):
        Study.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StorageError):
        Study.load(tmp_path / "empty")


def test_load_of_a_non_database_is_a_storage_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(StorageError):
        Study.load(bad)


def test_open_storage_kinds(tmp_path):
    assert isinstance(open_storage(None), InMemoryStorage)
    s = open_storage(tmp_path / "r")
    assert isinstance(s, SQLiteStorage) and s.path == tmp_path / "r" / "study.db"
    assert open_storage(s) is s


# ---------------------------------------------------------------------------- abandoned trials
CHILD = textwrap.dedent("""
    import os, sys
    from autodl import Categorical, Float, Int, Space, Study
    space = Space({"x": Float(-3.0, 3.0), "k": Int(1, 5), "c": Categorical(["a", "b"])})
    study = Study(space, storage=sys.argv[1], seed=0)
    def objective(trial):
        if trial.id == 3:
            print(trial.config["x"], flush=True)
            os._exit(0)   # the process dies mid-trial: no cleanup runs
        return 1.0
    study.optimize(objective, n_trials=10)
""")


def test_trial_of_a_dead_process_is_abandoned_and_retried_with_the_same_config(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(run)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    x_dead = float(proc.stdout.strip())

    # what the dead process left: two complete, one running
    con = sqlite3.connect(f"file:{run / 'study.db'}?mode=ro", uri=True)
    rows = con.execute("SELECT id, state FROM trials ORDER BY id").fetchall()
    con.close()
    assert rows == [(1, "complete"), (2, "complete"), (3, "running")]

    study = Study.load(run)
    t3 = study.storage.get_trial(3)
    assert t3.state == TrialState.ABANDONED
    assert t3.config["x"] == x_dead
    study.optimize(lambda t: 2.0, n_trials=2)
    trials = study.trials
    assert [t.id for t in trials] == [1, 2, 3, 4, 5]
    retry = trials[3]
    assert retry.retry_of == 3
    assert retry.config == t3.config
    assert retry.state == TrialState.COMPLETE and retry.value == 2.0
    assert trials[4].retry_of is None and trials[4].config != t3.config
    assert study.n_finished == 4
    # the abandoned trial is retried once only
    again = Study.load(run)
    again.optimize(lambda t: 2.0, n_trials=1)
    assert sum(t.retry_of == 3 for t in again.trials) == 1


def test_running_trial_with_dead_owner_pid_is_abandoned(tmp_path):
    db = tmp_path / "s.db"
    study = Study(space(), storage=db, seed=0)
    tid = study.storage.create_trial({"x": 0.5, "k": 2, "c": "a"}, None)
    con = sqlite3.connect(db)
    con.execute("UPDATE trials SET owner = ? WHERE id = ?", (f"{socket.gethostname()}:999999999", tid))
    con.commit()
    con.close()
    reopened = Study(space(), storage=db, seed=0)
    assert reopened.storage.get_trial(tid).state == TrialState.ABANDONED
    reopened.optimize(lambda t: 1.0, n_trials=1)
    retry = reopened.trials[-1]
    assert retry.retry_of == tid and retry.config == {"x": 0.5, "k": 2, "c": "a"}


def test_running_trial_of_a_live_process_is_left_alone(tmp_path):
    db = tmp_path / "s.db"
    study = Study(space(), storage=db, seed=0)
    running = study.ask()  # owned by this (live) process
    other = Study(space(), storage=db, seed=0)
    assert other.storage.get_trial(running.id).state == TrialState.RUNNING
    other.optimize(lambda t: 1.0, n_trials=1)
    assert all(t.retry_of is None for t in other.trials)
    study.tell(running, 3.0)
    assert Study.load(db).storage.get_trial(running.id).state == TrialState.COMPLETE


def test_keyboard_interrupt_then_resume_from_storage(tmp_path):
    run = tmp_path / "run"
    seen = []

    def interrupted(trial):
        seen.append(trial.config)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return 1.0

    study = Study(space(), storage=run, seed=0)
    with pytest.raises(KeyboardInterrupt):
        study.optimize(interrupted, n_trials=5)
    study.storage.close()

    resumed = Study.load(run)
    states = [t.state for t in resumed.trials]
    assert states == [TrialState.COMPLETE, TrialState.ABANDONED]
    resumed.optimize(lambda t: 1.0, n_trials=4)
    trials = resumed.trials
    assert trials[2].retry_of == 2 and trials[2].config == seen[1]
    assert resumed.n_finished == 5


@pytest.mark.parametrize("kwargs", [
    {"searcher": "nope"},
    {"searcher": "grid", "searcher_params": {"pointz": 3}},
    {"direction": "up"},
])
def test_a_mistake_leaves_no_storage_behind(tmp_path, kwargs):
    from autodl import UserError

    with pytest.raises(UserError):
        Study(space(), storage=tmp_path / "run", **kwargs)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- schema versions
# the tables as autodl wrote them before study files had a version (user_version 0)
UNVERSIONED = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, value REAL, config TEXT NOT NULL,
    budget REAL, info TEXT NOT NULL DEFAULT '{}', message TEXT, started REAL, finished REAL,
    owner TEXT, retry_of INTEGER, retried_by INTEGER, user_attrs TEXT NOT NULL DEFAULT '{}'
    %s
);
CREATE INDEX trials_by_state ON trials (state);
CREATE TABLE intermediate (
    trial_id INTEGER NOT NULL, step INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (trial_id, step)
);
"""


def _user_version(db) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def test_a_new_study_file_gets_the_current_schema_version(tmp_path):
    from autodl.study.storage import SCHEMA_VERSION

    db = tmp_path / "s.db"
    Study(space(), storage=db, seed=0).optimize(objective, n_trials=1)
    assert SCHEMA_VERSION >= 1
    assert _user_version(db) == SCHEMA_VERSION


@pytest.mark.parametrize("heartbeat", [True, False], ids=["with-heartbeat", "oldest"])
def test_an_unversioned_study_file_is_migrated_and_keeps_its_trials(tmp_path, heartbeat):
    from autodl.study.storage import SCHEMA_VERSION

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(UNVERSIONED % (", heartbeat REAL" if heartbeat else ""))
    meta = {"space": space().to_dict(), "direction": "minimize", "searcher": "random",
            "searcher_params": {}, "seed": 0}
    con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
    rows = [({"x": 0.5, "k": 2, "c": "a"}, 2.25), ({"x": -1.0, "k": 1, "c": "b"}, 5.0)]
    for config, value in rows:
        con.execute("INSERT INTO trials(state, value, config, started, finished) "
                    "VALUES ('complete', ?, ?, 1.0, 2.0)", (value, json.dumps(config)))
    con.execute("INSERT INTO intermediate VALUES (1, 0, 3.0)")
    con.commit()
    con.close()
    assert _user_version(db) == 0

    study = Study.load(db)
    assert [(t.config, t.value) for t in study.trials] == rows
    assert dict(study.trials[0].intermediate) == {0: 3.0}
    assert study.best_value == 2.25
    study.optimize(objective, n_trials=2)
    assert len(study.trials) == 4 and study.n_finished == 4
    study.storage.close()

    assert _user_version(db) == SCHEMA_VERSION
    con = sqlite3.connect(db)
    assert "heartbeat" in {r[1] for r in con.execute("PRAGMA table_info(trials)")}
    con.close()
    assert len(Study.load(db).trials) == 4  # and it opens again as a current file


def test_a_study_file_from_a_newer_autodl_is_a_clear_storage_error(tmp_path):
    from autodl import UserError
    from autodl.study.storage import SCHEMA_VERSION

    db = tmp_path / "s.db"
    study = Study(space(), storage=db, seed=0)
    study.optimize(objective, n_trials=1)
    study.storage.close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()

    for opening in (lambda: Study.load(db), lambda: Study(space(), storage=db),
                    lambda: SQLiteStorage(db)):
        with pytest.raises(StorageError) as info:
            opening()
        message = str(info.value)
        assert isinstance(info.value, UserError) and "\n" not in message
        assert str(db) in message and "newer autodl" in message
        assert f"version {SCHEMA_VERSION + 1}" in message and "upgrade" in message
    assert _user_version(db) == SCHEMA_VERSION + 1  # left as it was
