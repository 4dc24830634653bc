"""FeaturetoolsTransformer: one table and an entity set; features fixed at fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

ft = pytest.importorskip("featuretools")

from autodl.errors import DataError, UserError  # noqa: E402
from autodl.features import FeaturetoolsTransformer, _cache  # noqa: E402


@pytest.fixture(scope="module")
def mock():
    return ft.demo.load_mock_customer(n_customers=20, n_sessions=80, n_transactions=600, random_seed=0)


def relational(mock, **kw):
    return FeaturetoolsTransformer(
        target="customers", index="customer_id", time_index="join_date",
        tables={"sessions": {"data": mock["sessions"], "index": "session_id", "time_index": "session_start"},
                "transactions": {"data": mock["transactions"], "index": "transaction_id",
                                 "time_index": "transaction_time"}},
        relationships=[("customers", "customer_id", "sessions", "customer_id"),
                       ("sessions", "session_id", "transactions", "session_id")],
        agg_primitives=["sum", "mean", "count", "mode"], trans_primitives=["month"], **kw)


def test_single_table_transform_primitives():
    X = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0, 5.0], "b": [3, 1, 4, 1, 5],
                      "c": ["x", "y", "x", None, "y"]})
    tr = FeaturetoolsTransformer(trans_primitives=["multiply_numeric", "absolute"]).fit(X)
    out = tr.transform(X)
    assert "a * b" in out.columns and "ABSOLUTE(a)" in out.columns and "c" in out.columns
    assert list(out.columns) == tr.feature_names_out_
    np.testing.assert_allclose(out["a * b"].to_numpy(), (X["a"] * X["b"]).to_numpy())
    assert out["c"].dtype == object and out["a"].dtype == np.float64
    # new rows: same columns; an unseen category stays a string
    new = pd.DataFrame({"a": [7.0], "b": [2], "c": ["z"]})
    assert list(tr.transform(new).columns) == tr.feature_names_out_
    assert tr.transform(new)["a * b"].iloc[0] == 14.0


def test_entityset_aggregations_and_new_rows(mock):
    customers = mock["customers"]
    tr = relational(mock).fit(customers.iloc[:3])
    names = tr.feature_names_out_
    assert "SUM(transactions.amount)" in names and "COUNT(sessions)" in names
    assert any(n.startswith("MEAN(sessions.") for n in names)  # depth 2
    out = tr.transform(customers.iloc[3:])
    assert list(out.columns) == names and list(out.index) == list(customers.index[3:])
    tx = mock["transactions"].merge(mock["sessions"], on="session_id")
    expected = tx.groupby("customer_id")["amount"].sum().reindex(customers["customer_id"].iloc[3:])
    np.testing.assert_allclose(out["SUM(transactions.amount)"].to_numpy(), expected.to_numpy())
    # the stored definitions alone reproduce the matrix (no cache)
    _cache.clear_caches()
    np.testing.assert_array_equal(tr.transform(customers.iloc[3:]).to_numpy(dtype=object), out.to_numpy(dtype=object))
    assert ft.load_features(tr.features_json_)


def test_clone_and_get_params(mock):
    tr = relational(mock, max_depth=1)
    twin = clone(tr)
    assert twin.get_params()["max_depth"] == 1 and twin.get_params()["target"] == "customers"
    fitted = twin.fit(mock["customers"])
    assert not hasattr(tr, "features_json_")
    assert all("." not in n or n.count("(") == 1 for n in fitted.feature_names_out_)  # depth 1


def test_saved_with_skops_including_tables(mock, tmp_path):
    from autodl.tabular.persist import load_model, save_model

    tr = relational(mock).fit(mock["customers"])
    path = save_model(tr, tmp_path / "ft.skops")
    back = load_model(path)
    pd.testing.assert_frame_equal(back.transform(mock["customers"]), tr.transform(mock["customers"]))


def test_errors(mock):
    with pytest.raises(UserError, match="index"):
        FeaturetoolsTransformer(tables={"s": {"data": mock["sessions"], "index": "session_id"}}).fit(mock["customers"])
    with pytest.raises(DataError, match="duplicate"):
        FeaturetoolsTransformer(index="zip_code").fit(mock["customers"])
    with pytest.raises(DataError, match="DataFrame"):
        FeaturetoolsTransformer().fit(np.zeros((3, 2)))
