"""Channel identities: find a member the way each channel knows them, link and unlink."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty import hooks
from loyalty.errors import ValidationError
from loyalty.members import service
from loyalty.members.errors import IdentityConflict
from loyalty.members.models import Channel, ChannelIdentity, IdentityKind, Member, MemberStatus
from tests.factories.members import create_member

pytestmark = pytest.mark.usefixtures("orm")


@pytest.mark.parametrize("spelling", ["13812345678", "+86 138 1234 5678", "0086-138-1234-5678"])
async def test_phone_lookup_normalises_every_spelling(spelling: str) -> None:
    member = await create_member(phone="+8613812345678")

    found = await service.find_by_identity(kind=IdentityKind.PHONE, value=spelling)

    assert found is not None and found.id == member.id


async def test_email_lookup_ignores_case() -> None:
    member = await create_member(email="li.lei@example.com")

    found = await service.find_by_identity(kind=IdentityKind.EMAIL, value=" Li.Lei@Example.COM ")

    assert found is not None and found.id == member.id


async def test_openid_is_scoped_by_mini_program() -> None:
    member = await create_member()
    await service.link_identity(
        member_id=member.id,
        kind=IdentityKind.WECHAT_OPENID,
        value="o-abc",
        scope="wx-app-1",
        channel=Channel.WECHAT_MINIPROGRAM,
    )

    same_app = await service.find_by_identity(
        kind=IdentityKind.WECHAT_OPENID, value="o-abc", scope="wx-app-1"
    )
    other_app = await service.find_by_identity(
        kind=IdentityKind.WECHAT_OPENID, value="o-abc", scope="wx-app-2"
    )

    assert same_app is not None and same_app.id == member.id
    assert other_app is None


async def test_openid_without_app_id_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        await service.find_by_identity(kind=IdentityKind.WECHAT_OPENID, value="o-abc")
    assert [e.field for e in caught.value.errors] == ["scope"]


async def test_unscoped_kinds_ignore_a_scope() -> None:
    member = await create_member()
    row = await service.link_identity(
        member_id=member.id,
        kind=IdentityKind.POS_CARD,
        value=" 8800123 ",
        scope="store-7",
        channel=Channel.POS,
    )
    assert (row.scope, row.value) == ("", "8800123")

    found = await service.find_by_identity(kind=IdentityKind.POS_CARD, value="8800123")
    assert found is not None and found.id == member.id


async def test_linking_twice_is_idempotent_and_runs_hooks_once() -> None:
    member = await create_member()
    seen: list[tuple[Any, ...]] = []

    async def hook(member_id: int, kind: str, scope: str | None, value: str, conn: Any) -> None:
        seen.append((member_id, kind, scope, value))

    hooks.IDENTITY_LINKED_HOOKS.append(hook)
    try:
        first = await service.link_identity(
            member_id=member.id, kind=IdentityKind.APP_USER, value="u-1", channel=Channel.APP
        )
        again = await service.link_identity(
            member_id=member.id, kind=IdentityKind.APP_USER, value="u-1", channel=Channel.APP
        )
    finally:
        hooks.IDENTITY_LINKED_HOOKS.remove(hook)

    assert first.id == again.id
    assert seen == [(member.id, "APP_USER", None, "u-1")]


async def test_a_failing_hook_rolls_the_link_back() -> None:
    member = await create_member()

    async def hook(*_: Any) -> None:
        raise RuntimeError("guest orders unavailable")

    hooks.IDENTITY_LINKED_HOOKS.append(hook)
    try:
        with pytest.raises(RuntimeError):
            await service.link_identity(
                member_id=member.id, kind=IdentityKind.POS_CARD, value="C-1", channel=Channel.POS
            )
    finally:
        hooks.IDENTITY_LINKED_HOOKS.remove(hook)

    assert await ChannelIdentity.filter(kind=IdentityKind.POS_CARD).count() == 0


async def test_linking_another_members_identity_is_a_conflict() -> None:
    owner = await create_member()
    other = await create_member()
    await service.link_identity(
        member_id=owner.id, kind=IdentityKind.POS_CARD, value="C-9", channel=Channel.POS
    )

    with pytest.raises(IdentityConflict):
        await service.link_identity(
            member_id=other.id, kind=IdentityKind.POS_CARD, value="C-9", channel=Channel.POS
        )
    with pytest.raises(IdentityConflict):
        await service.link_identity(
            member_id=other.id, kind=IdentityKind.PHONE, value=owner.phone, channel=Channel.POS
        )
    assert await ChannelIdentity.filter(member_id=other.id).count() == 1  # its own phone


async def test_lookup_by_a_merged_members_identity_finds_the_survivor() -> None:
    survivor = await create_member()
    merged = await create_member(status=MemberStatus.MERGED, merged_into_id=survivor.id)
    await ChannelIdentity.create(
        member_id=merged.id,
        kind=IdentityKind.POS_CARD,
        value="C-5",
        channel=Channel.POS,
        linked_at=merged.registered_at,
    )

    found = await service.find_by_identity(kind=IdentityKind.POS_CARD, value="C-5")

    assert found is not None and found.id == survivor.id


async def test_unlinking_the_phone_clears_the_contact() -> None:
    member = await create_member(phone="+8613900000001")

    await service.unlink_identity(member_id=member.id, kind=IdentityKind.PHONE, value="13900000001")

    assert await service.find_by_identity(kind=IdentityKind.PHONE, value="13900000001") is None
    assert (await Member.get(id=member.id)).phone is None
