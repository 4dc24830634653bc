"""Optional dependencies: one check, one message.

autodl's core installs without torch, onnx, matplotlib, featuretools, tsfresh or dask; the
module that needs one calls :func:`require` just before importing it, so a missing package is a
:class:`MissingDependency` (a :class:`~autodl.errors.UserError`: the CLI prints one line and
exits 2) naming what needs it and the extra that installs it::

    autodl export: error: ONNX export needs onnx, onnxruntime and skl2onnx, which are not installed: pip install 'autodl[onnx]'
"""

from __future__ import annotations

import importlib.util
from typing import Sequence

from autodl.errors import UserError

#: the extras of pyproject.toml that :func:`require` may name
EXTRAS = ("torch", "features", "onnx", "dask", "optuna", "report", "images")


class MissingDependency(UserError):
    """An optional package that a feature needs is not installed."""


def require(modules: str | Sequence[str], extra: str, what: str) -> None:
    """Raise :class:`MissingDependency` unless every one of ``modules`` can be imported.

    Only looks the modules up (``importlib.util.find_spec``), so it costs no import: a module
    may call it at import time and still load nothing heavy.

    Args:
        modules: top-level package names, e.g. ``"onnxruntime"`` or ``("onnx", "skl2onnx")``.
        extra: the autodl extra that installs them (one of :data:`EXTRAS`).
        what: the feature that needs them, as the message's subject: ``"ONNX export"``.

    Example:
        >>> require(("numpy", "scipy"), "onnx", "anything")  # installed: returns None
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; one of {', '.join(EXTRAS)}")
    names = (modules,) if isinstance(modules, str) else tuple(modules)
    missing = [name for name in names if not _installed(name)]
    if missing:
        listed = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        verb = "is" if len(missing) == 1 else "are"
        raise MissingDependency(f"{what} needs {listed}, which {verb} not installed: "
                                f"pip install 'autodl[{extra}]'")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None  # None also when sys.modules[module] is None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False
