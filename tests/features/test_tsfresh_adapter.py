"""TsfreshTransformer: wide and long input, selection against the target, stable columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

pytest.importorskip("tsfresh")

from autodl.errors import DataError, UserError  # noqa: E402
from autodl.features import TsfreshTransformer, _cache  # noqa: E402

from fe_data import DYNAMICS, ar_series  # noqa: E402


def test_fit_selects_with_the_target_and_transform_keeps_the_columns():
    X, y = ar_series()
    tr = TsfreshTransformer(feature_set=DYNAMICS).fit(X.iloc[:32], y[:32])
    assert tr.n_features_extracted_ == 5
    # the class is in the autocorrelation, not in the (standardized) mean and deviation
    assert any("autocorrelation__lag_1" in f for f in tr.features_)
    assert not any(f.endswith("__mean") or f.endswith("standard_deviation") for f in tr.features_)
    out = tr.transform(X.iloc[32:])
    assert list(out.columns) == tr.features_ and out.shape == (16, len(tr.features_))
    assert list(out.index) == list(X.index[32:]) and not out.isna().any().any()
    # new rows, cold cache: only the selected features are computed, same values
    _cache.clear_caches()
    again = tr.transform(X.iloc[32:])
    np.testing.assert_allclose(again.to_numpy(), out.to_numpy())
    assert list(tr.get_feature_names_out()) == tr.features_


def test_selection_depends_on_the_target():
    X, y = ar_series()
    rng = np.random.default_rng(1)
    noise = pd.Series(rng.permutation(y.to_numpy()))
    with_y = TsfreshTransformer(feature_set=DYNAMICS).fit(X, y)
    without = TsfreshTransformer(feature_set=DYNAMICS, select=False).fit(X, y)
    shuffled = TsfreshTransformer(feature_set=DYNAMICS).fit(X, noise)
    assert len(with_y.features_) < len(without.features_)
    assert with_y.features_ != shuffled.features_


def test_clone_and_params():
    tr = TsfreshTransformer(feature_set="minimal", fdr_level=0.1, n_jobs=0)
    twin = clone(tr)
    assert twin.get_params() == tr.get_params()
    X, y = ar_series(n=24)
    fitted = clone(tr).fit(X, y)
    assert not hasattr(tr, "features_") and hasattr(fitted, "features_")
    assert clone(fitted).get_params()["feature_set"] == "minimal"


def test_row_cache_is_reused_across_folds():
    X, y = ar_series()
    tr = TsfreshTransformer(feature_set=DYNAMICS)
    tr.fit(X.iloc[:30], y[:30])
    computed = _cache.ROWS.rows_computed
    clone(tr).fit(X.iloc[10:40], y[10:40])  # 20 rows seen before, 10 new
    assert _cache.ROWS.rows_computed - computed == 10
    clone(tr).fit(X.iloc[:30], y[:30])
    assert _cache.ROWS.rows_computed - computed == 10


def test_disk_cache(tmp_path):
    X, y = ar_series(n=24)
    TsfreshTransformer(feature_set=DYNAMICS, cache_dir=str(tmp_path)).fit(X, y)
    assert list(tmp_path.glob("rows-*.parquet"))
    _cache.clear_caches()
    TsfreshTransformer(feature_set=DYNAMICS, cache_dir=str(tmp_path)).fit(X, y)
    assert _cache.ROWS.rows_computed == 0


def test_long_form_with_ids_and_new_series():
    X, y = ar_series(n=30)
    long = X.reset_index().melt(id_vars="index", var_name="step", value_name="v").rename(columns={"index": "sid"})
    long["step"] = long["step"].str[1:].astype(int)
    long["sid"] = "s" + long["sid"].astype(str)
    ids = pd.DataFrame({"sid": [f"s{i}" for i in range(30)]})
    tr = TsfreshTransformer(form="long", column_id="sid", column_sort="step", timeseries=long,
                            feature_set=DYNAMICS).fit(ids.iloc[:20], y[:20])
    wide = TsfreshTransformer(feature_set=DYNAMICS).fit(X.iloc[:20], y[:20])
    assert [f.split("__", 1)[1] for f in tr.features_] == [f.split("__", 1)[1] for f in wide.features_]
    np.testing.assert_allclose(tr.transform(ids.iloc[20:]).to_numpy(), wide.transform(X.iloc[20:]).to_numpy())
    with pytest.raises(DataError, match="no observations"):
        tr.transform(pd.DataFrame({"sid": ["nope"]}))


def test_wide_form_with_kinds_and_ragged_rows():
    X, y = ar_series(n=24, length=20)
    X2 = pd.concat([X.add_prefix("a__").rename(columns=lambda c: c.replace("__t", "__")),
                    (X * 2).add_prefix("b__").rename(columns=lambda c: c.replace("__t", "__"))], axis=1)
    X2.iloc[0, 15:20] = np.nan  # a shorter series
    tr = TsfreshTransformer(kind_sep="__", feature_set=DYNAMICS, select=False).fit(X2, y)
    assert {f.split("__")[0] for f in tr.features_} == {"a", "b"}
    assert not tr.transform(X2).isna().any().any()


def test_in_a_pipeline():
    X, y = ar_series()
    pipe = Pipeline([("ts", TsfreshTransformer(feature_set=DYNAMICS)), ("clf", LogisticRegression())])
    pipe.fit(X.iloc[:32], y[:32])
    assert (pipe.predict(X.iloc[32:]) == y[32:].to_numpy()).mean() > 0.8


def test_bad_parameters_are_one_line_errors():
    X, y = ar_series(n=12)
    with pytest.raises(UserError, match="feature_set"):
        TsfreshTransformer(feature_set="huge").fit(X, y)
    with pytest.raises(UserError, match="form"):
        TsfreshTransformer(form="tall").fit(X, y)
    with pytest.raises(UserError, match="column_id"):
        TsfreshTransformer(form="long").fit(X, y)
