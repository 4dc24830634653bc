"""Run folders: atomic writes, the result envelope, the split, and folders of the previous format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from autodl.errors import StorageError, UserError
from autodl.runs import (ENVELOPE, atomic_write, create_run, load_split, read_result, read_run, result_envelope,
                         save_split)


def test_atomic_write_leaves_nothing_when_the_write_fails(tmp_path):
    target = tmp_path / "f.json"
    target.write_text("old")

    def half(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_create_run_removes_the_folder_when_filling_it_fails(tmp_path):
    def fail(run_dir):
        (run_dir / "data.parquet").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        create_run(tmp_path / "run", "tabular", {"seed": 0}, fail)
    assert not (tmp_path / "run").exists()


def test_run_json_names_kind_and_format_and_a_newer_format_is_one_line(tmp_path):
    run = create_run(tmp_path / "run", "nn", {"seed": 3})
    assert json.loads((run / "run.json").read_text()) == {"kind": "nn", "format": 2, "seed": 3}
    kind, spec = read_run(run)
    assert kind == "nn" and spec["seed"] == 3
    (run / "run.json").write_text(json.dumps({"kind": "nn", "format": 99}))
    with pytest.raises(StorageError, match="newer autodl"):
        read_run(run)
    (run / "run.json").write_text(json.dumps({"kind": "gbdt", "format": 2}))
    with pytest.raises(StorageError, match="'gbdt' run"):
        read_run(run)
    (run / "run.json").write_text("{not json")
    with pytest.raises(StorageError, match="not valid JSON"):
        read_run(run)
    with pytest.raises(UserError, match="no run.json"):
        read_run(tmp_path)


def test_split_round_trip_without_pickle(tmp_path):
    save_split(tmp_path, train=[3, 1, 2], val=None, test=np.array([0, 4]))
    split = load_split(tmp_path)
    assert split["train"].tolist() == [3, 1, 2] and split["val"].tolist() == [] and split["test"].tolist() == [0, 4]
    assert split["train"].dtype == np.int64
    assert load_split(tmp_path / "none") is None


def test_envelope_has_the_same_fields_for_every_kind():
    one = result_envelope("nn", metric="accuracy", direction="maximize", best_value=0.9, best_config={"a": 1})
    two = result_envelope("tabular", metric=["accuracy", "latency"], direction=["maximize", "minimize"],
                          best_value=[0.9, 1.0], best_config=None)
    assert set(one) == set(ENVELOPE) == set(two)
    with pytest.raises(ValueError):
        result_envelope("nn", metric=["a", "b"], direction="maximize", best_value=None, best_config=None)


@pytest.mark.parametrize("old, expected", [
    ({"task": "classification", "metric": "accuracy", "direction": "maximize", "best_score": 0.95,
      "best_config": {"model": "linear"}, "best_trial_id": 4, "best_budget": None, "test_score": 0.9,
      "n_trials": 6, "n_complete": 5, "n_failed": 1},
     {"kind": "tabular", "best_value": 0.95, "best_trial": 4, "test_score": 0.9, "n_complete": 5, "n_failed": 1,
      "extra": {"task": "classification", "n_trials": 6}}),
    ({"dataset": "digits", "model": "mlp", "metric": "accuracy", "direction": "maximize",
      "best_val_accuracy": 0.97, "test_accuracy": 0.96, "best_config": {"lr": 0.1}, "best_trial_id": 2,
      "best_budget": 9.0, "epochs_trained": 40, "n_complete": 8, "n_pruned": 1, "n_failed": 0},
     {"kind": "nn", "best_value": 0.97, "test_score": 0.96, "best_trial": 2, "best_budget": 9.0, "n_pruned": 1,
      "extra": {"dataset": "digits", "model": "mlp", "epochs_trained": 40}}),
    ({"kind": "nas", "method": "darts", "test_accuracy": 0.98, "n_params": 1000, "metric": "accuracy",
      "direction": "maximize"},
     {"kind": "nas", "best_value": None, "test_score": 0.98, "extra": {"method": "darts", "n_params": 1000}}),
])
def test_format_1_results_are_read_as_the_envelope(tmp_path, old, expected):
    (tmp_path / "result.json").write_text(json.dumps(old))
    got = read_result(tmp_path)
    for key, value in expected.items():
        if key == "extra":
            assert value.items() <= got["extra"].items()
        else:
            assert got[key] == value, key
    assert set(ENVELOPE) <= set(got)


def test_a_format_1_tabular_folder_shows_exports_and_resumes(tmp_path, capsys):
    """A run folder as autodl wrote it before the run model: no kind, the old result fields,
    no split.npz. It loads: show, export and resume work; the split is rebuilt from the seed."""
    from autodl.cli.main import main

    run = tmp_path / "old"
    assert main(["search", "--dataset", "iris", "--trials", "2", "--cv", "2", "--out", str(run), "--quiet"]) == 0
    spec = json.loads((run / "run.json").read_text())
    new_split = load_split(run)
    spec.pop("kind"), spec.pop("format")
    (run / "run.json").write_text(json.dumps(spec))
    new = json.loads((run / "result.json").read_text())
    (run / "result.json").write_text(json.dumps({
        "task": "classification", "metric": new["metric"], "direction": new["direction"],
        "best_score": new["best_value"], "best_config": new["best_config"], "best_trial_id": new["best_trial"],
        "best_budget": None, "test_score": new["test_score"], "n_trials": 2, "n_complete": 2, "n_failed": 0}))
    (run / "split.npz").unlink()
    capsys.readouterr()
    assert main(["show", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["result"]["best_value"] == new["best_value"] and len(shown["trials"]) == 2
    assert main(["resume", str(run), "--trials", "3", "--quiet"]) == 0
    rebuilt = load_split(run)  # the split the old version made from the seed, now saved
    assert rebuilt["train"].tolist() == new_split["train"].tolist()
    assert rebuilt["test"].tolist() == new_split["test"].tolist()
    result = json.loads((run / "result.json").read_text())
    assert result["kind"] == "tabular" and result["n_complete"] == 3
