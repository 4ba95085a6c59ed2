"""``pointsBalanceChanged``: a member's balance, pushed over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import orjson
import strawberry
from strawberry import relay

from loyalty.auth.principal import Role
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import BadUserInput, Forbidden
from loyalty.graphql.points.ids import member_pk
from loyalty.graphql.points.types import PointsBalance
from loyalty.points import notify

permissions.register({"Subscription.pointsBalanceChanged": permissions.MEMBER_OR_STAFF})


def _balance(raw: bytes | str) -> PointsBalance:
    body = orjson.loads(raw)
    return PointsBalance(
        member_id=strawberry.ID(relay.to_base64("Member", body["member_id"])),
        balance=body["balance"],
        pending=body["pending"],
        debt=body["debt"],
        changed_at=datetime.fromisoformat(body["at"]),
    )


@strawberry.type
class PointsSubscription:
    @strawberry.subscription(
        description="The member's balance after every change, published after commit. Member "
        "tokens watch their own balance (`memberId` may be omitted); staff name the member. "
        "Clients that cannot keep a socket poll `member.points`."
    )
    async def points_balance_changed(
        self, info: Info, member_id: relay.GlobalID | None = None
    ) -> AsyncGenerator[PointsBalance, None]:
        principal = info.context.principal
        try:
            target = member_pk(member_id) if member_id is not None else principal.member_id
        except Exception as exc:
            raise BadUserInput("Not a member id.", argument="memberId") from exc
        if target is None:
            raise BadUserInput("`memberId` is required.", argument="memberId")
        if not permissions.ensure_member_access(principal, target):
            raise Forbidden()
        if principal.role is Role.SERVICE:  # pragma: no cover - the access table refuses it
            raise Forbidden()
        pubsub = info.context.redis.pubsub()
        await pubsub.subscribe(notify.channel(target))
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield _balance(message["data"])
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()
