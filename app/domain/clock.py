"""Dates as the platform sees them: China has one time zone and no daylight saving."""

from datetime import UTC, date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def now() -> datetime:
    return datetime.now(UTC)


def today_in_china() -> date:
    return datetime.now(CHINA).date()
