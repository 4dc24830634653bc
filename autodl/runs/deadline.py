"""One meaning of ``--time`` / ``time_budget``: a deadline for the whole call.

The clock starts when the process starts (CLI: :meth:`Deadline.from_process_start`) or when the
API call starts (:meth:`Deadline.after`), and covers everything: loading data, the search, the
finishing work of the kind (refit of the winner, final training of an architecture, scoring
on the test rows) and writing the run folder. A kind splits it in two with a *reserve*: the
search ends ``reserve`` seconds before the deadline (trials still running then are stopped), and
the finishing work uses what is left, shortening itself (fewer final epochs) if it must.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

#: seconds kept after the finishing work for closing workers, writing files and exiting
EXIT_MARGIN = 1.0


def _process_age() -> float:
    """Seconds since this process started (Linux ``/proc``), 0 where that cannot be read."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 (starttime), after pid and comm
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass(frozen=True)
class Deadline:
    """A point in time (``time.time()`` seconds, comparable across processes on one machine and,
    with synchronized clocks, across a cluster), or none.

    Example:
        >>> d = Deadline.after(30)
        >>> search_end = d.minus(5)      # the search leaves 5 s for the refit
        >>> search_end.remaining()       # seconds left for the search
    """

    at: float | None  # time.time() of the deadline; None: no deadline
    budget: float | None = None  # the seconds it was given, for messages

    @classmethod
    def after(cls, seconds: float | None, *, started: float | None = None) -> "Deadline":
        """``seconds`` from ``started`` (a ``time.time()``; default now); None: no deadline."""
        if seconds is None:
            return cls(None)
        return cls((time.time() if started is None else started) + float(seconds), float(seconds))

    @classmethod
    def from_process_start(cls, seconds: float | None) -> "Deadline":
        """``seconds`` from the start of this process (the CLI's ``--time``)."""
        return cls.after(seconds, started=time.time() - _process_age())

    @property
    def is_set(self) -> bool:
        return self.at is not None

    def remaining(self) -> float | None:
        """Seconds left (may be negative); None without a deadline."""
        return None if self.at is None else self.at - time.time()

    def expired(self) -> bool:
        return self.at is not None and time.time() >= self.at

    def minus(self, seconds: float) -> "Deadline":
        """The deadline ``seconds`` earlier (a phase that leaves that much for what follows)."""
        return self if self.at is None else Deadline(self.at - max(0.0, float(seconds)), self.budget)

    def epochs_that_fit(self, epochs: int, seconds_per_epoch: float) -> int:
        """How many of ``epochs`` (at least 1) fit before the deadline at ``seconds_per_epoch``."""
        left = self.remaining()
        if left is None or seconds_per_epoch <= 0:
            return epochs
        return max(1, min(epochs, int(left // seconds_per_epoch)))

    def describe(self) -> str:
        return "no time budget" if self.budget is None else f"a {self.budget:g}s time budget"
