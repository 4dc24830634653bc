"""``trial_memory``: a per-trial memory cap in the local worker processes (``--trial-memory``).

A trial that allocates past the cap is FAILED with that cause, its worker is replaced, and the
study goes on; a worker killed outright is reported with the cap as the likely cause.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys

import pytest

from autodl import Float, Space, Study, TrialState, UserError
from autodl.cli._units import parse_size
from autodl.study.executors import InlineExecutor, ProcessExecutor, describe_memory, make_executor

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA is Linux-only")

CAP = 2**30  # 1 GiB: above a worker's own use with torch imported (about 0.45 GB), far below this machine's RAM
MESSAGE = "exceeded the memory cap of 1.0 GB (--trial-memory)"


def space() -> Space:
    return Space({"x": Float(0.0, 1.0)})


def _allocate(trial):
    """Trials 1-3 each try to allocate 3x the cap, in three different ways; trial 4 stays small.
    Every trial records the data limit its process runs under and the process."""
    import numpy as np

    trial.set_user_attr("rlimit_data", resource.getrlimit(resource.RLIMIT_DATA)[0])
    trial.set_user_attr("pid", os.getpid())
    if trial.id == 1:  # one big numpy array (numpy raises MemoryError)
        big = np.ones(3 * CAP // 8)
        return float(big[-1])
    if trial.id == 2:  # many 64 MB arrays: the failure comes with the cap nearly full
        chunks = [np.ones(2**26 // 8) for _ in range(3 * CAP // 2**26)]
        return float(len(chunks))
    if trial.id == 3:  # torch's CPU allocator raises RuntimeError "can't allocate memory"
        import torch

        big = torch.ones(3 * CAP // 4)
        return float(big[-1])
    return float(np.ones(CAP // 4 // 8).sum())  # 0.25 GB: fits


@pytest.mark.slow
def test_a_trial_past_the_memory_cap_fails_with_that_cause_and_the_study_goes_on():
    study = Study(space(), seed=0)
    study.optimize(_allocate, n_trials=4, trial_memory=CAP)  # one worker: "local" chosen for it
    trials = {t.id: t for t in study.trials}
    assert sorted(trials) == [1, 2, 3, 4]  # nothing was retried: the cap is not a lost worker
    for tid in (1, 2, 3):
        t = trials[tid]
        assert t.state == TrialState.FAILED, (tid, t.message)
        assert t.message.startswith(MESSAGE + ": "), t.message
        assert t.user_attrs["rlimit_data"] == CAP  # the limit really is set in the worker
    assert "MemoryError" in trials[1].message and "MemoryError" in trials[2].message
    assert "can't allocate memory" in trials[3].message  # torch's own words follow the cause
    # each failure retired its worker (freed memory may stay in its heap), so every trial ran in
    # a fresh process, and the 0.25 GB trial completes under the same cap
    assert len({t.user_attrs["pid"] for t in trials.values()}) == 4
    assert trials[4].state == TrialState.COMPLETE and trials[4].value == CAP // 4 // 8
    assert trials[4].user_attrs["rlimit_data"] == CAP


def _record_limit(trial):
    trial.set_user_attr("rlimit_data", resource.getrlimit(resource.RLIMIT_DATA)[0])
    trial.set_user_attr("pid", os.getpid())
    return 1.0


def test_without_a_cap_the_workers_keep_the_drivers_limit():
    study = Study(space(), seed=0)
    study.optimize(_record_limit, n_trials=2, executor="local")
    first, second = study.trials
    assert first.user_attrs["rlimit_data"] == resource.getrlimit(resource.RLIMIT_DATA)[0]
    assert first.user_attrs["pid"] == second.user_attrs["pid"]  # a worker that did not fail is kept


def _killed(trial):
    os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does


def test_a_worker_killed_under_the_cap_names_the_cap_as_the_likely_cause():
    study = Study(space(), seed=0)
    study.optimize(_killed, n_trials=1, trial_memory=CAP, max_retries=0)
    (t,) = study.trials
    assert t.state == TrialState.FAILED
    assert "SIGKILL" in t.message and "possibly by exceeding the memory cap of 1.0 GB (--trial-memory)" in t.message


def test_a_cap_below_a_workers_own_use_is_a_user_error():
    study = Study(space(), seed=0)
    with pytest.raises(UserError, match="memory cap of 10 MB .* is below the .* a worker process uses"):
        study.optimize(_record_limit, n_trials=1, trial_memory=10 * 2**20)


def test_the_cap_needs_local_worker_processes():
    assert isinstance(make_executor(None, 1, trial_memory=CAP), ProcessExecutor)
    assert make_executor("local", 2, trial_memory=CAP).trial_memory == CAP
    with pytest.raises(UserError, match="needs worker processes"):
        make_executor("inline", 1, trial_memory=CAP)
    with pytest.raises(UserError, match="on Dask, cap the workers"):
        make_executor("dask", 1, trial_memory=CAP)
    with pytest.raises(UserError, match="ProcessExecutor\\(trial_memory=...\\)"):
        make_executor(InlineExecutor(), 1, trial_memory=CAP)
    study = Study(space(), seed=0)
    with pytest.raises(UserError, match="needs worker processes"):
        study.optimize(_record_limit, n_trials=1, executor="inline", trial_memory=CAP)
    assert study.trials == []


@pytest.mark.parametrize("bad", [0, -1, True, "2G", float("nan")])
def test_the_cap_must_be_a_positive_number_of_bytes(bad):
    with pytest.raises(UserError, match="trial_memory is .* but must be a positive number of bytes"):
        make_executor("local", 1, trial_memory=bad)


@pytest.mark.parametrize("text, expected", [
    ("512M", 512 * 2**20), ("2G", 2 * 2**30), ("2g", 2 * 2**30), ("1.5GB", 1.5 * 2**30),
    ("1.5GiB", 1.5 * 2**30), ("100 MB", 100 * 2**20), ("64k", 64 * 1024), ("1T", 2**40), (".5G", 2**29),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["2048", "2X", "G", "-1G", "0G", "1.2.3G", "2 G B", ""])
def test_parse_size_refuses_with_one_line(text):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        parse_size(text)
    assert "\n" not in str(info.value) and repr(text)[1:-1] in str(info.value)


def test_describe_memory():
    assert describe_memory(2 * 2**30) == "2.0 GB"
    assert describe_memory(1.5 * 2**30) == "1.5 GB"
    assert describe_memory(512 * 2**20) == "512 MB"
