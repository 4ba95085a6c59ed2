"""Member factories: plain async functions with overrides."""

from __future__ import annotations

import itertools
from typing import Any

from loyalty import clock
from loyalty.members.models import Channel, ChannelIdentity, IdentityKind, Member, MemberTag

_seq = itertools.count(1)


async def create_member(**overrides: Any) -> Member:
    """A member with a unique phone; its phone/email also get identity rows, like registration."""
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
    member = await Member.create(**values)
    for kind, value in ((IdentityKind.PHONE, member.phone), (IdentityKind.EMAIL, member.email)):
        if value:
            await create_identity(member, kind, value)
    for tag in member.tags or []:
        await MemberTag.create(member_id=member.id, tag=tag)
    return member


async def create_identity(
    member: Member, kind: IdentityKind, value: str, scope: str = "", **overrides: Any
) -> ChannelIdentity:
    values: dict[str, Any] = {
        "member_id": member.id,
        "kind": kind,
        "scope": scope,
        "value": value,
        "channel": member.registered_channel,
        "linked_at": clock.now(),
    }
    values.update(overrides)
    return await ChannelIdentity.create(**values)
