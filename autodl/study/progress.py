"""Live progress of a running study (rich), or JSON lines / nothing for scripts."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

from autodl.study.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from autodl.study.study import Study


class StudyProgress:
    """A progress bar: trials done of total (or time left), best so far, running trials.

    Args:
        mode: ``"bar"`` (rich live display; plain lines when not a terminal), ``"jsonl"`` (one
            JSON object per finished trial on stdout) or ``"quiet"``.
    """

    def __init__(self, study: "Study", n_trials: int | None = None, timeout: float | None = None,
                 mode: str = "bar", label: str = "search"):
        self.study = study
        self.n_trials = n_trials
        self.timeout = timeout
        self.mode = mode
        self.label = label
        self.done = 0
        self.running = 0
        self.best: float | None = None
        self._start = time.monotonic()
        self._progress = None
        self._task = None
        try:
            self.best = study.best_value
        except ValueError:
            self.best = None

    def start(self) -> None:
        self._start = time.monotonic()
        if self.mode != "bar":
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        total = self.n_trials if self.n_trials is not None else (self.timeout or None)
        columns = [TextColumn("[bold]{task.description}"), BarColumn()]
        columns.append(MofNCompleteColumn() if self.n_trials is not None else TextColumn("{task.fields[left]}"))
        columns += [TextColumn("best {task.fields[best]}"), TextColumn("running {task.fields[running]}"),
                    TimeElapsedColumn()]
        self._progress = Progress(*columns, console=console, transient=False,
                                  disable=not console.is_terminal)
        self._task = self._progress.add_task(self.label, total=total, best=self._fmt(self.best),
                                             running=0, left=self._left())
        self._progress.start()

    def _left(self) -> str:
        if self.timeout is None:
            return f"{self.done} trials"
        left = max(0.0, self.timeout - (time.monotonic() - self._start))
        return f"{self.done} trials, {left:.0f}s left"

    @staticmethod
    def _fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.5g}"

    def set_running(self, n: int) -> None:
        self.running = n
        self._refresh()

    def update(self, study: "Study", trial: FrozenTrial) -> None:
        self.done += 1
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            if self.best is None or study._better(trial.value, self.best):
                self.best = trial.value
        if self.mode == "jsonl":
            rec = {"id": trial.id, "state": trial.state.value, "value": trial.value,
                   "best": self.best, "config": trial.config, "budget": trial.budget,
                   "message": trial.message}
            sys.stdout.write(json.dumps(rec, default=str) + "\n")
            sys.stdout.flush()
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is None:
            return
        completed = self.done if self.n_trials is not None else min(
            time.monotonic() - self._start, self.timeout or 0)
        self._progress.update(self._task, completed=completed, best=self._fmt(self.best),
                              running=self.running, left=self._left())

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
