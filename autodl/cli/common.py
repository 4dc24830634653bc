"""What every ``autodl`` verb shares: the parser class, argument types, progress modes and
printing a finished run. A user mistake is one line, ``autodl VERB: error: ...``, exit 2."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(EXIT_USAGE)


def parse_duration(text: str) -> float:
    """``"90"``, ``"30s"``, ``"10m"``, ``"1h30m"``, ``"1.5h"`` -> seconds."""
    t = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        seconds = float(t)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", t)
        if not parts or "".join(n + u for n, u in parts) != t.replace(" ", ""):
            raise argparse.ArgumentTypeError(
                f"invalid duration '{text}'; use e.g. 90, 30s, 10m or 1h30m")
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration '{text}' must be positive")
    return seconds


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be at least 1")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return v


def fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"{v} must be in [0, 1)")
    return v


def number(text: str) -> float | int:
    """A number flag; integral values stay ints so messages read ``--eta is 1``."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    return int(v) if v.is_integer() else v


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def progress_mode(args) -> str:
    return "jsonl" if getattr(args, "jsonl", False) else ("quiet" if getattr(args, "quiet", False) else "bar")


def run_and_print(run: Callable[[], Mapping[str, Any]], kind, run_dir: Path, mode: str) -> int:
    """Run a search (``run()`` returns the result envelope) and print it as ``mode`` asks;
    Ctrl-C keeps what finished and says how to continue."""
    try:
        result = dict(run())
    except KeyboardInterrupt:
        how = (f"Continue with: autodl resume {run_dir}" if (run_dir / "study.db").is_file()
               else "Start a new search to retry")
        err(f"\nautodl: interrupted; finished trials are kept. {how}")
        return EXIT_INTERRUPTED
    if mode == "jsonl":
        print(json.dumps({"result": {**result, "run_dir": str(run_dir)}}, default=str))
        return 0
    if mode == "bar" and (run_dir / "study.db").is_file():
        from autodl.cli.output import print_leaderboard
        from autodl.study import Study

        metric = result.get("metric")
        names = metric if isinstance(metric, list) else None
        print_leaderboard(Study.load(run_dir, searcher="random"), top=10, names=names,
                          metric=metric if isinstance(metric, str) else None)
    from autodl.cli.output import describe_run

    for line in describe_run(kind, result, run_dir, table_shown=mode == "bar" and (run_dir / "study.db").is_file()):
        print(line)
    note = budget_note(result, run_dir)
    if note:
        print(note)
    if result.get("onnx"):
        print(f"ONNX: {result['onnx']} (verified with onnxruntime)")
    return 0


def budget_note(result: Mapping[str, Any], run_dir: Path) -> str | None:
    """A line when the best trial ran below the searcher's largest budget."""
    budget = result.get("best_budget")
    if budget is None or not (run_dir / "run.json").is_file():
        return None
    from autodl.runs import read_run

    spec = read_run(run_dir)[1]
    top = (spec.get("searcher_params") or {}).get("max_budget", spec.get("max_budget"))
    if top and budget < top:
        return (f"note: no trial reached the max budget {top:g}; the best ran at budget {budget:g} "
                "(refit in full). Give more trials (--trials) for a full-budget comparison")
    return None
