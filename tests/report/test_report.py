"""autodl report: a self-contained HTML page with the sections each kind of run supports."""

import base64
import json
import re

import pytest

import autodl
from autodl import Categorical, Float, Int, Space
from autodl.searchers import Searcher

pytest.importorskip("matplotlib")

from autodl.report import build_report, parameter_importances  # noqa: E402


def _images(page: str) -> dict[str, bytes]:
    found = re.findall(r'alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    return {alt: base64.b64decode(data) for alt, data in found}


def _sections(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


SPACE = Space({
    "x": Float(-3, 3),
    "noise": Float(0, 1),
    "kind": Categorical(["a", "b"]),
    "depth": Int(1, 5, condition={"kind": ["b"]}),
})


def _objective(trial):
    c = trial.config
    if c["noise"] > 0.95:
        raise RuntimeError("unlucky")
    for step in range(4):
        trial.report((c["x"] - 1) ** 2 + 1.0 / (step + 1), step)
    return (c["x"] - 1) ** 2 + 0.01 * c["noise"]


def test_report_of_a_study_has_every_section_with_images(tmp_path):
    study = autodl.Study(SPACE, searcher="random", storage=tmp_path / "run", seed=0)
    study.optimize(_objective, n_trials=40)
    path = build_report(tmp_path / "run")
    assert path == tmp_path / "run" / "report.html"
    page = path.read_text()
    assert _sections(page) == ["Summary", "Settings", "Best-so-far history", "Parameter importances",
                               "Parallel coordinates", "Learning curves", "Leaderboard"]
    images = _images(page)
    assert set(images) == {"best so far", "parallel coordinates", "importances", "learning curves"}
    for data in images.values():
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert "http://" not in page and "https://" not in page  # opens without a network


def test_importances_find_the_parameter_that_matters():
    study = autodl.Study(SPACE, searcher="random", seed=1)
    study.optimize(lambda t: (t.config["x"] - 1) ** 2 + 0.001 * t.config["noise"], n_trials=60)
    imp = parameter_importances(study)
    assert max(imp, key=imp.get) == "x"
    assert imp["x"] > 0.8
    assert sum(imp.values()) == pytest.approx(1.0)


class _Budgeted(Searcher):
    """Asks each config at budgets 1, 3, 9 in turn (a stand-in for a multi-fidelity searcher)."""

    name = "budgeted"
    uses_budget = True

    def ask(self):
        n = self._next_id
        if n % 3 == 0:
            self._config = self.space.sample(self.rng)
        return self._new_trial(self._config, budget=float(3 ** (n % 3)))


def test_rung_chart_for_multi_fidelity_runs(tmp_path):
    study = autodl.Study(SPACE, searcher=_Budgeted(SPACE, seed=0), storage=tmp_path / "mf")
    study.optimize(lambda t: (t.config["x"] - 1) ** 2 / t.budget, n_trials=18)
    page = build_report(tmp_path / "mf").read_text()
    assert "Rungs (multi-fidelity)" in _sections(page)
    assert "rungs" in _images(page)


def test_nas_sections_from_alphas_and_genotype(tmp_path):
    run = tmp_path / "nas"
    study = autodl.Study(SPACE, searcher="random", storage=run, seed=0)
    study.optimize(_objective, n_trials=6)
    ops = ["none", "skip_connect", "max_pool_3x3", "sep_conv_3x3"]
    history = [[[0.25 + 0.01 * e * (j == 3) for j in range(4)] for _ in range(5)] for e in range(8)]
    (run / "alphas.json").write_text(json.dumps({"ops": ops, "history": {"normal": history, "reduce": history}}))
    genotype = {"normal": [["sep_conv_3x3", 0, 0], ["skip_connect", 1, 0], ["max_pool_3x3", 2, 1], ["sep_conv_3x3", 1, 1]],
                "reduce": [["max_pool_3x3", 0, 0], ["max_pool_3x3", 1, 0], ["skip_connect", 2, 1], ["sep_conv_3x3", 0, 1]]}
    (run / "genotype.json").write_text(json.dumps(genotype))
    page = build_report(run).read_text()
    sections = _sections(page)
    assert "Architecture weights over epochs" in sections and "Derived cell" in sections
    images = _images(page)
    assert "Architecture weights over epochs" in images and "Derived cell" in images


def test_report_cli_on_a_tabular_run(tmp_path, autodl_cli):
    run = tmp_path / "run"
    proc = autodl_cli("search", "--dataset", "iris", "--trials", "6", "--cv", "3", "--out", str(run), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = autodl_cli("report", str(run), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = (run / "report.html").read_text()
    result = json.loads((run / "result.json").read_text())
    test = result.get("test_score")
    assert test is not None and f"{test:.5g}" in page and "Leaderboard" in _sections(page)
    bad = autodl_cli("report", str(tmp_path / "nothing"), cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
