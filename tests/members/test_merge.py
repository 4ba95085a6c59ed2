"""Duplicate candidates and mergeMembers."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import pytest

from loyalty.audit.models import AuditEntry
from loyalty.auth.principal import SYSTEM
from loyalty.members import merge as merge_service
from loyalty.members import privacy, service
from loyalty.members.models import (
    Channel,
    ChannelIdentity,
    Consent,
    ConsentPurpose,
    DuplicateHint,
    IdentityKind,
    Member,
    MemberMerge,
    MemberStatus,
)
from tests.factories.members import create_identity, create_member
from tests.members.conftest import gid

MERGE = """
mutation Merge($input: MergeMembersInput!) {
  mergeMembers(input: $input) {
    __typename
    ... on MergeMembersSuccess {
      survivor { id status phone tags stats { totalSpend orderCount firstOrderAt lastOrderAt }
                 identities { kind value } consents { purpose granted policyVersion } }
    }
    ... on MergeRefusedError { code message }
    ... on MemberNotActiveError { code }
    ... on NotFoundError { code }
    ... on ConflictError { code }
    ... on ValidationError { code }
  }
}
"""

CANDIDATES = """
query($first: Int!, $after: String) {
  duplicateCandidates(first: $first, after: $after) {
    edges { cursor node { reason memberA { id } memberB { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def t(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=UTC)


async def merge(
    gql: Any, survivor: int, merged: int, key: str = "k-1", **kw: Any
) -> dict[str, Any]:
    body = await gql(
        MERGE,
        {"input": {"survivorId": gid(survivor), "mergedId": gid(merged), "idempotencyKey": key}},
        **kw,
    )
    return body["data"]["mergeMembers"]  # type: ignore[no-any-return]


async def consent(member: Member, purpose: ConsentPurpose, granted: bool, version: str) -> None:
    await Consent.create(
        member_id=member.id,
        purpose=purpose,
        granted=granted,
        channel=Channel.APP,
        policy_version=version,
        recorded_at=t(1),
    )


async def test_merge_moves_identities_combines_stats_and_keeps_the_stricter_consent(
    gql: Any,
) -> None:
    survivor = await create_member(
        total_spend=10_000, order_count=2, first_order_at=t(5), last_order_at=t(9), tags=["vip"]
    )
    merged = await create_member(
        phone="+8613900000009",
        total_spend=2_550,
        order_count=1,
        first_order_at=t(2),
        last_order_at=t(3),
        tags=["vip", "store-7"],
    )
    await create_identity(merged, IdentityKind.POS_CARD, "8800123")
    await consent(survivor, ConsentPurpose.MARKETING_SMS, True, "v1")
    await consent(merged, ConsentPurpose.MARKETING_SMS, False, "v2")
    await consent(survivor, ConsentPurpose.MARKETING_EMAIL, False, "v1")
    await consent(merged, ConsentPurpose.MARKETING_EMAIL, True, "v2")
    await consent(merged, ConsentPurpose.PROFILING, True, "v2")

    result = await merge(gql, survivor.id, merged.id)

    assert result["__typename"] == "MergeMembersSuccess"
    got = result["survivor"]
    assert got["stats"] == {
        "totalSpend": 12_550,
        "orderCount": 3,
        "firstOrderAt": "2024-01-02T00:00:00+00:00",
        "lastOrderAt": "2024-01-09T00:00:00+00:00",
    }
    assert got["tags"] == ["vip", "store-7"]
    assert {(i["kind"], i["value"]) for i in got["identities"]} == {
        ("PHONE", survivor.phone),
        ("PHONE", "+8613900000009"),
        ("POS_CARD", "8800123"),
    }
    assert {c["purpose"]: c["granted"] for c in got["consents"]} == {
        "MARKETING_SMS": False,
        "MARKETING_EMAIL": False,
        "PROFILING": True,
    }
    gone = await Member.get(id=merged.id)
    assert (gone.status, gone.merged_into_id, gone.phone) == (
        MemberStatus.MERGED,
        survivor.id,
        None,
    )  # type: ignore[attr-defined]
    assert await ChannelIdentity.filter(member_id=merged.id).count() == 0
    assert await Consent.filter(member_id=merged.id).count() == 0
    audit = await AuditEntry.filter(action="member.merge")
    assert len(audit) == 1
    assert audit[0].details["merged_id"] == merged.id


async def test_merged_id_and_its_identities_resolve_to_the_survivor(gql: Any) -> None:
    survivor = await create_member()
    merged = await create_member(phone="+8613900000008")
    await merge(gql, survivor.id, merged.id)

    body = await gql("query($id: ID!) { member(id: $id) { id } }", {"id": gid(merged.id)})
    by_phone = await service.find_by_identity(kind=IdentityKind.PHONE, value="13900000008")

    assert body["data"]["member"]["id"] == gid(survivor.id)
    assert by_phone is not None and by_phone.id == survivor.id


async def test_survivor_without_phone_adopts_the_merged_members_phone(gql: Any) -> None:
    survivor = await create_member(phone=None, birth_date=None)
    merged = await create_member(phone="+8613900000007", birth_date=date(1990, 5, 6))

    result = await merge(gql, survivor.id, merged.id)

    assert result["survivor"]["phone"] == "+8613900000007"
    row = await Member.get(id=survivor.id)
    assert (row.birth_month, row.birth_day) == (5, 6)


async def test_same_key_replays_and_another_merge_with_it_conflicts(gql: Any) -> None:
    survivor, merged, third = [m async for m in _members(3)]
    first = await merge(gql, survivor.id, merged.id, key="same")
    again = await merge(gql, survivor.id, merged.id, key="same")
    other = await merge(gql, survivor.id, third.id, key="same")

    assert first["__typename"] == again["__typename"] == "MergeMembersSuccess"
    assert other == {"__typename": "ConflictError", "code": "IDEMPOTENCY_CONFLICT"}
    assert await AuditEntry.filter(action="member.merge").count() == 1
    assert (await Member.get(id=third.id)).status is MemberStatus.ACTIVE


async def _members(n: int) -> Any:
    for _ in range(n):
        yield await create_member()


async def test_concurrent_merges_with_one_key_merge_once(gql: Any) -> None:
    survivor, merged = [m async for m in _members(2)]
    await Member.filter(id=merged.id).update(total_spend=500, order_count=1)

    results = await asyncio.gather(*(merge(gql, survivor.id, merged.id, key="k") for _ in range(5)))

    assert {r["__typename"] for r in results} == {"MergeMembersSuccess"}
    assert (await Member.get(id=survivor.id)).total_spend == 500
    assert await MemberMerge.all().count() == 1


@pytest.mark.parametrize("case", ["self", "into_merged", "merged_twice", "erased"])
async def test_refused_merges_are_typed_and_write_nothing(gql: Any, case: str) -> None:
    a, b, c = [m async for m in _members(3)]
    await merge(gql, b.id, c.id, key="setup")  # c is MERGED into b
    await Member.filter(id=a.id).update(total_spend=100)
    if case == "erased":
        await Member.filter(id=b.id).update(status=MemberStatus.ERASED)
    survivor, merged, code = {
        "self": (a.id, a.id, "MERGE_INTO_SELF"),
        "into_merged": (c.id, a.id, "MERGE_INTO_MERGED"),
        "merged_twice": (a.id, c.id, "MERGE_SOURCE_NOT_ACTIVE"),
        "erased": (a.id, b.id, "MERGE_SOURCE_NOT_ACTIVE"),
    }[case]
    identities = await ChannelIdentity.all().values_list("id", "member_id")

    result = await merge(gql, survivor, merged, key="k-refused")

    assert result["__typename"] == "MergeRefusedError"
    assert result["code"] == code
    assert (await Member.get(id=a.id)).status is MemberStatus.ACTIVE
    assert (await Member.get(id=a.id)).total_spend == 100
    assert await ChannelIdentity.all().values_list("id", "member_id") == identities
    assert await AuditEntry.filter(action="member.merge").count() == 1  # the setup merge
    assert await MemberMerge.filter(idempotency_key="k-refused").count() == 0


async def test_merge_is_admin_only(gql: Any, staff_token: str) -> None:
    a, b = [m async for m in _members(2)]

    body = await gql(
        MERGE,
        {"input": {"survivorId": gid(a.id), "mergedId": gid(b.id), "idempotencyKey": "x"}},
        token=staff_token,
        expect_errors=True,
    )

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await Member.get(id=b.id)).status is MemberStatus.ACTIVE


async def test_duplicate_candidates_pair_name_and_birthday_and_card_equal_to_phone(
    gql: Any,
) -> None:
    born = date(1991, 3, 4)
    a = await create_member(display_name="李雷", birth_date=born)
    b = await create_member(display_name="李雷", birth_date=born)
    await create_member(display_name="李雷", birth_date=date(1991, 3, 5))
    c = await create_member(phone="+8613700000001")
    d = await create_member()
    await create_identity(d, IdentityKind.POS_CARD, "13700000001")
    merged_away = await create_member(display_name="李雷", birth_date=born)
    await Member.filter(id=merged_away.id).update(status=MemberStatus.MERGED, merged_into_id=a.id)

    pairs: list[tuple[str, str, str]] = []
    after = None
    while True:
        page = (await gql(CANDIDATES, {"first": 1, "after": after}))["data"]["duplicateCandidates"]
        pairs += [
            (e["node"]["reason"], e["node"]["memberA"]["id"], e["node"]["memberB"]["id"])
            for e in page["edges"]
        ]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert pairs == [
        ("NAME_AND_BIRTHDAY", gid(a.id), gid(b.id)),
        ("PHONE", gid(c.id), gid(d.id)),
    ]


async def test_recorded_hints_follow_a_merge_and_go_with_an_erasure(gql: Any) -> None:
    # Given hints that X is also M, and that M is also P
    p, m, x = await create_member(), await create_member(), await create_member()
    await merge_service.record_duplicate(member_id=x.id, other_id=m.id, reason="WECHAT_PHONE")
    await merge_service.record_duplicate(member_id=m.id, other_id=p.id, reason="WECHAT_PHONE")
    await merge_service.record_duplicate(member_id=p.id, other_id=m.id, reason="WECHAT_PHONE")

    async def listed() -> list[tuple[str, str, str]]:
        edges = (await gql(CANDIDATES, {"first": 10}))["data"]["duplicateCandidates"]["edges"]
        return [
            (e["node"]["reason"], e["node"]["memberA"]["id"], e["node"]["memberB"]["id"])
            for e in edges
        ]

    assert await listed() == [
        ("WECHAT_PHONE", gid(p.id), gid(m.id)),
        ("WECHAT_PHONE", gid(m.id), gid(x.id)),
    ]
    # When M is merged into P, the P–M hint is spent and X's names P
    assert (await merge(gql, p.id, m.id))["__typename"] == "MergeMembersSuccess"
    assert await listed() == [("WECHAT_PHONE", gid(p.id), gid(x.id))]
    assert await DuplicateHint.all().count() == 1
    # When X is erased, nothing is left naming it
    await privacy.erase(member_id=x.id, reason="member request", actor=SYSTEM)
    assert await DuplicateHint.all().count() == 0


async def test_crossing_merges_one_wins_and_the_other_is_refused(gql: Any) -> None:
    a, b = [m async for m in _members(2)]

    results = await asyncio.gather(
        merge(gql, a.id, b.id, key="a<-b"), merge(gql, b.id, a.id, key="b<-a")
    )

    assert sorted(r["__typename"] for r in results) == ["MergeMembersSuccess", "MergeRefusedError"]
    statuses = sorted([(await Member.get(id=a.id)).status, (await Member.get(id=b.id)).status])
    assert statuses == [MemberStatus.ACTIVE, MemberStatus.MERGED]
    assert await MemberMerge.all().count() == 1
