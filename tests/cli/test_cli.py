"""The ``autodl`` command end to end: search, show, resume, --jsonl, and user mistakes."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _finished(result: dict) -> int:
    """Trials the run finished, from the result.json envelope's counts."""
    return result["n_complete"] + result["n_failed"] + result["n_pruned"]


SMALL = ["--trials", "4", "--cv", "3"]
RUN_FILES = {"study.db", "run.json", "result.json", "model.skops"}


def db_trials(run: Path) -> list[tuple]:
    con = sqlite3.connect(f"file:{run / 'study.db'}?mode=ro", uri=True)
    try:
        return con.execute("SELECT id, state, value, config FROM trials ORDER BY id").fetchall()
    finally:
        con.close()


def assert_ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory, autodl_cli):
    """One small iris search shared by the read-only tests of this module."""
    base = tmp_path_factory.mktemp("iris")
    proc = autodl_cli("search", "--dataset", "iris", *SMALL, "--out", "run", cwd=base)
    return base / "run", proc


def test_search_dataset_writes_the_run_and_prints_the_leaderboard(iris_run):
    run, proc = iris_run
    assert_ok(proc)
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    assert "Leaderboard" in proc.stdout
    assert "best accuracy" in proc.stdout
    assert str(run.name) in proc.stdout
    rows = db_trials(run)
    assert len(rows) == 4 and all(r[1] == "complete" for r in rows)
    # the table lists the trials best first: rows "│ rank │ id │ value │"
    table = re.findall(r"│\s+(\d+)\s+│\s+(\d+)\s+│\s+([\d.]+)\s+│", proc.stdout)
    assert [int(r[0]) for r in table] == [1, 2, 3, 4]
    assert sorted(int(r[1]) for r in table) == [r[0] for r in rows]
    shown = [float(r[2]) for r in table]
    assert shown == sorted(shown, reverse=True)
    result = json.loads((run / "result.json").read_text())
    assert _finished(result) == 4 and result["extra"]["task"] == "classification"
    best = max(r[2] for r in rows)
    assert result["best_value"] == pytest.approx(best)
    assert f"{best:.4f}" in proc.stdout
    spec = json.loads((run / "run.json").read_text())
    assert spec["dataset"] == "iris" and spec["cv"] == 3 and spec["n_trials"] == 4


def test_show_prints_the_leaderboard(iris_run, autodl_cli):
    run, _ = iris_run
    proc = autodl_cli("show", run, cwd=run.parent)
    assert_ok(proc)
    assert "Leaderboard" in proc.stdout and "4 complete" in proc.stdout
    row = r"│\s+\d+\s+│\s+(\d+)\s+│"
    assert len(re.findall(row, proc.stdout)) == 4
    # the value column is named after the metric, and the spread over the 3 folds follows it
    header = next(line for line in proc.stdout.splitlines() if "rank" in line and "id" in line)
    assert re.search(r"┃\s*accuracy\s*┃\s*± std\s*┃", header), header
    from autodl.study import Study

    spreads = {t.id: t.user_attrs["cv_std"] for t in Study.load(run, searcher="random").trials}
    shown = re.findall(r"│\s+\d+\s+│\s+(\d+)\s+│\s+[\d.]+\s+│\s+([\d.e-]+)\s+│", proc.stdout)
    assert len(shown) == 4 and all(float(std) == pytest.approx(spreads[int(i)], rel=1e-2, abs=1e-3)
                                   for i, std in shown)
    top = autodl_cli("show", run, "--top", "1", cwd=run.parent)
    assert_ok(top)
    best_id = max(db_trials(run), key=lambda r: (r[2], -r[0]))[0]
    assert [int(i) for i in re.findall(row, top.stdout)] == [best_id]


def test_show_json_lists_every_trial(iris_run, autodl_cli):
    run, _ = iris_run
    proc = autodl_cli("show", run, "--json", cwd=run.parent)
    assert_ok(proc)
    shown = json.loads(proc.stdout)
    trials = shown["trials"]
    assert isinstance(trials, list) and len(trials) == 4
    assert shown["result"] == json.loads((run / "result.json").read_text())
    rows = db_trials(run)
    for t, (tid, state, value, config) in zip(trials, rows):
        assert {"id", "state", "value", "config", "budget"} <= set(t)
        assert t["id"] == tid and t["state"] == state == "complete"
        assert t["value"] == pytest.approx(value)
        assert t["config"] == json.loads(config)
        assert t["budget"] is None
    # also works on the .db file itself
    proc = autodl_cli("show", run / "study.db", "--json", cwd=run.parent)
    assert_ok(proc)
    assert json.loads(proc.stdout) == trials


