"""SIGKILL a running ``autodl search`` and resume it: nothing finished is lost or redone."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest


def _finished(result: dict) -> int:
    """Trials the run finished, from the result.json envelope's counts."""
    return result["n_complete"] + result["n_failed"] + result["n_pruned"]


N_TRIALS = 20  # enough that a poller starved of CPU still kills well before the search ends


def read_trials(db: Path) -> list[dict]:
    """All trials in ``db`` (read-only); [] while the file or table does not exist yet."""
    if not db.is_file():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute(
                "SELECT id, state, value, config, retry_of, started FROM trials ORDER BY id"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet, or briefly locked
        return []
    return [{"id": r[0], "state": r[1], "value": r[2], "config": json.loads(r[3]), "retry_of": r[4],
             "started": r[5]} for r in rows]


@pytest.mark.slow
def test_sigkill_mid_search_then_resume(autodl_popen, autodl_cli, tmp_path):
    run = tmp_path / "run"
    db = run / "study.db"
    proc = autodl_popen("search", "--dataset", "iris", "--trials", N_TRIALS, "--cv", "3",
                        "--quiet", "--out", run, cwd=tmp_path,
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while True:
            trials = read_trials(db)
            # kill while a trial is in flight: one that started just now (a trial takes far
            # longer than the few milliseconds between this read and the kill)
            if (3 <= sum(t["state"] == "complete" for t in trials) <= N_TRIALS - 8
                    and any(t["state"] == "running" and time.time() - t["started"] < 0.1
                            for t in trials)):
                break
            assert proc.poll() is None, f"search ended before it could be killed: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no 3 trials completed in time"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    at_kill = read_trials(db)
    completed = {t["id"]: t for t in at_kill if t["state"] == "complete"}
    running = {t["id"]: t for t in at_kill if t["state"] == "running"}
    assert 3 <= len(completed) < N_TRIALS, "the search was not killed mid-run"
    assert len(running) == 1, at_kill
    assert not (run / "result.json").exists()

    res = autodl_cli("resume", run, "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr

    final = read_trials(db)
    by_id = {t["id"]: t for t in final}
    ids = [t["id"] for t in final]
    assert len(set(ids)) == len(ids)
    finished = [t for t in final if t["state"] in ("complete", "failed", "pruned")]
    assert len(finished) == N_TRIALS, [(t["id"], t["state"]) for t in final]
    assert not [t for t in final if t["state"] == "running"]

    # what had completed before the kill is unchanged
    for tid, t in completed.items():
        assert by_id[tid]["state"] == "complete"
        assert by_id[tid]["value"] == t["value"]
        assert by_id[tid]["config"] == t["config"]

    # a trial the kill cut short was marked abandoned and retried once with the same config
    for tid, t in running.items():
        assert by_id[tid]["state"] == "abandoned"
        retries = [r for r in final if r["retry_of"] == tid]
        assert len(retries) == 1
        assert retries[0]["config"] == t["config"]
        assert retries[0]["state"] in ("complete", "failed", "pruned")
    assert all(t["state"] != "abandoned" or t["id"] in running for t in final)

    result = json.loads((run / "result.json").read_text())
    assert _finished(result) == N_TRIALS
    assert (run / "model.skops").is_file()
    best = max(t["value"] for t in final if t["state"] == "complete")
    assert result["best_value"] == pytest.approx(best)


@pytest.mark.slow
def test_ctrl_c_mid_search_exits_130_and_resume_finishes(autodl_popen, autodl_cli, tmp_path):
    run = tmp_path / "run"
    db = run / "study.db"
    # enough trials that a poller starved of CPU still signals well before the search ends
    n_total = 20
    # Ctrl-C in a terminal reaches a foreground process whose SIGINT handler is the default.
    # A test runner started as a background job (as CI may be) has SIGINT ignored, and Python
    # keeps an inherited "ignore" at start-up; restore the default so the child is like the
    # user's foreground `autodl search`.
    proc = autodl_popen("search", "--dataset", "iris", "--trials", n_total, "--cv", "3", "--quiet",
                        "--out", run, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 180
        while True:
            trials = read_trials(db)
            if (2 <= sum(t["state"] == "complete" for t in trials) <= n_total - 8
                    and any(t["state"] == "running" and time.time() - t["started"] < 0.1
                            for t in trials)):
                break
            assert proc.poll() is None, "search ended before it could be interrupted"
            assert time.monotonic() < deadline, "no 2 trials completed in time"
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert f"autodl resume {run}" in err

    at_stop = read_trials(db)
    assert not [t for t in at_stop if t["state"] == "running"]
    abandoned = [t for t in at_stop if t["state"] == "abandoned"]
    assert len(abandoned) == 1

    res = autodl_cli("resume", run, "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    final = read_trials(db)
    assert sum(t["state"] == "complete" for t in final) == n_total
    retry = [t for t in final if t["retry_of"] == abandoned[0]["id"]]
    assert len(retry) == 1 and retry[0]["config"] == abandoned[0]["config"]
    assert _finished(json.loads((run / "result.json").read_text())) == n_total
