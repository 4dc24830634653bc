"""autodl report for several objectives: Pareto front plot and table, hypervolume over time.

The studies here are told values built by hand, so the front and the hypervolume are known
without autodl's own Pareto or hypervolume code.
"""

import base64
import io
import json
import re

import pytest

import autodl
from autodl import Float, Space
from autodl.runs import result_envelope, study_counts, write_result

pytest.importorskip("matplotlib")

from autodl.report import build_report  # noqa: E402
from autodl.report.multiobjective import hypervolume_history, objective_names, reference_point  # noqa: E402

SPACE = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})

#: (accuracy, latency) told in this order; accuracy is maximized, latency minimized.
#: Front after each: {1}, {1,2}, {1,2}, {4}, {4,5}, {4,5,6}, {4,5,6}; trial 8 fails.
VALUES = [(0.50, 4.0), (0.60, 5.0), (0.40, 6.0), (0.70, 3.0), (0.80, 6.0), (0.55, 2.0), (0.65, 3.5)]
FRONT = [4, 5, 6]
#: worst accuracy 0.40 minus 10% of 0.40..0.80, worst latency 6.0 plus 10% of 2.0..6.0
REFERENCE = (0.36, 6.4)


def _told(storage, values=VALUES, directions=("maximize", "minimize"), fail_last=True, constraints=None):
    study = autodl.Study(SPACE, searcher="random", directions=list(directions), storage=storage, seed=0)
    for i, v in enumerate(values):
        t = study.ask()
        if constraints is not None:
            t.set_constraint("c", constraints[i])
        study.tell(t, v)
    if fail_last:
        study.tell(study.ask(), state="failed")
    return study


def _hv_by_hand(points, ref):
    """2-D hypervolume (both minimized) by a sweep over vertical slabs: between consecutive
    x breakpoints, the covered height is ref_y minus the lowest y of the points left of it."""
    pts = [p for p in points if p[0] < ref[0] and p[1] < ref[1]]
    xs = sorted({p[0] for p in pts}) + [ref[0]]
    area = 0.0
    for left, right in zip(xs[:-1], xs[1:]):
        low = min(p[1] for p in pts if p[0] <= left)
        area += (right - left) * (ref[1] - low)
    return area


def _images(page: str) -> dict[str, bytes]:
    found = re.findall(r'alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    return {alt: base64.b64decode(data) for alt, data in found}


def _valid_png(data: bytes) -> bool:
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    Image.open(io.BytesIO(data)).verify()
    image = Image.open(io.BytesIO(data))
    return image.format == "PNG" and min(image.size) > 100


def _sections(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def _front_table_ids(page: str) -> list[int]:
    table = re.search(r"<table class='leaderboard front'>(.*?)</table>", page).group(1)
    return [int(i) for i in re.findall(r"<tr><td>(\d+)</td>", table)]


def test_reference_point_is_the_worst_value_plus_a_tenth_of_the_range():
    assert reference_point([[0.0, 4.0], [1.0, 2.0]]).tolist() == pytest.approx([1.1, 4.2])
    assert reference_point([[2.0, -1.0], [2.0, -3.0]]).tolist() == pytest.approx([2.2, -0.8])


def test_hypervolume_over_time_equals_a_hand_computed_sweep(tmp_path):
    study = _told(tmp_path / "s.db")
    history = hypervolume_history(study)
    assert history.reference == pytest.approx(REFERENCE)
    assert history.reference_min == pytest.approx((-REFERENCE[0], REFERENCE[1]))
    assert history.finished == tuple(range(1, len(VALUES) + 2))  # the failed trial counts as finished
    ref = (-REFERENCE[0], REFERENCE[1])
    for k in range(1, len(VALUES) + 1):
        points = [(-a, b) for a, b in VALUES[:k]]
        assert history.hypervolume[k - 1] == pytest.approx(_hv_by_hand(points, ref)), k
    assert history.hypervolume[-1] == history.hypervolume[-2]  # the failure adds nothing
    # by hand: after trial 1 one box 0.14 x 2.4; trial 3 (dominated) and 7 change nothing; at the
    # end the front 5, 4, 6 adds three strips (width to the reference x height below the one before)
    assert history.hypervolume[0] == pytest.approx(0.14 * 2.4)
    assert history.hypervolume[2] == history.hypervolume[1] and history.hypervolume[6] == history.hypervolume[5]
    assert history.hypervolume[-1] == pytest.approx(0.44 * 0.4 + 0.34 * 3.0 + 0.19 * 1.0)
    assert len(history.seconds) == len(history.finished)
    assert all(b >= a >= 0 for a, b in zip(history.seconds, history.seconds[1:]))


def test_report_of_a_plain_study_file_shows_the_front_and_hypervolume(tmp_path):
    _told(tmp_path / "study.db")
    path = build_report(tmp_path / "study.db")
    page = path.read_text()
    sections = _sections(page)
    assert sections[:4] == ["Summary", "Settings", "Pareto front", "Hypervolume over time"]
    assert "Best-so-far history" not in sections and "Leaderboard" in sections
    assert _front_table_ids(page) == [5, 4, 6] and sorted(_front_table_ids(page)) == FRONT  # accuracy, highest first
    for name in ("objective 0", "objective 1"):
        assert f"<th>{name}</th>" in page
    images = _images(page)
    assert {"Pareto front", "hypervolume"} <= set(images)
    assert all(_valid_png(data) for data in images.values())
    assert "objective 0 0.36 " in page and "objective 1 6.4 " in page  # the reference point, stated
    assert "worst value over all complete trials" in page


def test_report_of_a_run_folder_names_the_objectives_from_result_json(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"kind": "nn", "format": 2, "dataset": "digits"}))
    study = _told(run)
    write_result(run, result_envelope("nn", metric=["accuracy", "latency_ms"], direction=["maximize", "minimize"],
                                      best_value=None, best_config=None, test_score=[0.91, 1.5],
                                      counts=study_counts(study)))
    page = build_report(run).read_text()
    assert "<th>accuracy</th>" in page and "<th>latency_ms</th>" in page
    assert "accuracy 0.36 " in page and "latency_ms 6.4 " in page
    assert "accuracy=0.91, latency_ms=1.5" in page  # the test scores, by name
    assert _front_table_ids(page) == [5, 4, 6]
    assert "importances: accuracy" in _images(page) and "importances: latency_ms" in _images(page)


