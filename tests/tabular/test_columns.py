"""Column roles of tabular search (autodl/tabular/columns.py), checked against how the messy
table was made, pandas' calendar, and onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from autodl.errors import UserError
from autodl.tabular.columns import ColumnPlan, DateParts, infer_roles, prepare_frame

pytestmark = pytest.mark.usefixtures("one_openmp_thread")
LINEAR = {"parameters": {"model": {"type": "categorical", "choices": ["linear"]}}}  # a quick space


def messy(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A table whose columns' roles are known by construction; ``y`` depends on x1, the date's
    season, the product's level effect and membership."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=(2, n))
    dates = pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 6 * 365, n), unit="D")
    season = np.sin(2 * np.pi * dates.dayofyear.to_numpy() / 365.25)
    levels = rng.integers(0, 2000, n)
    effect = np.random.default_rng(1).normal(0, 1, 2000)[levels]
    member = rng.random(n) < 0.3
    frame = pd.DataFrame({
        "record_id": [f"R{i:07d}-{rng.integers(100)}" for i in rng.permutation(n)],
        "row_number": np.arange(n),
        "x1": x1, "x2": x2,
        "when": dates.strftime("%Y-%m-%d").astype(object),
        "product": np.char.add("P", levels.astype(str)),
        "shop": rng.choice(["north", "south", "east"], n).astype(object),
        "member": member,
        "constant": 7,
        "empty": np.nan,
        "x1_copy": x1,
        "mixed": np.where(rng.random(n) < 0.8, rng.integers(0, 5, n).astype(object), "n/a").astype(object),
    })
    frame.loc[rng.random(n) < 0.05, "shop"] = np.nan
    frame.loc[rng.random(n) < 0.05, "when"] = np.nan
    frame["y"] = 1.0 * x1 + 2.0 * season + 0.5 * effect + 0.5 * member + rng.normal(0, 0.3, n)
    return frame


EXPECTED = {"record_id": "ignore", "row_number": "ignore", "x1": "numeric", "x2": "numeric", "when": "datetime",
            "product": "high_cardinality", "shop": "categorical", "member": "boolean", "constant": "ignore",
            "empty": "ignore", "x1_copy": "ignore", "mixed": "categorical"}


def test_roles_of_a_messy_table():
    X = messy().drop(columns="y")
    plan = infer_roles(X)
    assert plan.roles == EXPECTED
    assert plan.reasons["record_id"].startswith("id-like") and plan.reasons["row_number"].startswith("id-like")
    assert (plan.reasons["constant"], plan.reasons["empty"], plan.reasons["x1_copy"]) == (
        "constant", "all-missing", "duplicate of x1")
    lines = plan.summary_lines()
    assert "numeric (2): x1, x2" in lines and "datetime (1): when" in lines
    assert any(line.startswith("ignored (5): record_id (id-like") for line in lines)
    # JSON round trip
    again = ColumnPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.roles == plan.roles and again.reasons == plan.reasons


def test_unique_floats_stay_numeric_and_free_text_is_left_out():
    rng = np.random.default_rng(0)
    words = np.array(["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "again"])
    X = pd.DataFrame({"price": rng.uniform(0, 100, 300),
                      "note": [" ".join(rng.choice(words, 6)) for _ in range(300)],
                      "stamp": pd.date_range("2020-01-01", periods=300, freq="h")})
    plan = infer_roles(X)
    assert plan.roles == {"price": "numeric", "note": "ignore", "stamp": "datetime"}
    assert plan.reasons["note"].startswith("free text")


def test_overrides_win_and_mistakes_are_one_line():
    X = messy(300).drop(columns="y")
    plan = infer_roles(X, overrides={"row_number": "numeric", "x2": "ignore", "shop": "high_cardinality"})
    assert (plan.roles["row_number"], plan.roles["x2"], plan.roles["shop"]) == ("numeric", "ignore", "high_cardinality")
    assert plan.roles["x1"] == "numeric"
    for bad, words in (({"nope": "ignore"}, "no column 'nope'"), ({"x1": "texty"}, "unknown role 'texty'")):
        with pytest.raises(UserError, match=words) as info:
            infer_roles(X, overrides=bad)
        assert "\n" not in str(info.value)
    # a numeric column declared a date is taken as epoch seconds; a code declared categorical is text
    X2 = pd.DataFrame({"t": [0.0, 86400.0 * 366], "zip": [2134, 90210]})
    plan2 = infer_roles(X2, overrides={"t": "datetime", "zip": "categorical"})
    prepared = prepare_frame(X2, plan2)
    assert prepared["t"].tolist() == [0.0, 86400.0 * 366] and prepared["zip"].tolist() == ["2134", "90210"]


def test_prepare_frame_converts_dates_booleans_and_categories():
    X = pd.DataFrame({"d": ["2020-01-02", None, "2020-01-03T12:00:00+02:00"], "b": [True, False, None],
                      "c": [1.0, np.nan, 2.5], "n": [1, 2, 3]})
    plan = ColumnPlan({"d": "datetime", "b": "boolean", "c": "categorical", "n": "numeric"})
    out = prepare_frame(X, plan)
    day = pd.Timestamp("2020-01-02").timestamp()
    np.testing.assert_array_equal(out["d"], [day, np.nan, day + 86400 + 10 * 3600])  # +02:00 -> UTC
    np.testing.assert_array_equal(out["b"], [1.0, 0.0, np.nan])
    assert out["c"].tolist()[0::2] == ["1", "2.5"] and pd.isna(out["c"][1])
    pd.testing.assert_frame_equal(prepare_frame(out, plan), out)  # idempotent


def random_epochs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = pd.Timestamp("1900-01-01").timestamp(), pd.Timestamp("2100-12-31 23:59:59").timestamp()
    t = rng.integers(int(lo), int(hi), n).astype(np.float64)
    edges = [pd.Timestamp(s).timestamp() for s in ("1900-02-28", "1900-03-01", "1904-02-29", "1969-12-31 23:59:59",
                                                   "1970-01-01", "2000-02-29", "2000-12-31", "2096-12-31 12:00",
                                                   "2100-03-01")]
    t[:len(edges)] = edges
    return t


def test_date_parts_match_pandas():
    t = random_epochs(6000, 0).reshape(-1, 2)
    parts = DateParts().fit(t)
    out = parts.transform(t)
    assert parts.with_hour_.all() and out.shape == (3000, 14)
    for j in range(2):
        d = pd.to_datetime(t[:, j], unit="s")
        expected = np.c_[d.year, d.month, d.day, d.dayofweek, d.dayofyear, d.hour]
        np.testing.assert_array_equal(out[:, 7 * j:7 * j + 6], expected)
        np.testing.assert_allclose(out[:, 7 * j + 6], (t[:, j] - t[:, j].min()) / 86400)
    midnight = np.floor(t[:, :1] / 86400) * 86400  # no time of day: no hour column
    assert DateParts().fit(midnight).transform(midnight).shape == (3000, 6)
    assert np.isnan(parts.transform(np.full((1, 2), np.nan))).all()


def test_date_parts_in_onnx_equal_python():
    pytest.importorskip("skl2onnx")
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    from autodl.export.runtime import make_session
    from autodl.export.sklearn_onnx import TARGET_OPSET, register_autodl_models

    register_autodl_models()
    t = np.c_[random_epochs(3000, 1), np.floor(random_epochs(3000, 2) / 86400) * 86400]
    t[::13, 0] = np.nan
    parts = DateParts().fit(t)
    onx = convert_sklearn(parts, initial_types=[("t", DoubleTensorType([None, 2]))], target_opset=TARGET_OPSET)
    got = make_session(onx.SerializeToString(), threads=1).run(None, {"t": t})[0]
    np.testing.assert_array_equal(got, parts.transform(t))  # the same bits, NaN where missing


def test_memory_stays_bounded_by_rows_times_columns():
    from autodl.tabular.pipeline import build_pipeline

    n = 20_000
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"id": [f"u{i}" for i in rng.permutation(n)], "x": rng.normal(size=n),
                      "level": rng.integers(0, 3000, n).astype(str), "kind": rng.choice(list("abc"), n),
                      "day": pd.date_range("2000-01-01", periods=n, freq="D").strftime("%Y-%m-%d")})
    plan = infer_roles(X)
    assert plan.roles == {"id": "ignore", "x": "numeric", "level": "high_cardinality", "kind": "categorical",
                          "day": "datetime"}
    Xp = prepare_frame(X, plan)
    pipe = build_pipeline({"model": "linear", "encoder": "onehot"}, Xp, "regression", plan=plan)
    width = pipe.named_steps["preprocess"].fit_transform(Xp).shape[1]
    assert width == 1 + 1 + 3 + 6  # x, level code, 3 one-hot kinds, 6 date parts (no hour)


def test_missing_target_rows_are_dropped_with_a_note(capsys):
    from autodl.tabular.search import SearchSpec, prepare

    frame = messy(200)
    frame.loc[:6, "y"] = np.nan
    prep = prepare(SearchSpec(n_trials=1, space=LINEAR), frame.drop(columns="y"), frame["y"])
    assert "autodl: dropped 7 rows whose target is missing" in capsys.readouterr().err
    assert len(prep.y_all) == 193 and prep.plan.dropped_target_rows == 7
    assert prep.spec.column_plan["dropped_target_rows"] == 7


@pytest.mark.slow
def test_search_leaves_the_id_out_and_keeps_the_plan(tmp_path):
    import autodl

    frame = messy(1200)
    X, y = frame.drop(columns="y"), frame["y"]
    result = autodl.search(X, y, n_trials=2, cv=3, seed=0, out=tmp_path / "run", show_progress=False,
                           space=LINEAR, column_roles={"x2": "ignore"})
    selected = {c for name, _, cols in result.best_model.named_steps["preprocess"].transformers_
                if name != "remainder" for c in cols}
    assert selected == {"x1", "when", "product", "shop", "member", "mixed"}
    assert result.plan.roles["x2"] == "ignore" and result.plan.reasons["x2"] == "as asked"
    run = tmp_path / "run"
    stored = json.loads((run / "columns.json").read_text())
    assert stored == json.loads((run / "run.json").read_text())["column_plan"]
    assert json.loads((run / "result.json").read_text())["extra"]["columns"]["summary"] == stored["summary"]
    assert result.test_score > 0.5  # the date's season and the product carry most of the signal
    np.testing.assert_allclose(result.predict(X.iloc[:50]),
                               result.best_model.predict(prepare_frame(X.iloc[:50], result.plan)))


@pytest.mark.slow
def test_cli_search_export_and_predict_with_iso_dates(tmp_path, autodl_cli):
    pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from autodl.export import read_metadata
    from autodl.tabular.search import load_best_model

    messy(900).to_csv(tmp_path / "messy.csv", index=False)
    new = messy(200, seed=7).drop(columns="y")
    new.to_csv(tmp_path / "new.csv", index=False)
    proc = autodl_cli("search", "--data", "messy.csv", "--target", "y", "--trials", "3", "--cv", "3",
                      "--export-onnx", "m.onnx", "--out", "RUN", "--categorical", "mixed", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "autodl: columns: datetime (1): when" in proc.stderr
    meta = read_metadata(tmp_path / "m.onnx")
    assert meta["datetime_columns"] == ["when"] and meta["boolean_columns"] == ["member"]
    assert {i["column"] for i in meta["inputs"]} == {c for c, r in EXPECTED.items() if r != "ignore"}
    assert next(i["type"] for i in meta["inputs"] if i["column"] == "when") == "double"
    import onnx

    assert "Floor" in {node.op_type for node in onnx.load(tmp_path / "m.onnx").graph.node}  # DateParts
    proc = autodl_cli("predict", "m.onnx", "--data", "new.csv", "--out", "p.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    plan = ColumnPlan.from_dict(json.loads((tmp_path / "RUN" / "columns.json").read_text()))
    raw = pd.read_csv(tmp_path / "new.csv")  # dates as ISO strings, as autodl predict reads them
    expected = load_best_model(tmp_path / "RUN").predict(prepare_frame(raw, plan))
    np.testing.assert_allclose(pd.read_csv(tmp_path / "p.csv")["prediction"], expected, rtol=1e-4, atol=1e-5)


def test_role_flags(autodl_cli, tmp_path):
    from argparse import Namespace

    from autodl.tabular.kind import column_roles

    args = Namespace(ignore="a, b", categorical="zip", datetime=None)
    assert column_roles(args) == {"a": "ignore", "b": "ignore", "zip": "categorical"}
    with pytest.raises(UserError, match="two roles"):
        column_roles(Namespace(ignore="a", categorical="a", datetime=None))
    proc = autodl_cli("search", "--dataset", "digits", "--model", "mlp", "--ignore", "x", "--trials", "1",
                      cwd=tmp_path)
    assert proc.returncode == 2 and "--ignore does not apply to --model" in proc.stderr
