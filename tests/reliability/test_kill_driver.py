"""SIGKILL the driver at 20 random points of a 50-trial study, resuming each time.

Figures checked at the end: exactly 50 trials complete, 0 duplicates (no configuration
completed twice, no abandoned trial retried twice), 0 lost (every trial running at a kill is
ABANDONED and retried once with the same config), and every value recorded before a kill is
unchanged afterwards. Every fourth episode runs with two local worker processes.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from reliability_helpers import config_key, read_trials

N_TRIALS = 50
N_KILLS = 20

DRIVER = textwrap.dedent('''
    import sys, time
    from autodl import Float, Int, Space, Study

    def objective(trial):
        time.sleep(0.08)  # long enough for kills to land mid-trial
        return round((trial.config["x"] - 0.3) ** 2 + trial.config["k"], 12)

    if __name__ == "__main__":
        db, workers = sys.argv[1], int(sys.argv[2])
        study = Study(Space({"x": Float(0.0, 1.0), "k": Int(0, 9)}), searcher="random",
                      storage=db, seed=7)
        left = %d - study.n_finished
        if left > 0:
            study.optimize(objective, n_trials=left, n_workers=workers, total_trials=%d)
        print("finished", study.n_finished)
''' % (N_TRIALS, N_TRIALS))


@pytest.mark.slow
def test_kill_9_at_20_random_points_then_resume(tmp_path):
    script = tmp_path / "drive.py"
    script.write_text(DRIVER)
    db = tmp_path / "study.db"
    rng = random.Random(20)
    recorded: dict[int, dict] = {}  # complete trials seen so far -> their row
    mid_trial_kills = 0
    for episode in range(N_KILLS):
        workers = 2 if episode % 4 == 3 else 1
        proc = subprocess.Popen([sys.executable, str(script), str(db), str(workers)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # wait until this driver runs a trial, then kill after a random extra delay
            mine = f":{proc.pid}"
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if any(t["state"] == "running" and t["owner"].endswith(mine)
                       for t in read_trials(db)):
                    break
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err = proc.stderr.read()
            proc.stderr.close()
        assert "Traceback" not in err, err
        at_kill = read_trials(db)
        mid_trial_kills += any(t["state"] == "running" and t["owner"].endswith(mine)
                               for t in at_kill)
        by_id = {t["id"]: t for t in at_kill}
        for tid, old in recorded.items():  # earlier values unchanged
            assert by_id[tid]["state"] == "complete" and by_id[tid]["value"] == old["value"]
            assert by_id[tid]["config"] == old["config"]
        recorded.update({t["id"]: t for t in at_kill if t["state"] == "complete"})
        if len(recorded) >= N_TRIALS:
            break

    final = subprocess.run([sys.executable, str(script), str(db), "1"], capture_output=True,
                           text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    trials = read_trials(db)
    complete = [t for t in trials if t["state"] == "complete"]
    abandoned = [t for t in trials if t["state"] == "abandoned"]
    by_id = {t["id"]: t for t in trials}
    print(f"\nkills: {episode + 1} ({mid_trial_kills} mid-trial); trials: {len(trials)} rows, "
          f"{len(complete)} complete, {len(abandoned)} abandoned and retried")

    assert len(complete) == N_TRIALS  # exactly 50 complete
    assert not [t for t in trials if t["state"] not in ("complete", "abandoned")]
    assert len({t["id"] for t in trials}) == len(trials)
    keys = [config_key(t["config"]) for t in complete]
    assert len(set(keys)) == N_TRIALS, "a configuration completed twice (0 duplicates)"
    for t in abandoned:  # 0 lost: each abandoned trial was retried exactly once, same config
        retries = [r for r in trials if r["retry_of"] == t["id"]]
        assert len(retries) == 1 and t["retried_by"] == retries[0]["id"]
        assert retries[0]["config"] == t["config"]
    for tid, old in recorded.items():
        assert by_id[tid]["value"] == old["value"] and by_id[tid]["config"] == old["config"]
    for t in complete:
        assert t["value"] == round((t["config"]["x"] - 0.3) ** 2 + t["config"]["k"], 12)
    assert mid_trial_kills >= N_KILLS // 2, "most kills should land while a trial runs"