@pytest.mark.slow
def test_resume_adds_trials_up_to_the_new_total(iris_run, autodl_cli, tmp_path):
    run, _ = iris_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    before = db_trials(copy)
    proc = autodl_cli("resume", copy, "--trials", "6", "--quiet", cwd=tmp_path)
    assert_ok(proc)
    after = db_trials(copy)
    assert len(after) == 6
    assert after[:4] == before
    assert [r[0] for r in after] == [1, 2, 3, 4, 5, 6]
    assert _finished(json.loads((copy / "result.json").read_text())) == 6
    # resuming a finished run does nothing more
    proc = autodl_cli("resume", copy, "--quiet", cwd=tmp_path)
    assert_ok(proc)
    assert len(db_trials(copy)) == 6


def test_jsonl_prints_one_object_per_trial(autodl_cli, tmp_path):
    # no --out: the run goes to runs/<dataset>-<time> under the working directory
    proc = autodl_cli("search", "--dataset", "wine", "--trials", "3", "--cv", "3", "--jsonl",
                      cwd=tmp_path)
    assert_ok(proc)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    trials, final = lines[:-1], lines[-1]
    assert len(trials) == 3
    for rec in trials:
        assert {"id", "state", "value", "config", "best"} <= set(rec)
        assert rec["state"] == "complete"
    assert [r["id"] for r in trials] == [1, 2, 3]
    assert trials[-1]["best"] == max(r["value"] for r in trials)
    assert _finished(final["result"]) == 3
    assert final["result"]["best_value"] == pytest.approx(trials[-1]["best"])
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("wine-")
    assert RUN_FILES <= {p.name for p in runs[0].iterdir()}
    assert Path(final["result"]["run_dir"]) == Path("runs") / runs[0].name


