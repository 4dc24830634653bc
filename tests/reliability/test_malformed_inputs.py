"""Malformed inputs: each is a one-line error naming the problem, exit code 2, no run folder.

Table-driven over spaces (YAML), data files (CSV), flags and budgets, including the executor
flags (``--executor``, ``--dask-scheduler``, ``--trial-timeout``) and ``autodl worker``. The CLI
runs in-process (``autodl.cli.main.main``) for speed; one case also runs as a real subprocess.
"""

from __future__ import annotations

import pytest

from autodl.cli.main import main

S = ["search", "--dataset", "iris", "--trials", "2"]  # a valid search to break one flag of

FILES = {
    "good.csv": "a,b,label\n" + "".join(f"{i},{i % 3},{'x' if i % 2 else 'y'}\n" for i in range(30)),
    "empty.csv": "",
    "header_only.csv": "a,b,label\n",
    "one_class.csv": "a,label\n" + "".join(f"{i},same\n" for i in range(20)),
    "notes.txt": "hello\n",
    "bad.yaml": "parameters:\n  model: {type: categorical, choices: [linear]\n  x: 1\n",
    "range.yaml": ("parameters:\n  model: {type: categorical, choices: [linear]}\n"
                   "  linear.alpha: {type: float, low: 10, high: 1, condition: {model: [linear]}}\n"),
    "list.yaml": "- a\n- b\n",
    "empty.yaml": "",
    "unknown_type.yaml": "parameters:\n  model: {type: categorical, choices: [linear]}\n  x: {type: complex}\n",
    "no_choices.yaml": "parameters:\n  model: {type: categorical, choices: []}\n",
    "no_model.yaml": "parameters:\n  x: {type: float, low: 0, high: 1}\n",
    # a network space with a parameter the trainer does not read (a typo of n_layers / width)
    "net_typo.yaml": ("parameters:\n  lr: {type: float, low: 0.0001, high: 0.1, log: true}\n"
                      "  hidden: {type: int, low: 8, high: 64}\n"),
    "bad_condition.yaml": ("parameters:\n  model: {type: categorical, choices: [linear]}\n"
                           "  x: {type: float, low: 0, high: 1, condition: {ghost: [a]}}\n"),
}

