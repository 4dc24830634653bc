"""Run folders and the registry of run kinds (tabular, nn, nas): one run model for every search.

See :mod:`autodl.runs.folder` for the folder layout and the ``result.json`` envelope,
:mod:`autodl.runs.deadline` for the meaning of a time budget, and :mod:`autodl.runs.registry`
for how a kind plugs in.
"""

from autodl.runs.deadline import Deadline
from autodl.runs.folder import (ENVELOPE, FORMAT, atomic_write, create_run, load_split, new_run_dir, read_json,
                                read_result, read_run, result_envelope, save_split, study_counts, update_run,
                                write_json, write_result, write_text)
from autodl.runs.registry import KINDS, Run, RunKind, get_kind, open_run

__all__ = ["Deadline", "ENVELOPE", "FORMAT", "KINDS", "Run", "RunKind", "atomic_write", "create_run", "get_kind",
           "load_split", "new_run_dir", "open_run", "read_json", "read_result", "read_run", "result_envelope",
           "save_split", "study_counts", "update_run", "write_json", "write_result", "write_text"]
