"""Balance change notifications over Redis pub/sub, sent after commit.

Subscribers (the ``pointsBalanceChanged`` subscription) listen on one channel per member.
Messages carry the balance as read after the change, so a late message is never wrong for
long: clients that cannot keep a socket poll ``member.points``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import structlog

from loyalty import clock
from loyalty.points.service.queries import accounts

log = structlog.get_logger(__name__)


def channel(member_id: int) -> str:
    return f"loyalty:points:balance:{member_id}"


async def balance_changed(redis: Any, member_ids: Iterable[int]) -> int:
    """Publish the current balance of each member; returns how many were published.

    Best effort: a Redis failure is logged, never raised (the change itself is committed).
    """
    ids = sorted(set(member_ids))
    if redis is None or not ids:
        return 0
    states = await accounts(ids)
    sent = 0
    for member_id in ids:
        state = states.get(member_id)
        body = {
            "member_id": member_id,
            "balance": state.balance if state else 0,
            "pending": state.pending if state else 0,
            "debt": state.debt if state else 0,
            "at": clock.now().isoformat(),
        }
        try:
            await redis.publish(channel(member_id), orjson.dumps(body))
            sent += 1
        except Exception as exc:  # notification only; the data is safe in the database
            log.warning("points.notify.failed", member_id=member_id, error=type(exc).__name__)
    return sent
