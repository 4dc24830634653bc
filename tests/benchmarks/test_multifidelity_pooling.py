"""benchmarks/multifidelity.py pools measurements: a re-run adds to a result, never replaces it."""

from __future__ import annotations

import json
import statistics

import pytest

pytest.importorskip("torch")


def _meta(commit: str, started: str) -> dict:
    return {"schema": 1, "script": "benchmarks/multifidelity.py", "argv": [], "started": started,
            "finished": started, "wall_seconds": 60.0, "git": {"commit": commit, "dirty": False, "changed": []},
            "versions": {"autodl": "0.1.0"}, "python": "3.11.7", "platform": "Linux", "cpu": "x", "nproc": 2,
            "cpu_count": 2, "threads_env": {}, "load_average": {"start": [1.0, 1.0, 1.0], "end": [1.5, 1.0, 1.0]}}


def _overhead(writes: str, per_run: list[float]) -> dict:
    return {"space": "mlp", "writes": writes, "trials_per_run": 40, "epochs_per_run": 81, "repeats": len(per_run),
            "overhead_pct_per_run": per_run, "cpu_overhead_pct_per_run": [x + 1 for x in per_run],
            "autodl_ms_per_epoch_per_run": [100.0 + x for x in per_run],
            "bare_ms_per_epoch_per_run": [100.0] * len(per_run),
            "paired_overhead_pct": statistics.median(per_run), "cpu_overhead_pct": statistics.median(per_run) + 1,
            "autodl_ms_per_epoch": 100.0 + statistics.median(per_run), "bare_ms_per_epoch": 100.0,
            "load_average": [1.0, 1.0, 1.0], "measurement": 0}


def _part(commit: str, seed: int | None, epochs: int | None, overhead: list[float]) -> dict:
    """A one-measurement result as the script writes it (one seed of the MLP space with one method,
    and a synchronous overhead measurement)."""
    spaces = {}
    if seed is not None:
        spaces["mlp"] = {"seeds": [seed], "n_random": 27, "methods": ["hyperband"],
                         "random": [{"target": 0.98, "epochs": 729, "seed": seed, "measurement": 0}],
                         "runs": {"hyperband": [{"epochs": epochs, "trained": epochs or 729, "resumed": 10,
                                                 "best": 0.98, "ratio": epochs / 729 if epochs else None,
                                                 "seed": seed, "measurement": 0}]}}
    return {"dataset": "digits", "max_budget": 27, "min_budget": 1, "eta": 3, "quick": False, "torch_threads": 1,
            "measurements": [{"id": 0, "meta": _meta(commit, f"2025-01-0{seed or 9}T00:00:00+00:00")}],
            "spaces": spaces, "overhead_measured": [_overhead("synchronous", overhead)] if overhead else []}


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_merge_keeps_every_measurement_and_pools_them(tmp_path, bench):
    mf = bench("multifidelity")
    a = _write(tmp_path / "a.json", _part("a" * 40, 0, 81, [1.0, 2.0, 3.0]))
    b = _write(tmp_path / "b.json", _part("b" * 40, 1, None, [10.0, 20.0]))
    merged = mf.merge([a, b], tmp_path / "ab.json")
    assert json.loads((tmp_path / "ab.json").read_text()) == merged
    assert [m["id"] for m in merged["measurements"]] == [0, 1]
    assert [m["meta"]["git"]["commit"] for m in merged["measurements"]] == ["a" * 40, "b" * 40]
    block = merged["spaces"]["mlp"]
    assert block["seeds"] == [0, 1]
    assert [(r["seed"], r["measurement"]) for r in block["runs"]["hyperband"]] == [(0, 0), (1, 1)]
    assert block["median_ratio"]["hyperband"] is None  # median of 81/729 and "not reached" (inf)
    assert block["checkpoints"]["hyperband"] == {"trained": 81 + 729, "from_scratch": 81 + 729 + 20,
                                                 "saved_pct": pytest.approx(100 * 20 / 830)}
    (pooled,) = merged["overhead"]
    assert pooled["measurements"] == [0, 1] and pooled["repeats"] == 5
    assert pooled["overhead_pct_per_run"] == [1.0, 2.0, 3.0, 10.0, 20.0]
    assert pooled["paired_overhead_pct"] == 3.0 and pooled["cpu_overhead_pct"] == 4.0
    # each measurement also stays as it was measured, and the table shows it alone
    assert [o["overhead_pct_per_run"] for o in merged["overhead_measured"]] == [[1.0, 2.0, 3.0], [10.0, 20.0]]
    assert "| mlp | synchronous | m1 (bbbbbbb) |" in merged["markdown"]
    assert "2 code versions" in merged["markdown"]

    # merging the merged file with a third measurement adds it: nothing is replaced
    c = _write(tmp_path / "c.json", _part("b" * 40, None, None, [5.0]))
    again = mf.merge([tmp_path / "ab.json", c], tmp_path / "abc.json")
    assert [m["meta"]["git"]["commit"] for m in again["measurements"]] == ["a" * 40, "b" * 40, "b" * 40]
    assert again["overhead"][0]["overhead_pct_per_run"] == [1.0, 2.0, 3.0, 10.0, 20.0, 5.0]
    assert again["overhead"][0]["measurements"] == [0, 1, 2]
    assert again["spaces"] == merged["spaces"]


