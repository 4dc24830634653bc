"""Live progress of a running study (rich), or JSON lines / nothing for scripts; failed trials
reported on stderr (:class:`FailureReport`)."""

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
        _LIVE[0] += 1

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
            _LIVE[0] -= 1


#: StudyProgress bars drawing now: a study run inside another's display (autodl.search, the
#: CLI) does not draw a second one by default
_LIVE = [0]


def live() -> bool:
    """Whether a :class:`StudyProgress` bar is drawing in this process."""
    return _LIVE[0] > 0


def _say(line: str) -> None:
    print(f"autodl: {line}", file=sys.stderr, flush=True)


class FailureReport:
    """Failed trials on stderr, never silent: one line the first time each distinct message
    appears (``"trial 7 failed: ValueError: bad lr (my_script.py:19)"``; at most ``max_lines``
    distinct ones), and :meth:`finish` ends with ``"3 of 20 trials failed: <the most common
    message>"``. ``update`` is a study callback."""

    def __init__(self, max_lines: int = 10):
        self.max_lines = max_lines
        self.counts: dict[str, int] = {}
        self.finished = 0

    def update(self, study: "Study", trial: FrozenTrial) -> None:
        self.finished += 1
        if trial.state != TrialState.FAILED:
            return
        message = trial.message or "failed"
        if message not in self.counts:
            if len(self.counts) < self.max_lines:
                _say(f"trial {trial.id} failed: {message}")
            elif len(self.counts) == self.max_lines:
                _say("more trials failed with other messages (see study.trials)")
        self.counts[message] = self.counts.get(message, 0) + 1

    def summary(self) -> str | None:
        """``"3 of 20 trials failed: <most common message>"``, or None when none failed."""
        n = sum(self.counts.values())
        if not n:
            return None
        message = max(self.counts, key=self.counts.get)  # the first seen among equals
        others = len(self.counts) - 1
        more = f" ({self.counts[message]} times; {others} other message{'s' * (others > 1)})" if others else ""
        return f"{n} of {self.finished} trials failed: {message}{more}"

    def finish(self, study: "Study", show_best: bool = False) -> None:
        """Print the failure summary (if any failed) and, with ``show_best``, the winner."""
        if show_best and self.finished and getattr(study, "n_objectives", 1) > 1:
            front = study.best_trials
            ids = ", ".join(str(t.id) for t in front[:10]) + (", ..." if len(front) > 10 else "")
            _say(f"Pareto front: {len(front)} trial{'s' * (len(front) != 1)} ({ids}); "
                 "study.best_trials has them" if front else f"{self.finished} trials finished, none on a front")
        elif show_best and self.finished:
            try:
                best = study.best_trial
            except ValueError:
                _say(f"{self.finished} trials finished, none complete")
            else:
                config = ", ".join(f"{k}={v!r}" for k, v in best.config.items())
                config = config if len(config) <= 160 else config[:157] + "..."
                _say(f"best trial {best.id}: value {best.value:.6g} ({config})")
        line = self.summary()
        if line is not None:
            _say(line)
