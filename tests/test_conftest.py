"""tests/conftest.py: a skip from ``pytest.importorskip`` fails where it would hide a bug.

Each case runs pytest in a subprocess on a generated test file with the real conftest loaded as
a plugin. A module is made missing by putting None in ``sys.modules`` (``import`` then raises
ModuleNotFoundError, as for a package that is not installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

CASES = '''
import sys

import pytest


def test_missing_dev_module():
    sys.modules["skl2onnx"] = None  # skl2onnx: in the dev extra (via onnx)
    pytest.importorskip("skl2onnx")


def test_missing_module_outside_dev():
    pytest.importorskip("autodl_guard_test_no_such_module")


def test_first_party_module():
    sys.modules["autodl.guard_test_module"] = None
    pytest.importorskip("autodl.guard_test_module")


def test_required_dependency():
    sys.modules["skops"] = None  # skops: in [project] dependencies
    pytest.importorskip("skops")


def test_plain_skip():
    pytest.skip("not about imports")
'''

MODULE_LEVEL = '''
import sys

import pytest

sys.modules["distributed"] = None
pytest.importorskip("distributed")


def test_never_collected():
    pass
'''


def _run(tmp_path: Path, ci: str | None) -> dict[str, str]:
    """Outcome per test (``failed``, ``skipped``, ``passed``) and per module that failed to collect."""
    (tmp_path / "test_cases.py").write_text(CASES)
    (tmp_path / "test_module_level.py").write_text(MODULE_LEVEL)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    xml = tmp_path / "report.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), "-c", os.devnull, "--continue-on-collection-errors",
                           f"--junitxml={xml}", "-q",
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert xml.is_file(), proc.stdout + proc.stderr
    outcomes = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = case.get("name") or case.get("classname")
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[name] = {"failure": "failed", "error": "failed", "skipped": "skipped"}.get(
            kinds[0] if kinds else "", "passed")
    return outcomes


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_off_ci_only_first_party_and_required_import_skips_fail(tmp_path, ci):
    got = _run(tmp_path, ci)
    assert got["test_missing_dev_module"] == "skipped"
    assert got["test_missing_module_outside_dev"] == "skipped"
    assert got["test_first_party_module"] == "failed"
    assert got["test_required_dependency"] == "failed"
    assert got["test_plain_skip"] == "skipped"
    assert got["test_module_level"] == "skipped"


@pytest.mark.parametrize("ci", ["true", "1"])
def test_on_ci_a_missing_dev_module_fails(tmp_path, ci):
    got = _run(tmp_path, ci)
    assert got["test_missing_dev_module"] == "failed"
    assert got["test_missing_module_outside_dev"] == "skipped"
    assert got["test_first_party_module"] == "failed"
    assert got["test_required_dependency"] == "failed"
    assert got["test_plain_skip"] == "skipped"
    assert got["test_module_level"] == "failed"  # the module-level importorskip: a collection error
