"""Member factories: plain async functions with overrides."""

from __future__ import annotations

import itertools
from typing import Any

from loyalty import clock
from loyalty.members.models import Channel, Member

_seq = itertools.count(1)


async def create_member(**overrides: Any) -> Member:
    n = next(_seq)
    birth = overrides.pop("birth_date", None)
    values: dict[str, Any] = {
        "display_name": f"会员{n}",
        "phone": f"+86138{n:08d}",
        "registered_channel": Channel.APP,
        "registered_at": clock.now(),
        "birth_date": birth,
        "birth_month": birth.month if birth else None,
        "birth_day": birth.day if birth else None,
    }
    values.update(overrides)
    return await Member.create(**values)
