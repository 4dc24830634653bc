"""Saving fitted scikit-learn models without pickle.

Models are written with skops (``model.skops``), which stores objects as a schema of types
and arrays instead of a pickle stream. Loading checks every type the file names and refuses
any outside scikit-learn, NumPy and SciPy, so opening a model from a run folder never runs
arbitrary code. autodl's own estimators (the PyTorch MLP, which keeps its weights as NumPy
arrays, the date transformer of :mod:`autodl.tabular.columns` and the feature transformers of
:mod:`autodl.features`) are trusted too. Nothing of a
tabular run is pickled.

An :class:`~autodl.tabular.ensemble.EnsembleModel` is written as a skops file of
``{"autodl_format": "ensemble/1", "task": ..., "weights": [...], "members": [<skops bytes>, ...]}``:
each member is its own skops file inside it, so a member can be serialized while the search
decides whether it still has the time for it (:class:`MemberBlobs`, which measures what
serializing costs), and the final save reuses those bytes instead of serializing it again.
:func:`load_model` checks the types of the outer file and of every member.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.",
                     "autodl.tabular.torch_mlp.", "autodl.tabular.columns.", "autodl.tabular.ensemble.",
                     "autodl.features.")


ENSEMBLE_FORMAT = "ensemble/1"


def _dumps(model) -> bytes:
    import skops.io as sio

    # skops reads every attribute, deprecated ones too (SVC's probA_ warns in scikit-learn 1.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return sio.dumps(model)


#: for a kind of model not serialized yet in this run: skops takes up to this many times as long
#: as pickle (measured: 24x on 5 HistGradientBoosting fold models, 6x on random forests; up to 40x
#: on boosting earlier), so its cost is predicted from the pickle's time at this worst ratio
SKOPS_OVER_PICKLE = 40.0


class MemberBlobs:
    """Models serialized (skops bytes) ahead of the final save, and what that cost.

    :meth:`dump` serializes a model and records the seconds per byte of its pickle (the size a
    search knows before serializing: its fold models are kept as pickles) for its kind of model;
    :meth:`seconds_for` predicts another model's cost from that rate, or, for a kind not measured
    yet, from its pickle's time at :data:`SKOPS_OVER_PICKLE`. skops's cost relative to pickle
    depends on the model, so it is measured on the run's own models where it can be."""

    def __init__(self) -> None:
        self._blobs: dict[int, tuple[Any, bytes]] = {}
        self.rates: dict[str, float] = {}  # seconds per pickle byte, by family

    def dump(self, model, family: str, pickle_bytes: int | None = None) -> float:
        """Serialize ``model`` (kept for :func:`save_model`), a model of ``family`` (any name of
        the caller's, e.g. the tabular space's ``model`` choice); returns the seconds it took."""
        started = time.perf_counter()
        data = _dumps(model)
        seconds = time.perf_counter() - started
        self._blobs[id(model)] = (model, data)  # the model is kept so that its id stays its own
        if pickle_bytes is None:
            import pickle

            pickle_bytes = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        rate = seconds / max(int(pickle_bytes), 1)
        self.rates[family] = max(self.rates.get(family, 0.0), rate)
        return seconds

    def seconds_for(self, family: str, pickle_bytes: int, pickle_seconds: float) -> float:
        """Predicted seconds to serialize a model of ``family`` whose pickle has ``pickle_bytes``
        and took ``pickle_seconds`` to write."""
        if family in self.rates:
            return self.rates[family] * pickle_bytes
        return SKOPS_OVER_PICKLE * pickle_seconds

    def get(self, model) -> bytes | None:
        entry = self._blobs.get(id(model))
        return entry[1] if entry is not None and entry[0] is model else None


def save_model(model, path: str | Path, blobs: MemberBlobs | None = None) -> Path:
    """Write ``model`` to ``path`` (skops format) atomically; an ensemble as its members' skops
    files in one (see the module docstring). Models already in ``blobs`` are not serialized again."""
    from autodl.runs import atomic_write
    from autodl.tabular.ensemble import EnsembleModel

    def blob(m) -> bytes:
        data = blobs.get(m) if blobs is not None else None
        return data if data is not None else _dumps(m)

    data = blobs.get(model) if blobs is not None else None  # e.g. one trial's fold models, averaged
    if data is None and isinstance(model, EnsembleModel):
        data = _dumps({"autodl_format": ENSEMBLE_FORMAT, "task": model.task,
                       "weights": [float(w) for w, _ in model.members],
                       "members": [blob(m) for _, m in model.members]})
    elif data is None:
        data = _dumps(model)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _load_trusted(data: bytes, where: str):
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    bad = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if bad:
        raise ValueError(f"{where} names types outside scikit-learn/NumPy/SciPy: {bad}; not loading it")
    return sio.loads(data, trusted=untrusted)


def load_model(path: str | Path):
    """Load a model written by :func:`save_model`; refuses types outside sklearn/numpy/scipy/autodl."""
    path = Path(path)
    model = _load_trusted(path.read_bytes(), str(path))
    if isinstance(model, dict) and model.get("autodl_format") == ENSEMBLE_FORMAT:
        from autodl.tabular.ensemble import EnsembleModel

        members = [(float(w), _load_trusted(bytes(b), f"{path} (member {i})"))
                   for i, (w, b) in enumerate(zip(model["weights"], model["members"]))]
        return EnsembleModel(members, model["task"])
    return model
