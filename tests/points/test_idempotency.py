"""A retry that races its first attempt answers the first result, even at the exact balance."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loyalty.auth.principal import SYSTEM, Role
from loyalty.points import service
from loyalty.points.audit import check_ledger
from loyalty.points.errors import IdempotencyConflict, InsufficientPoints
from loyalty.points.models import EntryKind, PointsEntry
from tests.conftest import token_for
from tests.factories.members import create_member
from tests.factories.points import grant_points

pytestmark = pytest.mark.usefixtures("orm")


async def _spend(kind: str, member_id: int, amount: int, key: str) -> service.Movement:
    if kind == "redeem":
        return await service.redeem(member_id=member_id, amount=amount, idempotency_key=key)
    return await service.adjust(
        actor=SYSTEM, member_id=member_id, amount=-amount, reason="门店更正", idempotency_key=key
    )


@pytest.mark.parametrize("kind", ["redeem", "adjust"])
@pytest.mark.parametrize("round_", range(3))
async def test_twin_requests_spending_the_whole_balance_both_answer_the_first_result(
    kind: str, round_: int
) -> None:
    member = await create_member()
    await grant_points(member.id, 100)

    first, twin = await asyncio.gather(
        _spend(kind, member.id, 100, "k"), _spend(kind, member.id, 100, "k"), return_exceptions=True
    )

    assert isinstance(first, service.Movement), first
    assert isinstance(twin, service.Movement), twin
    assert first.entry_id == twin.entry_id
    assert (first.amount, first.balance) == (twin.amount, twin.balance) == (-100, 0)
    assert sorted([first.replayed, twin.replayed]) == [False, True]
    assert (await service.get_account(member_id=member.id)).balance == 0
    entry_kind = EntryKind.REDEEM if kind == "redeem" else EntryKind.ADJUST
    assert await PointsEntry.filter(member_id=member.id, kind=entry_kind).count() == 1
    assert not await check_ledger()


async def test_two_keys_at_the_exact_balance_still_refuse_the_second() -> None:
    member = await create_member()
    await grant_points(member.id, 100)

    outcomes = await asyncio.gather(
        service.redeem(member_id=member.id, amount=100, idempotency_key="a"),
        service.redeem(member_id=member.id, amount=100, idempotency_key="b"),
        return_exceptions=True,
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["InsufficientPoints", "Movement"]
    assert (await service.get_account(member_id=member.id)).balance == 0


async def test_a_refused_twin_with_other_content_is_told_of_the_conflict() -> None:
    member = await create_member()
    await grant_points(member.id, 100)

    outcomes = await asyncio.gather(
        service.redeem(member_id=member.id, amount=100, idempotency_key="k"),
        service.redeem(member_id=member.id, amount=60, idempotency_key="k"),
        return_exceptions=True,
    )

    spent = [o for o in outcomes if isinstance(o, service.Movement)]
    assert len(spent) == 1 and not spent[0].replayed
    [other] = [o for o in outcomes if not isinstance(o, service.Movement)]
    # Whichever ran second: the key is taken by another request, never a balance refusal.
    assert isinstance(other, IdempotencyConflict), other
    assert not isinstance(other, InsufficientPoints)
    assert await PointsEntry.filter(kind=EntryKind.REDEEM).count() == 1


REDEEM = """
mutation Redeem($input: RedeemPointsInput!) {
  redeemPoints(input: $input) {
    __typename
    ... on RedeemPointsSuccess { entryId amount balance replayed }
    ... on InsufficientPointsError { code balance requested }
  }
}
"""


async def test_twin_redeem_requests_over_http_both_succeed_once(gql: Any, settings: Any) -> None:
    member = await create_member()
    await grant_points(member.id, 100)
    token = token_for(settings, Role.MEMBER, member_id=member.id)
    variables = {"input": {"amount": 100, "idempotencyKey": "till-7"}}

    bodies = await asyncio.gather(
        gql(REDEEM, variables, token=token), gql(REDEEM, variables, token=token)
    )

    answers = [body["data"]["redeemPoints"] for body in bodies]
    assert [a["__typename"] for a in answers] == ["RedeemPointsSuccess"] * 2, answers
    assert answers[0]["entryId"] == answers[1]["entryId"]
    assert {(a["amount"], a["balance"]) for a in answers} == {(-100, 0)}
    assert sorted(a["replayed"] for a in answers) == [False, True]
    assert (await service.get_account(member_id=member.id)).balance == 0
    assert await PointsEntry.filter(kind=EntryKind.REDEEM).count() == 1
