"""A custom objective with a durable Study: define a space, run, kill at any time, resume.

    python examples/custom_objective.py            # 60 trials in runs/example-branin
    python examples/custom_objective.py --quick    # 15 trials (used by the tests)

Run it twice: the second run resumes the stored study instead of starting over.
"""

import argparse
import math

import autodl


def branin(x1: float, x2: float) -> float:
    """The Branin function; its minimum is 0.397887 (at three points)."""
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def objective(trial: autodl.RunningTrial) -> float:
    return branin(trial.config["x1"], trial.config["x2"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="runs/example-branin")
    parser.add_argument("--searcher", default="random")
    args = parser.parse_args()

    space = autodl.Space({"x1": autodl.Float(-5, 10), "x2": autodl.Float(0, 15)})
    study = autodl.Study(space, searcher=args.searcher, direction="minimize", storage=args.out, seed=0)
    target = 15 if args.quick else 60
    remaining = target - study.n_finished
    if remaining > 0:
        study.optimize(objective, n_trials=remaining)
    print(f"{study.n_finished} trials, best {study.best_value:.4f} at {study.best_config}")
    print(study.leaderboard(top=5).to_string(index=False))


if __name__ == "__main__":
    main()