def write_csv(path: Path, n: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    city = rng.choice(["paris", "oslo", "rome"], n)
    temp = rng.normal(15, 5, n).round(2)
    df = pd.DataFrame({
        "city": city,
        "temp": temp,
        "rain": rng.integers(0, 30, n),
        "label": np.where((city == "oslo") | (temp < 12), "cold", "warm"),
    })
    df.loc[::11, "temp"] = np.nan
    df.loc[::13, "city"] = None
    if path.suffix == ".parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, index=False)
    return df


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_search_on_a_data_file(autodl_cli, tmp_path, suffix):
    data = tmp_path / f"table{suffix}"
    write_csv(data)
    proc = autodl_cli("search", "--data", data.name, "--target", "label", "--trials", "3",
                      "--cv", "3", "--quiet", "--out", "run", cwd=tmp_path)
    assert_ok(proc)
    run = tmp_path / "run"
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    rows = db_trials(run)
    assert len(rows) == 3 and all(r[1] == "complete" for r in rows), rows
    result = json.loads((run / "result.json").read_text())
    assert result["extra"]["task"] == "classification"
    spec = json.loads((run / "run.json").read_text())
    assert spec["target"] == "label" and Path(spec["data"]) == data.resolve()


# ---------------------------------------------------------------------------- user mistakes
BAD_YAML = "parameters:\n  model: {type: categorical, choices: [linear]\n  x: 1\n"
BAD_RANGE = ("parameters:\n  model: {type: categorical, choices: [linear]}\n"
             "  linear.alpha: {type: float, low: 10, high: 1, condition: {model: [linear]}}\n")

MISTAKES = {
    "missing file": (["search", "--data", "nope.csv", "--target", "y", "--trials", "2"], "nope.csv"),
    "missing target column": (["search", "--data", "good.csv", "--target", "nope", "--trials", "2"],
                              "'nope'"),
    "unknown dataset": (["search", "--dataset", "mnist", "--trials", "2"], "mnist"),
    "unknown searcher": (["search", "--dataset", "iris", "--searcher", "magic", "--trials", "2"],
                         "magic"),
    "malformed yaml": (["search", "--dataset", "iris", "--space", "bad.yaml", "--trials", "2"],
                       "line 3"),
    "invalid range": (["search", "--dataset", "iris", "--space", "range.yaml", "--trials", "2"],
                      "'linear.alpha'"),
    "missing space file": (["search", "--dataset", "iris", "--space", "gone.yaml", "--trials", "2"],
                           "gone.yaml"),
    "trials 0": (["search", "--dataset", "iris", "--trials", "0"], "--trials"),
    "trials abc": (["search", "--dataset", "iris", "--trials", "abc"], "--trials"),
    "time abc": (["search", "--dataset", "iris", "--time", "abc"], "abc"),
    "time 0": (["search", "--dataset", "iris", "--time", "0"], "--time"),
    "data without target": (["search", "--data", "good.csv", "--trials", "2"], "--target"),
    "target without data": (["search", "--dataset", "iris", "--target", "x", "--trials", "2"],
                            "--target"),
    "dataset and data": (["search", "--dataset", "iris", "--data", "good.csv", "--trials", "2"],
                         "--data"),
    "no budget": (["search", "--dataset", "iris"], "--trials"),
    "unknown flag": (["search", "--dataset", "iris", "--trials", "2", "--frobnicate"],
                     "--frobnicate"),
    "unknown metric": (["search", "--dataset", "iris", "--metric", "speed", "--trials", "2"],
                       "speed"),
    "metric for other task": (["search", "--dataset", "iris", "--metric", "rmse", "--trials", "2"],
                              "rmse"),
    "cv 1": (["search", "--dataset", "iris", "--cv", "1", "--trials", "2"], "--cv"),
    "unknown command": (["frobnicate"], "frobnicate"),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_user_mistake_is_one_line_exit_2_and_no_run_folder(autodl_cli, tmp_path, case):
    args, needle = MISTAKES[case]
    write_csv(tmp_path / "good.csv", n=30)
    (tmp_path / "bad.yaml").write_text(BAD_YAML)
    (tmp_path / "range.yaml").write_text(BAD_RANGE)
    before = {p.name for p in tmp_path.iterdir()}
    out = [] if args[0] != "search" else ["--out", "run"]
    proc = autodl_cli(*args, *out, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip("\n").splitlines()
    assert len(lines) == 1, proc.stderr
    assert "error" in lines[0] and needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr
    assert {p.name for p in tmp_path.iterdir()} == before  # no run folder, no runs/
    assert proc.stdout == ""


def test_out_folder_holding_a_run_is_refused(iris_run, autodl_cli, tmp_path):
    run, _ = iris_run

    def files():  # SQLite's -wal/-shm side files may come and go with readers
        return {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name in RUN_FILES}

    before = files()
    rows = db_trials(run)
    proc = autodl_cli("search", "--dataset", "iris", *SMALL, "--out", run, cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip("\n").splitlines()
    assert len(lines) == 1 and "already holds a run" in lines[0] and "resume" in lines[0]
    assert files() == before
    assert db_trials(run) == rows


def test_out_folder_not_empty_is_refused(autodl_cli, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    proc = autodl_cli("search", "--dataset", "iris", *SMALL, "--out", "busy", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "not empty" in proc.stderr
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("target", ["empty", "missing", "file"])
def test_resume_or_show_on_a_non_run_is_one_line_exit_2(autodl_cli, tmp_path, target):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("hello")
    before = {p.name for p in tmp_path.iterdir()}
    for cmd in ("resume", "show"):
        proc = autodl_cli(cmd, target, cwd=tmp_path)
        assert proc.returncode == 2, (cmd, proc.stderr)
        lines = proc.stderr.strip("\n").splitlines()
        assert len(lines) == 1 and target in lines[0], (cmd, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert {p.name for p in tmp_path.iterdir()} == before
    assert not any((tmp_path / "empty").iterdir())


def test_help_and_version(autodl_cli, tmp_path):
    proc = autodl_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "search" in proc.stdout and "resume" in proc.stdout
    proc = autodl_cli("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("autodl ")


def test_show_works_on_a_python_study_and_resume_refuses_it(autodl_cli, tmp_path):
    from autodl import Float, Space, Study

    study = Study(Space({"x": Float(0, 1)}), storage=tmp_path / "study", seed=0)
    study.optimize(lambda t: t.config["x"], n_trials=3)
    proc = autodl_cli("show", "study", "--json", cwd=tmp_path)
    assert_ok(proc)
    shown = json.loads(proc.stdout)
    assert [(t["id"], t["value"]) for t in shown] == [(t.id, t.value) for t in study.trials]
    proc = autodl_cli("resume", "study", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip("\n").splitlines()
    assert len(lines) == 1 and "run.json" in lines[0]
    assert len(Study.load(tmp_path / "study").trials) == 3
