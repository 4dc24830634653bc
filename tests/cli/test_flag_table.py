"""The README's flag table says what autodl/cli/flags.py enforces (the user reads the former)."""

from __future__ import annotations

import re
from pathlib import Path

from autodl.cli.flags import ALL, SEARCH_FLAGS

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_table() -> dict[str, set[str]]:
    text = README.read_text()
    start = text.index("| flag | tabular | `--model` | `--nas darts` | `--nas evolution/random` |")
    rows: dict[str, set[str]] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        kinds = {k for k, mark in zip(ALL, cells[1:]) if mark == "✓"}
        for flag in re.findall(r"`(--[a-z-]+)`", cells[0]):
            rows[flag] = kinds
    return rows


def test_readme_flag_table_matches_the_cli():
    documented = _readme_table()
    declared = {f.names[0]: set(f.kinds) for f in SEARCH_FLAGS}
    assert documented == declared
