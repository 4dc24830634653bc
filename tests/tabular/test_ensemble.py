"""Greedy ensemble selection over validation predictions, the weighted ensemble, and the whole
ensemble as one ONNX graph (issue 18)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss

from autodl.tabular.ensemble import EnsembleModel, score_predictions, select
from autodl.tabular.metrics import get_metric

ACC = get_metric("accuracy", "classification")
LOGLOSS = get_metric("log_loss", "classification")


def _onehot(labels, k=2, confidence=0.9):
    p = np.full((len(labels), k), (1 - confidence) / (k - 1))
    p[np.arange(len(labels)), labels] = confidence
    return p


def test_scores_of_given_predictions_are_the_metric_of_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    p = rng.dirichlet(np.ones(3), 200)
    assert score_predictions(p, y, ACC, classes=[0, 1, 2]) == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert score_predictions(p, y, LOGLOSS, classes=[0, 1, 2]) == pytest.approx(log_loss(y, p))
    labels = np.array(["no", "yes"])[y % 2]
    q = rng.dirichlet(np.ones(2), 200)
    assert score_predictions(q, labels, ACC, classes=["no", "yes"]) == pytest.approx(
        accuracy_score(labels, np.array(["no", "yes"])[q.argmax(1)]))


def test_complementary_models_make_an_ensemble_better_than_either():
    """A and B are each sure and right on their half of the rows and unsure (wrong) on the
    other half; their average is right everywhere. C (60 % right) is the best single model, so
    selection starts from it and cannot drop it, but A and B outweigh it."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    half = np.arange(400) < 200
    a = np.where(half[:, None], _onehot(y, confidence=0.95), _onehot(1 - y, confidence=0.55))
    b = np.where(~half[:, None], _onehot(y, confidence=0.95), _onehot(1 - y, confidence=0.55))
    c = _onehot(np.where(rng.random(400) < 0.6, y, 1 - y), confidence=0.6)
    weights, scores = select([a, b, c], y, ACC, classes=[0, 1])
    assert accuracy_score(y, a.argmax(1)) == accuracy_score(y, b.argmax(1)) == 0.5
    assert weights[0] > 0 and weights[1] > 0 and weights[0] + weights[1] > weights[2]
    assert weights.sum() == pytest.approx(1)
    blended = sum(w * p for w, p in zip(weights, [a, b, c]))
    assert accuracy_score(y, blended.argmax(1)) == 1.0 == max(scores)
    assert scores[0] == max(accuracy_score(y, p.argmax(1)) for p in (a, b, c))  # round 1: the best single


def test_a_perfect_model_is_kept_alone_and_minimized_metrics_go_down():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    good, noisy = _onehot(y, confidence=0.99), rng.dirichlet(np.ones(2), 300)
    weights, _ = select([noisy, good], y, LOGLOSS, classes=[0, 1])
    assert list(weights) == [0.0, 1.0]
    # regression: two unbiased noisy predictors, independent noise: their mean has half the variance
    target = rng.normal(size=2000)
    p1, p2 = target + rng.normal(size=2000), target + rng.normal(size=2000)
    r2 = get_metric("r2", "regression")
    weights, scores = select([p1, p2], target, r2)
    assert 0.35 < weights[0] < 0.65 and scores[-1] > scores[0] + 0.1


def test_the_ensemble_model_averages_its_members():
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    m1, m2 = LogisticRegression(max_iter=500).fit(X, y), DecisionTreeClassifier(max_depth=2).fit(X, y)
    ens = EnsembleModel([(0.7, m1), (0.3, m2), (0.0, m2)], "classification")
    assert len(ens.members) == 2
    expected = 0.7 * m1.predict_proba(X) + 0.3 * m2.predict_proba(X)
    np.testing.assert_allclose(ens.predict_proba(X), expected)
    assert (ens.predict(X) == expected.argmax(1)).all()
    assert ens.score(X, y) == pytest.approx(np.mean(expected.argmax(1) == y))  # as sklearn's classifiers score


