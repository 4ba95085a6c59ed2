"""Benefits through the API: catalog admin, member.benefits, claims and reservations."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry import relay

from loyalty.auth.principal import Role
from loyalty.benefits.models import QuotaPeriod
from loyalty.settings import Settings
from loyalty.tiers.models import Tier
from tests.conftest import token_for
from tests.factories.benefits import create_benefit, entitle
from tests.factories.members import create_member
from tests.factories.tiers import place_on_tier

pytestmark = pytest.mark.usefixtures("ladder")

CLAIM = """
mutation($input: ClaimBenefitInput!) { claimBenefit(input: $input) {
  __typename
  ... on ClaimBenefitSuccess { usesLeft replayed claim { id status benefitCode channel } }
  ... on NotEntitledError { code tierCode }
  ... on QuotaExhaustedError { code quota renewsAt }
  ... on WrongChannelError { code allowedChannels }
  ... on NotFoundError { code }
  ... on ConflictError { code }
} }
"""

RESERVE = """
mutation($input: ReserveBenefitInput!) { reserveBenefit(input: $input) {
  __typename ... on ClaimBenefitSuccess { claim { id status holdUntil } }
} }
"""

CONFIRM = """
mutation($input: ConfirmBenefitReservationInput!) { confirmBenefitReservation(input: $input) {
  __typename
  ... on BenefitReservationSuccess { claim { status orderRef } }
  ... on ReservationNotActiveError { status }
  ... on NotFoundError { code }
} }
"""

CREATE = """
mutation($input: CreateBenefitInput!) { createBenefit(input: $input) {
  __typename
  ... on BenefitSuccess { benefit { code kind config channels } }
  ... on ValidationError { fields { field code } }
} }
"""


def gid(member_id: int) -> str:
    return str(relay.GlobalID("Member", str(member_id)))


def claim_input(member_id: int, code: str, key: str, channel: str = "APP") -> dict[str, Any]:
    return {"input": {"memberId": gid(member_id), "benefitCode": code, "channel": channel,
                      "idempotencyKey": key}}  # fmt: skip


@pytest.fixture
async def silver(ladder: dict[str, Tier]) -> tuple[int, str]:
    member = await create_member()
    await place_on_tier(member.id, ladder["SILVER"])
    benefit = await create_benefit(channels=["APP", "POS"])
    await entitle("SILVER", benefit, period=QuotaPeriod.MONTH, quota=1)
    return member.id, benefit.code


async def test_member_claims_own_benefit_until_the_quota_is_used(
    gql: Any, settings: Settings, silver: tuple[int, str]
) -> None:
    member_id, code = silver
    token = token_for(settings, Role.MEMBER, member_id=member_id)

    first = (await gql(CLAIM, claim_input(member_id, code, "k1"), token=token))["data"]
    second = (await gql(CLAIM, claim_input(member_id, code, "k2"), token=token))["data"]

    assert first["claimBenefit"]["__typename"] == "ClaimBenefitSuccess"
    assert first["claimBenefit"]["usesLeft"] == 0
    assert first["claimBenefit"]["claim"]["status"] == "CLAIMED"
    assert second["claimBenefit"] == {
        "__typename": "QuotaExhaustedError", "code": "QUOTA_EXHAUSTED", "quota": 1,
        "renewsAt": "2026-03-31T16:00:00+00:00",
    }  # fmt: skip

    body = await gql(
        "query($id: ID!) { member(id: $id) { benefits { benefit { code } quota used usesLeft "
        "renewsAt } } }",
        {"id": gid(member_id)},
        token=token,
    )
    assert body["data"]["member"]["benefits"] == [
        {"benefit": {"code": code}, "quota": 1, "used": 1, "usesLeft": 0,
         "renewsAt": "2026-03-31T16:00:00+00:00"}
    ]  # fmt: skip


async def test_member_cannot_claim_for_another_member(
    gql: Any, settings: Settings, silver: tuple[int, str]
) -> None:
    member_id, code = silver
    other = await create_member()
    token = token_for(settings, Role.MEMBER, member_id=other.id)
    body = await gql(CLAIM, claim_input(member_id, code, "k"), token=token)
    assert body["data"]["claimBenefit"] == {
        "__typename": "NotFoundError",
        "code": "MEMBER_NOT_FOUND",
    }


async def test_typed_outcomes_for_entitlement_and_channel(
    gql: Any, service_token: str, silver: tuple[int, str]
) -> None:
    member_id, _code = silver
    gold_only = await create_benefit()
    await entitle("GOLD", gold_only)
    online = await create_benefit(channels=["ONLINE_STORE"])
    await entitle("SILVER", online)

    not_entitled = await gql(CLAIM, claim_input(member_id, gold_only.code, "a", "POS"),
                             token=service_token)  # fmt: skip
    wrong = await gql(CLAIM, claim_input(member_id, online.code, "b", "POS"), token=service_token)
    unknown = await gql(CLAIM, claim_input(member_id, "NOPE", "c", "POS"), token=service_token)

    assert not_entitled["data"]["claimBenefit"] == {
        "__typename": "NotEntitledError", "code": "NOT_ENTITLED", "tierCode": "SILVER"
    }  # fmt: skip
    assert wrong["data"]["claimBenefit"] == {
        "__typename": "WrongChannelError", "code": "WRONG_CHANNEL",
        "allowedChannels": ["ONLINE_STORE"],
    }  # fmt: skip
    assert unknown["data"]["claimBenefit"]["code"] == "BENEFIT_NOT_FOUND"


async def test_channel_key_claims_only_in_its_channel(
    gql: Any, service_token: str, silver: tuple[int, str]
) -> None:
    member_id, code = silver
    body = await gql(
        CLAIM, claim_input(member_id, code, "k", "APP"), token=service_token, expect_errors=True
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_reserve_and_confirm_through_the_api(
    gql: Any, staff_token: str, silver: tuple[int, str]
) -> None:
    member_id, code = silver
    held = await gql(RESERVE, {"input": {**claim_input(member_id, code, "r")["input"],
                                         "holdSeconds": 300}}, token=staff_token)  # fmt: skip
    claim = held["data"]["reserveBenefit"]["claim"]
    assert claim["status"] == "RESERVED"

    done = await gql(CONFIRM, {"input": {"claimId": claim["id"], "orderRef": "POS-1"}},
                     token=staff_token)  # fmt: skip
    assert done["data"]["confirmBenefitReservation"] == {
        "__typename": "BenefitReservationSuccess",
        "claim": {"status": "CONFIRMED", "orderRef": "POS-1"},
    }


async def test_member_cannot_confirm_another_members_reservation(
    gql: Any, settings: Settings, silver: tuple[int, str]
) -> None:
    member_id, code = silver
    held = await gql(RESERVE, {"input": claim_input(member_id, code, "r")["input"]})
    claim_id = held["data"]["reserveBenefit"]["claim"]["id"]
    other = await create_member()
    body = await gql(
        CONFIRM,
        {"input": {"claimId": claim_id, "orderRef": "X"}},
        token=token_for(settings, Role.MEMBER, member_id=other.id),
    )
    assert body["data"]["confirmBenefitReservation"]["code"] == "BENEFIT_CLAIM_NOT_FOUND"


async def test_create_benefit_validates_config_through_the_api(gql: Any) -> None:
    ok = await gql(CREATE, {"input": {"code": "off20", "name": "立减20", "kind": "AMOUNT_OFF",
                                      "config": {"amount": 2000}, "channels": ["POS"]}})  # fmt: skip
    assert ok["data"]["createBenefit"]["benefit"] == {
        "code": "OFF20", "kind": "AMOUNT_OFF", "config": {"amount": 2000}, "channels": ["POS"]
    }  # fmt: skip
    bad = await gql(CREATE, {"input": {"code": "OFF", "name": "x", "kind": "AMOUNT_OFF",
                                       "config": {"percent": 5}}})  # fmt: skip
    assert {"field": "input.config.percent", "code": "UNKNOWN_KEY"} in bad["data"]["createBenefit"][
        "fields"
    ]
    assert {"field": "input.config.amount", "code": "REQUIRED"} in bad["data"]["createBenefit"][
        "fields"
    ]
