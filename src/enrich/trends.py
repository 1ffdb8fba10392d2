"""Star trends from the cache's history of observations (one row per observation).

A run served from the cache observes nothing new, so its trend stays the same;
a run that fetched or revalidated adds one observation per repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from .models import StarTrend

SPARK = "▁▂▃▄▅▆▇█"
SPARK_POINTS = 12


def star_trend(history: Sequence[tuple[datetime, int]], now: datetime) -> StarTrend:
    """Change since the previous observation, over 7 and 30 days, and a sparkline.

    ``history`` is oldest first. A window's change is reported only when the
    history reaches back to (or past) the window's start, so a repository seen
    for the first time yesterday has no weekly figure rather than a wrong one.
    """
    trend = StarTrend()
    if not history:
        return trend
    latest_at, latest = history[-1]
    if len(history) >= 2:  # the observation before, even from the same day (--refresh)
        trend.since_previous = latest - history[-2][1]
    distinct = _dedupe(history)
    for days, attr in ((7, "week"), (30, "month")):
        start = latest_at - timedelta(days=days)
        base = _value_at(history, start)
        if base is not None:
            setattr(trend, attr, latest - base)
    points = [n for _, n in distinct][-SPARK_POINTS:]
    if len(points) >= 3:
        trend.sparkline = sparkline(points)
    return trend


def sparkline(values: Sequence[int]) -> str:
    lo, hi = min(values), max(values)
    if hi == lo:
        return SPARK[0] * len(values)
    span = hi - lo
    return "".join(SPARK[min(len(SPARK) - 1, (v - lo) * len(SPARK) // span)] for v in values)


def _dedupe(history: Sequence[tuple[datetime, int]]) -> list[tuple[datetime, int]]:
    """One point per observation day (the last of the day), so sparklines are per day."""
    by_day: dict[object, tuple[datetime, int]] = {}
    for at, n in history:
        by_day[at.date()] = (at, n)
    return list(by_day.values())


def _value_at(history: Sequence[tuple[datetime, int]], when: datetime) -> int | None:
    """The last observation at or before ``when``, if the history reaches that far back."""
    found: int | None = None
    for at, n in history:
        if at <= when:
            found = n
        else:
            break
    return found
