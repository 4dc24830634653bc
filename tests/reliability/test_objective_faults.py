"""Every way an objective can go wrong is recorded with the right state while the study goes on.

A grid over the fault kinds runs each exactly once on two local worker processes with a 2 s
per-trial timeout; a dead worker is retried once (max_retries=1), then FAILED with its cause.
"""

from __future__ import annotations

import math
import os
import signal
import time

import pytest

from autodl import Categorical, Space, Study, TrialState

FAULTS = ["ok", "raise", "nan", "inf", "-inf", "none", "str", "hang", "os_exit", "sigkill",
          "segfault", "sys_exit"]

#: fault -> (state of the final attempt, text in its message, earlier ABANDONED attempts)
EXPECTED = {
    "ok": (TrialState.COMPLETE, None, 0),
    "raise": (TrialState.FAILED, "ValueError: boom", 0),
    "nan": (TrialState.FAILED, "objective returned nan", 0),
    "inf": (TrialState.FAILED, "objective returned inf", 0),
    "-inf": (TrialState.FAILED, "objective returned -inf", 0),
    "none": (TrialState.FAILED, "objective returned None", 0),
    "str": (TrialState.FAILED, "objective returned str 'oops'", 0),
    "hang": (TrialState.FAILED, "timed out after 2s", 0),
    "os_exit": (TrialState.FAILED, "worker process died (exit code 3) twice", 1),
    "sigkill": (TrialState.FAILED, "worker process died (exit code -9, SIGKILL) twice", 1),
    "segfault": (TrialState.FAILED, "worker process died (exit code -11, SIGSEGV) twice", 1),
    "sys_exit": (TrialState.FAILED, "objective called sys.exit(4)", 0),
}


def faulty(trial):
    fault = trial.config["fault"]
    trial.report(0.5, 0)
    if fault == "ok":
        return 1.0
    if fault == "raise":
        raise ValueError("boom")
    if fault == "nan":
        return float("nan")
    if fault == "inf":
        return math.inf
    if fault == "-inf":
        return -math.inf
    if fault == "none":
        return None
    if fault == "str":
        return "oops"
    if fault == "hang":
        time.sleep(120)
    if fault == "os_exit":
        os._exit(3)
    if fault == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "segfault":
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV
    if fault == "sys_exit":
        raise SystemExit(4)
    raise AssertionError(fault)


def fault_space() -> Space:
    return Space({"fault": Categorical(FAULTS)})


def test_every_fault_is_recorded_and_the_study_goes_on(tmp_path):
    study = Study(fault_space(), searcher="grid", storage=tmp_path / "run", seed=0)
    t0 = time.monotonic()
    study.optimize(faulty, n_workers=2, trial_timeout=2.0, max_retries=1)
    elapsed = time.monotonic() - t0
    trials = study.trials
    final = {t.config["fault"]: t for t in trials if t.state != TrialState.ABANDONED}
    assert sorted(final) == sorted(FAULTS)  # every fault ran; the study went on
    for fault, (state, text, n_abandoned) in EXPECTED.items():
        t = final[fault]
        assert t.state == state, (fault, t.state, t.message)
        if text is not None:
            assert text in t.message, (fault, t.message)
        assert dict(t.intermediate) == {0: 0.5}, fault  # reports arrived before the fault
        attempts = [a for a in trials if a.config["fault"] == fault and a.state == TrialState.ABANDONED]
        assert len(attempts) == n_abandoned, fault
        for a in attempts:  # the lost attempt stays ABANDONED, linked to its retry
            assert "worker process died" in a.message and t.retry_of == a.id
    assert study.n_finished == len(FAULTS)
    assert not study.get_trials([TrialState.RUNNING])
    assert elapsed < 60, f"the study took {elapsed:.0f}s"
    # a resumed study does not re-run ABANDONED attempts that were already retried
    again = Study.load(tmp_path / "run")
    assert again.storage.abandoned_to_retry() == []


def test_max_retries_zero_fails_at_once_and_two_retries_twice():
    for retries, n_attempts in ((0, 1), (2, 3)):
        study = Study(Space({"fault": Categorical(["os_exit"])}), searcher="grid", seed=0)
        study.optimize(faulty, executor="local", max_retries=retries)
        trials = study.trials
        assert len(trials) == n_attempts
        assert [t.state for t in trials] == [TrialState.ABANDONED] * retries + [TrialState.FAILED]
        expected = {1: "", 2: " twice"}.get(n_attempts, f" {n_attempts} times")
        assert trials[-1].message == f"worker process died (exit code 3){expected}"


@pytest.mark.parametrize("fault", ["raise", "nan", "inf", "-inf", "none", "str"])
def test_in_process_faults_are_recorded_too(fault):
    study = Study(Space({"fault": Categorical([fault, "ok"])}), searcher="grid", seed=0)
    study.optimize(faulty)
    by_fault = {t.config["fault"]: t for t in study.trials}
    assert by_fault[fault].state == TrialState.FAILED
    assert EXPECTED[fault][1] in by_fault[fault].message
    assert by_fault["ok"].state == TrialState.COMPLETE


def test_a_timeout_with_one_worker_uses_a_worker_process_and_inline_accepts_it():
    study = Study(Space({"fault": Categorical(["hang", "ok"])}), searcher="grid", seed=0)
    study.optimize(faulty, trial_timeout=1.0)  # n_workers=1: a local worker process
    states = {t.config["fault"]: (t.state, t.message) for t in study.trials}
    assert states["hang"] == (TrialState.FAILED, "timed out after 1s")
    assert states["ok"][0] == TrialState.COMPLETE
    # inline stops a trial at its next trial.report() (tests/study/test_threads_and_timeouts.py)
    inline = Study(Space({"fault": Categorical(["ok"])}), searcher="grid", seed=0)
    inline.optimize(faulty, executor="inline", trial_timeout=1.0)
    assert inline.trials[0].state == TrialState.COMPLETE
