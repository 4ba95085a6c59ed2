"""Helpers shared by the members tests."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry.relay import to_base64

from loyalty import hooks


def gid(member_id: int) -> str:
    """The global id of member ``member_id``."""
    return to_base64("Member", member_id)


@pytest.fixture(autouse=True, scope="session")
def _member_data_handlers() -> None:
    """Register every domain's member-data handlers, as the app and worker do."""
    hooks.load()


REGISTER = """
mutation Register($input: RegisterMemberInput!) {
  registerMember(input: $input) {
    __typename
    ... on RegisterMemberSuccess {
      created
      member { id displayName phone email status identities { kind scope value channel } }
    }
    ... on ValidationError { code fields { field code } }
    ... on IdentityConflictError { code message }
    ... on MemberNotActiveError { code }
  }
}
"""


async def register(gql: Any, **input: Any) -> dict[str, Any]:
    """``registerMember`` with ``input`` (channel defaults to APP); returns the result."""
    payload = {"channel": "APP", "displayName": "张三", **input}
    body = await gql(REGISTER, {"input": payload})
    return body["data"]["registerMember"]  # type: ignore[no-any-return]
