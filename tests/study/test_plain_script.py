"""Scripts without an ``if __name__ == "__main__":`` guard: worker processes must not run the
user's script again (spawn re-imports ``__main__`` by default), from a file, ``python -c`` and
``python -m``; objectives defined in the script reach the workers by value."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import json, sys
    import autodl
    from sklearn.datasets import load_iris

    print("script body ran", flush=True)  # once: workers must not run it again
    X, y = load_iris(return_X_y=True, as_frame=True)
    result = autodl.search(X, y, n_trials=4, n_workers=2, cv=2, seed=0)

    OFFSET = 3.0  # a global of the script, used by the objective in the workers

    def objective(trial):
        return (trial.config["x"] - OFFSET) ** 2

    space = autodl.Space({"x": autodl.Float(0.0, 5.0)})
    study = autodl.Study(space, searcher="random", seed=0)
    study.optimize(objective, n_trials=6, n_workers=2)
    print(json.dumps({"search": len(result.study.trials), "study": len(study.trials),
                      "states": sorted({t.state.name for t in study.trials}),
                      "best": study.best_value}))
''')


def _check(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    for bad in ("RuntimeError", "freeze_support", "bootstrapping phase", "Traceback"):
        assert bad not in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout.count("script body ran") == 1, proc.stdout
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["search"] == 4 and out["study"] == 6 and out["states"] == ["COMPLETE"], out
    assert out["best"] < 9.0


@pytest.mark.slow
@pytest.mark.parametrize("how", ["file", "-c", "-m"])
def test_a_script_without_main_guard_runs_its_trials_in_workers(tmp_path, how):
    (tmp_path / "plain_script.py").write_text(SCRIPT)
    args = {"file": ["plain_script.py"], "-c": ["-c", SCRIPT], "-m": ["-m", "plain_script"]}[how]
    proc = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    _check(proc)
