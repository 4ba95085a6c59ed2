"""Mini-program login: a ``wx.login`` code becomes a member session.

The member is found (or registered) through the identity graph by openid (scoped to the
mini-program app id) and unionid. WeChat's ``session_key`` is never kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from loyalty.auth import service as auth
from loyalty.auth import wechat
from loyalty.jobs import JobQueue
from loyalty.members import service as members
from loyalty.members.errors import IdentityConflict, MemberNotActive
from loyalty.members.models import Channel, IdentityKind, Member, MemberStatus
from loyalty.settings import Settings

log = structlog.get_logger(__name__)

#: Display name of members who registered by mini-program login (they can change it).
DEFAULT_DISPLAY_NAME = "微信用户"


@dataclass(frozen=True)
class MiniProgramLogin:
    tokens: auth.TokenPair
    member: Member
    created: bool


async def login(*, settings: Settings, code: str, jobs: JobQueue | None = None) -> MiniProgramLogin:
    """Log a mini-program user in, registering a member on first login.

    Idempotent per WeChat user: the same openid always reaches the same member. Raises
    :class:`~loyalty.auth.errors.WeChatError` (invalid code, rate limited, unreachable) and
    :class:`MemberNotActive` (the member was deactivated).
    """
    session = await wechat.code_to_session(settings, code)
    claims = [
        members.IdentityClaim(
            kind=IdentityKind.WECHAT_OPENID, value=session.openid, scope=settings.wechat_app_id
        )
    ]
    if session.unionid:
        claims.append(
            members.IdentityClaim(kind=IdentityKind.WECHAT_UNIONID, value=session.unionid)
        )
    try:
        registration = await members.register(
            channel=Channel.WECHAT_MINIPROGRAM,
            display_name=DEFAULT_DISPLAY_NAME,
            identities=claims,
            jobs=jobs,
        )
        member, created = registration.member, registration.created
    except IdentityConflict:
        # openid and unionid belong to different members: the app's own openid decides.
        found = await members.find_by_identity(
            kind=IdentityKind.WECHAT_OPENID, value=session.openid, scope=settings.wechat_app_id
        )
        if found is None:
            raise
        log.warning("miniprogram.identity_conflict", member_id=found.id)
        member, created = found, False
    if member.status is not MemberStatus.ACTIVE:
        raise MemberNotActive(f"member is {member.status.value}")
    tokens = await auth.start_session(settings=settings, principal=auth.member_principal(member.id))
    return MiniProgramLogin(tokens=tokens, member=member, created=created)


async def bind_phone(
    *, settings: Settings, member_id: int, code: str, redis: object = None
) -> Member:
    """Link the phone number behind a ``getPhoneNumber`` code to the member.

    Raises :class:`~loyalty.auth.errors.WeChatError`, ValidationError (not a valid number),
    IdentityConflict (another member owns it) and MemberNotActive; nothing is written then.
    """
    number = await wechat.phone_number(settings, code, redis=redis)
    await members.link_identity(
        member_id=member_id,
        kind=IdentityKind.PHONE,
        value=number,
        channel=Channel.WECHAT_MINIPROGRAM,
    )
    return await members.get(member_id=member_id)
