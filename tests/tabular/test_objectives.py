"""Several objectives (metric, ONNX latency, ONNX size), a latency limit and choosing a front member
in tabular searches (issue 19): ``autodl.search(objectives=..., max_latency_ms=..., select=...)``."""

from __future__ import annotations

import statistics
import time
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

import autodl
from autodl.errors import UserError
from autodl.tabular.objectives import Deployment, choose_from_front, parse_select

pytestmark = pytest.mark.usefixtures("one_openmp_thread")


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def bytes_ms(data: bytes) -> float:
    """A deterministic 'latency' for another machine: 1 ms per 100 kB of ONNX file."""
    return len(data) / 1e5


def _ort_latency_ms(path, rows, calls: int = 60) -> float:
    """Median single-row latency measured here, independently of autodl (1 thread)."""
    import onnxruntime as ort

    from autodl.export.runtime import read_metadata, table_to_feeds

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    meta = read_metadata(sess)
    feeds = [table_to_feeds(rows.iloc[[i]], meta) for i in range(16)]
    for f in feeds[:5]:
        sess.run(None, f)
    times = []
    for k in range(calls):
        t0 = time.perf_counter()
        sess.run(None, feeds[k % len(feeds)])
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


# ------------------------------------------------------------------------------ measuring
def test_latency_is_positive_and_a_500_tree_forest_is_slower_and_larger_than_a_linear_model():
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # noisy labels grow deep trees: 500 of them take several times a linear model's single-row time
    X, y = make_classification(1000, 10, flip_y=0.3, random_state=0)
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(10)])
    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    forest = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=500, random_state=0,
                                                                    n_jobs=1)).fit(X, y)
    d = Deployment(["accuracy", "latency", "size"], "maximize")
    fast = d.measure(linear, X.iloc[:64], "linear")
    slow = d.measure(forest, X.iloc[:64], "forest")
    assert fast.latency_ms > 0 and fast.batch64_ms > 0
    assert slow.latency_ms > 1.5 * fast.latency_ms
    assert slow.batch64_ms > 5 * fast.batch64_ms
    assert slow.size_bytes > 100 * fast.size_bytes
    assert d.measure(forest, X.iloc[:64], "forest") == slow  # cached per key


def test_a_user_latency_fn_replaces_the_local_timing(cancer):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    m = Deployment(["accuracy", "latency"], "maximize", latency_fn=bytes_ms).measure(model, X, "k")
    assert m.latency_ms == pytest.approx(m.size_bytes / 1e5)


# ------------------------------------------------------------------------------ searching
def test_objectives_give_a_pareto_front_of_measured_values(cancer, tmp_path):
    X, y = cancer
    result = autodl.search(X, y, objectives=["accuracy", "latency", "size"], n_trials=5, cv=3, seed=0,
                           out=tmp_path / "run", show_progress=False)
    study = result.study
    assert study.directions == ["maximize", "minimize", "minimize"]
    done = [t for t in study.trials if t.state.value == "complete"]
    assert len(done) == 5
    for t in done:
        assert len(t.values) == 3 and t.values[1] > 0 and t.values[2] > 0
        assert t.values[1] == t.user_attrs["latency_ms"] or abs(t.values[1] - t.user_attrs["latency_ms"]) < 1e-5
    # the front by hand: trials no other trial dominates
    signs = np.array([-1.0, 1.0, 1.0])
    pts = {t.id: signs * np.array(t.values) for t in done}
    front = {i for i, p in pts.items()
             if not any(np.all(q <= p) and np.any(q < p) for j, q in pts.items() if j != i)}
    summary = result.summary()
    assert {f["trial_id"] for f in summary["extra"]["front"]} == front
    assert summary["metric"] == ["accuracy", "latency", "size"]
    assert summary["direction"] == ["maximize", "minimize", "minimize"]
    # default choice: the best accuracy on the front
    best = max(front, key=lambda i: (study.trials[[t.id for t in study.trials].index(i)].values[0], -i))
    assert result.best_trial_id == best
    assert (tmp_path / "run" / "latency.json").is_file()
    assert summary["extra"]["deployment"]["size_bytes"] > 0
    assert len(result.predict(X.iloc[:5])) == 5


def test_max_latency_ms_shrinks_the_ensemble_until_its_onnx_file_meets_the_limit(cancer, tmp_path):
    """With a deterministic latency (file size) the ensemble of several forests is over a limit
    its members meet alone; the deployed file must meet it, measured on the exported file."""
    X, y = cancer
    limit = 2.0  # ms = 200 kB
    result = autodl.search(X, y, max_latency_ms=limit, latency_fn=bytes_ms, n_trials=6, cv=3, seed=0,
                           show_progress=False)
    trials = [t for t in result.study.trials if t.state.value == "complete"]
    for t in trials:  # the constraint is latency - limit
        assert t.constraints["latency_ms"] == pytest.approx(t.user_attrs["latency_ms"] - limit)
    winner = next(t for t in trials if t.id == result.best_trial_id)
    assert winner.feasible
    assert result.deployment["meets_limit"] is True
    first, last = result.deployment["measured"][0], result.deployment["measured"][-1]
    assert first["latency_ms"] > limit >= last["latency_ms"]  # the chosen ensemble was over: it shrank
    assert len(last["members"]) < len(first["members"])
    assert "over the 2 ms limit" in result.deployment["note"]
    path = result.export_onnx(tmp_path / "m.onnx")
    assert bytes_ms(path.read_bytes()) <= limit


