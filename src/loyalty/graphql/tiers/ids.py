"""Member ids from global ids, answering "not found" for members the caller may not reach."""

from __future__ import annotations

from strawberry import relay

from loyalty.auth.principal import Principal
from loyalty.graphql import ids, permissions
from loyalty.members.errors import MemberNotFound


def member_pk(principal: Principal, gid: relay.GlobalID) -> int:
    """The member id behind ``gid``; raises MemberNotFound for ids of other types, malformed
    ids, and members the caller may not see (a member token reaches only itself)."""
    member_id = ids.pk(gid, "Member")
    if member_id is None or not permissions.ensure_member_access(principal, member_id):
        raise MemberNotFound(gid.node_id)
    return member_id
