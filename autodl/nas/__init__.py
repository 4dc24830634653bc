"""Neural architecture search on PyTorch model spaces.

Importing :mod:`autodl.nas` loads nothing heavy; the submodules import torch:

* :mod:`autodl.nas.choices`      -- LayerChoice / InputChoice / ValueChoice, describe, to_space, freeze;
* :mod:`autodl.nas.operations`   -- the DARTS operation set;
* :mod:`autodl.nas.model_search` -- MixedOp, search cells, the supernet (and the DARTS- guard);
* :mod:`autodl.nas.architect`    -- first- and second-order architecture steps;
* :mod:`autodl.nas.genotypes`    -- derivation, genotype JSON, NetworkFromGenotype;
* :mod:`autodl.nas.darts`        -- ``run_darts``: search, derive, train from scratch, write files;
* :mod:`autodl.nas.spaces`       -- model spaces declared with the choice API (``mlp_space``);
* :mod:`autodl.nas.evolution`    -- ``evolutionary_nas``: regularized evolution (or random) over a space,
  through a Study (parallel workers, successive halving of early candidates, resumable);
* :mod:`autodl.nas.cell_space`   -- ``cell_space``: the DARTS cell space as discrete choices;
* :mod:`autodl.nas.search`       -- ``search_architecture`` / ``autodl search --nas``: run folders.
"""

from autodl._deps import require

# a look-up only (no import): every submodule imports torch, so say so once, here
require("torch", "torch", "neural architecture search (autodl.nas, --nas)")

_LAZY = {
    "run_darts": "autodl.nas.darts",
    "load_model": "autodl.nas.darts",
    "DartsResult": "autodl.nas.darts",
    "LayerChoice": "autodl.nas.choices",
    "InputChoice": "autodl.nas.choices",
    "ValueChoice": "autodl.nas.choices",
    "describe": "autodl.nas.choices",
    "to_space": "autodl.nas.choices",
    "freeze": "autodl.nas.choices",
    "NetworkFromGenotype": "autodl.nas.genotypes",
    "derive_genotype": "autodl.nas.genotypes",
    "mlp_space": "autodl.nas.spaces",
    "rnn_space": "autodl.nas.spaces",
    "evolutionary_nas": "autodl.nas.evolution",
    "cell_space": "autodl.nas.cell_space",
    "sample_to_genotype": "autodl.nas.cell_space",
    "search_architecture": "autodl.nas.search",
    "load_nas_model": "autodl.nas.search",
    "NasSpec": "autodl.nas.search",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autodl.nas' has no attribute {name!r}")
