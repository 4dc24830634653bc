"""Studies with several objectives and constraints: values, Pareto front, storage, resume."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from autodl.errors import StorageError, UserError
from autodl.space import Categorical, Float, Space
from autodl.study import Study, TrialState
from autodl.study.storage import SCHEMA_VERSION, SQLiteStorage


def space() -> Space:
    return Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "k": Categorical(["a", "b"])})


def two(trial):
    c = trial.config
    return c["x"] + (c["k"] == "b"), 1.0 - c["x"] ** 2 + c["y"]


def _brute_front(trials, directions):
    """Trials no other trial dominates, from the definition (signs per direction)."""
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    ys = {t.id: sign * np.array(t.values) for t in trials}
    return sorted(i for i, a in ys.items()
                  if not any(np.all(b <= a) and np.any(b < a) for j, b in ys.items() if j != i))


@pytest.mark.parametrize("searcher", ["motpe", "nsga2", "random"])
def test_best_trials_is_the_pareto_front(searcher):
    study = Study(space(), searcher=searcher, directions=["minimize", "maximize"], seed=0)
    study.optimize(two, n_trials=40)
    complete = study.get_trials([TrialState.COMPLETE])
    assert len(complete) == 40
    assert all(len(t.values) == 2 and t.value is None for t in complete)
    front = study.best_trials
    assert [t.id for t in front] == _brute_front(complete, study.directions)
    with pytest.raises(UserError, match="best_trials"):
        study.best_trial
    with pytest.raises(UserError, match="best_trials"):
        study.best_value


def test_default_searcher_of_several_objectives_and_clear_errors():
    assert Study(space(), directions=["minimize", "minimize"]).searcher.name == "motpe"
    with pytest.raises(UserError, match="not both"):
        Study(space(), direction="minimize", directions=["minimize", "maximize"])
    with pytest.raises(UserError, match="'up'"):
        Study(space(), directions=["minimize", "up"])
    with pytest.raises(UserError, match=r"searcher 'tpe' optimizes one objective.*motpe, nsga2, random"):
        Study(space(), searcher="tpe", directions=["minimize", "minimize"])


@pytest.mark.parametrize("result, message", [
    (0.5, "returned 1 value, but the study has 2 directions"),
    ((1.0, 2.0, 3.0), "returned 3 values, but the study has 2 directions"),
    ((1.0, float("nan")), "value 2 is nan"),
    ((1.0, "fast"), "value 2"),
])
def test_wrong_number_or_type_of_values_fails_the_trial(result, message):
    study = Study(space(), searcher="random", directions=["minimize", "minimize"], seed=0)
    study.optimize(lambda t: result if t.id == 2 else (1.0, 2.0), n_trials=3)
    bad = study.trials[1]
    assert bad.state == TrialState.FAILED and bad.values is None
    assert message in bad.message
    assert [t.state for t in study.trials if t.id != 2] == [TrialState.COMPLETE] * 2


def test_single_objective_still_refuses_a_tuple_and_keeps_values():
    study = Study(space(), searcher="random", seed=0)
    study.optimize(lambda t: (1.0, 2.0) if t.id == 1 else 0.5, n_trials=2)
    assert study.trials[0].state == TrialState.FAILED
    assert "directions" in study.trials[0].message
    assert study.trials[1].values == (0.5,)


def test_values_constraints_storage_and_resume(tmp_path):
    def objective(trial):
        trial.set_constraint("budget", trial.config["x"] - 0.6)
        return two(trial)

    study = Study(space(), searcher="nsga2", directions=["minimize", "maximize"], seed=3,
                  storage=tmp_path)
    study.optimize(objective, n_trials=25)
    before = {t.id: (t.values, dict(t.constraints)) for t in study.trials}
    front = [t.id for t in study.best_trials]
    reopened = Study.load(tmp_path)
    assert reopened.directions == ["minimize", "maximize"] and reopened.searcher.name == "nsga2"
    assert {t.id: (t.values, dict(t.constraints)) for t in reopened.trials} == before
    assert [t.id for t in reopened.best_trials] == front
    # only feasible trials are on the front, and it is the front of the feasible ones
    feasible = [t for t in reopened.get_trials([TrialState.COMPLETE]) if t.constraints["budget"] <= 0]
    assert front == _brute_front(feasible, reopened.directions)
    assert len(reopened.searcher.observations) == 25
    assert all(o.constraints is not None for o in reopened.searcher.observations)
    reopened.optimize(objective, n_trials=5)
    assert len(reopened.trials) == 30
    with pytest.raises(StorageError, match="directions"):
        Study(space(), searcher="nsga2", directions=["minimize", "minimize"], storage=tmp_path)


def test_ask_tell_with_several_values():
    study = Study(space(), searcher="random", directions=["maximize", "minimize"], seed=0)
    for i in range(6):
        trial = study.ask()
        trial.set_constraint([0.0, -1.0] if i % 2 else [0.5, 0.0])
        study.tell(trial, (float(i), float(i % 3)))
    feasible_ids = [t.id for t in study.trials if t.feasible]
    assert feasible_ids == [2, 4, 6]
    assert [t.id for t in study.best_trials] == _brute_front(
        [t for t in study.trials if t.feasible], study.directions)
    assert study.trials[0].constraints == {"0": 0.5, "1": 0.0} and study.trials[0].violation == 0.5


def test_single_objective_best_trial_respects_constraints():
    def objective(trial):
        trial.set_constraint("c", 0.5 - trial.config["x"])  # feasible when x >= 0.5
        return trial.config["x"]

    study = Study(space(), searcher="random", seed=0)
    study.optimize(objective, n_trials=30)
    feasible = [t for t in study.trials if t.config["x"] >= 0.5]
    assert study.best_trial.id == min(feasible, key=lambda t: t.value).id
    assert study.leaderboard().iloc[0]["id"] == study.best_trial.id
    # none feasible: a clear error
    study2 = Study(space(), searcher="random", seed=0)
    study2.optimize(lambda t: (t.set_constraint("c", 1.0), 0.0)[1], n_trials=2)
    with pytest.raises(ValueError, match="no feasible trial"):
        study2.best_trial


def test_constraints_func_like_optuna():
    study = Study(space(), searcher="nsga2", directions=["minimize", "minimize"], seed=0,
                  constraints_func=lambda ft: [ft.values[0] - 0.5])
    study.optimize(two, n_trials=15)
    for t in study.get_trials([TrialState.COMPLETE]):
        assert t.constraints == {"0": pytest.approx(t.values[0] - 0.5)}
    assert all(t.values[0] <= 0.5 for t in study.best_trials)


def test_set_constraint_validates():
    from autodl.study import RunningTrial

    t = RunningTrial(1, {"x": 0.1})
    t.set_constraint("a", 1)
    t.set_constraint([2.0])
    assert t.constraints == {"a": 1.0, "0": 2.0}
    with pytest.raises(TypeError):
        t.set_constraint("b", "slow")
    with pytest.raises(ValueError, match="nan"):
        t.set_constraint("b", float("nan"))
    with pytest.raises(TypeError, match="needs a value"):
        t.set_constraint("b")


def test_to_optuna_carries_every_value_and_constraint():
    pytest.importorskip("optuna")

    def objective(trial):
        trial.set_constraint("lat", trial.config["y"] - 0.7)
        return two(trial)

    study = Study(space(), searcher="random", directions=["minimize", "maximize"], seed=0)
    study.optimize(objective, n_trials=12)
    o = study.to_optuna()
    assert [d.name for d in o.directions] == ["MINIMIZE", "MAXIMIZE"]
    got = {t.user_attrs["autodl_id"]: (tuple(t.values), t.constraints) for t in o.trials}
    assert got == {t.id: (t.values, dict(t.constraints)) for t in study.trials}
    assert sorted(t.user_attrs["autodl_id"] for t in o.best_trials) == [t.id for t in study.best_trials]


def _v1_file(path):
    """A study file as autodl wrote it before several objectives (schema version 1)."""
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE trials (id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL,
            value REAL, config TEXT NOT NULL, budget REAL, info TEXT NOT NULL DEFAULT '{}',
            message TEXT, started REAL, finished REAL, owner TEXT, retry_of INTEGER,
            retried_by INTEGER, user_attrs TEXT NOT NULL DEFAULT '{}', heartbeat REAL);
        CREATE TABLE intermediate (trial_id INTEGER NOT NULL, step INTEGER NOT NULL,
            value REAL NOT NULL, PRIMARY KEY (trial_id, step));
        PRAGMA user_version = 1;
    """)
    meta = {"space": space().to_dict(), "direction": "maximize", "searcher": "random",
            "searcher_params": {}, "seed": 0}
    con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
    for i, (state, value) in enumerate([("complete", 0.1 + 1e-17), ("complete", 0.3),
                                        ("failed", None), ("pruned", 0.2)]):
        con.execute("INSERT INTO trials(state, value, config, started, finished) VALUES (?, ?, ?, 1, 2)",
                    (state, value, json.dumps({"x": 0.1 * i, "y": 0.5, "k": "a"})))
    con.commit()
    con.close()


