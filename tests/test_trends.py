"""Star trends from a history of observations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from enrich.trends import sparkline, star_trend

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


def hist(*pairs: tuple[float, int]) -> list[tuple[datetime, int]]:
    return [(T0 + timedelta(days=d), n) for d, n in pairs]


def test_no_history_no_trend() -> None:
    t = star_trend([], T0)
    assert t.since_previous is None and t.week is None and t.month is None
    assert t.sparkline is None


def test_single_observation_has_no_change_yet() -> None:
    t = star_trend(hist((0, 100)), T0)
    assert t.since_previous is None and t.week is None


def test_change_since_previous_and_week() -> None:
    t = star_trend(hist((0, 100), (3, 130), (8, 160)), T0 + timedelta(days=8))
    assert t.since_previous == 30
    assert t.week == 60          # the value at day 1 (or before) is the day-0 one
    assert t.month is None       # history does not reach 30 days back


def test_month_when_history_is_long_enough() -> None:
    t = star_trend(hist((0, 10), (15, 40), (31, 100)), T0 + timedelta(days=31))
    assert t.month == 90
    assert t.week == 60


def test_a_run_from_the_cache_observes_nothing_so_the_trend_is_unchanged() -> None:
    h = hist((0, 100), (1, 120))
    assert star_trend(h, T0 + timedelta(days=1)) == star_trend(h, T0 + timedelta(days=2))


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([1, 1, 1]) == "▁▁▁"
    s = sparkline([0, 50, 100])
    assert s[0] == "▁" and s[-1] == "█" and len(s) == 3


def test_sparkline_appears_with_three_daily_points() -> None:
    t = star_trend(hist((0, 1), (1, 5), (2, 9)), T0 + timedelta(days=2))
    assert t.sparkline is not None and len(t.sparkline) == 3


def test_the_change_since_the_previous_observation_counts_a_same_day_refresh() -> None:
    # a --refresh on the same day after the stars moved shows the move
    t = star_trend(hist((0, 100), (1, 120), (1.2, 150)), T0 + timedelta(days=1.2))
    assert t.since_previous == 30
    assert t.sparkline is None  # still two days: the sparkline is per day


def test_trends_sort_by_the_latest_change_when_no_repository_has_a_week(
        tmp_path: Path) -> None:
    from enrich.commands import star_trends
    from enrich.config import Config
    from enrich.models import Repo
    from enrich.store import Store

    cfg = Config.load(None, overrides={"cache.path": str(tmp_path / "c.sqlite3")})
    with Store(cfg.cache_path) as store:
        for day, counts in ((0, {"a/slow": 100, "b/fast": 10, "c/new": 5}),
                            (1, {"a/slow": 101, "b/fast": 60})):
            store.put_repos({k: Repo(status="ok", full_name=k, stars=n)
                             for k, n in counts.items()}, T0 + timedelta(days=day),
                            credential="anon")
    log = tmp_path / "log.txt"
    log.write_text("github.com/a/slow github.com/c/new github.com/b/fast\n", encoding="utf-8")
    rows = star_trends(log, cfg)
    assert rows is not None
    assert [r.name for r in rows] == ["b/fast", "a/slow", "c/new"]
    assert [r.trend.since_previous for r in rows] == [50, 1, None]
