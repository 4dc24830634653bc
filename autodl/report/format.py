"""Values as a person reads them: dates, durations, numbers, configs and HTML tables."""

from __future__ import annotations

import html
import json
import math
import time
from typing import Any, Iterable, Mapping

#: keys whose numeric value is a point in time (seconds since the epoch)
_TIME_KEYS = ("finished", "started", "created", "generated")
#: keys whose numeric value is a number of seconds
_SECONDS_KEYS = ("time_budget", "trial_timeout", "duration", "wall_time")

#: at most this many items of a list are shown
_LIST_ITEMS = 12


def date_time(epoch: float) -> str:
    """``2026-11-30 20:12:00 CET``: local time, to the second, with the zone."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch)).strip()


def duration(seconds: float) -> str:
    """``0.42 s``, ``17.5 s``, ``3 min 12 s``, ``2 h 05 min``."""
    s = float(seconds)
    if s < 1:
        return f"{s:.2f} s"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        m, r = divmod(round(s), 60)
        return f"{m} min {r} s"
    h, r = divmod(round(s), 3600)
    return f"{h} h {r // 60:02d} min"


def is_time_key(key: str) -> bool:
    return key in _TIME_KEYS or key.endswith(("_at", "_time"))


def is_seconds_key(key: str) -> bool:
    return key in _SECONDS_KEYS or key.endswith("_seconds")


def number(v: float) -> str:
    return f"{v:.5g}"


def value(v: Any, key: str = "") -> str:
    """One cell's text; ``key`` picks the format of times (date-time) and seconds (duration)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)) and key:
        if is_time_key(key) and v > 1e8:
            return date_time(v)
        if is_seconds_key(key):
            return duration(v)
    if isinstance(v, float):
        return number(v)
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={value(x)}" for k, x in v.items() if x is not None)
    if isinstance(v, (list, tuple)):
        items = [value(x) if not isinstance(x, (list, tuple, Mapping)) else json.dumps(x, default=str)
                 for x in v[:_LIST_ITEMS]]
        more = f", … ({len(v)} in all)" if len(v) > _LIST_ITEMS else ""
        return ", ".join(items) + more
    return str(v)


def table(rows: list[Mapping[str, Any]], cols: Iterable[str] | None = None, raw: Iterable[str] = (),
          css: str = "", header: bool = True) -> str:
    """An HTML table of ``rows`` (columns: ``cols``, or every key any row has), wide ones scroll
    sideways. Columns in ``raw`` hold HTML already; the others are escaped after :func:`value`."""
    if not rows:
        return "<p class='muted'>none</p>"
    cols = list(cols) if cols is not None else list(dict.fromkeys(c for r in rows for c in r))
    raw = set(raw)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(
            f"<td>{r.get(c, '') if c in raw else html.escape(value(r.get(c)))}</td>" for c in cols)
        + "</tr>" for r in rows)
    cls = f" class='{css}'" if css else ""
    head = f"<tr>{head}</tr>" if header else ""
    return f"<div class='scroll'><table{cls}>{head}{body}</table></div>"


def config_html(config: Mapping[str, Any]) -> str:
    """A configuration as ``name = value`` lines (one parameter per line)."""
    return "<div class='config'>" + "".join(
        f"<div><code>{html.escape(str(k))}</code> = {html.escape(value(v) or 'none')}</div>"
        for k, v in config.items()) + "</div>"
