"""Tabular quick start: tune a scikit-learn pipeline on a DataFrame with one call.

    python examples/tabular_quickstart.py           # 30 trials on breast_cancer
    python examples/tabular_quickstart.py --quick   # 6 trials (used by the tests)
"""

import argparse

from sklearn.datasets import load_breast_cancer

import autodl


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = autodl.search(X, y, n_trials=6 if args.quick else 30, cv=3 if args.quick else 5, seed=0)
    print(result)
    print("best config:", result.best_config)
    print(f"cv {result.metric}: {result.best_score:.4f}, held-out test: {result.test_score:.4f}")
    print(result.leaderboard.head(5)[["id", result.metric, f"{result.metric}_cv_std", "model"]].to_string(index=False))
    print("predictions for 5 rows:", result.predict(X.head(5)))


if __name__ == "__main__":
    main()
