"""A failed trial's message names the exception and the innermost line of the user's own code
(not autodl's, the standard library's or an installed package's), in this process and in worker
processes (cloudpickled code keeps its file name); failures are reported on stderr, once per
distinct message, with a final count.

Oracle: a script run as a subprocess whose objective raises at known lines of its own file.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest

from autodl import Categorical, Float, Space, Study, TrialState

SCRIPT = textwrap.dedent('''\
    import json, sys
    import autodl

    def check(lr):
        if lr > 0.5:
            raise ValueError("bad lr")          # line 6: raised here, in a helper of the script
        return lr

    def objective(trial):
        lr = check(trial.config["lr"])
        if trial.config["kind"] == "json":
            return json.loads("{not json")       # line 12: raised inside the standard library
        return lr

    space = autodl.Space({"lr": autodl.Categorical([0.1, 0.9]), "kind": autodl.Categorical(["ok", "json"])})
    study = autodl.Study(space, searcher="grid", seed=0)
    study.optimize(objective, n_workers=int(sys.argv[1]))
    print(json.dumps({str(t.config["lr"]) + t.config["kind"]: [t.state.value, t.message] for t in study.trials}))
''')


@pytest.mark.parametrize("n_workers", [1, 2], ids=["inline", "worker-processes"])
def test_the_message_names_the_users_file_and_line(tmp_path, n_workers):
    (tmp_path / "fail_script.py").write_text(SCRIPT)
    proc = subprocess.run([sys.executable, "fail_script.py", str(n_workers)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    bad_lr = "ValueError: bad lr (fail_script.py:6)"
    assert out["0.9ok"] == ["failed", bad_lr] and out["0.9json"] == ["failed", bad_lr]
    state, message = out["0.1json"]
    assert state == "failed" and message.startswith("JSONDecodeError: ") and message.endswith("(fail_script.py:12)")
    assert out["0.1ok"] == ["complete", None]
    assert "dynamic-code" not in proc.stdout + proc.stderr
    # stderr: one line per distinct message, then the count with the most common message
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("autodl: ")]
    assert sum(bad_lr in ln and "failed:" in ln for ln in lines) == 2  # its first trial + the summary
    assert sum("JSONDecodeError" in ln for ln in lines) == 1
    assert lines[-1] == f"autodl: 3 of 4 trials failed: {bad_lr} (2 times; 1 other message)"


def test_failures_are_reported_on_stderr_even_without_progress(capsys):
    def objective(trial):
        if trial.config["x"] == "bad":
            raise RuntimeError("boom")
        return 1.0

    study = Study(Space({"x": Categorical(["bad", "ok"])}), searcher="grid", seed=0)
    study.optimize(objective, show_progress=False)
    err = capsys.readouterr().err
    message = f"RuntimeError: boom (test_failure_messages.py:{objective.__code__.co_firstlineno + 2})"
    failed = study.get_trials([TrialState.FAILED])
    assert [t.message for t in failed] == [message]
    assert err.splitlines() == [f"autodl: trial {failed[0].id} failed: {message}",
                                f"autodl: 1 of 2 trials failed: {message}"]
    assert "best trial" not in err  # the winner is named only with progress shown


def test_progress_is_shown_by_default_on_a_terminal_only(monkeypatch, capsys):
    space = Space({"x": Float(0.0, 1.0)})
    Study(space, searcher="random", seed=0).optimize(lambda t: t.config["x"], n_trials=2)
    assert capsys.readouterr().err == ""  # captured stderr is not a terminal: quiet, nothing failed

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    study = Study(space, searcher="random", seed=0)
    study.optimize(lambda t: t.config["x"], n_trials=2)
    best = study.best_trial
    assert f"autodl: best trial {best.id}: value {best.value:.6g} (x=" in term.getvalue()


def test_an_error_inside_autodl_or_a_library_only_names_the_innermost_frame():
    from autodl.study.executors import describe_error

    try:
        json.loads("{")
    except ValueError as exc:
        here = describe_error(exc)
    assert here.startswith("JSONDecodeError: ") and "test_failure_messages.py:" in here
    try:
        exec("json.loads('{')", {"json": json})  # user code without a file: <string>
    except ValueError as exc:
        assert describe_error(exc).endswith("(<string>:1)")
    assert describe_error(ValueError("no traceback")) == "ValueError: no traceback"


def test_a_timed_out_inline_trial_is_reported_like_a_failure(capsys):
    import time

    def objective(trial):
        for step in range(100):
            time.sleep(0.05)
            trial.report(1.0, step)
        return 1.0

    study = Study(Space({"x": Float(0.0, 1.0)}), searcher="random", seed=0)
    study.optimize(objective, n_trials=1, executor="inline", trial_timeout=0.2, show_progress=False)
    assert study.trials[0].state == TrialState.FAILED
    assert "autodl: 1 of 1 trials failed: timed out after 0.2s" in capsys.readouterr().err
