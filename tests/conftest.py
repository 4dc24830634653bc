"""Shared fixtures for the test suite (kept minimal: every test folder shares this file)."""

from __future__ import annotations

import functools
import os
import re
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


# ---------------------------------------------------------------------- import skips
#: import names of distributions whose import name is not their name with "-" -> "_"
_IMPORT_NAMES = {"coco-experiment": ("cocoex",), "scikit-learn": ("sklearn",), "pyyaml": ("yaml",), "pillow": ("PIL",),
                 "setuptools": ("setuptools", "pkg_resources")}
_SKIP_REASON = re.compile(r"could not import '([\w.]+)'|module '([\w.]+)' has __version__")


def _ci() -> bool:
    """True on CI (``CI=true`` on GitHub Actions and most CI services)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@functools.lru_cache(maxsize=None)
def installed_modules(extra: str | None) -> frozenset[str]:
    """Top-level import names of what ``pip install -e .`` (``extra=None``) or
    ``pip install -e .[extra]`` installs: the project's dependencies plus the extra's, nested
    extras (``autodl[all]``) resolved, read from ``pyproject.toml``."""
    import tomllib  # Python 3.11+; without it the CI part of the guard is off

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    names: set[str] = set()
    todo, seen = list(project.get("dependencies", [])) + list(extras.get(extra, []) if extra else []), set()
    while todo:
        req = Requirement(todo.pop())
        if req.name == project["name"]:
            for nested in req.extras - seen:
                seen.add(nested)
                todo += extras.get(nested, [])
            continue
        key = req.name.lower()
        names.update(_IMPORT_NAMES.get(key, (key.replace("-", "_"),)))
    return frozenset(names)


def _forbidden_skip(report) -> str | None:
    """Why a skip from ``pytest.importorskip`` must be a failure here, or None.

    A first-party module (``autodl.*``) or a required dependency that does not import is a
    bug, never a reason to skip. On CI, which installs the ``dev`` extra, a missing module of
    that extra means the tests that need it silently did not run, so that fails too. Other
    skips stay skips.
    """
    if not report.skipped:
        return None
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    match = _SKIP_REASON.search(str(reason))
    if match is None:
        return None
    module = match.group(1) or match.group(2)
    top = module.split(".")[0]
    if top == "autodl":
        return f"first-party module {module!r} failed to import (a bug, not a reason to skip): {reason}"
    try:
        if top in installed_modules(None):
            return f"{top!r} is a required dependency of autodl, never a reason to skip: {reason}"
        if _ci() and top in installed_modules("dev"):
            return f"CI is set and {top!r} is installed by the dev extra, so this must not skip: {reason}"
    except ImportError:  # no tomllib (Python 3.10)
        pass
    return None


def _fail(report, message: str) -> None:
    report.outcome = "failed"
    report.longrepr = message


# old-style wrappers: pytest >= 7.4 (the dev extra's floor) has them
@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    message = _forbidden_skip(report)
    if message is not None:
        _fail(report, message)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    message = _forbidden_skip(report)
    if message is not None:
        _fail(report, message)
