"""autodl.search and the CLI with feature engineering: tsfresh, featuretools, entity sets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tsfresh")
pytest.importorskip("featuretools")

import autodl  # noqa: E402
from autodl import TrialState, UserError  # noqa: E402
from autodl.features import TsfreshTransformer, _cache  # noqa: E402
from fe_data import DYNAMICS, ar_series  # noqa: E402

SMALL = dict(cv=3, seed=0)
LIGHT = autodl.Space({  # cheap models, so these tests measure the feature step
    "model": autodl.Categorical(["linear", "knn"]),
    "linear.alpha": autodl.Float(1e-3, 10.0, log=True, condition={"model": ["linear"]}),
    "knn.n_neighbors": autodl.Int(1, 15, condition={"model": ["knn"]}),
})


def test_tsfresh_search_beats_raw_values_and_caches_across_trials(tmp_path):
    X, y = ar_series(n=60, length=40)
    raw = autodl.search(X, y, n_trials=3, space=LIGHT, **SMALL)
    fe = autodl.search(X, y, n_trials=3, space=LIGHT, features={"kind": "tsfresh", "feature_set": DYNAMICS},
                       out=tmp_path / "run", **SMALL)
    assert all(t.state == TrialState.COMPLETE for t in fe.study.trials)
    assert fe.best_score > 0.9 and fe.test_score > 0.9
    assert raw.best_score < fe.best_score
    # every row was extracted once in full: later folds and trials hit the cache
    assert _cache.ROWS.rows_computed <= 2 * len(X)  # without the cache: 3 trials x 3 folds x 40 rows
    step = fe.best_model.named_steps["features"]
    assert isinstance(step, TsfreshTransformer) and step.cache_dir == str(tmp_path / "run" / "feature_cache")
    spec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert spec["features"]["kind"] == "tsfresh"
    # the saved model (skops) predicts on raw series
    from autodl.tabular import load_best_model

    model = load_best_model(tmp_path / "run")
    np.testing.assert_array_equal(model.predict(X.iloc[:10]), fe.predict(X.iloc[:10]))


def test_featuretools_single_table_with_categorical_and_missing_values():
    rng = np.random.default_rng(0)
    n = 90
    a, b = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "blue", "green"], n).astype(object)
    y = np.where(a * b > 0, "same", "diff")
    a[rng.random(n) < 0.05] = np.nan
    color[rng.random(n) < 0.1] = None
    X = pd.DataFrame({"a": a, "b": b, "color": color})
    r = autodl.search(X, y, n_trials=3, space=LIGHT, features="featuretools", **SMALL)
    assert all(t.state == TrialState.COMPLETE for t in r.study.trials), [t.message for t in r.study.trials]
    assert "a * b" in r.best_model.named_steps["features"].feature_names_out_
    assert r.best_score > 0.75
    new = pd.DataFrame({"a": [0.5, np.nan], "b": [1.0, -1.0], "color": ["purple", None]})
    assert r.predict(new).shape == (2,)


def test_unknown_features_kind():
    X, y = ar_series(n=12)
    with pytest.raises(UserError, match="unknown features kind 'magic'"):
        autodl.search(X, y, n_trials=1, features="magic")


def _long_csv(tmp_path, n=36, length=30):
    X, y = ar_series(n=n, length=length)
    X = X + y.to_numpy()[:, None]  # the class shifts the level too: minimal features see it
    long = X.reset_index().melt(id_vars="index", var_name="time", value_name="value")
    long = long.rename(columns={"index": "series"})
    long["time"] = long["time"].str[1:].astype(int)
    long = long.sample(frac=1.0, random_state=0)  # order must not matter
    long.to_csv(tmp_path / "series.csv", index=False)
    pd.DataFrame({"series": range(n), "label": y}).to_csv(tmp_path / "labels.csv", index=False)
    long.merge(pd.DataFrame({"series": range(n), "label": y})).to_csv(tmp_path / "with_label.csv", index=False)


def _cli(tmp_path, monkeypatch, *args) -> int:
    """``autodl ARGS`` in this process: a subprocess would spend most of these tests importing
    tsfresh and featuretools again (about 5 s each on a quiet machine, 15 s on a busy one); the
    console entry point itself is tested in tests/cli."""
    from autodl.cli.main import main

    monkeypatch.chdir(tmp_path)
    return main([str(a) for a in args])


@pytest.mark.slow
def test_cli_timeseries(tmp_path, monkeypatch, capsys):
    _long_csv(tmp_path)
    space = tmp_path / "light.yaml"
    space.write_text(json.dumps({"name": "light", "parameters": {
        "model": {"type": "categorical", "choices": ["linear"]}}}))
    code = _cli(tmp_path, monkeypatch, "search", "--task", "timeseries", "--data", "series.csv", "--labels",
                "labels.csv", "--target", "label", "--id-column", "series", "--sort-column", "time",
                "--feature-set", "minimal", "--space", space, "--trials", "2", "--cv", "3", "--quiet",
                "--out", "run")
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["extra"]["task"] == "classification" and result["best_value"] > 0.8
    spec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert spec["timeseries"]["id_column"] == "series"
    assert spec["features"] == {"kind": "tsfresh", "feature_set": "minimal"}
    # target inside the series file, constant per id: the same rows and targets
    from autodl.features.io import load_series

    X1, y1 = load_series(tmp_path / "with_label.csv", "label", "series", "time")
    X2, y2 = load_series(tmp_path / "series.csv", "label", "series", "time", labels=tmp_path / "labels.csv")
    pd.testing.assert_frame_equal(X1, X2)
    assert list(y1) == list(y2) and X1.shape == (36, 30) and list(X1.columns[:2]) == ["value__0", "value__1"]

def _one_line_error(capsys, tmp_path, monkeypatch, args, pattern):
    from autodl.cli.main import main

    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["search", *args, "--trials", "1", "--out", "bad"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and pattern in lines[0], lines
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("args, pattern", [
    (["--id-column", "nope", "--sort-column", "time"], "id column 'nope' is not in"),
    (["--id-column", "series", "--sort-column", "nope"], "sort column 'nope' is not in"),
    (["--id-column", "series", "--sort-column", "time", "--features", "featuretools"], "tsfresh"),
    (["--sort-column", "time"], "needs --id-column"),
    (["--id-column", "series"], "needs --sort-column"),
])
def test_cli_timeseries_errors(tmp_path, capsys, monkeypatch, args, pattern):
    _long_csv(tmp_path, n=8, length=5)
    _one_line_error(capsys, tmp_path, monkeypatch, ["--task", "timeseries", "--data", "series.csv", "--labels",
                                                    "labels.csv", "--target", "label", *args], pattern)


@pytest.mark.parametrize("args, pattern", [
    (["--entityset", "missing.yaml", "--target", "big"], "does not exist"),
    (["--dataset", "iris", "--features", "magic"], "unknown features kind 'magic'"),
    (["--dataset", "iris", "--id-column", "x"], "only apply with --task timeseries"),
    (["--dataset", "iris", "--labels", "x.csv"], "only apply with --task timeseries"),
    (["--dataset", "iris", "--feature-set", "minimal"], "--feature-set applies to tsfresh"),
    (["--entityset", "es.yaml", "--target", "big", "--features", "tsfresh"], "featuretools"),
    (["--entityset", "es.yaml"], "needs --target"),
])
def test_cli_feature_errors(tmp_path, capsys, monkeypatch, args, pattern):
    (tmp_path / "es.yaml").write_text("target: a\ntables:\n  a: {path: a.csv, index: id}\n")
    _one_line_error(capsys, tmp_path, monkeypatch, args, pattern)


@pytest.mark.slow
def test_cli_entityset(tmp_path, capsys, monkeypatch):
    import featuretools as ft

    data = ft.demo.load_mock_customer(n_customers=24, n_sessions=120, n_transactions=900, random_seed=0)
    c = data["customers"].copy()
    spend = data["transactions"].merge(data["sessions"]).groupby("customer_id")["amount"].sum()
    c["big"] = (c["customer_id"].map(spend) > spend.median()).map({True: "yes", False: "no"})
    c.to_csv(tmp_path / "customers.csv", index=False)
    data["sessions"].to_csv(tmp_path / "sessions.csv", index=False)
    data["transactions"].to_csv(tmp_path / "transactions.csv", index=False)
    (tmp_path / "es.yaml").write_text(
        "target: customers\n"
        "tables:\n"
        "  customers: {path: customers.csv, index: customer_id, time_index: join_date, parse_dates: [birthday]}\n"
        "  sessions: {path: sessions.csv, index: session_id, time_index: session_start}\n"
        "  transactions: {path: transactions.csv, index: transaction_id, time_index: transaction_time}\n"
        "relationships:\n"
        "  - [customers, customer_id, sessions, customer_id]\n"
        "  - [sessions, session_id, transactions, session_id]\n"
        "agg_primitives: [sum, count, mean]\n"
        "trans_primitives: [month]\n")
    code = _cli(tmp_path, monkeypatch, "search", "--entityset", "es.yaml", "--target", "big", "--trials", "2",
                "--cv", "2", "--test-size", "0", "--quiet", "--out", "run")
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["extra"]["task"] == "classification"
    from autodl.tabular import load_best_model

    model = load_best_model(tmp_path / "run")
    assert "SUM(transactions.amount)" in model.named_steps["features"].feature_names_out_
    capsys.readouterr()
    assert _cli(tmp_path, monkeypatch, "search", "--entityset", "es.yaml", "--target", "nope", "--trials", "1",
                "--out", "bad") == 2
    assert "target column 'nope' is not in table 'customers'" in capsys.readouterr().err
