"""``n_workers=None``: one worker per usable core under a time budget, as many as the available
memory holds (autodl.tabular.search.default_workers), one with a number of trials alone."""
from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from autodl.study import executors
from autodl.tabular.search import WORKER_DATA_COPIES, WORKER_MEMORY_BYTES, default_workers, table_bytes

GIB = 2**30


@pytest.fixture
def machine(monkeypatch):
    """A machine with ``cores`` usable cores and ``free`` bytes of available memory."""
    def set_machine(cores: int, free: int | None):
        monkeypatch.setattr(executors, "cpu_cores", lambda: cores)
        monkeypatch.setattr(executors, "available_memory", lambda: free)
    return set_machine


def test_one_worker_per_core_when_the_memory_holds_them(machine):
    machine(8, 64 * GIB)
    assert default_workers() == 8
    assert default_workers(100 * 2**20) == 8


def test_no_more_workers_than_the_available_memory_holds(machine):
    machine(64, 16 * GIB)
    per_worker = WORKER_MEMORY_BYTES + WORKER_DATA_COPIES * GIB
    assert default_workers(GIB) == 16 * GIB // per_worker < 64
    machine(8, 1 * GIB)
    assert default_workers(10 * GIB) == 1  # always at least one


def test_cores_alone_when_the_memory_is_unknown(machine):
    machine(3, None)
    assert default_workers(50 * GIB) == 3


def test_available_memory_is_a_share_of_the_physical_memory():
    free = executors.available_memory()
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert free is not None and 0 < free <= total


def test_table_bytes_counts_the_strings_of_a_frame():
    frame = pd.DataFrame({"x": np.arange(1000, dtype=np.float64), "s": ["a" * 100] * 1000})
    assert table_bytes(frame) >= 1000 * 8 + 1000 * 100  # the text, not just 8-byte pointers
    assert table_bytes(np.zeros((10, 4))) == 320


def test_cli_workers_default_follows_the_time_budget(machine, tmp_path, monkeypatch):
    from argparse import Namespace

    from autodl.tabular.kind import _default_workers

    machine(4, 64 * GIB)
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    assert _default_workers(Namespace(time=30.0, data=str(data))) == 4
    assert _default_workers(Namespace(time=None, data=str(data))) == 1  # --trials alone
    # the data file's size stands for the table's
    monkeypatch.setattr(sys.modules["autodl.tabular.search"], "WORKER_MEMORY_BYTES", 1000)
    data.write_text("x" * 500)
    machine(4, 10_000)
    assert _default_workers(Namespace(time=30.0, data=str(data))) == 10_000 // (1000 + WORKER_DATA_COPIES * 500)
