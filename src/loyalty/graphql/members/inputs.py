"""Inputs of the members domain."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry import relay

from loyalty.graphql.members.types import (
    Channel,
    ConsentPurpose,
    Gender,
    IdentityKind,
    LifecycleStage,
    MemberStatus,
)


@strawberry.input(description="A channel identity as the channel knows it.")
class IdentityInput:
    kind: IdentityKind = strawberry.field(description="Kind of identity.")
    value: str = strawberry.field(
        description="The value; phones and emails are normalised, others trimmed (≤ 128 chars)."
    )
    scope: str | None = strawberry.field(
        default=None,
        description="Mini-program app id; required for WECHAT_OPENID, ignored for other kinds.",
    )


@strawberry.input(description="A new member. Phone and email are normalised before storing.")
class RegisterMemberInput:
    channel: Channel = strawberry.field(description="Channel the member registers through.")
    display_name: str = strawberry.field(description="1–64 characters.")
    phone: str | None = strawberry.field(
        default=None, description='Mobile number; "138 1234 5678", "+86…" and "0086…" accepted.'
    )
    email: str | None = strawberry.field(default=None, description="Email address.")
    birth_date: date | None = strawberry.field(default=None, description="Not in the future.")
    gender: Gender | None = strawberry.field(default=None, description="Self-declared gender.")
    timezone: str | None = strawberry.field(default=None, description="IANA time zone.")
    region: str | None = strawberry.field(default=None, description="Home region, ≤ 64 chars.")
    identities: list[IdentityInput] = strawberry.field(
        default_factory=list,
        description="Channel identities (card, openid, account…) to link to the member.",
    )
    tags: list[str] = strawberry.field(
        default_factory=list, description="Tags, each ≤ 32 characters."
    )


@strawberry.input(description="Link an identity to a member.")
class LinkIdentityInput:
    member_id: relay.GlobalID = strawberry.field(description="The member.")
    identity: IdentityInput = strawberry.field(description="The identity to link.")
    channel: Channel | None = strawberry.field(
        default=None,
        description="Channel that links it; a service key's own channel is used when omitted, "
        "CONSOLE otherwise.",
    )


@strawberry.input(description="Remove an identity from a member.")
class UnlinkIdentityInput:
    member_id: relay.GlobalID = strawberry.field(description="The member.")
    identity: IdentityInput = strawberry.field(description="The identity to remove.")


@strawberry.input(
    description="Profile fields to change. Omitted fields stay as they are; null clears a field."
)
class UpdateMemberProfileInput:
    member_id: relay.GlobalID = strawberry.field(description="The member.")
    display_name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1–64 characters."
    )
    phone: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="New mobile number (must not belong to another member). Staff only: a "
        "member token may only clear its phone or send it unchanged, and binds a number through "
        "`bindPhoneNumber` (verified by WeChat); otherwise `VERIFICATION_REQUIRED`.",
    )
    email: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="New email address (must not belong to another member). Staff only: a "
        "member token may only clear its email or send it unchanged; otherwise "
        "`VERIFICATION_REQUIRED`.",
    )
    birth_date: date | None = strawberry.field(
        default=strawberry.UNSET, description="Date of birth, not in the future."
    )
    gender: Gender | None = strawberry.field(
        default=strawberry.UNSET, description="Self-declared gender."
    )
    timezone: str | None = strawberry.field(default=strawberry.UNSET, description="IANA time zone.")
    region: str | None = strawberry.field(
        default=strawberry.UNSET, description="Home region, ≤ 64 characters."
    )
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces every tag (each ≤ 32 characters)."
    )


@strawberry.input(description="A consent decision for one purpose.")
class SetConsentInput:
    member_id: relay.GlobalID = strawberry.field(description="The member.")
    purpose: ConsentPurpose = strawberry.field(description="What the decision is about.")
    granted: bool = strawberry.field(description="True to grant, false to withdraw.")
    channel: Channel = strawberry.field(description="Channel where the member decided.")
    policy_version: str = strawberry.field(description="Version of the policy shown, ≤ 32 chars.")


@strawberry.input(description="Merge one member into another.")
class MergeMembersInput:
    survivor_id: relay.GlobalID = strawberry.field(description="The member that remains.")
    merged_id: relay.GlobalID = strawberry.field(description="The member merged away.")
    idempotency_key: str = strawberry.field(
        description="Client key (≤ 128 chars): repeating it returns the first result."
    )


@strawberry.input(description="Erase a member's personal data.")
class EraseMemberInput:
    member_id: relay.GlobalID = strawberry.field(description="The member.")
    reason: str = strawberry.field(description="Why (kept in the audit log), ≤ 200 chars.")


@strawberry.input(description="Which members to list; every given condition must hold.")
class MemberFilter:
    text: str | None = strawberry.field(
        default=None,
        description="Part of the name, or the last 4+ digits of the phone (1–64 characters).",
    )
    lifecycle_stage: LifecycleStage | None = strawberry.field(
        default=None, description="Lifecycle stage."
    )
    registered_channel: Channel | None = strawberry.field(
        default=None, description="Channel of registration."
    )
    birth_month: int | None = strawberry.field(default=None, description="Month of birth, 1–12.")
    tag: str | None = strawberry.field(default=None, description="Has this tag.")
    tier: str | None = strawberry.field(default=None, description="Current tier code.")
    status: MemberStatus | None = strawberry.field(
        default=None, description="Account status (merged members are never listed)."
    )
