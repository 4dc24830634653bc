"""Studies: trials, durable storage, and the loop that runs an objective."""

from autodl.study.executors import Executor, InlineExecutor, ProcessExecutor
from autodl.study.storage import InMemoryStorage, SQLiteStorage, Storage, open_storage
from autodl.study.study import Study
from autodl.study.trial import FrozenTrial, RunningTrial, TrialState

__all__ = ["Study", "TrialState", "FrozenTrial", "RunningTrial", "Storage", "InMemoryStorage",
           "SQLiteStorage", "open_storage", "Executor", "InlineExecutor", "ProcessExecutor"]
