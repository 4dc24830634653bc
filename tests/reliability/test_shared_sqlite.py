"""Several processes on one SQLite study: unique ids, no lost writes, a study-wide trial limit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from reliability_helpers import config_key, read_trials


def _finished(result: dict) -> int:
    """Trials the run finished, from the result.json envelope's counts."""
    return result["n_complete"] + result["n_failed"] + result["n_pruned"]


JOIN = textwrap.dedent('''
    import sys, time
    from autodl import Study

    def objective(trial):
        time.sleep(0.01)
        return trial.config["x"] ** 2

    if __name__ == "__main__":
        db, salt = sys.argv[1], int(sys.argv[2])
        n_trials = None if sys.argv[3] == "-" else int(sys.argv[3])
        total = int(sys.argv[4])
        study = Study.load(db)
        study.diversify(salt)
        study.optimize(objective, n_trials=n_trials, total_trials=total)
''')


def _run_processes(script, db, n_procs, n_trials, total):
    procs = [subprocess.Popen([sys.executable, str(script), str(db), str(i), n_trials, str(total)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n_procs)]
    errors = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        if p.returncode != 0 or "Traceback" in err:
            errors.append((p.returncode, err))
    assert not errors, errors[0][1]
    return [p.pid for p in procs]


@pytest.mark.slow
def test_8_processes_x_20_trials_on_one_sqlite_study(tmp_path):
    from autodl import Float, Space, Study

    db = tmp_path / "shared.db"
    Study(Space({"x": Float(-1.0, 1.0)}), storage=db, seed=0)  # create it, with no trials
    script = tmp_path / "join.py"
    script.write_text(JOIN)

    t0 = time.monotonic()
    pids = _run_processes(script, db, 8, "20", 160)
    trials = read_trials(db)
    per_owner = Counter(t["owner"].rsplit(":", 1)[1] for t in trials)
    print(f"\n8 processes x 20 trials: {len(trials)} rows in {time.monotonic() - t0:.1f}s, "
          f"per process {sorted(per_owner.values())}")
    assert len(trials) == 160
    assert sum(t["state"] == "complete" for t in trials) == 160  # exactly 160 complete
    assert len({t["id"] for t in trials}) == 160  # unique ids
    assert sorted(t["id"] for t in trials) == list(range(1, 161))  # no gaps: no lost writes
    assert sorted(per_owner) == sorted(str(p) for p in pids)
    assert set(per_owner.values()) == {20}
    for t in trials:
        assert t["value"] == pytest.approx(t["config"]["x"] ** 2)
    # diversified searchers: the processes did not propose the same configurations
    assert len({config_key(t["config"]) for t in trials}) == 160

    # a study-wide limit: 4 processes racing without a per-process count stop at exactly 200
    _run_processes(script, db, 4, "-", 200)
    trials = read_trials(db)
    assert len(trials) == 200 and all(t["state"] == "complete" for t in trials)
    assert len({t["id"] for t in trials}) == 200


@pytest.mark.slow
def test_autodl_worker_joins_a_running_search(autodl_popen, autodl_cli, tmp_path):
    run = tmp_path / "run"
    search = autodl_popen("search", "--dataset", "iris", "--trials", "24", "--cv", "2",
                          "--quiet", "--out", run, cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not read_trials(run / "study.db"):
            assert search.poll() is None, search.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        worker = autodl_cli("worker", run, "--quiet", cwd=tmp_path, timeout=240)
        out, err = search.communicate(timeout=240)
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
    assert worker.returncode == 0, worker.stderr
    assert search.returncode == 0, err
    assert "autodl worker: ran" in worker.stderr
    trials = read_trials(run / "study.db")
    owners = Counter(t["owner"] for t in trials)
    print(f"\nsearch + worker: {dict(owners)}")
    assert sum(t["state"] in ("complete", "failed") for t in trials) == 24
    assert len(trials) == 24 and len({t["id"] for t in trials}) == 24
    assert len(owners) == 2, "the worker ran none of the trials"
    import json

    assert _finished(json.loads((run / "result.json").read_text())) == 24
