"""Multi-fidelity PyTorch training: Hyperband over the MLP space on digits, with promoted
trials resuming from their lower rung's checkpoint.

    python examples/multifidelity_pytorch.py            # max budget 27 epochs, 60 trials
    python examples/multifidelity_pytorch.py --quick    # max budget 9 epochs, 13 trials (tests)

The same from the shell:

    autodl search --dataset digits --model mlp --searcher hyperband --max-budget 27 --trials 60
"""

import argparse
import tempfile

import autodl
from autodl.nn import load_dataset
from autodl.nn.search import NNObjective
from autodl.searchers import Hyperband


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args()

    max_budget, n_trials = (9, 13) if args.quick else (27, 60)
    data = load_dataset("digits", seed=0)                      # train / validation / test arrays
    space = autodl.Space.load("mlp")                           # search_spaces/mlp.yaml
    searcher = Hyperband(space, min_budget=1, max_budget=max_budget, eta=3, seed=0)
    out = args.out or tempfile.mkdtemp(prefix="autodl-hyperband-")
    study = autodl.Study(space, searcher=searcher, direction="maximize", storage=out)
    # each trial trains trial.budget epochs in total; checkpoints live in out/checkpoints/
    study.optimize(NNObjective(data, "mlp", seed=0, max_epochs=max_budget), n_trials=n_trials)

    trials = study.get_trials(["complete"])
    trained = sum(t.user_attrs.get("epochs_trained", 0) for t in trials)
    resumed = sum(t.user_attrs.get("epochs_resumed", 0) for t in trials)
    top = [t for t in trials if t.budget == max(x.budget for x in trials)]
    best = max(top, key=lambda t: t.value)
    print(f"{len(trials)} trials, budgets {sorted({t.budget for t in trials})}")
    print(f"epochs trained {trained}, epochs reused from checkpoints {resumed}")
    print(f"best validation accuracy at the full budget: {best.value:.4f} (trial {best.id})")


if __name__ == "__main__":
    main()