@pytest.mark.slow
def test_max_latency_ms_final_model_meets_the_limit_measured_separately(cancer, tmp_path):
    X, y = cancer
    limit = 0.25  # the k-NN of the portfolio is over it (~0.4 ms), linear models and trees far below
    result = autodl.search(X, y, max_latency_ms=limit, n_trials=6, cv=3, seed=0, show_progress=False)
    path = result.export_onnx(tmp_path / "m.onnx")
    assert _ort_latency_ms(path, X) <= limit
    assert all(not t.feasible for t in result.study.trials if t.user_attrs.get("latency_ms", 0) > limit)


def test_no_feasible_trial_is_one_line(cancer):
    X, y = cancer
    with pytest.raises(UserError, match=r"no trial meets --max-latency-ms 1e-06: the fastest .* measured"):
        autodl.search(X, y, max_latency_ms=1e-6, n_trials=2, cv=3, seed=0, show_progress=False)


def test_select_callable_chooses_the_predicting_front_member(cancer):
    X, y = cancer
    seen = {}

    def smallest(front):
        seen["ids"] = [t.id for t in front]
        return min(front, key=lambda t: t.values[1])

    result = autodl.search(X, y, objectives=["metric", "size"], select=smallest, n_trials=4, cv=3, seed=0,
                           show_progress=False)
    front = result.study.best_trials
    assert sorted(seen["ids"]) == sorted(t.id for t in front)
    assert result.best_trial_id == min(front, key=lambda t: t.values[1]).id
    assert result.selected_by == "select=smallest"


# ------------------------------------------------------------------------------ user errors
@pytest.mark.parametrize("kwargs, message", [
    ({"objectives": ["accuracy", "params"]}, "'params' .* is for --model and --nas"),
    ({"objectives": ["latency", "accuracy"]}, "the first objective is the search metric"),
    ({"objectives": ["accuracy", "speed"]}, "unknown objective 'speed'"),
    ({"objectives": ["r2", "latency"]}, "metric 'r2' is for regression"),
    ({"objectives": ["accuracy", "latency"], "metric": "f1"}, "is not the search metric 'f1'"),
    ({"select": "accuracy"}, "give several objectives too"),
    ({"objectives": ["accuracy", "latency"], "searcher": "gp"}, "searcher 'gp' optimizes one objective"),
    ({"objectives": ["accuracy", "latency"], "select": "accuracy, latency<=1parsec"}, "unknown unit 'parsec'"),
    ({"max_latency_ms": -1}, "must be a positive number"),
    ({"max_latency_ms": 1, "features": "featuretools"}, "feature step"),
])
def test_user_errors_are_one_line_before_any_trial(cancer, kwargs, message):
    X, y = cancer
    with pytest.raises(UserError, match=message) as info:
        autodl.search(X, y, n_trials=1, show_progress=False, **kwargs)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------ the select rule
def _t(i, *values):
    return SimpleNamespace(id=i, values=values)


def test_select_rule_applies_limits_then_the_named_objective():
    names, dirs = ["accuracy", "latency", "size"], ["maximize", "minimize", "minimize"]
    front = [_t(1, 0.90, 0.5, 1000), _t(2, 0.95, 1.5, 4000), _t(3, 0.93, 0.9, 9 * 2**20)]
    pick = lambda text: choose_from_front(front, names, dirs, parse_select(text, names))[0].id  # noqa: E731
    assert pick("accuracy, latency<=1ms") == 3
    assert pick("accuracy, latency<=1ms, size<2MB") == 1
    assert pick("accuracy, latency <= 1000us") == 3
    assert pick("metric") == 2
    assert pick("latency, accuracy>=0.92") == 3
    assert pick("size") == 1
    assert choose_from_front(front, names, dirs, None)[0].id == 2
    with pytest.raises(UserError, match="no member of the Pareto front .* meets"):
        pick("latency<0.1ms")


@pytest.mark.parametrize("text, message", [
    ("accuracy, speed<=1", "not an objective"),
    ("accuracy, latency", "names two objectives"),
    ("accuracy,, latency<=1", "empty term"),
    ("accuracy, latency=>1", "is not 'objective'"),
    ("", "give e.g."),
])
def test_select_parse_errors_are_one_line(text, message):
    with pytest.raises(UserError, match=message) as info:
        parse_select(text, ["accuracy", "latency"])
    assert "\n" not in str(info.value)


def test_several_objectives_under_a_time_budget(cancer):
    """With a time budget the study keeps time to refit whichever front member is chosen (the
    reserve of a single-objective search follows its best trial, which several objectives lack)."""
    X, y = cancer
    t0 = time.monotonic()
    res = autodl.search(X, y, objectives=["accuracy", "latency"], time_budget=20, cv=2, seed=0)
    assert time.monotonic() - t0 <= 20 + 5
    complete = [t for t in res.study.trials if t.state.value == "complete"]
    assert len(complete) >= 2
    front = {t.id for t in res.study.best_trials}
    assert res.best_trial_id in front
    # the front is the non-dominated set, checked by hand (accuracy up, latency down)
    for t in complete:
        dominated = any(o.values[0] >= t.values[0] and o.values[1] <= t.values[1] and
                        tuple(o.values) != tuple(t.values) for o in complete)
        assert (t.id in front) == (not dominated)