def test_old_storage_files_load_and_migrate(tmp_path):
    db = tmp_path / "study.db"
    _v1_file(db)
    study = Study.load(db)
    assert SQLiteStorage(db).schema_version == SCHEMA_VERSION == 3
    assert study.directions == ["maximize"] and study.direction == "maximize"
    assert [t.values for t in study.trials] == [(0.1 + 1e-17,), (0.3,), None, (0.2,)]
    assert study.best_trial.id == 2 and study.best_value == 0.3
    study.optimize(lambda t: t.config["x"], n_trials=2)
    assert len(Study.load(db).trials) == 6


def test_show_lists_the_front(tmp_path, capsys):
    from autodl.cli.main import main

    study = Study(space(), searcher="random", directions=["minimize", "maximize"], seed=0,
                  storage=tmp_path / "study.db")
    study.optimize(two, n_trials=20)
    front = [t.id for t in study.best_trials]
    assert main(["show", str(tmp_path / "study.db"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows if r["pareto_optimal"]] == front
    assert all(len(r["values"]) == 2 for r in rows)
    assert main(["show", str(tmp_path / "study.db"), "--top", "50"]) == 0
    out = capsys.readouterr().out
    assert f"Pareto front: {len(front)} trials" in out
    # the report of such a study is written (its front plot is still to come)
    assert main(["report", str(tmp_path / "study.db")]) == 0
    assert (tmp_path / "report.html").is_file()