def test_constraints_keep_infeasible_trials_off_the_front_and_out_of_the_hypervolume(tmp_path):
    values = VALUES + [(0.99, 0.5)]  # dominates everything, but infeasible
    constraints = [0.0] * len(VALUES) + [1.0]
    study = _told(tmp_path / "c.db", values=values, fail_last=False, constraints=constraints)
    history = hypervolume_history(study)
    ref = history.reference_min  # from every complete trial, the infeasible one included
    assert ref == pytest.approx((-(0.40 - 0.059), 6.0 + 0.55))
    feasible = [(-a, b) for a, b in VALUES]
    assert history.hypervolume[-1] == pytest.approx(_hv_by_hand(feasible, ref))
    page = build_report(tmp_path / "c.db").read_text()
    assert _front_table_ids(page) == [5, 4, 6]
    table = re.search(r"<table class='leaderboard front'>(.*?)</table>", page).group(1)
    assert "<th>feasible</th>" in table and "<th>constraint c</th>" in table
    assert "1 of 8 complete trials are not" in page


def test_three_objectives_get_a_pairwise_grid(tmp_path):
    values = [(1.0, 2.0, 3.0), (2.0, 1.0, 3.0), (3.0, 3.0, 1.0), (3.0, 3.0, 3.0), (2.0, 2.0, 3.5)]
    _told(tmp_path / "three.db", values=values, directions=("minimize",) * 3, fail_last=False)
    page = build_report(tmp_path / "three.db").read_text()
    assert _front_table_ids(page) == [1, 2, 3]
    images = _images(page)
    assert _valid_png(images["Pareto front"]) and "one panel per pair of objectives" in page


def test_objective_names_fall_back_in_order():
    assert objective_names(2, {"metric": ["acc", "ms"]}, {"objectives": ["a", "b"]}) == ["acc", "ms"]
    assert objective_names(2, {"metric": "acc"}, {"objectives": ["a", "b"]}) == ["a", "b"]
    assert objective_names(2, None, {"objectives": [{"name": "a"}, {"name": "b"}]}) == ["a", "b"]
    assert objective_names(3, {"metric": ["acc", "ms"]}) == ["objective 0", "objective 1", "objective 2"]


def test_single_objective_report_has_no_multi_objective_sections(tmp_path):
    study = autodl.Study(SPACE, searcher="random", storage=tmp_path / "one", seed=0)
    study.optimize(lambda t: (t.config["x"] - 0.3) ** 2 + 0.1 * t.config["y"], n_trials=12)
    page = build_report(tmp_path / "one").read_text()
    assert _sections(page) == ["Summary", "Settings", "Best-so-far history", "Parameter importances",
                               "Parallel coordinates", "Leaderboard"]
    assert "best value (search)" in page and "hypervolume" not in page.lower()
    assert set(_images(page)) == {"best so far", "importances", "parallel coordinates"}
