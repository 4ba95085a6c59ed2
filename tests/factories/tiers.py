"""Tier factories: the demo ladder, qualifying orders and points, members placed on a tier."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from loyalty import clock, hooks
from loyalty.orders.models import Order
from loyalty.points.models import EntryKind, PointsEntry, SourceType
from loyalty.tiers import service
from loyalty.tiers.models import MemberTier, Tier

_seq = itertools.count(1)


async def create_ladder() -> dict[str, Tier]:
    """The demo ladder (BASIC 0, SILVER ¥2,000, GOLD ¥8,000, DIAMOND ¥20,000; 365 days)."""
    return {t.code: t for t in await service.seed_default_ladder()}


async def create_order(
    member_id: int,
    paid: int,
    *,
    occurred_at: datetime | None = None,
    refunded: int = 0,
    run_hooks: bool = False,
    **overrides: Any,
) -> tuple[Order, list[dict[str, Any] | None]]:
    """An order row (and, with ``run_hooks``, the order hooks in its transaction, as the
    orders service calls them). Returns the order and the hooks' results."""
    n = next(_seq)
    at = occurred_at or clock.now()
    results: list[dict[str, Any] | None] = []
    async with in_transaction() as conn:
        order = await Order.create(
            using_db=conn,
            channel=overrides.pop("channel", "POS"),
            external_id=f"T{n:08d}",
            request_hash="0" * 64,
            member_id=member_id,
            occurred_at=at,
            recorded_at=clock.now(),
            currency="CNY",
            subtotal=paid,
            paid_amount=paid,
            refunded_amount=refunded,
            **overrides,
        )
        if run_hooks:
            facts = hooks.OrderFacts(
                member_id=member_id,
                order_id=order.id,
                channel=order.channel,
                paid_amount=paid,
                occurred_at=at,
            )
            for hook in hooks.ORDER_HOOKS:
                results.append(await hook(facts, conn))
    return order, results


async def earn_points(member_id: int, amount: int, *, at: datetime | None = None) -> PointsEntry:
    n = next(_seq)
    return await PointsEntry.create(
        member_id=member_id,
        kind=EntryKind.EARN,
        amount=amount,
        idempotency_key=f"test-earn-{n}",
        source_type=SourceType.ACTIVITY,
        remaining=amount,
        created_at=at or clock.now(),
    )


async def place_on_tier(
    member_id: int,
    tier: Tier,
    *,
    since: datetime | None = None,
    expires_in: timedelta | None = timedelta(days=365),
    locked_until: datetime | None = None,
) -> MemberTier:
    """Put a member on ``tier`` directly (a past upgrade), expiring ``expires_in`` from now."""
    now = clock.now()
    return await MemberTier.create(
        member_id=member_id,
        tier_id=tier.id,
        since=since or now,
        expires_at=now + expires_in if expires_in is not None else None,
        locked_until=locked_until,
    )
