"""Personal data: masked for staff without `pii` wherever a member appears; reads in clear
and admin/staff writes are audited (ids only)."""

from __future__ import annotations

import httpx
from strawberry.relay import to_base64

from loyalty.audit.models import AuditEntry
from loyalty.auth.principal import Role
from loyalty.settings import Settings
from tests.auth.conftest import post
from tests.conftest import token_for

REGISTER = """
mutation($input: RegisterMemberInput!) { registerMember(input: $input) {
  __typename ... on RegisterMemberSuccess { member { id } } } }
"""
PROFILE = "displayName phone email birthDate birthMonth birthDay identities { kind value }"
RAW = ("王小明", "13812345678", "zhang.san@example.com", "1990-02-28", "小明")


async def _register(client: httpx.AsyncClient, admin_token: str, **headers: str) -> str:
    body = await post(
        client,
        REGISTER,
        {
            "input": {
                "channel": "APP",
                "displayName": "王小明",
                "phone": "138 1234 5678",
                "email": "zhang.san@example.com",
                "birthDate": "1990-02-28",
            }
        },
        token=admin_token,
        headers=headers,
    )
    return str(body["data"]["registerMember"]["member"]["id"])


async def test_staff_without_pii_sees_masked_data_on_every_path(
    client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    member_id = await _register(client, admin_token)
    staff = token_for(settings, Role.STAFF)  # no pii scope
    paths = {
        "member": (f"query($id: ID!) {{ member(id: $id) {{ {PROFILE} }} }}", {"id": member_id}),
        "node": (
            f"query($id: ID!) {{ node(id: $id) {{ ... on Member {{ {PROFILE} }} }} }}",
            {"id": member_id},
        ),
        "members": (f"{{ members(first: 10) {{ edges {{ node {{ {PROFILE} }} }} }} }}", {}),
        "search": (
            f'query {{ members(first: 10, filter: {{text: "王小明"}}) {{ edges {{ node {{ {PROFILE} }} }} }} }}',
            {},
        ),
        "byIdentity": (
            f'query {{ memberByIdentity(kind: PHONE, value: "13812345678") {{ {PROFILE} }} }}',
            {},
        ),
    }
    for name, (query, variables) in paths.items():
        body = await post(client, query, variables, token=staff)
        assert "errors" not in body, (name, body)
        text = repr(body)
        assert not [raw for raw in RAW if raw in text], (name, body)
        assert "138****5678" in text, name
        assert "z***@example.com" in text, name
        assert "'birthDate': None" in text and "'birthMonth': 2" in text, name
    assert await AuditEntry.filter(action="member.pii_read").count() == 0


async def test_pii_reads_in_clear_are_audited_without_values(
    client: httpx.AsyncClient, admin_token: str, staff_token: str
) -> None:
    member_id = await _register(client, admin_token)
    response = await client.post(
        "/graphql",
        json={
            "query": f"query Profile($id: ID!) {{ member(id: $id) {{ {PROFILE} }} }}",
            "variables": {"id": member_id},
        },
        headers={"Authorization": f"Bearer {staff_token}", "X-Request-ID": "pii-read-1"},
    )
    body = response.json()
    assert body["data"]["member"]["phone"] == "+8613812345678"
    entries = await AuditEntry.filter(action="member.pii_read")
    assert len(entries) == 1  # one per member and operation, however many fields
    entry = entries[0]
    assert (entry.actor, entry.actor_role, entry.target_type) == ("test-STAFF", "STAFF", "Member")
    assert to_base64("Member", entry.target_id) == member_id
    assert entry.request_id == "pii-read-1"
    assert entry.details == {"operation": "Profile"}
    assert not [raw for raw in RAW if raw in repr(entry.__dict__)]


async def test_a_member_reading_itself_is_not_audited(
    client: httpx.AsyncClient, admin_token: str, settings: Settings
) -> None:
    from base64 import b64decode

    member_id = await _register(client, admin_token)
    pk = int(b64decode(member_id).decode().split(":")[1])
    body = await post(
        client, "{ me { phone } }", token=token_for(settings, Role.MEMBER, member_id=pk)
    )
    assert body["data"]["me"]["phone"] == "+8613812345678"
    assert await AuditEntry.filter(action="member.pii_read").count() == 0


async def test_admin_and_staff_writes_are_audited_service_writes_are_not(
    client: httpx.AsyncClient, admin_token: str, service_token: str
) -> None:
    member_id = await _register(client, admin_token, **{"X-Request-ID": "write-1"})
    entries = await AuditEntry.filter(action="Mutation.registerMember")
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.actor, entry.actor_role) == ("test-ADMIN", "ADMIN")
    assert (entry.target_type, to_base64("Member", entry.target_id)) == ("Member", member_id)
    assert entry.details == {"outcome": "RegisterMemberSuccess"}
    assert entry.request_id == "write-1"
    assert not [raw for raw in RAW if raw in repr(entry.__dict__)]

    await post(
        client,
        'mutation { registerMember(input: {channel: POS, displayName: "收银"}) { __typename } }',
        token=service_token,
    )
    assert await AuditEntry.filter(action="Mutation.registerMember").count() == 1

    listed = await post(
        client,
        '{ auditEntries(first: 5, targetType: "Member") { edges { node { action actor targetId details } } } }',
        token=admin_token,
    )
    actions = [e["node"]["action"] for e in listed["data"]["auditEntries"]["edges"]]
    assert "Mutation.registerMember" in actions
