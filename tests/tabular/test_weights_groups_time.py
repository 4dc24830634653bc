"""Sample weights, groups, time-ordered splits and metric functions in the tabular search.

The oracles are scikit-learn's own: Ridge fitted with ``sample_weight``, metrics called with
``sample_weight``, ``TimeSeriesSplit`` on rows sorted by date, and group leakage that only a
group-disjoint split removes.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import autodl
from autodl import Categorical, Space, Study, UserError
from autodl.tabular.pipeline import TIME_FOLDS, cv_splits
from autodl.tabular.search import SearchSpec, prepare, resume_run

pytestmark = pytest.mark.usefixtures("one_openmp_thread")

#: one Ridge(alpha) per alpha: the pipeline is impute (nothing missing) + standard scaler + Ridge
def ridge_space(*alphas: float) -> Space:
    return Space({"model": Categorical(["linear"]), "linear.alpha": Categorical(list(alphas))})


def ridge(alpha: float = 1.0):
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


def weighted_score(X, y, w, train, val, metric, alpha=1.0) -> float:
    """``metric`` of a Ridge fitted on the ``train`` rows (weighted) on the ``val`` rows (weighted)."""
    fit_w = None if w is None else w[train]
    model = ridge(alpha).fit(X.iloc[train], y[train], ridge__sample_weight=fit_w)
    return metric(y[val], model.predict(X.iloc[val]), sample_weight=None if w is None else w[val])


@pytest.fixture(scope="module")
def dated():
    """Diabetes with a date per row (unique dates, shuffled) and skewed weights."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    dates = pd.date_range("2021-01-01", periods=len(X), freq="D")[rng.permutation(len(X))]
    w = np.where(rng.random(len(X)) < 0.3, 5.0, 0.2)
    return X.assign(when=dates), y.to_numpy(), w