def test_a_regression_ensemble_scores_r2_of_its_average():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    X, y = load_diabetes(return_X_y=True)
    m1, m2 = Ridge().fit(X, y), DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    average = 0.4 * m1.predict(X) + 0.6 * m2.predict(X)
    r2 = 1 - np.sum((y - average) ** 2) / np.sum((y - y.mean()) ** 2)
    assert EnsembleModel([(0.4, m1), (0.6, m2)], "regression").score(X, y) == pytest.approx(r2)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_whole_ensemble_is_one_onnx_graph(tmp_path, task):
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_diabetes, load_wine
    from sklearn.model_selection import train_test_split

    from autodl.export import export_onnx
    from autodl.export.runtime import table_to_feeds, read_metadata
    from autodl.tabular.pipeline import build_pipeline
    from autodl.tabular.portfolio import PORTFOLIO

    X, y = (load_wine if task == "classification" else load_diabetes)(return_X_y=True, as_frame=True)
    if task == "classification":
        y = y.map({0: "barolo", 1: "grignolino", 2: "barbera"})  # string labels
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)
    # boosting (float32 tree features), a linear model (float64), a forest
    members = [(w, build_pipeline(c, X_tr, task, 0).fit(X_tr, y_tr)) for w, c in zip((0.5, 0.3, 0.2), PORTFOLIO[:3])]
    ens = EnsembleModel(members, task)
    path = export_onnx(ens, tmp_path / "ens.onnx", sample=X_te)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = read_metadata(session)
    assert meta["task"] == task and len({n.name for n in session.get_inputs()}) == X.shape[1]
    for batch in (1, 7, 64):
        rows = X_te.iloc[:batch]
        got = session.run(None, table_to_feeds(rows, meta))
        if task == "classification":
            expected = sum(w * m.predict_proba(rows) for w, m in members)
            labels = np.array(sorted(y.unique()))[expected.argmax(1)]
            assert list(got[0]) == list(labels)
            np.testing.assert_allclose(got[1], expected, atol=1e-5)
        else:
            expected = sum(w * m.predict(rows) for w, m in members)
            np.testing.assert_allclose(np.ravel(got[0]), expected, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------ in the search
@pytest.fixture(scope="module")
def cancer_run(tmp_path_factory):
    """A small search on breast_cancer with a run folder (its mix of trials validates better than
    the best alone at seed 0)."""
    import autodl
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    run = tmp_path_factory.mktemp("cancer") / "run"
    # 16 trials: with the measured portfolio, 12 left the best trial alone best at seed 0
    result = autodl.search(X, y, n_trials=16, seed=0, out=run, show_progress=False)
    return result, run, X, y


def test_every_full_trial_keeps_its_out_of_fold_predictions(cancer_run):
    """Oracle: scikit-learn's cross_val_predict of the same pipeline on the same folds."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from autodl.tabular.ensemble import load_predictions
    from autodl.tabular.pipeline import build_pipeline
    from autodl.tabular.search import load_spec, prepare_run

    result, run, _, _ = cancer_run
    prep = prepare_run(run, load_spec(run))
    done = [t for t in result.study.trials if t.state.value == "complete"]
    assert done and all(load_predictions(run / "predictions", t.id) is not None for t in done)
    trial = done[0]
    pipe = build_pipeline(trial.config, prep.X_train, "classification", 0, plan=prep.plan)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    expected = cross_val_predict(pipe, prep.X_train, prep.y_train, cv=folds, method="predict_proba")
    np.testing.assert_allclose(load_predictions(run / "predictions", trial.id), expected, atol=1e-6)


def test_the_search_predicts_with_its_ensemble(cancer_run):
    from autodl.tabular.ensemble import EnsembleModel
    from autodl.tabular.search import load_best_model

    result, run, X, _ = cancer_run
    ens = result.ensemble
    assert ens is not None and len(ens["members"]) >= 2, "the fixture's search should mix trials"
    assert ens["ensemble_score"] > ens["single_score"] and sum(m["weight"] for m in ens["members"]) == pytest.approx(1)
    model = result.best_model
    assert isinstance(model, EnsembleModel) and [round(w, 6) for w, _ in model.members] == [
        m["weight"] for m in ens["members"]]
    rows = X.iloc[:40]
    expected = sum(w * m.predict_proba(rows) for w, m in model.members)
    np.testing.assert_allclose(result.predict_proba(rows), expected)
    assert (result.predict(rows) == model.classes_[expected.argmax(1)]).all()
    board = result.leaderboard
    assert board.iloc[0]["id"] == "ensemble" and board.iloc[0]["accuracy"] == pytest.approx(ens["ensemble_score"])
    weights = dict(zip(board["id"].iloc[1:], board["weight"].iloc[1:]))
    assert {k: v for k, v in weights.items() if v > 0} == {m["trial_id"]: m["weight"] for m in ens["members"]}
    reloaded = load_best_model(run)  # model.skops: the ensemble, without pickle
    np.testing.assert_allclose(reloaded.predict_proba(rows), expected)
    saved = json.loads((run / "result.json").read_text())["extra"]["ensemble"]
    assert [m["trial_id"] for m in saved["members"]] == [m["trial_id"] for m in ens["members"]]
    assert all(m["fit_seconds"] > 0 and m["predict_ms_per_row"] > 0 for m in saved["members"])


def test_feature_importance_names_the_columns_the_predictor_uses(cancer_run):
    result, _, X, _ = cancer_run
    imp = result.feature_importance(n_repeats=3)
    assert sorted(imp["column"]) == sorted(map(str, X.columns))
    assert imp["importance"].iloc[0] > 0 and imp["importance"].is_monotonic_decreasing


def test_ensemble_false_keeps_the_best_trial():
    import autodl
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = autodl.search(X, y, n_trials=6, seed=0, show_progress=False, cv=3, ensemble=False)
    assert result.ensemble is None and "weight" not in result.leaderboard.columns
    assert type(result.best_model).__name__ == "Pipeline"


def test_the_report_shows_the_ensemble_and_the_feature_importance(cancer_run):
    pytest.importorskip("matplotlib")
    from autodl.report import build_report

    result, run, X, _ = cancer_run
    page = build_report(run).read_text()
    assert "<h2>Ensemble</h2>" in page and "<h2>Feature importance</h2>" in page
    section = page.split("<h2>Feature importance</h2>")[1].split("</section>")[0]
    assert all(f"<td>{c}</td>" in section for c in X.columns)  # every input column has its row
    ensemble = page.split("<h2>Ensemble</h2>")[1].split("</section>")[0]
    assert all(f"<td>{m['trial_id']}</td>" in ensemble for m in result.ensemble["members"])


# ------------------------------------------------------------------ fold models or refit
def test_members_predict_with_their_fold_models_and_nothing_is_fitted_after_the_search(tmp_path, monkeypatch):
    """refit=False: each member is the average of the models its own validation fitted.
    Oracle: every fold's pipeline fitted by hand on scikit-learn's folds."""
    import importlib
    import tempfile

    import autodl
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import StratifiedKFold

    from autodl.tabular.pipeline import build_pipeline

    search_mod = importlib.import_module("autodl.tabular.search")  # the package exports search() too

    def no_refit(*args, **kwargs):
        raise AssertionError("a member was fitted again after the search")

    monkeypatch.setattr(search_mod, "fit_config", no_refit)
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    run = tmp_path / "run"
    result = autodl.search(X, y, n_trials=6, seed=0, cv=3, out=run, show_progress=False, refit=False)
    assert result.ensemble is not None and result.ensemble["refit"] is False
    members = {m["trial_id"]: m["weight"] for m in result.ensemble["members"]}
    trials = {t.id: t for t in result.study.trials}
    prep = search_mod.prepare_run(run, search_mod.load_spec(run))
    rows = prep.X_test
    expected = 0.0
    for tid, weight in members.items():
        for train, _ in StratifiedKFold(3, shuffle=True, random_state=0).split(prep.X_train, prep.y_train):
            pipe = build_pipeline(trials[tid].config, prep.X_train, "classification", 0, plan=prep.plan)
            pipe.fit(prep.X_train.iloc[train], prep.y_train.iloc[train])
            expected = expected + weight / 3 * pipe.predict_proba(rows)
    np.testing.assert_allclose(result.best_model.predict_proba(rows), expected, atol=1e-6)
    assert len(result.best_model.members) == len(members)  # one per trial, each averaging its 3 fold models
    assert len(result.best_model.flat_members()) == 3 * len(members)  # what the ONNX graph holds
    # the fold models were pickled only in the search's private temporary folder, gone now
    assert list(private.iterdir()) == [] and not list(run.rglob("*.pkl"))


def test_members_whose_refit_is_out_of_time_keep_their_fold_models(tmp_path, monkeypatch):
    """refit=None under a time budget: the members whose refits do not fit in the time left
    predict with the fold models their validation fitted (the first member is refit).
    The deadline is simulated: the refits leave time for the first member only. Oracle: the
    first member's pipeline fitted by hand on all rows, the others' fold models fitted by hand
    on scikit-learn's folds of the training rows."""
    import importlib
    import tempfile

    import autodl
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import StratifiedKFold

    from autodl.tabular.pipeline import build_pipeline

    search_mod = importlib.import_module("autodl.tabular.search")
    refit = search_mod._refit_members

    def first_only(prep, members, deadline):
        return refit(prep, list(members)[:1], deadline)

    monkeypatch.setattr(search_mod, "_refit_members", first_only)
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    run = tmp_path / "run"
    result = autodl.search(X, y, n_trials=6, seed=0, cv=3, time_budget=300, out=run, show_progress=False)
    ens = result.ensemble
    assert ens is not None and len(ens["members"]) >= 2 and "refit" not in ens
    assert [m["fitted"] for m in ens["members"]] == ["refit on all rows"] + ["fold models"] * (len(ens["members"]) - 1)
    assert ens.get("fold_model_members") == [m["trial_id"] for m in ens["members"][1:]]
    trials = {t.id: t for t in result.study.trials}
    prep = search_mod.prepare_run(run, search_mod.load_spec(run))
    rows = prep.X_test
    first = ens["members"][0]
    pipe = build_pipeline(trials[first["trial_id"]].config, prep.X_all, "classification", 0, plan=prep.plan)
    expected = first["weight"] * pipe.fit(prep.X_all, prep.y_all).predict_proba(rows)
    for member in ens["members"][1:]:
        for train, _ in StratifiedKFold(3, shuffle=True, random_state=0).split(prep.X_train, prep.y_train):
            pipe = build_pipeline(trials[member["trial_id"]].config, prep.X_train, "classification", 0, plan=prep.plan)
            pipe.fit(prep.X_train.iloc[train], prep.y_train.iloc[train])
            expected = expected + member["weight"] / 3 * pipe.predict_proba(rows)
    np.testing.assert_allclose(result.best_model.predict_proba(rows), expected, atol=1e-6)
    saved = json.loads((run / "result.json").read_text())["extra"]["ensemble"]
    assert [m["fitted"] for m in saved["members"]] == [m["fitted"] for m in ens["members"]]
    assert list(private.iterdir()) == [] and not list(run.rglob("*.pkl"))  # the pickles are gone


@pytest.mark.parametrize("refit", [None, True])
def test_by_default_the_members_are_fitted_again_on_all_rows(refit):
    import autodl
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = autodl.search(X, y, n_trials=6, seed=0, cv=3, test_size=0, refit=refit, show_progress=False)
    assert result.ensemble is not None and "refit" not in result.ensemble
    assert {m["fitted"] for m in result.ensemble["members"]} == {"refit on all rows"}
    assert len(result.best_model.members) == len(result.ensemble["members"])  # one refit pipeline each
    for (w, model), member in zip(result.best_model.members, result.ensemble["members"]):
        assert type(model).__name__ == "Pipeline" and w == pytest.approx(member["weight"], abs=1e-6)
        assert model.n_features_in_ == X.shape[1] and len(model[-1].classes_) == 2
    with pytest.raises(autodl.UserError, match="refit is 'yes'"):
        autodl.search(X, y, n_trials=1, refit="yes")


def test_an_ensemble_of_fold_averages_is_one_onnx_graph(tmp_path):
    """Members that average fold models (what a search keeps) go into the graph model by model."""
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from sklearn.datasets import load_wine
    from sklearn.model_selection import StratifiedKFold

    from autodl.export import export_onnx
    from autodl.export.runtime import read_metadata, table_to_feeds
    from autodl.tabular.pipeline import build_pipeline

    configs = [{"model": "hist_gb", "impute": "mean", "scaler": "none", "encoder": "ordinal", "class_weight": "none",
                "hist_gb.learning_rate": 0.1, "hist_gb.max_iter": 50, "hist_gb.max_leaf_nodes": 15,
                "hist_gb.min_samples_leaf": 20, "hist_gb.l2_regularization": 1e-6},
               {"model": "linear", "impute": "mean", "scaler": "standard", "encoder": "onehot",
                "class_weight": "none", "linear.alpha": 1.0}]
    X, y = load_wine(return_X_y=True, as_frame=True)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    averages = []
    for config in configs:
        fitted = [build_pipeline(config, X, "classification", 0).fit(X.iloc[tr], y.iloc[tr]) for tr, _ in folds]
        averages.append(EnsembleModel([(1 / 3, m) for m in fitted], "classification"))
    ens = EnsembleModel([(0.75, averages[0]), (0.25, averages[1])], "classification")
    assert len(ens.members) == 2 and len(ens.flat_members()) == 6
    path = export_onnx(ens, tmp_path / "folds.onnx", sample=X.iloc[:64])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = X.iloc[:7]
    got = session.run(None, table_to_feeds(rows, read_metadata(session)))
    expected = sum(0.75 / 3 * m.predict_proba(rows) for m in [a for _, a in averages[0].members]) + sum(
        0.25 / 3 * m.predict_proba(rows) for m in [a for _, a in averages[1].members])
    np.testing.assert_allclose(got[1], expected, atol=1e-5)
    assert list(got[0]) == list(expected.argmax(1))
