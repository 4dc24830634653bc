"""Several objectives and a latency limit for network searches (``--model``, ``--nas``): what a
network measures (parameters counted by hand, ONNX size growing with them, latency cached per
config), and runs whose result and study carry every objective."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from autodl.errors import UserError  # noqa: E402
from autodl.nn.objectives import NetObjectives, check_max_latency, check_objectives  # noqa: E402


def _mlp(widths):
    from torch import nn

    layers = []
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _hand_count(widths) -> int:
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


@pytest.mark.parametrize("names, message", [
    (["latency", "accuracy"], "first objective is the search metric"),
    (["accuracy", "speed"], "unknown objective 'speed'"),
    (["accuracy", "latency", "latency"], "name one twice"),
])
def test_objective_names_are_checked(names, message):
    with pytest.raises(UserError, match=message):
        check_objectives(names)


def test_names_and_latency_limit_accepted():
    assert check_objectives("Accuracy, latency,params") == ["accuracy", "latency", "params"]
    assert check_objectives(None) is None
    assert check_max_latency(2) == 2.0
    with pytest.raises(UserError, match="positive"):
        check_max_latency(0)


def test_a_network_ten_times_larger_measures_more_params_and_bytes(tmp_path):
    small, large = [64, 16, 10], [64, 160, 10]
    assert _hand_count(large) > 10 * _hand_count(small) * 0.9
    rows = np.random.default_rng(0).random((32, 64)).astype(np.float32)
    targets = NetObjectives(["accuracy", "latency", "size", "params"], rows=rows,
                            cache_path=str(tmp_path / "latency.json"))
    a = targets.measure(_mlp(small), {"w": 16})
    b = targets.measure(_mlp(large), {"w": 160})
    assert a["params"] == _hand_count(small) and b["params"] == _hand_count(large)
    # float32 weights: the file grows by at least 4 bytes per extra parameter
    assert b["size_bytes"] - a["size_bytes"] >= 4 * (b["params"] - a["params"])
    assert a["latency_ms"] > 0 and b["latency_ms"] > 0
    assert targets.values(0.9, b) == (0.9, b["latency_ms"], b["size_bytes"], b["params"])
    # cached per config: the same config is not exported or timed again, even from another process
    cached = NetObjectives(targets.objectives, rows=rows, cache_path=targets.cache_path)
    again = cached.measure(_mlp([64, 2, 10]), {"w": 16})
    assert again["latency_ms"] == a["latency_ms"] and again["size_bytes"] == a["size_bytes"]
    assert len(json.loads((tmp_path / "latency.json").read_text())) == 2


def test_params_alone_needs_no_onnx():
    targets = NetObjectives(["accuracy", "params"], rows=None)
    assert not targets.needs_onnx
    assert targets.measure(_mlp([4, 3]), {}) == {"params": 15}


class _Trial:
    def __init__(self):
        self.attrs, self.constraints = {}, {}

    def set_user_attr(self, k, v):
        self.attrs[k] = v

    def set_constraint(self, k, v):
        self.constraints[k] = v


def test_latency_limit_is_a_constraint_latency_minus_limit():
    trial = _Trial()
    NetObjectives(["accuracy"], max_latency_ms=2.0).record(trial, {"latency_ms": 0.5, "params": 7})
    assert trial.constraints == {"latency_ms": pytest.approx(-1.5)}
    assert trial.attrs["params"] == 7 and trial.attrs["latency_ms"] == 0.5


def test_model_run_with_objectives_keeps_the_front_and_its_values(tmp_path):
    from autodl.nn.search import NNSearchSpec, run_nn_search, start_nn_run
    from autodl.study import Study

    spec = NNSearchSpec(dataset="digits", model="mlp", searcher="moasha", min_budget=1, max_budget=3, eta=3,
                        n_trials=6, objectives=["accuracy", "params"], max_latency_ms=1000.0)
    run = start_nn_run(spec, tmp_path / "run")
    result = run_nn_search(spec, run)
    assert result["metric"] == ["accuracy", "params"] and result["direction"] == ["maximize", "minimize"]
    study = Study.load(run)
    assert study.directions == ["maximize", "minimize"] and study.searcher.name == "moasha"
    for t in study.get_trials(["complete"]):
        assert t.values[1] == t.user_attrs["params"]
        assert t.constraints["latency_ms"] == pytest.approx(t.user_attrs["latency_ms"] - 1000.0)
    front = {t.id for t in study.best_trials}
    assert result["best_trial"] in front
    kept = study.storage.get_trial(result["best_trial"])
    assert result["best_value"] == list(kept.values)
    assert result["test_score"][1] == kept.values[1]
    assert {p["trial"] for p in result["extra"]["pareto_front"]} == front
    assert (run / "latency.json").is_file()
    from autodl.cli.main import main

    # the kept network exports, checked against the recorded test accuracy (the list's first)
    assert main(["export", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").is_file()
    # every front member exports on its own, its file naming the trial's values by objective
    from autodl.export import read_metadata

    for t in study.best_trials:
        path = tmp_path / f"trial{t.id}.onnx"
        assert main(["export", str(run), "--trial", str(t.id), "--onnx", str(path)]) == 0
        meta = read_metadata(str(path))
        assert meta["trial_id"] == t.id and meta["objectives"] == {"accuracy": t.values[0], "params": t.values[1]}


def test_latency_fn_replaces_the_local_timing(tmp_path, monkeypatch):
    """``--latency-fn module:function`` times every network instead of onnxruntime here: each
    trial's latency is what the function says of the ONNX file's bytes (here their count / 1e4,
    checked against the file size the trial records)."""
    from autodl.cli.main import main
    from autodl.study import Study

    (tmp_path / "device_ms_net.py").write_text("def latency(data):\n    return len(data) / 1e4\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["search", "--dataset", "digits", "--model", "mlp", "--trials", "3", "--max-budget", "1",
                 "--objectives", "accuracy,latency", "--latency-fn", "device_ms_net:latency", "--quiet",
                 "--out", "run"]) == 0
    trials = Study.load(tmp_path / "run").get_trials(["complete"])
    assert len(trials) == 3
    for t in trials:
        assert t.values[1] == pytest.approx(t.user_attrs["size_bytes"] / 1e4)
        assert t.user_attrs["size_bytes"] > 1000  # a real ONNX file was measured


def test_a_single_objective_searcher_is_refused_for_several_objectives():
    from autodl.nn.search import NNSearchSpec

    with pytest.raises(UserError, match="optimizes one objective"):
        NNSearchSpec(searcher="hyperband", n_trials=2, objectives=["accuracy", "latency"]).validate()


def test_nas_evolution_with_objectives_prunes_with_moasha(tmp_path):
    from autodl.nas.search import NasSpec, run_nas, start_nas_run
    from autodl.study import Study

    spec = NasSpec(dataset="digits", method="evolution", space="mlp", n_trials=6, candidate_epochs=3, min_epochs=1,
                   train_epochs=1, objectives=["accuracy", "params"], population=4)
    run = start_nas_run(spec, tmp_path / "nas")
    result = run_nas(spec, run, progress="quiet")
    study = Study.load(run)
    assert study.searcher.name == "moasha" and study.n_objectives == 2
    assert result["metric"] == ["accuracy", "params"]
    assert result["test_score"][1] == result["extra"]["n_params"]  # the kept network's own count
    with pytest.raises(UserError, match="darts"):
        NasSpec(method="darts", objectives=["accuracy", "latency"]).validate()


@pytest.mark.parametrize("args, message", [
    (["--model", "mlp", "--searcher", "hyperband"], "optimizes one objective"),
    (["--nas", "darts"], "--objectives"),
    (["--model", "mlp", "--select", "accuracy"], "--select"),
    (["--model", "mlp", "--latency-fn", "nowhere_module_xyz:ms"], "cannot import module 'nowhere_module_xyz'"),
])
def test_cli_objectives_for_networks_say_what_is_wrong_in_one_line(tmp_path, capsys, args, message):
    from autodl.cli.main import main

    trials = [] if "darts" in args else ["--trials", "2"]
    code = main(["search", "--dataset", "digits", *trials, "--objectives", "accuracy,latency",
                 "--out", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
