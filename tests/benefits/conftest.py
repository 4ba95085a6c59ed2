"""Fixtures of the benefits tests: the demo ladder and a frozen clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from loyalty import clock, hooks
from loyalty.tiers.models import Tier
from tests.factories.tiers import create_ladder

NOW = datetime(2026, 3, 15, 4, 0, tzinfo=UTC)  # Sunday 12:00 in Shanghai


@pytest.fixture
def now() -> Iterator[datetime]:
    with clock.frozen(NOW):
        yield NOW


@pytest_asyncio.fixture
async def ladder(orm: Any, now: datetime) -> dict[str, Tier]:
    hooks.load()
    return await create_ladder()
