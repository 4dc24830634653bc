"""Exceptions raised by autodl.

Every mistake a user can make (a bad range, a missing column, an unknown searcher) raises a
:class:`UserError` subclass whose message names the problem and the fix in one line. The CLI
prints that line and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in what the user asked for; the message says what and how to fix it."""


class SpaceError(UserError):
    """An invalid search space: a bad range, choice list, condition or YAML document."""


class DataError(UserError):
    """Data that cannot be used: a missing file or column, an unreadable format."""


class StorageError(UserError):
    """A storage that cannot be opened as asked (wrong space, missing run folder, ...)."""


class SearchExhausted(Exception):
    """Raised by ``Searcher.ask()`` when the searcher has nothing left to propose.

    Grid search raises it once every grid point has been asked; ``Study.optimize`` stops cleanly
    when it sees it.
    """


class TrialPruned(Exception):
    """Raise inside an objective (after ``trial.should_prune()``) to stop a trial early."""


class ExportError(UserError):
    """A model that cannot be exported to ONNX, or whose ONNX file does not reproduce it.

    Raised by :func:`autodl.export_onnx`; the message names the step or the output that failed
    (and by how much), and no file is left behind.
    """


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type's
    name when the message is empty: what a one-line error quotes of a library's exception."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
