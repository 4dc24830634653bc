"""autodl show / report on run folders with several objectives, for every kind of run.

The folders are built as a search of that kind leaves them (run.json, study.db, result.json with
lists for ``metric`` and ``direction``), with values told by hand so the front is known.
"""

import json

import pytest

import autodl
from autodl import Float, Space
from autodl.cli.main import main
from autodl.runs import result_envelope, study_counts, write_result

#: (accuracy, latency_ms): accuracy maximized, latency minimized; the front is trials 1, 2, 3, 5
VALUES = [(0.9, 3.0), (0.5, 1.0), (0.8, 2.0), (0.4, 2.5), (0.95, 5.0)]
FRONT = [1, 2, 3, 5]
SPECS = {"tabular": {"dataset": "iris"}, "nn": {"dataset": "digits"},
         "nas": {"dataset": "digits", "method": "evolution"}}


def _run(tmp_path, kind: str, with_result: bool = True):
    run = tmp_path / kind
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": kind, "format": 2, **SPECS[kind]}))
    study = autodl.Study(Space({"x": Float(0.0, 1.0)}), searcher="random", directions=["maximize", "minimize"],
                         storage=run, seed=0)
    for v in VALUES:
        study.tell(study.ask(), v)
    if with_result:
        kept = study.trials[4]  # the member a run keeps: the best accuracy on the front
        write_result(run, result_envelope(kind, metric=["accuracy", "latency_ms"], direction=["maximize", "minimize"],
                                          best_value=list(kept.values), best_config=dict(kept.config),
                                          best_trial=kept.id, test_score=[0.91, 1.5], counts=study_counts(study)))
    return run


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich tables unwrapped


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_show_lists_the_front_by_objective_name(tmp_path, capsys, kind):
    run = _run(tmp_path, kind)
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Pareto front: 4 trials (maximize accuracy, minimize latency_ms)" in out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [int(r.split("│")[1]) for r in rows] == [5, 1, 3, 2]  # by accuracy, highest first
    assert f"run folder: {run}" in out  # then the kind's own lines


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_show_json_lists_the_front(tmp_path, capsys, kind):
    run = _run(tmp_path, kind)
    assert main(["show", str(run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["objectives"] == [{"name": "accuracy", "direction": "maximize"},
                                  {"name": "latency_ms", "direction": "minimize"}]
    assert [t["id"] for t in data["pareto_front"]] == FRONT
    assert [t["values"] for t in data["pareto_front"]] == [list(VALUES[i - 1]) for i in FRONT]
    assert [t["id"] for t in data["trials"] if t["pareto_optimal"]] == FRONT
    assert data["result"]["metric"] == ["accuracy", "latency_ms"]


def test_show_of_an_unfinished_run_lists_the_front_so_far(tmp_path, capsys):
    run = _run(tmp_path, "nn", with_result=False)
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Pareto front: 4 trials" in out and "has no result yet" in out
    assert main(["show", str(run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in data["pareto_front"]] == FRONT
    assert data["objectives"][0]["name"] == "objective 0"  # no result.json: no names yet


def test_show_of_a_plain_study_file_keeps_its_shape(tmp_path, capsys):
    study = autodl.Study(Space({"x": Float(0.0, 1.0)}), searcher="random", directions=["maximize", "minimize"],
                         storage=tmp_path / "s.db", seed=0)
    for v in VALUES:
        study.tell(study.ask(), v)
    assert main(["show", str(tmp_path / "s.db"), "--json"]) == 0
    trials = json.loads(capsys.readouterr().out)
    assert isinstance(trials, list) and [t["id"] for t in trials if t["pareto_optimal"]] == FRONT
    assert main(["show", str(tmp_path / "s.db")]) == 0
    assert "Pareto front: 4 trials (maximize objective 0, minimize objective 1)" in capsys.readouterr().out


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_report_of_a_run_folder_of_every_kind(tmp_path, capsys, kind):
    pytest.importorskip("matplotlib")
    run = _run(tmp_path, kind)
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "<h2>Pareto front</h2>" in page and "<h2>Hypervolume over time</h2>" in page
    assert "<th>accuracy</th>" in page and "<th>latency_ms</th>" in page
