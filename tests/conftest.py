"""Shared fixtures for the test suite (kept minimal: every test folder shares this file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


#: the command that runs the CLI in a subprocess
AUTODL_CMD = [sys.executable, "-m", "autodl"]


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: no colour codes, a wide terminal, unbuffered output,
    and one OpenMP thread (HistGradientBoosting's OpenMP threads can stall for tens of seconds
    on a busy 2-core machine when oversubscribed)."""
    env = dict(os.environ)
    env.update(NO_COLOR="1", COLUMNS="200", PYTHONUNBUFFERED="1", TERM="dumb", OMP_NUM_THREADS="1")
    env.pop("FORCE_COLOR", None)
    return env


def run_autodl(*args, cwd: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``autodl ARGS`` in ``cwd`` and return the completed process (text output)."""
    return subprocess.run([*AUTODL_CMD, *map(str, args)], cwd=cwd, env=cli_env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def autodl_cli():
    """``autodl_cli(*args, cwd=...)`` runs the CLI in a subprocess (see :func:`run_autodl`)."""
    return run_autodl


@pytest.fixture(scope="session")
def autodl_popen():
    """``autodl_popen(*args, cwd=..., **popen_kwargs)``: start the CLI without waiting."""

    def start(*args, cwd, **kwargs) -> subprocess.Popen:
        return subprocess.Popen([*AUTODL_CMD, *map(str, args)], cwd=cwd, env=cli_env(), **kwargs)

    return start
