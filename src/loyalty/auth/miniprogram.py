"""Mini-program login: a ``wx.login`` code becomes a member session.

The member is found (or registered) through the identity graph by openid (scoped to the
mini-program app id) and unionid. WeChat's ``session_key`` is never kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from tortoise.expressions import Q

from loyalty.auth import service as auth
from loyalty.auth import wechat
from loyalty.jobs import JobQueue
from loyalty.members import merge
from loyalty.members import service as members
from loyalty.members.errors import IdentityConflict, MemberNotActive, MergeRefused
from loyalty.members.models import Channel, ChannelIdentity, IdentityKind, Member, MemberStatus
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


@dataclass(frozen=True)
class PhoneBinding:
    """Outcome of :func:`bind_phone`. ``tokens`` is set when the caller's member was folded
    into the phone's owner: the app continues with them (the old session has ended)."""

    member: Member
    tokens: auth.TokenPair | None = None

    @property
    def merged(self) -> bool:
        return self.tokens is not None


#: Reason recorded on the merge that folds a fresh mini-program member into the phone's owner.
FOLD_REASON = "WECHAT_PHONE_VERIFIED"


async def bind_phone(
    *,
    settings: Settings,
    member_id: int,
    code: str,
    redis: object = None,
    jobs: JobQueue | None = None,
) -> PhoneBinding:
    """Link the phone number behind a ``getPhoneNumber`` code to the member.

    When the number already belongs to another active member (registered at a store first),
    WeChat's verification proves the caller is that person:

    - if the caller's member was made by mini-program login and holds nothing yet (only its
      WeChat identities, no orders, points or claims) and the owner has no other WeChat
      account of this app, it is merged into the owner (audited, reason
      ``WECHAT_PHONE_VERIFIED``, the member as actor) and a new session for the owner is
      returned; the caller's old session ends;
    - otherwise both stay, the pair is recorded for ``duplicateCandidates`` (reason
      ``WECHAT_PHONE``) for staff to merge, and :class:`IdentityConflict` is raised.

    Raises :class:`~loyalty.auth.errors.WeChatError`, ValidationError (not a valid number),
    IdentityConflict and MemberNotActive; nothing is bound then.
    """
    number = await wechat.phone_number(settings, code, redis=redis)
    try:
        await members.link_identity(
            member_id=member_id,
            kind=IdentityKind.PHONE,
            value=number,
            channel=Channel.WECHAT_MINIPROGRAM,
        )
    except IdentityConflict:
        owner = await members.find_by_identity(kind=IdentityKind.PHONE, value=number)
        caller = await members.get(member_id=member_id)
        if owner is None or owner.id == caller.id or owner.status is not MemberStatus.ACTIVE:
            raise
        if await _foldable(settings, caller, owner):
            try:
                survivor = await merge.merge(
                    survivor_id=owner.id,
                    merged_id=caller.id,
                    idempotency_key=f"miniprogram.phone:{caller.id}",
                    actor=auth.member_principal(caller.id),
                    jobs=jobs,
                    reason=FOLD_REASON,
                    only_without_value=True,
                )
            except (MergeRefused, MemberNotActive):
                pass  # it holds value after all, or either member changed meanwhile
            else:
                log.info("miniprogram.folded_into_phone_owner", member_id=survivor.id)
                tokens = await auth.start_session(
                    settings=settings, principal=auth.member_principal(survivor.id)
                )
                return PhoneBinding(member=survivor, tokens=tokens)
        await merge.record_duplicate(
            member_id=caller.id, other_id=owner.id, reason=merge.WECHAT_PHONE
        )
        raise IdentityConflict(
            "the phone number belongs to another membership: staff can merge the two",
            kind=IdentityKind.PHONE.value,
        ) from None
    return PhoneBinding(member=await members.get(member_id=member_id))


async def _foldable(settings: Settings, caller: Member, owner: Member) -> bool:
    """Whether ``caller`` looks like a member made by mini-program login and nothing else,
    and ``owner`` has no WeChat account that would clash with the caller's. What the caller
    holds (orders, points…) is judged by the merge itself, inside its transaction."""
    if caller.registered_channel is not Channel.WECHAT_MINIPROGRAM:
        return False
    wechat_kinds = (IdentityKind.WECHAT_OPENID, IdentityKind.WECHAT_UNIONID)
    own = await ChannelIdentity.filter(member_id=caller.id)
    if any(
        row.kind not in wechat_kinds
        or (row.kind is IdentityKind.WECHAT_OPENID and row.scope != settings.wechat_app_id)
        for row in own
    ):
        return False
    # One WeChat user has one openid per app and one unionid: the owner's would be another
    # user's (a second account, or a phone number passed on).
    clash = Q()
    for row in own:
        clash |= Q(kind=row.kind, scope=row.scope)
    if not own:
        return True
    return not await ChannelIdentity.filter(clash, member_id=owner.id).exists()