def test_a_measurement_written_to_an_existing_result_is_added(tmp_path, bench):
    mf = bench("multifidelity")
    out = _write(tmp_path / "mf.json", _part("a" * 40, 0, 81, [1.0, 2.0, 3.0]))
    # a measurement with nothing to measure (no seeds, no overhead runs) is quick and still recorded
    args = ["--overhead-only", "--overhead-repeats", "0", "--spaces", "mlp", "--out", str(out)]
    result = mf.main(args)
    assert len(result["measurements"]) == 2
    assert result["measurements"][0]["meta"]["git"]["commit"] == "a" * 40
    assert result["measurements"][1]["meta"]["argv"] == args
    assert result["spaces"]["mlp"]["seeds"] == [0]
    assert result["overhead"][0]["overhead_pct_per_run"] == [1.0, 2.0, 3.0]
    fresh = mf.main([*args, "--replace"])
    assert len(fresh["measurements"]) == 1 and fresh["spaces"] == {} and fresh["overhead"] == []


@pytest.mark.parametrize("change, message", [
    ({"max_budget": 9}, "different max_budget"),
    ({"quick": True}, "different quick"),
])
def test_measurements_with_different_settings_are_not_pooled(tmp_path, bench, change, message):
    mf = bench("multifidelity")
    a = _write(tmp_path / "a.json", _part("a" * 40, 0, 81, [1.0]))
    b = _write(tmp_path / "b.json", {**_part("b" * 40, 1, 81, [2.0]), **change})
    with pytest.raises(SystemExit, match=message):
        mf.merge([a, b], tmp_path / "ab.json")
    assert not (tmp_path / "ab.json").exists()


def test_a_measurement_that_cannot_be_pooled_with_out_is_refused_before_it_runs(tmp_path, bench, monkeypatch):
    mf = bench("multifidelity")
    out = _write(tmp_path / "mf.json", _part("a" * 40, 0, 81, [1.0]))
    monkeypatch.setattr(mf, "measure", lambda *a: pytest.fail("measured although it cannot be pooled"))
    with pytest.raises(SystemExit, match="different max_budget"):
        mf.main(["--max-budget", "9", "--overhead-only", "--spaces", "mlp", "--out", str(out)])


def test_a_result_without_measurement_records_is_refused(tmp_path, bench):
    mf = bench("multifidelity")
    legacy = _part("a" * 40, 0, 81, [1.0])
    del legacy["measurements"]
    path = _write(tmp_path / "old.json", legacy)
    with pytest.raises(SystemExit, match="records no measurements"):
        mf.merge([path], tmp_path / "x.json")
    with pytest.raises(SystemExit, match="--replace"):
        mf.main(["--overhead-only", "--overhead-repeats", "0", "--spaces", "mlp", "--out", str(path)])