# name -> (argv, text the error line must contain)
CASES = {
    # data files
    "missing data file": (["search", "--data", "nope.csv", "--target", "y", "--trials", "2"], "nope.csv"),
    "missing target column": (["search", "--data", "good.csv", "--target", "nope", "--trials", "2"], "nope"),
    "empty csv": (["search", "--data", "empty.csv", "--target", "label", "--trials", "2"], "empty.csv"),
    "csv with header only": (["search", "--data", "header_only.csv", "--target", "label", "--trials", "2"],
                             "header_only.csv"),
    "unsupported file type": (["search", "--data", "notes.txt", "--target", "label", "--trials", "2"],
                              "notes.txt"),
    "data is a folder": (["search", "--data", "folder", "--target", "label", "--trials", "2"], "folder"),
    "one class target": (["search", "--data", "one_class.csv", "--target", "label", "--trials", "2"],
                         "class"),
    "data without target": (["search", "--data", "good.csv", "--trials", "2"], "--target"),
    "target without data": ([*S, "--target", "x"], "--target"),
    "dataset and data": ([*S, "--data", "good.csv"], "--data"),
    "unknown dataset": (["search", "--dataset", "mnist", "--trials", "2"], "mnist"),
    # spaces
    "malformed yaml": ([*S, "--space", "bad.yaml"], "line 3"),
    "inverted range": ([*S, "--space", "range.yaml"], "linear.alpha"),
    "missing space file": ([*S, "--space", "gone.yaml"], "gone.yaml"),
    "yaml list": ([*S, "--space", "list.yaml"], "list.yaml"),
    "empty yaml": ([*S, "--space", "empty.yaml"], "empty.yaml"),
    "unknown parameter type": ([*S, "--space", "unknown_type.yaml"], "complex"),
    "no choices": ([*S, "--space", "no_choices.yaml"], "model"),
    "space without model": ([*S, "--space", "no_model.yaml"], "model"),
    "condition on unknown parameter": ([*S, "--space", "bad_condition.yaml"], "ghost"),
    "network space parameter the trainer ignores": (
        ["search", "--dataset", "digits", "--model", "mlp", "--trials", "2", "--space", "net_typo.yaml"], "hidden"),
    "unknown space name": ([*S, "--space", "galaxy"], "galaxy"),
    # flags
    "unknown flag": ([*S, "--frobnicate"], "--frobnicate"),
    "unknown command": (["frobnicate"], "frobnicate"),
    "unknown searcher": ([*S, "--searcher", "magic"], "magic"),
    "unknown metric": ([*S, "--metric", "speed"], "speed"),
    "metric for other task": ([*S, "--metric", "rmse"], "rmse"),
    "unknown task": ([*S, "--task", "ranking"], "ranking"),
    "cv 1": ([*S, "--cv", "1"], "--cv"),
    "cv abc": ([*S, "--cv", "abc"], "--cv"),
    "seed abc": ([*S, "--seed", "abc"], "--seed"),
    "test size 1.5": ([*S, "--test-size", "1.5"], "--test-size"),
    "workers 0": ([*S, "--workers", "0"], "--workers"),
    "workers -3": ([*S, "--workers", "-3"], "--workers"),
    "unknown executor": ([*S, "--executor", "spark"], "spark"),
    "scheduler without scheme or port": ([*S, "--dask-scheduler", "localhost"], "localhost"),
    "scheduler with bad port": ([*S, "--dask-scheduler", "tcp://host:port"], "tcp://host:port"),
    "scheduler with local executor": ([*S, "--executor", "local", "--dask-scheduler", "tcp://h:8786"],
                                      "--dask-scheduler"),
    # budgets
    "no budget": (["search", "--dataset", "iris"], "--trials"),
    "trials 0": (["search", "--dataset", "iris", "--trials", "0"], "--trials"),
    "trials abc": (["search", "--dataset", "iris", "--trials", "abc"], "--trials"),
    "trials 2.5": (["search", "--dataset", "iris", "--trials", "2.5"], "--trials"),
    "time abc": (["search", "--dataset", "iris", "--time", "abc"], "abc"),
    "time 0": (["search", "--dataset", "iris", "--time", "0"], "--time"),
    "time 10x": (["search", "--dataset", "iris", "--time", "10x"], "10x"),
    "time negative": (["search", "--dataset", "iris", "--time=-5m"], "-5m"),
    "trial timeout 0": ([*S, "--trial-timeout", "0"], "--trial-timeout"),
    "trial timeout abc": ([*S, "--trial-timeout", "abc"], "abc"),
    # other commands
    "worker on a non-run": (["worker", "folder"], "folder"),
    "worker with bad scheduler": (["worker", "folder", "--dask-scheduler", "nohost"], "folder"),
    "resume trials 0": (["resume", "folder", "--trials", "0"], "--trials"),
    "resume bad trial timeout": (["resume", "folder", "--trial-timeout=-1s"], "-1s"),
}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "folder").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_main(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse exits by itself
        return int(exc.code or 0)


def test_the_table_has_at_least_30_cases():
    assert len(CASES) >= 30, len(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_is_one_line_exit_2_and_no_run_folder(workdir, capsys, case):
    argv, needle = CASES[case]
    out = ["--out", "run"] if argv[0] == "search" else []
    before = sorted(p.name for p in workdir.rglob("*"))
    code = run_main([*argv, *out])
    captured = capsys.readouterr()
    lines = captured.err.strip("\n").splitlines()
    assert code == 2, (code, captured.err)
    assert len(lines) == 1, captured.err
    assert "error" in lines[0] and needle in lines[0], lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""
    assert sorted(p.name for p in workdir.rglob("*")) == before  # no run folder, nothing written


def test_one_case_as_a_real_process(autodl_cli, workdir):
    proc = autodl_cli(*S, "--trial-timeout", "0", "--out", "run", cwd=workdir, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--trial-timeout" in proc.stderr
    assert not (workdir / "run").exists()
