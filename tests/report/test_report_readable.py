"""What a person reading report.html relies on, checked by parsing the page (not the report's code).

Oracles: the study's own trials and space, the files written here, and the page's HTML as a
browser would see it (tables by section, figure captions, visible text).
"""

import json
import statistics
import re
import time
from html.parser import HTMLParser

import numpy as np
import pytest

import autodl
from autodl import Categorical, Float, Int, Space

pytest.importorskip("matplotlib")
import sklearn  # noqa: E402,F401  (a core dependency: never a reason to skip)

from autodl.report import build_report  # noqa: E402
from autodl.report.result import result_fields  # noqa: E402

DATE_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\b")
RAW_EPOCH = re.compile(r"(?<![\d.])1\d{9}(\.\d+)?(?![\d.])")  # seconds since 1970, as written by time.time()


class _Page(HTMLParser):
    """The sections of the page: visible text, tables (rows of cell texts) and <code> texts of captions."""

    def __init__(self, page: str):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self._section = None
        self._cell = None
        self._in_caption = False
        self._in_code = False
        self._skip = 0
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = self.sections.setdefault(attrs["id"], {"text": [], "tables": [], "caption_codes": []})
        elif tag in ("style", "script", "title"):
            self._skip += 1
        elif self._section is None:
            return
        elif tag == "table":
            self._section["tables"].append([])
        elif tag == "tr":
            self._section["tables"][-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "figcaption":
            self._in_caption = True
        elif tag == "code":
            self._in_code = True

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._skip -= 1
        elif tag == "section":
            self._section = None
        elif tag in ("td", "th") and self._cell is not None:
            self._section["tables"][-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "figcaption":
            self._in_caption = False
        elif tag == "code":
            self._in_code = False

    def handle_data(self, data):
        if self._skip or self._section is None:
            return
        self._section["text"].append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_caption and self._in_code:
            self._section["caption_codes"].append(data.strip())

    def text(self, section: str) -> str:
        return " ".join(" ".join(self.sections[section]["text"]).split())

    def visible_text(self) -> str:
        return " ".join(self.text(s) for s in self.sections)


def _page(path) -> tuple[str, _Page]:
    page = path.read_text()
    return page, _Page(page)


def _without_images(page: str) -> str:
    return re.sub(r'src="data:image/png;base64,[^"]+"', "", page)


SPACE = Space({
    "x": Float(-3, 3),
    "kind": Categorical(["a", "b"]),
    "depth": Int(1, 5, condition={"kind": ["b"]}),
})


def _objective(trial):
    c = trial.config
    for step in range(3):
        trial.report((c["x"] - 1) ** 2 + 1.0 / (step + 1), step)
    return (c["x"] - 1) ** 2 + (10.0 if c["kind"] == "b" else 0.0)


def _study_run(tmp_path, n_trials, space=SPACE, objective=_objective, seed=0):
    run = tmp_path / "run"
    study = autodl.Study(space, searcher="random", storage=run, seed=seed)
    study.optimize(objective, n_trials=n_trials)
    return run, study


# ------------------------------------------------------------------------------ leaderboard
def test_leaderboard_leaves_out_columns_no_listed_trial_uses(tmp_path):
    run, study = _study_run(tmp_path, 60)
    top = sorted((t for t in study.trials if t.state.value == "complete"), key=lambda t: t.value)[:20]
    assert all(t.config["kind"] == "a" for t in top)  # so "depth" is unset in every listed row
    assert any("depth" in t.config for t in study.trials)  # ... though some trial used it
    _, page = _page(build_report(run))
    header, *rows = page.sections["leaderboard"]["tables"][0]
    assert "depth" not in header
    assert "x" in header and "kind" in header
    assert len(rows) == 20
    x_col = header.index("x")
    assert all(re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", r[x_col]) for r in rows)  # populated
    cells = [c.lower() for r in rows for c in r]
    assert "nan" not in cells and "none" not in cells


def test_leaderboard_blank_for_an_inactive_parameter_not_nan(tmp_path):
    run, study = _study_run(tmp_path, 12, objective=lambda t: t.config["x"] ** 2)
    assert {t.config["kind"] for t in study.trials} == {"a", "b"}
    _, page = _page(build_report(run))
    header, *rows = page.sections["leaderboard"]["tables"][0]
    depth = header.index("depth")
    kind = header.index("kind")
    assert {r[depth] == "" for r in rows if r[kind] == "a"} == {True}
    assert all(r[depth].isdigit() for r in rows if r[kind] == "b")


def _folds(config):
    return [config["x"] ** 2 + d for d in (-0.5, 0.0, 0.25 * config["x"])]


def _fold_objective(trial):
    folds = np.array(_folds(trial.config))
    trial.set_user_attr("cv_std", float(folds.std()))
    return float(folds.mean())


def test_leaderboard_shows_the_spread_over_cv_folds_beside_the_score(tmp_path):
    run, study = _study_run(tmp_path, 8, objective=_fold_objective)
    _, page = _page(build_report(run))
    header, *rows = page.sections["leaderboard"]["tables"][0]
    assert header.index("± std") == header.index("value") + 1
    for row in rows:
        config = next(t.config for t in study.trials if t.id == int(row[header.index("trial")]))
        assert float(row[header.index("± std")]) == pytest.approx(statistics.pstdev(_folds(config)), rel=1e-3)


def test_leaderboard_has_no_spread_column_when_no_trial_recorded_one(tmp_path):
    run, _ = _study_run(tmp_path, 5)
    _, page = _page(build_report(run))
    assert "± std" not in page.sections["leaderboard"]["tables"][0][0]


# ------------------------------------------------------------------------------ parallel coordinates
WIDE = Space({f"p{i}": Float(0, 1) for i in range(10)} | {"x": Float(-3, 3), "c": Categorical(["u", "v", "w"])})


def test_parallel_coordinates_show_a_few_parameters_of_the_space_including_the_one_that_matters(tmp_path):
    run, _ = _study_run(tmp_path, 40, space=WIDE, objective=lambda t: (t.config["x"] - 1) ** 2)
    page, parsed = _page(build_report(run))
    shown = parsed.sections["parallel"]["caption_codes"]
    assert 2 <= len(shown) <= 6
    assert set(shown) <= set(WIDE.names) and len(set(shown)) == len(shown)
    assert "x" in shown
    assert re.search(r'alt="parallel coordinates" src="data:image/png;base64,', page)


def test_parallel_coordinates_show_every_parameter_of_a_small_space(tmp_path):
    run, _ = _study_run(tmp_path, 30)
    _, parsed = _page(build_report(run))
    assert sorted(parsed.sections["parallel"]["caption_codes"]) == sorted(SPACE.names)


def test_parallel_coordinates_without_importances_still_pick_at_most_six(tmp_path):
    run, _ = _study_run(tmp_path, 4, space=WIDE, objective=lambda t: t.config["x"])  # too few for importances
    _, parsed = _page(build_report(run))
    shown = parsed.sections["parallel"]["caption_codes"]
    assert 1 <= len(shown) <= 6 and set(shown) <= set(WIDE.names)


# ------------------------------------------------------------------------------ times
def test_times_are_dates_and_durations_never_raw_epoch_seconds(tmp_path):
    run, study = _study_run(tmp_path, 8)
    now = time.time()
    (run / "result.json").write_text(json.dumps({  # an older nn-shaped result with an epoch timestamp
        "dataset": "digits", "metric": "accuracy", "direction": "minimize", "best_val_accuracy": 0.5,
        "test_accuracy": 0.25, "best_trial_id": 1, "finished": now, "search_seconds": 754.2}))
    page, parsed = _page(build_report(run))
    text = parsed.visible_text()
    assert RAW_EPOCH.search(_without_images(page)) is None
    assert str(int(now)) not in _without_images(page)
    summary = parsed.text("summary")
    assert len(DATE_TIME.findall(summary)) >= 2  # started, finished
    first = min(t.started for t in study.trials)
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(first)) in summary
    assert "12 min 34 s" in text  # search_seconds as a duration
    header, *rows = parsed.sections["leaderboard"]["tables"][0]
    durations = [r[header.index("duration")] for r in rows]
    assert durations and all(re.fullmatch(r"\d+(\.\d+)? s|\d+ min \d+ s", d) for d in durations)


# ------------------------------------------------------------------------------ importances caveat
def _importance_text(tmp_path, n_trials) -> str:
    run, _ = _study_run(tmp_path, n_trials, objective=lambda t: (t.config["x"] - 1) ** 2)
    _, parsed = _page(build_report(run))
    return parsed.text("importance")


def test_importances_warn_when_they_rest_on_few_trials(tmp_path):
    text = _importance_text(tmp_path, 6)
    assert re.search(r"\b6 complete trials\b", text)
    assert re.search(r"only 6 complete trials", text, re.I)


def test_importances_have_no_warning_with_many_trials(tmp_path):
    text = _importance_text(tmp_path, 40)
    assert re.search(r"\b40 complete trials\b", text)
    assert not re.search(r"\bonly\b", text, re.I)


def test_importances_say_why_they_are_missing(tmp_path):
    text = _importance_text(tmp_path, 3)
    assert re.search(r"not computed", text, re.I) and re.search(r"\b3 complete trials\b", text)


def test_five_trials_get_the_caveat(tmp_path):
    text = _importance_text(tmp_path, 5)
    assert re.search(r"only 5 complete trials", text, re.I)


# ------------------------------------------------------------------------------ settings
def _setting_keys(parsed: _Page) -> list[str]:
    keys = []
    for table in parsed.sections["settings"]["tables"]:
        header, *rows = table
        if header[0] == "setting":
            keys += [r[0] for r in rows]
    return keys


def test_each_setting_appears_once(tmp_path):
    run, _ = _study_run(tmp_path, 6)
    run_json = {"kind": "nas", "format": 2, "dataset": "digits", "method": "evolution", "seed": 3,
                "epochs": 20, "candidate_epochs": 2, "train_epochs": 4, "test_size": 0.2, "n_trials": 6,
                "time_budget": None}
    result = {"kind": "nas", "format": 2, "metric": "accuracy", "direction": "maximize", "best_value": 0.4,
              "best_config": {"x": 1.0}, "best_trial": 2, "best_budget": None, "test_score": 0.9,
              "n_complete": 6, "n_failed": 0, "n_pruned": 0,
              "extra": {"n_params": 1234, "n_trials": 6, "train_epochs": 4,
                        "settings": {"seed": 3, "train_epochs": 4, "train_C": 8, "n_trials": 6}}}
    (run / "run.json").write_text(json.dumps(run_json))
    (run / "result.json").write_text(json.dumps(result))
    _, parsed = _page(build_report(run))
    keys = _setting_keys(parsed)
    assert keys, "the settings section has a table of settings"
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    assert {"train_epochs", "n_params", "train_C", "candidate_epochs"} <= set(keys)
    assert "epochs" not in keys  # a DARTS setting: evolution does not use it
    assert "time_budget" not in keys and "time_budget" in parsed.text("settings")  # listed as not set


def test_result_fields_read_the_envelope_and_every_older_shape():
    envelope = {"kind": "tabular", "format": 2, "metric": "f1", "direction": "maximize", "best_value": 0.8,
                "best_config": {"a": 1}, "best_trial": 3, "best_budget": None, "test_score": 0.7,
                "n_complete": 9, "n_failed": 1, "n_pruned": 0, "extra": {"task": "classification"}}
    tabular = {"task": "classification", "metric": "f1", "direction": "maximize", "best_score": 0.8,
               "best_config": {"a": 1}, "best_trial_id": 3, "test_score": 0.7, "n_complete": 9, "n_failed": 1}
    nn = {"dataset": "digits", "model": "mlp", "metric": "accuracy", "direction": "maximize",
          "best_val_accuracy": 0.8, "test_accuracy": 0.7, "best_trial_id": 3, "epochs_trained": 40}
    nas = {"kind": "nas", "method": "darts", "metric": "accuracy", "direction": "maximize", "test_accuracy": 0.7,
           "best_val_accuracy": 0.8, "n_params": 4818, "settings": {"epochs": 2}}
    for data in (envelope, tabular, nn, nas):
        r = result_fields(data)
        assert (r.best_value, r.test_score) == (0.8, 0.7), data
        assert r.direction == "maximize"
    assert result_fields(envelope).best_trial == result_fields(tabular).best_trial == 3
    assert result_fields(envelope).kind == result_fields(tabular).kind == "tabular"
    assert result_fields(nn).kind == "nn" and result_fields(nn).extra["epochs_trained"] == 40
    assert result_fields(nas).kind == "nas" and result_fields(nas).extra["n_params"] == 4818
    assert result_fields(None).best_value is None


@pytest.mark.parametrize("shape", ["envelope", "old"])
def test_summary_shows_best_and_test_score_from_either_result_shape(tmp_path, shape):
    run, _ = _study_run(tmp_path, 6)
    if shape == "envelope":
        result = {"kind": "tabular", "format": 2, "metric": "accuracy", "direction": "maximize",
                  "best_value": 0.912345, "best_config": {"x": 1.0, "kind": "a"}, "best_trial": 4,
                  "best_budget": None, "test_score": 0.876543, "n_complete": 6, "n_failed": 0, "n_pruned": 0,
                  "extra": {"model_file": "model.skops"}}
    else:
        result = {"task": "classification", "metric": "accuracy", "direction": "maximize", "best_score": 0.912345,
                  "best_config": {"x": 1.0, "kind": "a"}, "best_trial_id": 4, "test_score": 0.876543,
                  "n_trials": 6, "n_complete": 6, "n_failed": 0, "model_file": "model.skops"}
    (run / "result.json").write_text(json.dumps(result))
    _, parsed = _page(build_report(run))
    rows = {r[0]: r[1] for r in parsed.sections["summary"]["tables"][0]}
    best = next(v for k, v in rows.items() if k.startswith("best value"))
    test = next(v for k, v in rows.items() if k.startswith("test score"))
    assert best.startswith("0.91234") and "trial 4" in best
    assert test.startswith("0.87654")
    assert "model.skops" in parsed.text("settings")


# ------------------------------------------------------------------------------ a DARTS folder
def test_darts_folder_without_trials(tmp_path):
    run = tmp_path / "darts"
    run.mkdir()
    genotype = {"normal": [["sep_conv_3x3", 0, 0], ["skip_connect", 1, 0], ["max_pool_3x3", 2, 1],
                           ["sep_conv_3x3", 1, 1]],
                "reduce": [["max_pool_3x3", 0, 0], ["max_pool_3x3", 1, 0], ["skip_connect", 2, 1],
                           ["sep_conv_3x3", 0, 1]], "nodes": 2}
    (run / "run.json").write_text(json.dumps({"kind": "nas", "format": 2, "dataset": "digits", "method": "darts",
                                              "epochs": 2, "population": 10, "seed": 0, "train_epochs": 2}))
    (run / "result.json").write_text(json.dumps({
        "kind": "nas", "format": 2, "metric": "accuracy", "direction": "maximize", "best_value": 0.66,
        "best_config": {"genotype": genotype}, "best_trial": None, "best_budget": None, "test_score": 0.89,
        "n_complete": 1, "n_failed": 0, "n_pruned": 0,
        "extra": {"genotype": genotype, "search_seconds": 17.54, "n_params": 4818, "finished": time.time(),
                  "settings": {"epochs": 2, "seed": 0}}}))
    (run / "genotype.json").write_text(json.dumps(genotype))
    (run / "curves.json").write_text(json.dumps({"search": {"metric": "supernet validation accuracy", "x": "epoch",
                                                            "values": [0.1, 0.4, 0.66]}}))
    page, parsed = _page(build_report(run))
    assert [s for s in parsed.sections] == ["summary", "settings", "curves", "genotype"]
    keys = _setting_keys(parsed)
    assert len(keys) == len(set(keys)) and "population" not in keys and "genotype" not in keys
    assert "17.5 s" in parsed.visible_text()
    assert RAW_EPOCH.search(_without_images(page)) is None
    assert DATE_TIME.search(parsed.text("summary"))


def test_a_column_plan_reads_as_roles_not_json(tmp_path):
    """Seen in a browser: run.json's column plan was printed as a JSON list of dicts, beside its summary."""
    run, _ = _study_run(tmp_path, 6)
    plan = {"columns": [{"name": "alcohol", "role": "numeric"}, {"name": "ash", "role": "numeric"},
                        {"name": "id", "role": "ignore", "reason": "ID-like: 300 distinct of 300"}],
            "overrides": [], "dropped_target_rows": 2, "summary": ["numeric (2): alcohol, ash"]}
    (run / "run.json").write_text(json.dumps({"kind": "tabular", "format": 2, "n_trials": 6, "column_plan": plan}))
    _, parsed = _page(build_report(run))
    rows = {r[0]: r[1] for table in parsed.sections["settings"]["tables"] for r in table[1:]}
    assert rows["columns"] == ("numeric (2): alcohol, ash; ignored (1): id (ID-like); "
                               "dropped 2 rows whose target is missing")
    assert "summary" not in rows and "{" not in parsed.text("settings")