def leaky_groups(n_groups=40, size=8, seed=0):
    """Rows of a group share a feature value and a random label: memorizing the groups scores
    well only when a group is on both sides of a split."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), size)
    labels = rng.integers(0, 2, n_groups)
    X = pd.DataFrame({"code": groups + rng.normal(0, 0.01, len(groups)), "noise": rng.normal(size=len(groups))})
    return X, labels[groups], groups


FOREST = Space({"model": Categorical(["random_forest"]), "random_forest.n_estimators": Categorical([30])})


# ------------------------------------------------------------------------------- weights
def test_weighted_time_cv_test_score_and_refit_match_sklearn(dated, tmp_path):
    X, y, w = dated
    result = autodl.search(X, y, space=ridge_space(1.0), searcher="grid", n_trials=1, cv="time",
                           time_column="when", column_roles={"when": "ignore"}, sample_weight=w,
                           metric=(mean_absolute_error, "minimize"), out=tmp_path / "run")
    order = np.argsort(X["when"].to_numpy(), kind="stable")
    n_train = len(X) - int(np.ceil(0.2 * len(X)))
    train, test = order[:n_train], order[n_train:]
    folds = [(train[a], train[b]) for a, b in TimeSeriesSplit(n_splits=TIME_FOLDS).split(train)]
    features = X.drop(columns="when")
    cv = np.mean([weighted_score(features, y, w, a, b, mean_absolute_error) for a, b in folds])
    unweighted = np.mean([weighted_score(features, y, None, a, b, mean_absolute_error) for a, b in folds])
    assert abs(cv - unweighted) > 0.1  # the weights matter, so a search ignoring them fails below
    assert result.best_score == pytest.approx(cv, rel=1e-9)
    test_mae = weighted_score(features, y, w, train, test, mean_absolute_error)
    assert result.test_score == pytest.approx(test_mae, rel=1e-9)
    # the model kept is refit on all rows with their weights
    refit = ridge().fit(features, y, ridge__sample_weight=w)
    assert np.allclose(result.predict(X), refit.predict(features))
    # the leaderboard is named after the function; run.json keeps its name and direction
    assert "mean_absolute_error" in result.leaderboard.columns
    spec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (spec["metric"], spec["metric_direction"], spec["time_column"]) == ("mean_absolute_error", "minimize",
                                                                             "when")


def test_the_torch_mlp_weights_each_rows_loss():
    from autodl.tabular.torch_mlp import TorchMLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    heavy = np.arange(200) % 2 == 0
    y = np.where(heavy, 0.0, 10.0)  # the same inputs, two targets: the weights decide
    w = np.where(heavy, 1.0, 0.0)
    mlp = TorchMLPRegressor(max_epochs=40, early_stopping=False, random_state=0)
    assert abs(mlp.fit(X, y).predict(X).mean() - 5.0) < 1.0
    assert abs(mlp.fit(X, y, sample_weight=w).predict(X).mean()) < 1.0


def test_knn_is_fitted_unweighted_and_said_once(capsys):
    X, y, _ = leaky_groups()
    space = Space({"model": Categorical(["knn"]), "knn.n_neighbors": Categorical([3, 5])})
    result = autodl.search(X, y, space=space, searcher="grid", n_trials=2, cv=3,
                           sample_weight=np.ones(len(y)), show_progress=False)
    assert np.isfinite(result.best_score)
    assert capsys.readouterr().err.count("k-NN takes no sample weights") == 1


# -------------------------------------------------------------------------------- groups
def test_groups_keep_every_split_group_disjoint(tmp_path):
    X, y, groups = leaky_groups()
    seen = []

    def hits(y_true, y_pred):
        seen.append(set(np.unique(y_pred)))
        return accuracy_score(y_true, y_pred)

    leaky = autodl.search(X, y, space=FOREST, searcher="grid", n_trials=1, cv=4, show_progress=False)
    assert leaky.best_score > 0.9 and leaky.test_score > 0.9  # a group on both sides is memorized
    result = autodl.search(X, y, space=FOREST, searcher="grid", n_trials=1, cv=4, groups=groups, metric=hits,
                           out=tmp_path / "run")
    assert result.best_score < 0.75 and result.test_score < 0.8  # unseen groups: about chance
    assert "hits" in result.leaderboard.columns and seen and all(s <= {0, 1} for s in seen)  # labels
    with np.load(tmp_path / "run" / "split.npz") as split:
        train, test = split["train"], split["test"]
    assert len(test) and not set(groups[train]) & set(groups[test])


@pytest.mark.parametrize("task,cv", [("classification", 4), ("regression", 4), ("classification", "holdout")])
def test_group_folds_never_share_a_group(task, cv):
    X, y, groups = leaky_groups()
    splits = cv_splits(task, X, y, cv, 0, groups)
    assert len(splits) == (1 if cv == "holdout" else cv)
    for train, val in splits:
        assert len(val) and not set(groups[train]) & set(groups[val])


def test_the_estimators_take_weights_and_groups():
    X, y, w = load_diabetes(return_X_y=True)[0], load_diabetes(return_X_y=True)[1], None
    w = np.random.default_rng(1).uniform(0, 3, len(y))
    reg = autodl.AutoDLRegressor(n_trials=1, cv=3, searcher="grid", space=ridge_space(1.0))
    reg.fit(X, y, sample_weight=w)
    assert np.allclose(reg.predict(X), ridge().fit(X, y, ridge__sample_weight=w).predict(X))
    Xg, yg, groups = leaky_groups()
    clf = autodl.AutoDLClassifier(n_trials=1, cv=4, searcher="grid", space=FOREST)
    assert clf.fit(Xg, yg).best_score_ > 0.9
    assert clf.fit(Xg, yg, groups=groups).best_score_ < 0.75


# ---------------------------------------------------------------------------------- time
def test_time_folds_never_train_on_a_later_row(dated):
    X, y, _ = dated
    prep = prepare(SearchSpec(n_trials=1, cv="time", test_size=0.25), X, y)  # the one date column, inferred
    assert prep.spec.time_column == "when"
    dates = X["when"].to_numpy()
    train, test = prep.split["train"], prep.split["test"]
    assert len(test) == int(np.ceil(0.25 * len(X))) and dates[train].max() < dates[test].min()
    splits = cv_splits(prep.task, prep.X_train, prep.y_train, prep.spec.cv, 0)
    in_order = np.argsort(dates[train], kind="stable")
    expected = [(set(train[in_order[a]]), set(train[in_order[b]])) for a, b in TimeSeriesSplit(TIME_FOLDS).split(train)]
    assert [(set(train[a]), set(train[b])) for a, b in splits] == expected
    for fit_rows, val_rows in splits:
        assert dates[train[fit_rows]].max() < dates[train[val_rows]].min()


# ------------------------------------------------------------------------ run folders, resume
def test_resume_keeps_the_weights_and_groups(autodl_cli, tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(2)
    w, groups = rng.uniform(0, 4, len(y)), rng.choice(["a", "b", "c", "d", "e", "f"], len(y))
    kwargs = dict(space=ridge_space(0.1, 30.0), searcher="grid", cv=3, show_progress=False)
    whole = autodl.search(X, y, n_trials=2, sample_weight=w, groups=groups, **kwargs)
    plain = autodl.search(X, y, n_trials=2, **kwargs)
    autodl.search(X, y, n_trials=1, sample_weight=w, groups=groups, out=tmp_path / "run", **kwargs)
    proc = autodl_cli("resume", "run", "--trials", "2", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    values = [t.value for t in sorted(Study.load(tmp_path / "run").trials, key=lambda t: t.id)]
    expected = [t.value for t in sorted(whole.study.trials, key=lambda t: t.id)]
    unweighted = [t.value for t in sorted(plain.study.trials, key=lambda t: t.id)]
    assert values == pytest.approx(expected, rel=1e-9) and values[1] != pytest.approx(unweighted[1], rel=1e-3)


def test_a_metric_function_run_resumes_from_python_only(autodl_cli, tmp_path):
    X, y, _ = leaky_groups()
    space = Space({"model": Categorical(["random_forest"]), "random_forest.n_estimators": Categorical([20, 30])})
    kwargs = dict(space=space, searcher="grid", cv=3, show_progress=False)
    autodl.search(X, y, n_trials=1, metric=accuracy_score, out=tmp_path / "run", **kwargs)
    proc = autodl_cli("resume", "run", "--trials", "2", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Python function" in lines[0] and "resume_run" in lines[0], proc.stderr
    autodl.search(X, y, n_trials=1, out=tmp_path / "plain", **kwargs)
    with pytest.raises(UserError, match="metric= is for a run whose metric was a Python function"):
        resume_run(tmp_path / "plain", metric=accuracy_score)
    result = resume_run(tmp_path / "run", n_trials=2, metric=accuracy_score)
    assert result.metric == "accuracy_score" and result.study.n_finished == 2


# ----------------------------------------------------------------------------- CLI
def test_cli_weight_groups_and_time_columns(autodl_cli, tmp_path):
    X, y, groups = leaky_groups()
    rng = np.random.default_rng(3)
    table = X.assign(g=groups, w=rng.uniform(0.5, 2, len(y)), label=y,
                     when=pd.date_range("2022-01-01", periods=len(y), freq="h")[rng.permutation(len(y))])
    table.to_csv(tmp_path / "t.csv", index=False)
    common = ["--data", "t.csv", "--target", "label", "--trials", "1", "--searcher", "random", "--quiet"]
    proc = autodl_cli("search", *common, "--weight", "w", "--groups", "g", "--cv", "3", "--out", "grouped",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "grouped"
    spec = json.loads((run / "run.json").read_text())
    assert (spec["weight_column"], spec["groups_column"]) == ("w", "g")
    assert {c["name"] for c in spec["column_plan"]["columns"]} == {"code", "noise", "when"}  # w, g: not features
    with np.load(run / "split.npz") as split:
        assert not set(groups[split["train"]]) & set(groups[split["test"]])
    proc = autodl_cli("resume", "grouped", "--trials", "2", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = autodl_cli("search", *common, "--weight", "w", "--cv", "time", "--out", "dated", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    dates = pd.to_datetime(table["when"]).to_numpy()
    with np.load(tmp_path / "dated" / "split.npz") as split:
        assert dates[split["train"]].max() < dates[split["test"]].min()
    assert json.loads((tmp_path / "dated" / "run.json").read_text())["time_column"] == "when"


CLI_MISTAKES = {
    "unknown weight column": (["--weight", "nope"], "'nope'"),
    "negative weights": (["--weight", "x"], "negative"),
    "time without a date": (["--cv", "time"], "time_column"),
    "time column without time cv": (["--time-column", "x"], "--cv time"),
}


@pytest.mark.parametrize("case", sorted(CLI_MISTAKES))
def test_cli_mistakes_are_one_line_exit_2_and_no_run_folder(autodl_cli, tmp_path, case):
    flags, needle = CLI_MISTAKES[case]
    rng = np.random.default_rng(4)
    pd.DataFrame({"x": rng.normal(size=30), "label": rng.integers(0, 2, 30)}).to_csv(tmp_path / "t.csv", index=False)
    proc = autodl_cli("search", "--data", "t.csv", "--target", "label", "--trials", "1", *flags, "--out", "run",
                      cwd=tmp_path, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------- Python mistakes
N = 30
PY_MISTAKES = {
    "negative weight": (dict(sample_weight=np.r_[-1.0, np.ones(N - 1)]), "1 negative values"),
    "missing weight": (dict(sample_weight=np.r_[np.nan, np.ones(N - 1)]), "1 missing"),
    "zero weights": (dict(sample_weight=np.zeros(N)), "zero on every row"),
    "short weights": (dict(sample_weight=np.ones(N - 1)), "sample_weight has shape (29,)"),
    "missing group": (dict(groups=np.r_[None, np.arange(N - 1)]), "1 missing values"),
    "one group": (dict(groups=np.zeros(N)), "at least 2"),
    "no date column": (dict(cv="time"), "time_column="),
    "two date columns": (dict(cv="time", X="two dates"), "2 (a, b)"),
    "time column without time cv": (dict(time_column="a", X="two dates"), "cv='time'"),
    "time with groups": (dict(cv="time", groups=np.arange(N) % 3, X="two dates"), "not by groups"),
    "bad metric direction": (dict(metric=(accuracy_score, "up")), "'minimize'"),
}


@pytest.mark.parametrize("case", sorted(PY_MISTAKES))
def test_python_mistakes_are_one_user_error(tmp_path, case):
    kwargs, needle = dict(PY_MISTAKES[case][0]), PY_MISTAKES[case][1]
    rng = np.random.default_rng(5)
    X = pd.DataFrame({"x": rng.normal(size=N)})
    if kwargs.pop("X", None):
        X = X.assign(a=pd.date_range("2020-01-01", periods=N), b=pd.date_range("2021-06-01", periods=N, freq="h"))
    with pytest.raises(UserError, match=None) as info:
        autodl.search(X, np.arange(N) % 2, n_trials=1, out=tmp_path / "run", **kwargs)
    message = str(info.value)
    assert needle in message and "\n" not in message, message
    assert not (tmp_path / "run").exists()
