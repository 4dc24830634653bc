"""autodl: AutoML and hyperparameter optimization with searchers of its own.

``import autodl`` stays light: torch, featuretools, tsfresh, onnx and dask load only when a
feature that needs them is used.
"""

from autodl.errors import DataError, SearchExhausted, SpaceError, StorageError, TrialPruned, UserError
from autodl.space import Categorical, Float, Int, Space

__version__ = "0.1.0"

__all__ = [
    "Space", "Float", "Int", "Categorical",
    "UserError", "SpaceError", "DataError", "StorageError", "SearchExhausted", "TrialPruned",
    "__version__",
]
