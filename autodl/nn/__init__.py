"""PyTorch models tuned by autodl's searchers: MLPs and CNNs trained epoch by epoch.

Importing :mod:`autodl.nn` checks that torch is installed; the trainer imports it, the data
modules do not; ``import autodl`` never does.

* :mod:`autodl.nn.data`       -- image/tabular arrays split into train / validation / test;
* :mod:`autodl.nn.trainer`    -- builds a model from a config and trains it deterministically;
* :mod:`autodl.nn.checkpoint` -- safe (no pickle) checkpoints keyed by the config;
* :mod:`autodl.nn.search`     -- the multi-fidelity search used by ``autodl search --model``.

**Budget = epochs.** A trial with ``budget`` b trains ``max(1, round(b))`` epochs in total;
a promoted trial resumes from the checkpoint of its lower rung and trains only the extra ones.
"""

from autodl._deps import require

# a look-up only (no import): the trainer imports torch, the data modules do not (so reading the
# user's data for ``autodl predict`` loads no torch)
require("torch", "torch", "PyTorch models (autodl.nn, --model)")

_LAZY = {"ArrayData": "autodl.nn.data", "load_dataset": "autodl.nn.data", "Trainer": "autodl.nn.trainer",
         "TrainOutcome": "autodl.nn.trainer", "build_model": "autodl.nn.trainer",
         "train_config": "autodl.nn.trainer"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autodl.nn' has no attribute {name!r}")
