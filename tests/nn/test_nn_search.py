"""``autodl search --model``: multi-fidelity search of PyTorch models, checkpoints, CLI errors."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from autodl.nn.search import NNSearchSpec, run_nn_search, start_nn_run  # noqa: E402
from autodl.study import Study, TrialState  # noqa: E402


def test_promoted_trials_train_only_the_extra_epochs(tmp_path):
    spec = NNSearchSpec(dataset="digits", model="mlp", searcher="hyperband", min_budget=1, max_budget=9,
                        n_trials=13)  # bracket s=2: 9 configs @1, 3 @3, 1 @9
    run = start_nn_run(spec, tmp_path / "run")
    summary = run_nn_search(spec, run)
    study = Study.load(run)
    trials = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(trials) == 13
    prev = {0: 0, 1: 1, 2: 3}
    for t in trials:
        assert t.user_attrs["epochs_resumed"] == prev[t.info["rung"]]
        assert t.user_attrs["epochs_trained"] == t.budget - prev[t.info["rung"]]
    assert summary["kind"] == "nn" and summary["metric"] == "accuracy"
    assert summary["extra"]["epochs_trained"] == 9 * 1 + 3 * 2 + 1 * 6
    assert summary["extra"]["epochs_resumed"] == 3 * 1 + 1 * 3
    assert summary["best_budget"] == 9 and summary["extra"]["best_epochs"] == 9
    assert 0.5 < summary["best_value"] <= 1 and 0.5 < summary["test_score"] <= 1
    assert json.loads((run / "result.json").read_text()) == summary
    weights = torch.load(run / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in weights.values())
    assert json.loads((run / "model.json").read_text())["epochs"] == 9


@pytest.mark.slow
def test_cli_search_end_to_end(autodl_cli, tmp_path):
    r = autodl_cli("search", "--dataset", "digits", "--model", "mlp", "--searcher", "hyperband",
                   "--max-budget", "9", "--trials", "10", "--out", "run", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "best val accuracy" in r.stdout
    run = tmp_path / "run"
    result = json.loads((run / "result.json").read_text())
    assert result["kind"] == "nn" and result["extra"]["searcher"] == "hyperband"
    assert result["n_complete"] + result["n_failed"] + result["n_pruned"] == 10
    assert result["extra"]["epochs_resumed"] > 0 and result["test_score"] > 0.5
    assert {"study.db", "run.json", "result.json", "split.npz", "model.pt", "model.json", "checkpoints"} <= {
        p.name for p in run.iterdir()}
    # resume with more trials continues the same run
    r = autodl_cli("resume", "run", "--trials", "12", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads((run / "result.json").read_text())
    assert result["n_complete"] + result["n_failed"] + result["n_pruned"] == 12


@pytest.mark.parametrize("args, message", [
    (["--eta", "1"], "--eta is 1, but must be > 1"),
    (["--min-budget", "0"], "--min-budget is 0, but must be > 0"),
    (["--min-budget", "10", "--max-budget", "5"], "--max-budget is 5, but must be >= --min-budget (10)"),
    (["--eta", "x"], "'x' is not a number"),
])
def test_cli_bad_budget_flags(tmp_path, capsys, args, message):
    from autodl.cli.main import main

    try:
        code = main(["search", "--dataset", "digits", "--model", "mlp", "--trials", "2",
                     "--out", str(tmp_path / "r"), *args])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_cli_budget_flags_need_a_multi_fidelity_searcher(tmp_path, capsys):
    """--eta applies to --model and to tabular searches, but a tabular search only uses it with a
    multi-fidelity searcher (the default there is tpe): one line, nothing created."""
    from autodl.cli.main import main

    assert main(["search", "--dataset", "iris", "--eta", "2", "--trials", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--eta only apply with a multi-fidelity --searcher" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()
