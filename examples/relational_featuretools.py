"""Relational data with featuretools: predict a customer label from related tables.

featuretools' bundled mock retail data (no download) has customers, their sessions and the
sessions' transactions. The label here, "big spender" (total spend above the median), lives in
the transactions: the customers table alone (zip code, join date, birthday) cannot predict it,
while deep feature synthesis over the entity set (``SUM(transactions.amount)``,
``MEAN(sessions.COUNT(transactions))``, ...) can. The feature step is a
:class:`autodl.features.FeaturetoolsTransformer` whose related tables are static data; the
customers are the rows the search splits into folds.

    python examples/relational_featuretools.py           # 300 customers, 12 trials
    python examples/relational_featuretools.py --quick   # 80 customers, 6 trials (used by the tests)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import autodl
from autodl.features import FeaturetoolsTransformer


def load(n_customers: int, seed: int = 0):
    """``(customers, sessions, transactions, label)`` from featuretools' mock data."""
    import featuretools as ft

    data = ft.demo.load_mock_customer(n_customers=n_customers, n_products=5, n_sessions=n_customers * 8,
                                      n_transactions=n_customers * 60, random_seed=seed)
    customers, sessions, transactions = data["customers"], data["sessions"], data["transactions"]
    spend = transactions.merge(sessions[["session_id", "customer_id"]], on="session_id") \
        .groupby("customer_id")["amount"].sum().reindex(customers["customer_id"]).fillna(0.0)
    label = np.where(spend.to_numpy() > spend.median(), "big", "small")
    return customers.reset_index(drop=True), sessions, transactions, label


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and budget (for the tests)")
    args = parser.parse_args(argv)

    customers, sessions, transactions, y = load(80 if args.quick else 300)
    common = dict(n_trials=6 if args.quick else 12, cv=3, seed=0, test_size=0.3)

    t0 = time.time()
    raw = autodl.search(customers.drop(columns=["customer_id"]), y, **common)
    print(f"customers table only:  test accuracy {raw.test_score:.3f} ({time.time() - t0:.1f}s)")

    dfs = FeaturetoolsTransformer(
        target="customers", index="customer_id", time_index="join_date",
        tables={"sessions": {"data": sessions, "index": "session_id", "time_index": "session_start"},
                "transactions": {"data": transactions, "index": "transaction_id",
                                 "time_index": "transaction_time"}},
        relationships=[("customers", "customer_id", "sessions", "customer_id"),
                       ("sessions", "session_id", "transactions", "session_id")],
        agg_primitives=["sum", "mean", "count", "max", "min", "std", "num_unique", "mode"],
        trans_primitives=["month", "weekday"], max_depth=2)
    t0 = time.time()
    fe = autodl.search(customers, y, features=dfs, **common)
    model = fe.best_model  # the best pipeline, or an ensemble whose largest member comes first
    step = (model.members[0][1] if hasattr(model, "members") else model).named_steps["features"]
    print(f"deep feature synthesis: test accuracy {fe.test_score:.3f} ({fe.best_config['model']}, "
          f"{len(step.feature_names_out_)} features, {time.time() - t0:.1f}s)")
    print("some features:", ", ".join(step.feature_names_out_[:6]))
    return {"raw": raw.test_score, "featuretools": fe.test_score}


if __name__ == "__main__":
    main()
