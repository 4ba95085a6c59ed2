"""GraphQL types of the members domain."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry import relay

from loyalty.graphql.context import Info
from loyalty.graphql.permissions import ensure_member_access
from loyalty.graphql.scalars import Long
from loyalty.members import models

Channel = strawberry.enum(models.Channel, description="A sales or engagement channel.")
MemberStatus = strawberry.enum(
    models.MemberStatus,
    description="ACTIVE; DEACTIVATED; MERGED into another member; ERASED (anonymised).",
)
Gender = strawberry.enum(models.Gender, description="Self-declared gender.")
LifecycleStage = strawberry.enum(
    models.LifecycleStage, description="Where the member stands in the customer lifecycle."
)


@strawberry.type(description="Running purchase statistics, kept up to date at order time.")
class MemberStats:
    total_spend: Long = strawberry.field(description="Total paid, in minor units (fen).")
    order_count: int = strawberry.field(description="Number of orders.")
    first_order_at: datetime | None = strawberry.field(description="First order time (UTC).")
    last_order_at: datetime | None = strawberry.field(description="Latest order time (UTC).")

    @strawberry.field(description="Average order value in minor units, rounded down; 0 if none.")
    def average_order_value(self) -> Long:
        return self.total_spend // self.order_count if self.order_count else 0


@strawberry.type(description="A loyalty member: one person across every channel.")
class Member(relay.Node):
    id: relay.NodeID[int]
    display_name: str = strawberry.field(description="Name shown to staff and in messages.")
    phone: str | None = strawberry.field(description="Mobile number in E.164 (`+8613812345678`).")
    email: str | None = strawberry.field(description="Email address, lower-cased.")
    birth_date: date | None = strawberry.field(description="Date of birth.")
    gender: Gender = strawberry.field(description="Self-declared gender.")
    timezone: str | None = strawberry.field(description="IANA time zone, if the member set one.")
    region: str | None = strawberry.field(description="Home region (province or city).")
    registered_channel: Channel = strawberry.field(description="Channel of registration.")
    registered_at: datetime = strawberry.field(description="Registration time (UTC).")
    status: MemberStatus = strawberry.field(description="Account status.")
    lifecycle_stage: LifecycleStage = strawberry.field(description="Lifecycle stage.")
    tags: list[str] = strawberry.field(description="Free-form tags set by staff.")
    stats: MemberStats = strawberry.field(description="Running purchase statistics.")

    @classmethod
    def from_model(cls, row: models.Member) -> Member:
        return cls(
            id=row.id,
            display_name=row.display_name,
            phone=row.phone,
            email=row.email,
            birth_date=row.birth_date,
            gender=row.gender,
            timezone=row.timezone,
            region=row.region,
            registered_channel=row.registered_channel,
            registered_at=row.registered_at,
            status=row.status,
            lifecycle_stage=row.lifecycle_stage,
            tags=list(row.tags or []),
            stats=MemberStats(
                total_spend=row.total_spend,
                order_count=row.order_count,
                first_order_at=row.first_order_at,
                last_order_at=row.last_order_at,
            ),
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Member | None]:
        principal = info.context.principal
        ids: list[int | None] = []
        for raw in node_ids:
            try:
                ids.append(int(raw))
            except ValueError:
                ids.append(None)
        rows = await info.context.loaders.member_by_id.load_many(
            [i if i is not None else -1 for i in ids]
        )
        return [
            cls.from_model(row)
            if row is not None and ensure_member_access(principal, row.id)
            else None
            for row in rows
        ]


def enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value
