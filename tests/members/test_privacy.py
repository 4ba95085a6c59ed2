"""exportMemberData and eraseMember; every personal column is covered by both."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from tortoise import Tortoise

from loyalty import hooks
from loyalty.audit.models import AuditEntry
from loyalty.members import privacy, service
from loyalty.members.models import (
    Channel,
    ChannelIdentity,
    Consent,
    ConsentPurpose,
    IdentityKind,
    Member,
    MemberStatus,
)
from tests.factories.members import create_identity, create_member
from tests.members.conftest import gid

EXPORT = """
mutation($id: ID!) { exportMemberData(id: $id) {
  __typename ... on ExportMemberDataSuccess { document } ... on NotFoundError { code } } }
"""

ERASE = """
mutation($input: EraseMemberInput!) { eraseMember(input: $input) {
  __typename
  ... on EraseMemberSuccess { member { id status displayName phone email birthDate birthMonth
                                       tags identities { kind } stats { totalSpend orderCount } } }
  ... on MemberAlreadyErasedError { code }
  ... on NotFoundError { code }
  ... on ValidationError { code }
} }
"""


async def erase(gql: Any, member_id: int, reason: str = "member request #42") -> dict[str, Any]:
    body = await gql(ERASE, {"input": {"memberId": gid(member_id), "reason": reason}})
    return body["data"]["eraseMember"]  # type: ignore[no-any-return]


async def a_member_with_everything() -> Member:
    member = await create_member(
        display_name="韩梅梅",
        phone="+8613800000042",
        email="mei@example.com",
        birth_date=date(1992, 2, 29),
        region="上海",
        timezone="Asia/Shanghai",
        tags=["vip"],
        total_spend=8_800,
        order_count=3,
    )
    await create_identity(member, IdentityKind.WECHAT_OPENID, "o-secret", scope="wx-app")
    await Consent.create(
        member_id=member.id,
        purpose=ConsentPurpose.MARKETING_SMS,
        granted=True,
        channel=Channel.APP,
        policy_version="v3",
        recorded_at=member.registered_at,
    )
    return member


@pytest.mark.usefixtures("orm")
def test_every_member_column_is_classified_personal_or_not() -> None:
    # When this fails, a column was added to Member: add it to PERSONAL_FIELDS (with the
    # value it takes on erasure; export follows) or to NON_PERSONAL_FIELDS.
    meta = Member._meta
    relations = meta.backward_fk_fields | meta.backward_o2o_fields | meta.m2m_fields
    columns = set(meta.fields_map) - relations
    personal = set(privacy.PERSONAL_FIELDS)

    assert personal.isdisjoint(privacy.NON_PERSONAL_FIELDS)
    assert columns == personal | privacy.NON_PERSONAL_FIELDS


async def test_export_holds_every_personal_field_identities_consents_and_handler_sections(
    gql: Any,
) -> None:
    member = await a_member_with_everything()

    result = (await gql(EXPORT, {"id": gid(member.id)}))["data"]["exportMemberData"]

    assert result["__typename"] == "ExportMemberDataSuccess"
    document = result["document"]
    assert set(privacy.PERSONAL_FIELDS) <= set(document["member"])
    assert document["member"]["display_name"] == "韩梅梅"
    assert document["member"]["birth_date"] == "1992-02-29"
    assert {i["value"] for i in document["identities"]} == {
        "+8613800000042",
        "mei@example.com",
        "o-secret",
    }
    assert document["consents"][0]["purpose"] == "MARKETING_SMS"
    for handler in hooks.MEMBER_DATA_HANDLERS:
        assert set(await handler.export(member_id=member.id)) <= set(document)
    json.dumps(document)  # one JSON document
    assert await AuditEntry.filter(action="member.export", target_id=str(member.id)).count() == 1


async def test_erasure_anonymises_keeps_amounts_and_the_member_cannot_be_found(gql: Any) -> None:
    member = await a_member_with_everything()

    result = await erase(gql, member.id)

    assert result["__typename"] == "EraseMemberSuccess"
    erased = result["member"]
    assert erased["status"] == "ERASED"
    assert erased["displayName"] == privacy.ERASED_NAME
    assert (erased["phone"], erased["email"], erased["birthDate"], erased["birthMonth"]) == (
        None,
        None,
        None,
        None,
    )
    assert erased["tags"] == []
    assert erased["identities"] == []
    assert erased["stats"] == {"totalSpend": 8_800, "orderCount": 3}
    row = await Member.get(id=member.id)
    for name, value in privacy.PERSONAL_FIELDS.items():
        assert getattr(row, name) == value, name
    assert await service.find_by_identity(kind=IdentityKind.PHONE, value="13800000042") is None
    assert (
        await service.find_by_identity(
            kind=IdentityKind.WECHAT_OPENID, value="o-secret", scope="wx-app"
        )
        is None
    )
    assert await Consent.filter(member_id=member.id).count() == 1  # proof of what was agreed


async def test_erasure_audit_entry_holds_no_erased_value(gql: Any) -> None:
    member = await a_member_with_everything()

    await erase(gql, member.id, reason="GDPR art. 17 request")

    (entry,) = await AuditEntry.filter(action="member.erase")
    text = json.dumps(entry.details, ensure_ascii=False) + entry.target_id
    for secret in ("韩梅梅", "13800000042", "mei@example.com", "o-secret", "1992"):
        assert secret not in text
    assert entry.details["reason"] == "GDPR art. 17 request"


async def test_erasing_twice_is_a_typed_error_and_writes_nothing(gql: Any) -> None:
    member = await a_member_with_everything()
    await erase(gql, member.id)

    again = await erase(gql, member.id)

    assert again == {"__typename": "MemberAlreadyErasedError", "code": "MEMBER_ALREADY_ERASED"}
    assert await AuditEntry.filter(action="member.erase").count() == 1


async def test_erasure_also_anonymises_members_merged_into_it(gql: Any) -> None:
    survivor = await create_member()
    merged = await create_member(display_name="旧名字", birth_date=date(1980, 1, 1))
    await Member.filter(id=merged.id).update(
        status=MemberStatus.MERGED, merged_into_id=survivor.id, phone=None
    )

    await erase(gql, survivor.id)

    old = await Member.get(id=merged.id)
    assert (old.display_name, old.birth_date, old.status) == (
        privacy.ERASED_NAME,
        None,
        MemberStatus.MERGED,
    )


async def test_erasing_an_unknown_member_is_not_found(gql: Any) -> None:
    assert await erase(gql, 987654) == {"__typename": "NotFoundError", "code": "MEMBER_NOT_FOUND"}


@pytest.mark.parametrize("mutation", ["exportMemberData", "eraseMember"])
async def test_privacy_operations_are_admin_only(gql: Any, staff_token: str, mutation: str) -> None:
    member = await create_member()
    document = (
        EXPORT
        if mutation == "exportMemberData"
        else ERASE.replace("$input: EraseMemberInput!", "$id: ID!").replace(
            "input: $input", 'input: {memberId: $id, reason: "x"}'
        )
    )

    body = await gql(document, {"id": gid(member.id)}, token=staff_token, expect_errors=True)

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await Member.get(id=member.id)).status is MemberStatus.ACTIVE


def _member_referencing_models() -> list[str]:
    names = []
    for app, models in Tortoise.apps.items():
        for name, model in models.items():
            meta = model._meta
            points_at_member = any(
                meta.fields_map[fk].related_model is Member for fk in meta.fk_fields
            )
            # member_id, or several members' ids (member_a_id, member_b_id)
            member_ids = any(n.startswith("member_") and n.endswith("_id") for n in meta.fields_map)
            if points_at_member or "member_id" in meta.fields_map or member_ids:
                names.append(f"{app}.{name}")
    return sorted(names)


@pytest.mark.usefixtures("orm")
def test_every_model_referencing_a_member_has_a_member_data_handler() -> None:
    # Merge, export and erasure follow MEMBER_DATA_HANDLERS: a table holding member ids
    # that no handler lists would be left behind by all three.
    covered = {name for handler in hooks.MEMBER_DATA_HANDLERS for name in handler.models}
    referencing = _member_referencing_models()

    assert {"loyalty.ChannelIdentity", "loyalty.Consent", "loyalty.OutboxMessage"} <= set(
        referencing
    )
    uncovered = [name for name in referencing if name not in covered]
    assert not uncovered, f"no MEMBER_DATA_HANDLERS entry lists {uncovered}"


@pytest.mark.usefixtures("orm")
def test_every_handler_implements_merge_export_and_erase() -> None:
    for handler in hooks.MEMBER_DATA_HANDLERS:
        for method in ("merge", "export", "erase"):
            assert callable(getattr(handler, method, None)), (handler, method)
        assert handler.models, handler


async def test_erasure_runs_every_handler_inside_the_transaction(gql: Any) -> None:
    member = await create_member()
    await create_identity(member, IdentityKind.POS_CARD, "C-1")

    class Failing:
        models: tuple[str, ...] = ()

        async def merge(self, **_: Any) -> None: ...

        async def export(self, **_: Any) -> dict[str, Any]:
            return {}

        async def erase(self, **_: Any) -> None:
            raise RuntimeError("boom")

    hooks.MEMBER_DATA_HANDLERS.append(Failing())
    try:
        with pytest.raises(RuntimeError):
            from loyalty.auth.principal import SYSTEM

            await privacy.erase(member_id=member.id, reason="x", actor=SYSTEM)
    finally:
        hooks.MEMBER_DATA_HANDLERS.pop()

    row = await Member.get(id=member.id)
    assert row.status is MemberStatus.ACTIVE and row.phone == member.phone
    assert await ChannelIdentity.filter(member_id=member.id).count() == 2
