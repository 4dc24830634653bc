"""autodl: AutoML and hyperparameter optimization with searchers of its own.

``import autodl`` stays light: torch, featuretools, tsfresh, onnx and dask load only when a
feature that needs them is used.
"""

from autodl.errors import DataError, SearchExhausted, SpaceError, StorageError, TrialPruned, UserError
from autodl.space import Categorical, Float, Int, Space
from autodl.study import FrozenTrial, RunningTrial, Study, TrialState
from autodl.tabular import SearchResult, search

from autodl._version import __version__

__all__ = [
    "Space", "Float", "Int", "Categorical", "Study", "TrialState", "FrozenTrial", "RunningTrial",
    "search", "SearchResult",
    "UserError", "SpaceError", "DataError", "StorageError", "SearchExhausted", "TrialPruned",
    "__version__",
]
