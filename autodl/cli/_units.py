"""Parsing sizes given on the command line (``--trial-memory 2G``)."""

from __future__ import annotations

import argparse
import re

#: powers of 1024, as ``ulimit``, Docker (``--memory 2g``) and the kernel count memory
_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt])(?:i?b)?")


def parse_size(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"1.5GB"``, ``"1.5GiB"`` -> bytes (K, M, G, T are powers of 1024).

    A unit is required: a bare number is more likely megabytes meant than bytes. Raises
    ``argparse.ArgumentTypeError`` (one line) for anything else, so it serves as an argparse
    ``type=``.

    >>> parse_size("2G"), parse_size("512m"), parse_size("1.5GB")
    (2147483648, 536870912, 1610612736)
    """
    t = str(text).strip().lower()
    match = _SIZE.fullmatch(t)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid size '{text}'; use e.g. 512M, 2G or 1.5GB")
    value = int(float(match.group(1)) * _UNITS[match.group(2)])
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size '{text}' must be positive")
    return value
