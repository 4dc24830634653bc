"""Feature engineering as scikit-learn transformers: featuretools and tsfresh adapters.

* :class:`FeaturetoolsTransformer`: deep feature synthesis over one table or an entity set.
* :class:`TsfreshTransformer`: time-series features (long or wide form) with relevance selection.
* :func:`make_features`: a transformer from a short description (``"tsfresh"``,
  ``{"kind": "featuretools", ...}``), as ``autodl.search(features=...)`` and the CLI use it.

Importing this package is light: featuretools and tsfresh are imported when a transformer is
fitted, and the classes themselves are loaded on first access.
"""

from __future__ import annotations

from typing import Any

from autodl._deps import require
from autodl.errors import UserError

KINDS = ("featuretools", "tsfresh")

__all__ = ["FeaturetoolsTransformer", "TsfreshTransformer", "make_features", "clear_caches", "KINDS"]


def __getattr__(name: str):
    if name == "FeaturetoolsTransformer":
        from autodl.features.featuretools_adapter import FeaturetoolsTransformer

        return FeaturetoolsTransformer
    if name == "TsfreshTransformer":
        from autodl.features.tsfresh_adapter import TsfreshTransformer

        return TsfreshTransformer
    if name == "clear_caches":
        from autodl.features._cache import clear_caches

        return clear_caches
    raise AttributeError(f"module 'autodl.features' has no attribute '{name}'")


def make_features(features: Any, cache_dir: str | None = None):
    """An unfitted feature transformer from ``features``.

    Args:
        features: ``None`` (no feature engineering), ``"featuretools"``, ``"tsfresh"``, a dict
            ``{"kind": "featuretools" | "tsfresh", **constructor_args}``, or a transformer
            instance (returned as is).
        cache_dir: where the transformer may cache feature tables (when not set in the dict).

    Returns:
        The transformer, or None.
    """
    if features is None:
        return None
    if hasattr(features, "fit") and hasattr(features, "transform"):
        return features
    if isinstance(features, str):
        features = {"kind": features}
    if not isinstance(features, dict) or "kind" not in features:
        raise UserError(f"features is {features!r}; use 'featuretools', 'tsfresh', a dict with a 'kind', "
                        "or a transformer")
    params = {k: v for k, v in features.items() if k != "kind"}
    params.setdefault("cache_dir", cache_dir)
    kind = features["kind"]
    if kind == "featuretools":
        require("featuretools", "features", "featuretools feature synthesis")
        from autodl.features.featuretools_adapter import SINGLE_TABLE_PRIMITIVES, FeaturetoolsTransformer

        if not params.get("tables"):
            params.setdefault("trans_primitives", list(SINGLE_TABLE_PRIMITIVES))
            params.setdefault("max_features", 300)
            params.setdefault("max_depth", 1)
        cls = FeaturetoolsTransformer
    elif kind == "tsfresh":
        require("tsfresh", "features", "tsfresh features")
        from autodl.features.tsfresh_adapter import TsfreshTransformer

        cls = TsfreshTransformer
    else:
        raise UserError(f"unknown features kind '{kind}'; choose one of: {', '.join(KINDS)}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise UserError(f"features '{kind}': {exc}") from None
