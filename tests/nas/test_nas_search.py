"""NAS runs end to end: ``autodl search --nas darts|evolution|random``, resume, show, report,
the Python API, and evolution against random on a cheap synthetic fitness."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autodl.nas.search import load_nas_model, search_architecture  # noqa: E402


def _ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr


def _n_trials(run: Path) -> int:
    con = sqlite3.connect(f"file:{run / 'study.db'}?mode=ro", uri=True)
    try:
        return con.execute("SELECT COUNT(*) FROM trials WHERE state = 'complete'").fetchone()[0]
    finally:
        con.close()


@pytest.mark.slow
def test_cli_darts_run_folder_show_and_report(tmp_path, autodl_cli):
    proc = autodl_cli("search", "--dataset", "digits", "--nas", "darts", "--epochs", "1", "--train-epochs", "2",
                      "--out", "run", cwd=tmp_path)
    _ok(proc)
    run = tmp_path / "run"
    assert {"run.json", "genotype.json", "alphas.json", "curves.json", "result.json", "model.pt"} <= {
        p.name for p in run.iterdir()}
    result = json.loads((run / "result.json").read_text())
    x = result["extra"]
    assert result["kind"] == "nas" and json.loads((run / "run.json").read_text())["kind"] == "nas"
    assert x["method"] == "darts" and 0.5 < result["test_score"] <= 1.0  # 10 classes: chance 0.1
    # DARTS has no trials: the best value is the supernet's last validation accuracy, the config its genotype
    assert result["best_value"] == x["supernet_val_accuracy"] and 0 < result["best_value"] <= 1
    assert result["best_config"] == {"genotype": json.loads((run / "genotype.json").read_text())}
    assert x["n_params"] == sum(p.numel() for p in load_nas_model(run).parameters())
    assert x["search_seconds"] > 0 and x["settings"]["epochs_run"] == 1
    assert len(json.loads((run / "curves.json").read_text())["final_training"]["values"]) == 2
    assert "test accuracy" in proc.stdout and "epoch 1/1" in proc.stderr
    model = load_nas_model(run)
    assert model(torch.zeros(3, 64)).shape == (3, 10)

    shown = autodl_cli("show", str(run), cwd=tmp_path)
    _ok(shown)
    assert "darts on digits" in shown.stdout
    rep = autodl_cli("report", str(run), cwd=tmp_path)
    _ok(rep)
    page = (run / "report.html").read_text()
    for section in ("NAS curves", "Architecture weights over epochs", "Derived cell", "Summary", "Settings"):
        assert f"<h2>{section}</h2>" in page, section
    assert page.count("data:image/png;base64,") >= 3
    again = autodl_cli("resume", str(run), cwd=tmp_path)
    assert again.returncode == 2 and "nothing to resume" in again.stderr


@pytest.mark.slow
def test_cli_evolution_runs_in_parallel_and_resumes_without_losing_trials(tmp_path, autodl_cli):
    proc = autodl_cli("search", "--dataset", "wine", "--nas", "evolution", "--nas-space", "mlp", "--trials", "6",
                      "--max-budget", "3", "--train-epochs", "3", "--workers", "2", "--out", "run", "--jsonl",
                      "--export-onnx", "wine.onnx", cwd=tmp_path)
    _ok(proc)
    run = tmp_path / "run"
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert sum("trial" in x for x in lines) == 6 and "result" in lines[-1]
    assert lines[-1]["result"]["onnx"] == "wine.onnx" and (tmp_path / "wine.onnx").is_file()
    before = json.loads((run / "result.json").read_text())
    assert _n_trials(run) == 6 and (run / "architecture.json").is_file()
    values = {}
    con = sqlite3.connect(run / "study.db")
    values = dict(con.execute("SELECT id, value FROM trials").fetchall())
    con.close()
    more = autodl_cli("resume", str(run), "--trials", "9", "--quiet", cwd=tmp_path)
    _ok(more)
    assert _n_trials(run) == 9
    con = sqlite3.connect(run / "study.db")
    after = dict(con.execute("SELECT id, value FROM trials").fetchall())
    con.close()
    assert {k: after[k] for k in values} == values  # earlier trials unchanged
    after_result = json.loads((run / "result.json").read_text())
    assert after_result["n_complete"] + after_result["n_failed"] + after_result["n_pruned"] == 9
    assert before["n_complete"] + before["n_failed"] + before["n_pruned"] == 6
    assert after_result["extra"]["n_trials"] == 9 > before["extra"]["n_trials"]
    rep = autodl_cli("report", str(run), cwd=tmp_path)
    _ok(rep)
    assert "Best-so-far history" in (run / "report.html").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--nas", "darts", "--nas-space", "mlp"], "searches the cell space"),
    (["--nas", "evolution"], "give --trials N, --time 10m, or both"),
    (["--nas", "darts", "--model", "mlp"], "--nas and --model are alternatives"),
    (["--epochs", "3", "--trials", "2"], "--epochs does not apply to tabular searches; it applies to: --nas darts"),
    (["--nas", "random", "--trials", "2", "--epochs", "3"],
     "--epochs does not apply to --nas evolution|random; it applies to: --nas darts"),
    (["--nas", "evolution", "--trials", "2", "--min-budget", "5", "--max-budget", "3"], "must be below"),
    (["--nas", "darts", "--searcher", "tpe"], "--searcher does not apply"),
    (["--nas", "darts", "--guard", "maybe"], "invalid choice"),
])
def test_cli_mistakes_are_one_line_and_leave_no_run(tmp_path, autodl_cli, argv, message):
    proc = autodl_cli("search", "--dataset", "digits", *argv, "--out", "run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_tabular_data_with_the_cell_space_is_refused(tmp_path, autodl_cli):
    proc = autodl_cli("search", "--dataset", "iris", "--nas", "random", "--trials", "2", "--out", "run", cwd=tmp_path)
    assert proc.returncode == 2 and "--nas-space mlp" in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_api_random_search_of_cells_with_successive_halving(tmp_path):
    res = search_architecture(dataset="digits", method="random", out=tmp_path / "run", n_trials=5,
                              candidate_epochs=3, min_epochs=1, train_epochs=2, max_rows=400, C=4, layers=2)
    x = res["extra"]
    assert res["kind"] == "nas" and x["n_trials"] == 5 and x["genotype"] is not None
    assert res["n_complete"] + res["n_failed"] + res["n_pruned"] == 5
    assert res["best_value"] is not None and res["test_score"] is not None
    epochs = x["epochs_trained"]
    assert 5 <= epochs < 5 * 3  # successive halving trained some candidates for fewer epochs
    g = json.loads((tmp_path / "run" / "genotype.json").read_text())
    assert g == x["genotype"] and 0 <= x["parameter_free_share"] <= 1
    assert json.loads((tmp_path / "run" / "result.json").read_text()) == res


def test_evolution_beats_random_on_a_synthetic_cell_fitness():
    """Regularized evolution over the cell space's flat decisions, scored by how many decisions
    match a hidden target architecture (no training): it must beat random sampling."""
    from autodl.nas.cell_space import cell_space
    from autodl.nas.choices import to_space
    from autodl.searchers import RandomSearch, RegularizedEvolution

    space = to_space(cell_space(10, nodes=4))
    target = RandomSearch(space, seed=99).ask().config

    def best_after(searcher, n=150):
        best = 0
        for _ in range(n):
            t = searcher.ask()
            score = sum(t.config[k] == v for k, v in target.items())
            searcher.tell(t, -score)
            best = max(best, score)
        return best

    evo = [best_after(RegularizedEvolution(space, seed=s, population=20, sample_size=5)) for s in range(5)]
    rnd = [best_after(RandomSearch(space, seed=s)) for s in range(5)]
    assert np.mean(evo) > np.mean(rnd) + 2, (evo, rnd)
    # seeded: the same seed proposes the same architectures
    a, b = RegularizedEvolution(space, seed=1), RegularizedEvolution(space, seed=1)
    assert [a.ask().config for _ in range(5)] == [b.ask().config for _ in range(5)]
