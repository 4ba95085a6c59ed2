"""GraphQL types of the members domain.

Personal values are kept private on the objects and only leave through resolvers that ask
:mod:`loyalty.graphql.masking` whether the caller may see them, wherever a member appears.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import strawberry
from strawberry import relay

from loyalty.auth.principal import Role
from loyalty.graphql import masking
from loyalty.graphql.benefits.member_fields import MemberBenefitFields
from loyalty.graphql.context import Info
from loyalty.graphql.errors import Forbidden
from loyalty.graphql.orders.member_fields import MemberOrderFields
from loyalty.graphql.permissions import ensure_member_access
from loyalty.graphql.points.member_fields import MemberPointsFields
from loyalty.graphql.scalars import Long
from loyalty.graphql.tiers.member_fields import MemberTierFields
from loyalty.members import models
from loyalty.members import service as member_service
from loyalty.members.errors import MemberNotFound

Channel = strawberry.enum(models.Channel, description="A sales or engagement channel.")
MemberStatus = strawberry.enum(
    models.MemberStatus,
    description="ACTIVE; DEACTIVATED; MERGED into another member; ERASED (anonymised).",
)
Gender = strawberry.enum(models.Gender, description="Self-declared gender.")
LifecycleStage = strawberry.enum(
    models.LifecycleStage, description="Where the member stands in the customer lifecycle."
)
IdentityKind = strawberry.enum(
    models.IdentityKind,
    description="How a channel knows a member. WECHAT_OPENID is scoped by the mini-program "
    "app id; the other kinds are unique on their own.",
)
ConsentPurpose = strawberry.enum(
    models.ConsentPurpose,
    description="What a member consents to: marketing per channel, or profiling.",
)


def _sees_pii(info: Info, member_id: int) -> bool:
    return masking.can_see_pii(info.context.principal, member_id)


@strawberry.type(description="Running purchase statistics, kept up to date at order time.")
class MemberStats:
    total_spend: Long = strawberry.field(description="Total paid, in minor units (fen).")
    order_count: int = strawberry.field(description="Number of orders.")
    first_order_at: datetime | None = strawberry.field(description="First order time (UTC).")
    last_order_at: datetime | None = strawberry.field(description="Latest order time (UTC).")

    @strawberry.field(description="Average order value in minor units, rounded down; 0 if none.")
    def average_order_value(self) -> Long:
        return Long(self.total_spend // self.order_count if self.order_count else 0)


@strawberry.type(description="One way a channel knows a member (card, openid, account, phone…).")
class ChannelIdentity:
    kind: IdentityKind = strawberry.field(description="Kind of identity.")
    scope: str | None = strawberry.field(
        description="Mini-program app id for WECHAT_OPENID; null for unscoped kinds."
    )
    channel: Channel = strawberry.field(description="Channel that linked the identity.")
    linked_at: datetime = strawberry.field(description="When it was linked (UTC).")
    member_id: strawberry.Private[int]
    raw_value: strawberry.Private[str]

    @strawberry.field(
        description="The identity value (E.164 phone, lower-cased email…); masked for callers "
        "without access to personal data."
    )
    def value(self, info: Info) -> str:
        if _sees_pii(info, self.member_id):
            return self.raw_value
        if self.kind is models.IdentityKind.PHONE:
            return masking.phone(self.raw_value) or ""
        if self.kind is models.IdentityKind.EMAIL:
            return masking.email(self.raw_value) or ""
        return masking.identifier(self.raw_value) or ""

    @classmethod
    def from_model(cls, row: models.ChannelIdentity) -> ChannelIdentity:
        return cls(
            kind=row.kind,
            scope=row.scope or None,
            channel=row.channel,
            linked_at=row.linked_at,
            member_id=row.member_id,  # type: ignore[attr-defined]
            raw_value=row.value,
        )


@strawberry.type(description="A consent decision for one purpose.")
class Consent:
    purpose: ConsentPurpose = strawberry.field(description="What the decision is about.")
    granted: bool = strawberry.field(description="True if granted, false if withdrawn.")
    channel: Channel = strawberry.field(description="Channel where the decision was given.")
    policy_version: str = strawberry.field(description="Version of the policy shown.")
    recorded_at: datetime = strawberry.field(description="When it was recorded (UTC).")

    @classmethod
    def from_model(cls, row: models.Consent) -> Consent:
        return cls(
            purpose=row.purpose,
            granted=row.granted,
            channel=row.channel,
            policy_version=row.policy_version,
            recorded_at=row.recorded_at,
        )


@strawberry.type(description="A loyalty member: one person across every channel.")
class Member(
    MemberTierFields, MemberBenefitFields, MemberPointsFields, MemberOrderFields, relay.Node
):
    id: relay.NodeID[int]
    gender: Gender = strawberry.field(description="Self-declared gender.")
    birth_month: int | None = strawberry.field(description="Month of birth (1–12).")
    birth_day: int | None = strawberry.field(description="Day of month of birth (1–31).")
    timezone: str | None = strawberry.field(description="IANA time zone, if the member set one.")
    region: str | None = strawberry.field(description="Home region (province or city).")
    registered_channel: Channel = strawberry.field(description="Channel of registration.")
    registered_at: datetime = strawberry.field(description="Registration time (UTC).")
    status: MemberStatus = strawberry.field(description="Account status.")
    lifecycle_stage: LifecycleStage = strawberry.field(description="Lifecycle stage.")
    raw_tags: strawberry.Private[list[str]]
    stats: MemberStats = strawberry.field(description="Running purchase statistics.")
    raw_display_name: strawberry.Private[str]
    raw_phone: strawberry.Private[str | None]
    raw_email: strawberry.Private[str | None]
    raw_birth_date: strawberry.Private[date | None]

    @strawberry.field(description="Name shown to staff and in messages; masked without access.")
    def display_name(self, info: Info) -> str:
        if _sees_pii(info, self.id):
            return self.raw_display_name
        return masking.name(self.raw_display_name) or ""

    @strawberry.field(
        description="Mobile number in E.164 (`+8613812345678`); `138****5678` without access."
    )
    def phone(self, info: Info) -> str | None:
        return self.raw_phone if _sees_pii(info, self.id) else masking.phone(self.raw_phone)

    @strawberry.field(description="Email address, lower-cased; masked without access.")
    def email(self, info: Info) -> str | None:
        return self.raw_email if _sees_pii(info, self.id) else masking.email(self.raw_email)

    @strawberry.field(description="Date of birth; null without access (see birthMonth/birthDay).")
    def birth_date(self, info: Info) -> date | None:
        if _sees_pii(info, self.id):
            return self.raw_birth_date
        return masking.birth_date(self.raw_birth_date)

    @strawberry.field(
        description="Tags set by staff, in the order added. Marketing data: null with a "
        "FORBIDDEN error for service keys."
    )
    def tags(self, info: Info) -> list[str] | None:
        _refuse_marketing_data_to_services(info)
        return self.raw_tags

    @strawberry.field(description="Every channel identity of the member, oldest first.")
    async def identities(self, info: Info) -> list[ChannelIdentity]:
        rows = await info.context.loaders.identities_by_member_id.load(self.id)
        return [ChannelIdentity.from_model(row) for row in rows]

    @strawberry.field(
        description="Current consent per purpose (the latest decision of each). Marketing "
        "data: null with a FORBIDDEN error for service keys."
    )
    async def consents(self, info: Info) -> list[Consent] | None:
        _refuse_marketing_data_to_services(info)
        rows = await info.context.loaders.consents_by_member_id.load(self.id)
        return [Consent.from_model(row) for row in member_service.current_consents(rows)]

    @strawberry.field(
        description="Every consent decision ever recorded, oldest first. Marketing data: null "
        "with a FORBIDDEN error for service keys."
    )
    async def consent_history(self, info: Info) -> list[Consent] | None:
        _refuse_marketing_data_to_services(info)
        rows = await info.context.loaders.consents_by_member_id.load(self.id)
        return [Consent.from_model(row) for row in rows]

    @classmethod
    def from_model(cls, row: models.Member) -> Member:
        return cls(
            id=row.id,
            raw_display_name=row.display_name,
            raw_phone=row.phone,
            raw_email=row.email,
            raw_birth_date=row.birth_date,
            birth_month=row.birth_month,
            birth_day=row.birth_day,
            gender=row.gender,
            timezone=row.timezone,
            region=row.region,
            registered_channel=row.registered_channel,
            registered_at=row.registered_at,
            status=row.status,
            lifecycle_stage=row.lifecycle_stage,
            raw_tags=list(row.tags or []),
            stats=MemberStats(
                total_spend=Long(row.total_spend),
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
        out: list[Member | None] = []
        for row in rows:
            if row is not None and row.status is models.MemberStatus.MERGED:
                try:  # a merged id resolves to its survivor
                    row = await member_service.get(member_id=row.id)
                except MemberNotFound:  # a broken chain answers like "not found"
                    row = None
            out.append(
                cls.from_model(row)
                if row is not None and ensure_member_access(principal, row.id)
                else None
            )
        return out


@strawberry.type(description="The identity or contact belongs to a different member.")
class IdentityConflictError:
    code: str = strawberry.field(description="`IDENTITY_CONFLICT`.")
    message: str = strawberry.field(description="What conflicts.")


@strawberry.type(description="The merge cannot happen; nothing was written.")
class MergeRefusedError:
    code: str = strawberry.field(
        description="`MERGE_INTO_SELF`, `MERGE_INTO_MERGED` (the survivor was merged) or "
        "`MERGE_SOURCE_NOT_ACTIVE` (the member to merge was merged or erased)."
    )
    message: str = strawberry.field(description="Why.")


@strawberry.type(description="The member was already erased; nothing was written.")
class MemberAlreadyErasedError:
    code: str = strawberry.field(description="`MEMBER_ALREADY_ERASED`.")
    message: str = strawberry.field(description="What happened.")


@strawberry.type(
    description="The member is not active (deactivated, merged or erased); nothing was written."
)
class MemberNotActiveError:
    code: str = strawberry.field(description="Always `MEMBER_NOT_ACTIVE`.")
    message: str = strawberry.field(description="Why, for people.")


def _refuse_marketing_data_to_services(info: Info) -> None:
    """Channel integrations look members up and record orders; marketing data is not theirs."""
    if info.context.principal.role is Role.SERVICE:
        raise Forbidden("Service keys cannot read marketing data.")
