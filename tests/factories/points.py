"""Points factories: plain async functions with overrides, going through the services."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from loyalty import clock
from loyalty.points import service
from loyalty.points.models import EarningRule, RuleKind, SourceType
from loyalty.points.service.earn import Movement

_seq = itertools.count(1)


async def grant_points(member_id: int, amount: int, **overrides: Any) -> Movement:
    """An EARN lot of ``amount`` points (a campaign grant) for the member."""
    values: dict[str, Any] = {
        "member_id": member_id,
        "amount": amount,
        "idempotency_key": f"test-grant-{next(_seq)}",
        "source_type": SourceType.CAMPAIGN,
    }
    values.update(overrides)
    return await service.award(**values)


async def create_rule(kind: RuleKind = RuleKind.BASE, **overrides: Any) -> EarningRule:
    now: datetime = clock.now()
    values: dict[str, Any] = {
        "code": f"rule-{next(_seq)}",
        "name": "规则",
        "kind": kind,
        "currency": "CNY",
        "points_per_unit": 1 if kind is RuleKind.BASE else 0,
        "multiplier_permille": 1000,
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    return await EarningRule.create(**values)
