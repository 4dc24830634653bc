"""PyTorch models tuned by autodl's searchers: MLPs and CNNs trained epoch by epoch.

Importing :mod:`autodl.nn` imports torch; ``import autodl`` never does.

* :mod:`autodl.nn.data`       -- image/tabular arrays split into train / validation / test;
* :mod:`autodl.nn.trainer`    -- builds a model from a config and trains it deterministically;
* :mod:`autodl.nn.checkpoint` -- safe (no pickle) checkpoints keyed by the config;
* :mod:`autodl.nn.search`     -- the multi-fidelity search used by ``autodl search --model``.

**Budget = epochs.** A trial with ``budget`` b trains ``max(1, round(b))`` epochs in total;
a promoted trial resumes from the checkpoint of its lower rung and trains only the extra ones.
"""

from autodl._deps import require

require("torch", "torch", "PyTorch models (autodl.nn, --model)")

from autodl.nn.data import ArrayData, load_dataset  # noqa: E402 - after the check
from autodl.nn.trainer import TrainOutcome, Trainer, build_model, train_config  # noqa: E402

__all__ = ["ArrayData", "load_dataset", "Trainer", "TrainOutcome", "build_model", "train_config"]
