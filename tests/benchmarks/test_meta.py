"""benchmarks/_meta.py: what every benchmark result records about its run."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pytest


@pytest.fixture
def meta(bench):
    return bench("_meta")


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A git checkout with one commit: ``autodl/x.py`` and ``benchmarks/results/r.json``."""
    _git(tmp_path, "init", "-q")
    for key, value in (("user.email", "t@example.com"), ("user.name", "t"), ("commit.gpgsign", "false")):
        _git(tmp_path, "config", key, value)
    (tmp_path / "autodl").mkdir()
    (tmp_path / "autodl" / "x.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "r.json").write_text("{}")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    return tmp_path


def test_git_state_names_the_commit_and_whether_the_code_differs_from_it(meta, repo):
    head = _git(repo, "rev-parse", "HEAD")
    assert meta.git_state(repo) == {"commit": head, "dirty": False, "changed": []}
    # the scripts' own output does not make the code dirty
    (repo / "benchmarks" / "results" / "r.json").write_text('{"new": 1}')
    (repo / "benchmarks" / "results" / "s.json").write_text("{}")
    assert meta.git_state(repo)["dirty"] is False
    # an edited or a new source file does
    (repo / "autodl" / "x.py").write_text("x = 2\n")
    assert meta.git_state(repo) == {"commit": head, "dirty": True, "changed": ["autodl/x.py"]}
    (repo / "autodl" / "x.py").write_text("x = 1\n")
    (repo / "autodl" / "new.py").write_text("")
    assert meta.git_state(repo) == {"commit": head, "dirty": True, "changed": ["autodl/new.py"]}


def test_git_state_outside_a_checkout_is_unknown(meta, tmp_path):
    assert meta.git_state(tmp_path) == {"commit": None, "dirty": None, "changed": None}


def test_a_run_record_is_completed_when_the_run_ends(meta):
    started = meta.start(meta.__file__, ["--quick"], ["no-such-distribution-xyz"])
    assert started["load_average"]["end"] is None and started["finished"] is None
    assert started["versions"]["no-such-distribution-xyz"] is None
    assert set(meta.BASE_PACKAGES) <= set(started["versions"]) and started["argv"] == ["--quick"]
    done = meta.finish(started)
    assert "_t0" not in done and done["wall_seconds"] >= 0 and done["finished"] >= done["started"]
    assert len(done["load_average"]["end"]) == 3
    assert done["script"] == "benchmarks/_meta.py"
    json.dumps(done)  # plain JSON


def test_results_are_written_as_strict_json(meta, tmp_path):
    out = tmp_path / "sub" / "r.json"
    written = meta.write_result(out, {"x": math.nan, "y": np.float32(0.5), "z": (np.int64(3), math.inf),
                                      "meta": "replaced"}, meta.start(meta.__file__, []))
    text = out.read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert data == written
    assert list(data)[0] == "meta" and data["meta"]["git"] is not None
    assert (data["x"], data["y"], data["z"]) == (None, 0.5, [3, None])
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temporary file left
    assert meta.metas(data) == [data["meta"]]


def test_a_run_during_which_the_code_changed_says_so(meta, repo, monkeypatch):
    monkeypatch.setattr(meta, "ROOT", repo)
    assert meta.finish(meta.start(meta.__file__, []))["git"]["same_at_end"] is True
    started = meta.start(meta.__file__, [])
    (repo / "autodl" / "x.py").write_text("x = 2\n")  # edited while the benchmark runs
    done = meta.finish(started)
    assert done["git"] == {"commit": _git(repo, "rev-parse", "HEAD"), "dirty": False, "changed": [],
                           "same_at_end": False}
