"""The one source of time. Everything stored is UTC; business days use the configured zone.

Tests move time with :func:`frozen` instead of patching ``datetime``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

_frozen: contextvars.ContextVar[datetime | None] = contextvars.ContextVar("frozen", default=None)
_business_zone: ZoneInfo = ZoneInfo("Asia/Shanghai")


def configure(business_timezone: str) -> None:
    """Set the business time zone (called once at start-up from settings)."""
    global _business_zone
    _business_zone = ZoneInfo(business_timezone)


def business_zone() -> ZoneInfo:
    return _business_zone


def now() -> datetime:
    """Current time, timezone-aware UTC."""
    value = _frozen.get()
    return value if value is not None else datetime.now(UTC)


def today() -> date:
    """Today's date in the business time zone."""
    return now().astimezone(_business_zone).date()


@contextlib.contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """Freeze :func:`now` at ``at`` (aware) within the block."""
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    token = _frozen.set(at.astimezone(UTC))
    try:
        yield
    finally:
        _frozen.reset(token)


def advance(delta: timedelta) -> None:
    """Move a frozen clock forward (only inside :func:`frozen`)."""
    value = _frozen.get()
    if value is None:
        raise RuntimeError("advance() only works on a frozen clock")
    _frozen.set(value + delta)


def celebration_day(birth: date, year: int) -> date:
    """The day a birthday is celebrated in ``year``: Feb 29 falls on Feb 28 in common years."""
    try:
        return birth.replace(year=year)
    except ValueError:
        return date(year, 2, 28)
