"""members(first, after, filter): filters, totalCount and a constant number of SQL queries."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from loyalty.members.models import (
    Channel,
    Consent,
    ConsentPurpose,
    IdentityKind,
    LifecycleStage,
    MemberStatus,
)
from tests.factories.members import create_identity, create_member

MEMBERS = """
query($first: Int!, $after: String, $filter: MemberFilter) {
  members(first: $first, after: $after, filter: $filter) {
    edges { node { displayName } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def names(gql: Any, filter: dict[str, Any], first: int = 100) -> list[str]:
    body = await gql(MEMBERS, {"first": first, "filter": filter})
    return [e["node"]["displayName"] for e in body["data"]["members"]["edges"]]


@pytest.fixture
async def crowd() -> None:
    await create_member(
        display_name="王小明",
        phone="+8613800001234",
        birth_date=date(1990, 5, 1),
        tags=["vip", "store-7"],
        registered_channel=Channel.POS,
    )
    await create_member(
        display_name="王大锤",
        phone="+8613900005678",
        birth_date=date(1985, 12, 24),
        lifecycle_stage=LifecycleStage.AT_RISK,
        tags=["store-7"],
    )
    await create_member(
        display_name="Li Lei",
        phone="+8613700001234",
        birth_date=date(2000, 5, 30),
        registered_channel=Channel.WECHAT_MINIPROGRAM,
    )
    await create_member(display_name="合并掉的王", status=MemberStatus.MERGED, phone=None)


@pytest.mark.usefixtures("crowd")
@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({}, ["王小明", "王大锤", "Li Lei"]),
        ({"text": "王"}, ["王小明", "王大锤"]),
        ({"text": "王小"}, ["王小明"]),
        ({"text": "li lei"}, ["Li Lei"]),
        ({"text": "1234"}, ["王小明", "Li Lei"]),
        ({"lifecycleStage": "AT_RISK"}, ["王大锤"]),
        ({"registeredChannel": "POS"}, ["王小明"]),
        ({"birthMonth": 5}, ["王小明", "Li Lei"]),
        ({"tag": "store-7"}, ["王小明", "王大锤"]),
        ({"tag": "vip", "birthMonth": 5}, ["王小明"]),
        ({"tag": "nobody"}, []),
    ],
)
async def test_filters_select_the_right_members(
    gql: Any, filter: dict[str, Any], expected: list[str]
) -> None:
    assert await names(gql, filter) == expected


@pytest.mark.usefixtures("crowd")
async def test_total_count_follows_the_filter_and_pages_do_not(gql: Any) -> None:
    body = await gql(
        """{ members(first: 1, filter: {tag: "store-7"}) { totalCount edges { node { id } } } }"""
    )
    assert body["data"]["members"]["totalCount"] == 2
    assert len(body["data"]["members"]["edges"]) == 1


@pytest.mark.usefixtures("orm")
@pytest.mark.parametrize(
    ("filter", "argument"),
    [({"birthMonth": 13}, "filter.birthMonth"), ({"text": " "}, "filter.text")],
)
async def test_bad_filters_are_bad_user_input(
    gql: Any, filter: dict[str, Any], argument: str
) -> None:
    body = await gql(MEMBERS, {"first": 5, "filter": filter}, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["fields"][0]["field"] == argument


@pytest.mark.usefixtures("orm")
async def test_tier_filter_lists_holders_and_entry_tier_members_without_a_tier_row(
    gql: Any,
) -> None:
    from loyalty.auth.principal import SYSTEM
    from loyalty.tiers import service as tiers

    await tiers.seed_default_ladder()
    gold = await create_member(display_name="金卡")
    await create_member(display_name="普卡")
    await tiers.assign(member_id=gold.id, tier_code="GOLD", actor=SYSTEM)
    entry = (await tiers.ladder())[0].code

    assert await names(gql, {"tier": "GOLD"}) == ["金卡"]
    assert await names(gql, {"tier": entry}) == ["普卡"]
    assert await names(gql, {"tier": "DIAMOND"}) == []


async def test_pages_do_not_shift_when_members_are_inserted(gql: Any) -> None:
    for i in range(4):
        await create_member(display_name=f"M{i}")
    first = (await gql(MEMBERS, {"first": 2}))["data"]["members"]
    await create_member(display_name="late")

    second = await gql(MEMBERS, {"first": 2, "after": first["pageInfo"]["endCursor"]})

    assert [e["node"]["displayName"] for e in second["data"]["members"]["edges"]] == ["M2", "M3"]


PAGE_360 = """
query($first: Int!) { members(first: $first) { edges { node {
  id displayName phone status tags stats { totalSpend }
  identities { kind value } consents { purpose granted } consentHistory { granted }
} } } }
"""


async def members_with_relations(n: int) -> None:
    for _ in range(n):
        member = await create_member(email=None)
        await create_identity(member, IdentityKind.POS_CARD, f"card-{member.id}")
        await Consent.create(
            member_id=member.id,
            purpose=ConsentPurpose.MARKETING_SMS,
            granted=True,
            channel=Channel.APP,
            policy_version="v1",
            recorded_at=member.registered_at,
        )


async def test_a_page_of_members_with_identities_and_consents_costs_constant_queries(
    gql: Any, sql_queries: list[str]
) -> None:
    await members_with_relations(5)
    sql_queries.clear()
    small = await gql(PAGE_360, {"first": 5})
    queries_for_5 = len(sql_queries)

    await members_with_relations(45)
    sql_queries.clear()
    large = await gql(PAGE_360, {"first": 50})
    queries_for_50 = len(sql_queries)

    assert len(small["data"]["members"]["edges"]) == 5
    assert len(large["data"]["members"]["edges"]) == 50
    assert all(len(e["node"]["identities"]) == 2 for e in large["data"]["members"]["edges"])
    assert queries_for_50 == queries_for_5
    assert queries_for_50 == 3  # members, identities, consents
