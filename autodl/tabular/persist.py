"""Saving fitted scikit-learn models without pickle.

Models are written with skops (``model.skops``), which stores objects as a schema of types
and arrays instead of a pickle stream. Loading checks every type the file names and refuses
any outside scikit-learn, NumPy and SciPy, so opening a model from a run folder never runs
arbitrary code. autodl's own estimators (the PyTorch MLP, which keeps its weights as NumPy
arrays, the date transformer of :mod:`autodl.tabular.columns` and the feature transformers of
:mod:`autodl.features`) are trusted too. Nothing of a
tabular run is pickled.
"""

from __future__ import annotations

from pathlib import Path

_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.",
                     "autodl.tabular.torch_mlp.", "autodl.tabular.columns.", "autodl.tabular.ensemble.",
                     "autodl.features.")


def save_model(model, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (skops format) atomically."""
    import warnings

    import skops.io as sio

    from autodl.runs import atomic_write

    def dump(tmp: Path) -> None:
        # skops reads every attribute, deprecated ones too (SVC's probA_ warns in scikit-learn 1.9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            sio.dump(model, tmp)

    return atomic_write(path, dump)


def load_model(path: str | Path):
    """Load a model written by :func:`save_model`; refuses types outside sklearn/numpy/scipy/autodl."""
    import skops.io as sio

    path = Path(path)
    untrusted = sio.get_untrusted_types(file=path)
    bad = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if bad:
        raise ValueError(f"{path} names types outside scikit-learn/NumPy/SciPy: {bad}; not loading it")
    return sio.load(path, trusted=untrusted)
