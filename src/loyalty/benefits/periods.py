"""Quota periods in the business time zone: the key of the current period and when it renews."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loyalty import clock
from loyalty.benefits.models import QuotaPeriod


def period_key(period: QuotaPeriod, at: datetime) -> str | None:
    """``D2026-03-01``, ``W2026-09`` (ISO week), ``M2026-03``, ``Y2026``, ``L``; None: unlimited."""
    local = at.astimezone(clock.business_zone())
    match period:
        case QuotaPeriod.DAY:
            return f"D{local.date().isoformat()}"
        case QuotaPeriod.WEEK:
            year, week, _ = local.isocalendar()
            return f"W{year}-{week:02d}"
        case QuotaPeriod.MONTH:
            return f"M{local.year}-{local.month:02d}"
        case QuotaPeriod.YEAR:
            return f"Y{local.year}"
        case QuotaPeriod.LIFETIME:
            return "L"
    return None


def renews_at(period: QuotaPeriod, at: datetime) -> datetime | None:
    """Start of the next period (UTC); None for LIFETIME and UNLIMITED."""
    zone = clock.business_zone()
    local = at.astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    match period:
        case QuotaPeriod.DAY:
            start = midnight.date() + timedelta(days=1)
        case QuotaPeriod.WEEK:
            start = midnight.date() + timedelta(days=7 - local.weekday())
        case QuotaPeriod.MONTH:
            start = (midnight.replace(day=28) + timedelta(days=4)).replace(day=1).date()
        case QuotaPeriod.YEAR:
            start = midnight.replace(year=local.year + 1, month=1, day=1).date()
        case _:
            return None
    return datetime(start.year, start.month, start.day, tzinfo=zone).astimezone(UTC)
